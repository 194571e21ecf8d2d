# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import fields, models


class IotImageRelease(models.Model):
    _name = "iot.image.release"
    _description = "IoT Image Release"
    _order = "image_version desc"

    image_version = fields.Char(required=True, help="Image version, YY.MM.")
    file_name = fields.Char()
    sha1 = fields.Char(string="SHA-1")
    is_latest = fields.Boolean(string="Latest", readonly=True)
    first_seen = fields.Datetime(default=fields.Datetime.now, readonly=True)

    _sql_constraints = [
        ("image_version_unique", "unique(image_version)", "Each image version is listed once."),
    ]
