# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import fields, models


class IotHandlersBundleFile(models.Model):
    _name = "iot.handlers.bundle.file"
    _description = "IoT Drivers Bundle File"
    _order = "bundle_id, path"
    _log_access = False

    bundle_id = fields.Many2one("iot.handlers.bundle", required=True, ondelete="cascade", index=True)
    path = fields.Char(required=True, help="Path of the file in the bundle: drivers/<name> or interfaces/<name>.")
    module = fields.Char(help="Module whose iot_handlers folder the file comes from.")
    sha256 = fields.Char(string="SHA-256")
    size = fields.Integer(string="Size (bytes)")
