# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import logging

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .iot_box import OFFLINE_DELAY_PARAM
from .iot_box_event import RETENTION_PARAM
from .iot_box_liveness import GRACE_PARAM
from .iot_box_log import LEVELS
from .iot_handlers_bundle import HOLD_PARAM
from .iot_handlers_bundle_rollout import REVERT_POLICIES
from .iot_image_release import DEFAULT_FEED_URL, FEED_URL_PARAM

_logger = logging.getLogger(__name__)

#: The roll-out settings, saved by ``iot.handlers.bundle._set_rollout_settings``.
ROLLOUT_FIELDS = (
    "rollout_waves",
    "rollout_soak_hours",
    "rollout_settle_minutes",
    "rollout_healthy_percent",
    "rollout_failure_percent",
    "rollout_dark_percent",
    "rollout_revert",
)


class IotUpdateSettings(models.TransientModel):
    """The IoT settings screen of IoT > Configuration > Settings.

    IoT administrators use it without being Settings administrators: the
    access rules open the model to them only, and the system parameters are
    then written as superuser. The general settings (Settings > IoT) show the
    same values and save them through the same methods.
    """

    _name = "iot.update.settings"
    _description = "IoT Update Settings"

    pairing_token = fields.Char(
        compute="_compute_pairing_token",
        groups="iot_update.group_iot_admin",
        help="Token a new box must send at its first check-in (system parameter iot_token).",
    )
    offline_delay_hours = fields.Integer(
        string="Offline Delay (hours)",
        required=True,
        help="A box neither checking in nor seen on the bus for longer than this is shown as offline. "
        "A box that is on renews its bus subscription at least every hour and a half.",
    )
    disconnect_grace_minutes = fields.Integer(
        string="Disconnection Grace (minutes)",
        required=True,
        help="A box whose bus connection ended and that has not connected again for longer than this is "
        "shown as offline. A server restart or the bus's recycling of a connection is shorter.",
    )
    image_feed_url = fields.Char(
        string="Image Feed URL",
        help="Empty: Odoo's nightly list. "
        "To stop reading it, deactivate the scheduled action 'IoT: refresh published images'.",
    )
    event_retention_days = fields.Integer(
        string="History Retention (days)",
        required=True,
        help="Check-ins and deliveries older than this are deleted.",
    )

    hold_bundles = fields.Boolean(
        string="Roll Out New Driver Bundles in Waves",
        help="A new drivers bundle (after a module install or upgrade) is held: it goes to the canary boxes, "
        "then to waves of the other boxes as those that took it prove healthy, and halts by itself when "
        "they lose devices, report errors or go dark.",
    )
    rollout_waves = fields.Char(
        string="Waves (%)",
        required=True,
        default="10,50,100",
        help="Shares of the other boxes of a platform due the bundle as each wave opens, after the canaries.",
    )
    rollout_soak_hours = fields.Float(
        string="Soak Time (hours)",
        required=True,
        default=24.0,
        help="A box that took the bundle is healthy when nothing failed for this long (0.5: half an hour).",
    )
    rollout_settle_minutes = fields.Integer(
        string="Devices Settle (minutes)",
        required=True,
        default=5,
        help="The devices a box serves are compared with those it served before this long after its download "
        "(a box reports its devices in the minute after it starts).",
    )
    rollout_healthy_percent = fields.Integer(
        string="Healthy to Advance (%)",
        required=True,
        default=80,
        help="A wave opens the next when this share of its boxes that took the bundle (at least one) is healthy.",
    )
    rollout_failure_percent = fields.Integer(
        string="Failures to Halt (%)",
        required=True,
        default=0,
        help="The roll-out halts when more than this share of a wave's boxes that took the bundle lose devices "
        "or log new errors (0: any box). Any failure among the canaries halts it.",
    )
    rollout_dark_percent = fields.Integer(
        string="Gone Dark to Halt (%)",
        required=True,
        default=10,
        help="The roll-out halts when more than this share of a wave's boxes that took the bundle go offline "
        "within the soak time.",
    )
    rollout_revert = fields.Selection(
        REVERT_POLICIES,
        string="On Halt, Back to the Previous Bundle",
        required=True,
        default="failed",
        help="Which boxes are due the previous bundle again when a roll-out halts.",
    )

    box_log_level = fields.Selection(
        [(name, name.capitalize()) for name in LEVELS],
        string="Box Log Level Kept",
        required=True,
        default="warning",
        help="Lines of the boxes' own logs below this level are not kept.",
    )
    box_log_max_lines = fields.Integer(
        string="Box Log Lines per Box", required=True, default=200, help="The newest lines of each box are kept."
    )
    box_log_retention_days = fields.Integer(
        string="Box Log Kept (days)", required=True, default=7, help="Older lines are deleted every day."
    )
    box_log_forward = fields.Boolean(
        string="Forward Box Logs to the Server Log",
        help="Each line kept is also logged by this server (logger odoo.addons.iot_update.box_log), "
        "at the box's level.",
    )

    # Computed, never stored in the form: saving must not write back a token
    # read before a new one was generated.
    def _compute_pairing_token(self):
        token = self.env["iot.box"].sudo()._get_pairing_token()
        for settings in self:
            settings.pairing_token = token

    @api.constrains("offline_delay_hours", "event_retention_days")
    def _check_delays(self):
        for settings in self:
            self._check_iot_settings(settings.offline_delay_hours, settings.event_retention_days)

    @api.constrains("box_log_max_lines", "box_log_retention_days")
    def _check_box_log_bounds(self):
        for settings in self:
            self._check_box_log_settings(settings.box_log_max_lines, settings.box_log_retention_days)

    @api.model
    def default_get(self, fields_list):
        # Opening the screen shows the parameters: only to those who may change them.
        self.check_access("create")
        values = super().default_get(fields_list)
        current = self._get_iot_settings()
        # The form opens on a new record, for which the token is not computed.
        current["pairing_token"] = self.env["iot.box"].sudo()._get_pairing_token()
        values.update({name: value for name, value in current.items() if name in fields_list})
        return values

    # Saving the form applies the settings, whether by the Save button (the
    # client saves the record before calling it) or by the form's own save icon.
    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        records._apply_form()
        return records

    def write(self, vals):
        result = super().write(vals)
        self._apply_form()
        return result

    def _apply_form(self):
        for settings in self:
            self._apply_iot_settings(
                settings.offline_delay_hours,
                settings.image_feed_url,
                settings.event_retention_days,
                hold_bundles=settings.hold_bundles,
                disconnect_grace_minutes=settings.disconnect_grace_minutes,
            )
            self._apply_box_log_settings(
                settings.box_log_level,
                settings.box_log_max_lines,
                settings.box_log_retention_days,
                settings.box_log_forward,
            )
            self._apply_rollout_settings({name: settings[name] for name in ROLLOUT_FIELDS})

    def action_save(self):
        """Button Save: the form was saved, hence applied, just before."""
        self.check_access("write")
        self.ensure_one()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "message": self.env._("IoT settings saved."),
                "type": "success",
                # Closing nothing: the form reloads the saved values.
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def action_generate_pairing_token(self):
        """Replace the pairing token (button of the IoT settings)."""
        self.check_access("write")
        self._generate_pairing_token()
        return True

    # ------------------------------------------------------------------
    # Shared with res.config.settings (Settings > IoT)
    # ------------------------------------------------------------------

    @api.model
    def _get_iot_settings(self):
        """The current settings, keyed by the field names of this model."""
        return {
            "offline_delay_hours": self.env["iot.box"]._get_offline_delay_hours(),
            "image_feed_url": self.env["iot.image.release"]._get_feed_url(),
            "event_retention_days": self.env["iot.box.event"]._get_retention_days(),
            "hold_bundles": self.env["iot.handlers.bundle"]._hold_enabled(),
            **self.env["iot.box.log"]._get_log_settings(),
            "disconnect_grace_minutes": self.env["iot.box"]._get_disconnect_grace_minutes(),
            **self.env["iot.handlers.bundle"]._get_rollout_settings(),
        }

    @api.model
    def _check_iot_settings(self, offline_delay_hours, event_retention_days):
        if offline_delay_hours <= 0:
            raise ValidationError(self.env._("The offline delay must be at least one hour."))
        if event_retention_days <= 0:
            raise ValidationError(self.env._("The history must be kept at least one day."))

    @api.model
    def _apply_iot_settings(
        self,
        offline_delay_hours,
        image_feed_url,
        event_retention_days,
        hold_bundles=None,
        disconnect_grace_minutes=None,
    ):
        """Write the IoT system parameters; refresh every box status when the
        offline delay changed. An empty feed URL removes the parameter;
        ``hold_bundles`` or ``disconnect_grace_minutes`` None leaves that
        setting as it is."""
        self._check_iot_settings(offline_delay_hours, event_retention_days)
        if disconnect_grace_minutes is not None:
            if disconnect_grace_minutes <= 0:
                raise ValidationError(self.env._("The disconnection grace must be at least one minute."))
            if disconnect_grace_minutes != self.env["iot.box"]._get_disconnect_grace_minutes():
                self.env["ir.config_parameter"].sudo().set_param(GRACE_PARAM, str(disconnect_grace_minutes))
                _logger.info("IoT disconnection grace set to %s minutes", disconnect_grace_minutes)
        Box = self.env["iot.box"].sudo()
        previous_delay = Box._get_offline_delay_hours()
        params = self.env["ir.config_parameter"].sudo()
        params.set_param(OFFLINE_DELAY_PARAM, str(offline_delay_hours))
        url = (image_feed_url or "").strip()
        params.set_param(FEED_URL_PARAM, url if url != DEFAULT_FEED_URL else False)  # empty: the default
        params.set_param(RETENTION_PARAM, str(event_retention_days))
        if hold_bundles is not None and bool(hold_bundles) != self.env["iot.handlers.bundle"]._hold_enabled():
            params.set_param(HOLD_PARAM, "True" if hold_bundles else False)
            self.env["iot.handlers.bundle.log"].sudo()._log("hold_on" if hold_bundles else "hold_off")
            _logger.info("IoT new drivers bundles %s by user %s", "held" if hold_bundles else "not held", self.env.uid)
        if offline_delay_hours != previous_delay:
            _logger.info("IoT offline delay set to %s hours by user %s", offline_delay_hours, self.env.uid)
            Box._refresh_all_update_status()

    @api.model
    def _check_box_log_settings(self, max_lines, retention_days):
        if max_lines <= 0:
            raise ValidationError(self.env._("Keep at least one box log line per box."))
        if retention_days <= 0:
            raise ValidationError(self.env._("The box logs must be kept at least one day."))

    @api.model
    def _apply_box_log_settings(self, level, max_lines, retention_days, forward):
        """Write the box log system parameters (``iot.box.log``)."""
        self._check_box_log_settings(max_lines, retention_days)
        Log = self.env["iot.box.log"].sudo()
        if Log._get_log_settings() != {
            "box_log_level": level,
            "box_log_max_lines": max_lines,
            "box_log_retention_days": retention_days,
            "box_log_forward": bool(forward),
        }:
            Log._set_log_settings(level, max_lines, retention_days, forward)
            _logger.info(
                "IoT box logs: level %s, %s lines per box, %s days, forwarded: %s, set by user %s",
                level,
                max_lines,
                retention_days,
                bool(forward),
                self.env.uid,
            )

    @api.model
    def _apply_rollout_settings(self, values):
        """Write the roll-out settings (they apply to the roll-outs started later)."""
        self.env["iot.handlers.bundle"].sudo()._set_rollout_settings(values)

    @api.model
    def _generate_pairing_token(self):
        self.env["iot.box"].sudo()._generate_pairing_token()
        _logger.info("New IoT pairing token generated by user %s", self.env.uid)
