# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import fields, models


class IotHandlersBundleChange(models.Model):
    _name = "iot.handlers.bundle.change"
    _description = "IoT Drivers Bundle Change"
    _order = "bundle_id, path"
    _log_access = False

    bundle_id = fields.Many2one("iot.handlers.bundle", required=True, ondelete="cascade", index=True)
    path = fields.Char(required=True)
    module = fields.Char(help="Module the file comes from (for a removed file: came from).")
    change = fields.Selection([("added", "Added"), ("removed", "Removed"), ("changed", "Changed")], required=True)
    size = fields.Integer(string="Size (bytes)")
    previous_size = fields.Integer(string="Previous Size (bytes)")
