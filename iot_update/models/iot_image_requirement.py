# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools.versions import is_image, is_series, series_key


class IotImageRequirement(models.Model):
    _name = "iot.image.requirement"
    _description = "IoT Minimum Image"
    _order = "sequence_key, id"

    server_series = fields.Char(
        required=True,
        help="Odoo series of this database, e.g. 18.0 or saas~18.2. A series without a row "
        "follows the row of the closest older series.",
    )
    min_image = fields.Char(
        string="Minimum Image", required=True, help="Oldest IoT box image (YY.MM) that runs this series."
    )
    sequence_key = fields.Integer(compute="_compute_sequence_key", store=True)

    _sql_constraints = [
        ("server_series_unique", "unique(server_series)", "Each server series has one minimum image."),
    ]

    @api.depends("server_series")
    def _compute_sequence_key(self):
        for row in self:
            major, minor = series_key(row.server_series) or (0, 0)
            row.sequence_key = major * 100 + minor

    @api.constrains("server_series", "min_image")
    def _check_versions(self):
        for row in self:
            if not is_series(row.server_series):
                raise ValidationError(
                    self.env._("%(series)s is not an Odoo series such as 18.0 or saas~18.2.", series=row.server_series)
                )
            if not is_image(row.min_image):
                raise ValidationError(
                    self.env._("%(image)s is not an image version such as 24.11.", image=row.min_image)
                )

    @api.model_create_multi
    def create(self, vals_list):
        rows = super().create(vals_list)
        self.env["iot.box"]._refresh_all_update_status()
        return rows

    def write(self, vals):
        result = super().write(vals)
        self.env["iot.box"]._refresh_all_update_status()
        return result

    def unlink(self):
        result = super().unlink()
        self.env["iot.box"]._refresh_all_update_status()
        return result

    @api.model
    def _get_table(self):
        """``{server series: minimum image}`` of every row."""
        return {row.server_series: row.min_image for row in self.search([])}
