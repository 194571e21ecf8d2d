# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import models
from odoo.http import request

from ..controllers.iot_update import _empty_ok, _logger
from ..tools.box_log import box_log_refusals

LOG_ROUTE = "/iot/log"


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _handle_error(cls, exception):
        """A batch of a box's log is answered 200 with an empty body whatever
        happened (SPEC 3.6: the box reads nothing of the answer): what Odoo
        refuses before the route runs (a form body over the route's limit) and
        any error are answered so too, after the transaction was rolled back."""
        httprequest = request.httprequest
        if httprequest.path == LOG_ROUTE and httprequest.method == "POST":
            box_log_refusals.note(_logger, type(exception).__name__, None, httprequest.remote_addr)
            return _empty_ok()
        return super()._handle_error(exception)
