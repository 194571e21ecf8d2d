# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import logging

from odoo import api, fields, models
from odoo.exceptions import AccessError

from .iot_box_log import LEVELS
from .iot_handlers_bundle_rollout import REVERT_POLICIES
from .iot_update_settings import ROLLOUT_FIELDS

_logger = logging.getLogger(__name__)


class ResConfigSettings(models.TransientModel):
    """Settings > IoT, for system administrators: the values of the IoT settings
    screen (iot.update.settings), read and saved through its methods."""

    _inherit = "res.config.settings"

    iot_pairing_token = fields.Char(
        string="Pairing Token",
        compute="_compute_iot_pairing_token",
        groups="iot_update.group_iot_admin",
        help="Token a new box must send at its first check-in (system parameter iot_token).",
    )
    iot_offline_delay_hours = fields.Integer(string="Offline Delay (hours)")
    iot_image_feed_url = fields.Char(string="Image Feed URL")
    iot_event_retention_days = fields.Integer(string="History Retention (days)")
    iot_hold_bundles = fields.Boolean(string="Roll Out New Driver Bundles in Waves")
    iot_rollout_waves = fields.Char(string="Waves (%)")
    iot_rollout_soak_hours = fields.Float(string="Soak Time (hours)")
    iot_rollout_settle_minutes = fields.Integer(string="Devices Settle (minutes)")
    iot_rollout_healthy_percent = fields.Integer(string="Healthy to Advance (%)")
    iot_rollout_failure_percent = fields.Integer(string="Failures to Halt (%)")
    iot_rollout_dark_percent = fields.Integer(string="Gone Dark to Halt (%)")
    iot_rollout_revert = fields.Selection(REVERT_POLICIES, string="On Halt, Back to the Previous Bundle")
    iot_box_log_level = fields.Selection(
        [(name, name.capitalize()) for name in LEVELS], string="Box Log Level Kept", default="warning"
    )
    iot_box_log_max_lines = fields.Integer(string="Box Log Lines per Box")
    iot_box_log_retention_days = fields.Integer(string="Box Log Kept (days)")
    iot_box_log_forward = fields.Boolean(string="Forward Box Logs to the Server Log")
    iot_disconnect_grace_minutes = fields.Integer(string="Disconnection Grace (minutes)")

    # Not stored with the settings: saving them must never write back a token
    # read before a new one was generated.
    def _compute_iot_pairing_token(self):
        token = self.env["iot.box"].sudo()._get_pairing_token()
        for settings in self:
            settings.iot_pairing_token = token

    @api.model
    def get_values(self):
        values = super().get_values()
        iot_settings = self.env["iot.update.settings"]._get_iot_settings()
        values.update({f"iot_{name}": value for name, value in iot_settings.items()})
        # The settings form opens on a new record, for which the token is not computed.
        if self.env.user.has_group("iot_update.group_iot_admin"):
            values["iot_pairing_token"] = self.env["iot.box"].sudo()._get_pairing_token()
        return values

    @api.constrains("iot_offline_delay_hours", "iot_event_retention_days")
    def _check_iot_delays(self):
        for settings in self:
            self.env["iot.update.settings"]._check_iot_settings(
                settings.iot_offline_delay_hours, settings.iot_event_retention_days
            )

    @api.constrains("iot_box_log_max_lines", "iot_box_log_retention_days")
    def _check_iot_box_log_bounds(self):
        for settings in self:
            self.env["iot.update.settings"]._check_box_log_settings(
                settings.iot_box_log_max_lines, settings.iot_box_log_retention_days
            )

    def set_values(self):
        res = super().set_values()
        self.env["iot.update.settings"]._apply_box_log_settings(
            self.iot_box_log_level or "warning",
            self.iot_box_log_max_lines,
            self.iot_box_log_retention_days,
            self.iot_box_log_forward,
        )
        self.env["iot.update.settings"]._apply_rollout_settings({name: self[f"iot_{name}"] for name in ROLLOUT_FIELDS})
        self.env["iot.update.settings"]._apply_iot_settings(
            self.iot_offline_delay_hours,
            self.iot_image_feed_url,
            self.iot_event_retention_days,
            hold_bundles=self.iot_hold_bundles,
            disconnect_grace_minutes=self.iot_disconnect_grace_minutes,
        )
        return res

    def action_iot_generate_pairing_token(self):
        """Replace the pairing token (button of the IoT settings)."""
        if not self.env.user.has_group("iot_update.group_iot_admin"):
            raise AccessError(self.env._("Only IoT administrators can generate a new pairing token."))
        self.env["iot.update.settings"]._generate_pairing_token()
        return True
