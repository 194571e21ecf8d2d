# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import models

from odoo.addons.bus.websocket import wsrequest


class IrWebsocket(models.AbstractModel):
    _inherit = "ir.websocket"

    def _subscribe(self, og_data):
        """Subscribe as Odoo does, then record the contact of a box that
        subscribed to its own channel (``iot.box._on_bus_subscription``).

        A box's websocket carries no cookie: this runs as the public user, in
        the transaction of the websocket message, which Odoo commits (or
        retries on a serialization failure) once the subscription is done.
        """
        result = super()._subscribe(og_data)
        httprequest = getattr(wsrequest, "httprequest", None)
        remote_addr = httprequest.remote_addr if httprequest is not None else None
        self.env["iot.box"].sudo()._on_bus_subscription(og_data, remote_addr, websocket=getattr(wsrequest, "ws", None))
        return result
