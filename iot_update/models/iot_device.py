# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import fields, models


class IotDevice(models.Model):
    _name = "iot.device"
    _description = "IoT Device"
    _order = "box_id, name, id"

    box_id = fields.Many2one("iot.box", string="IoT Box", required=True, ondelete="cascade", index=True)
    identifier = fields.Char(required=True, readonly=True)
    name = fields.Char()
    type = fields.Char(help="Kind of device the box reports: printer, scale, camera, payment...")
    manufacturer = fields.Char()
    connection = fields.Char(help="How the device is connected to the box: usb, network, bluetooth...")
    subtype = fields.Char()
    connected = fields.Boolean(default=True, readonly=True, help="Reported by the box at its last check-in.")
    company_id = fields.Many2one(related="box_id.company_id", store=True, index=True)

    _sql_constraints = [
        ("box_identifier_unique", "unique(box_id, identifier)", "A box reports each device once."),
    ]
