# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import fields, models


class IotBoxEvent(models.Model):
    _name = "iot.box.event"
    _description = "IoT Box Event"
    _order = "date desc, id desc"
    _log_access = False

    box_id = fields.Many2one("iot.box", string="IoT Box", ondelete="cascade", index=True)
    identifier = fields.Char(help="Identifier the request claimed (kept for refusals of unknown boxes).")
    date = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    kind = fields.Selection(
        [
            ("checkin", "Check-in"),
            ("admission", "Admission"),
            ("delivery", "Handlers delivery"),
            ("not_modified", "Handlers not modified"),
            ("refusal", "Refusal"),
        ],
        required=True,
    )
    version = fields.Char(help="Version the box reported.")
    bundle_digest = fields.Char(help="SHA-256 of the handlers bundle delivered.")
    detail = fields.Char(help="Refusal reason or other detail.")
    remote_addr = fields.Char(string="Requesting Address", help="Address the request came from (may be a proxy).")
    company_id = fields.Many2one(related="box_id.company_id", store=True, index=True)
