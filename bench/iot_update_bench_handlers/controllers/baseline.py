# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The baseline of the benchmark: answer a handlers request by zipping the
handler folders again on every call, without cache and without recording
anything, as a server without iot_update's cache would."""

import io
import os
import zipfile

from odoo import http
from odoo.http import request


class HandlersBaseline(http.Controller):
    # csrf=False: called like /iot/get_handlers, by a client without session.
    @http.route(
        "/iot_update_bench/get_handlers", type="http", auth="public", methods=["POST"], csrf=False, save_session=False
    )
    def get_handlers(self, mac=None, auto=None, **kwargs):
        box = request.env["iot.box"].sudo()._find_box(mac or "")
        if not box or (auto == "True" and not box.drivers_auto_update):
            return request.make_response(b"")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for root in request.env["iot.handlers.bundle"].sudo()._handler_roots():
                for kind in ("drivers", "interfaces"):
                    folder = os.path.join(root, kind)
                    if not os.path.isdir(folder):
                        continue
                    for name in sorted(os.listdir(folder)):
                        path = os.path.join(folder, name)
                        if name[0] not in "._" and os.path.isfile(path):
                            archive.write(path, f"{kind}/{name}")
        return request.make_response(buffer.getvalue(), headers=[("Content-Type", "application/zip")])
