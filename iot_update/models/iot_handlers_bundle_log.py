# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import api, fields, models


class IotHandlersBundleLog(models.Model):
    """The roll-out actions of the IoT administrators and of the roll-out
    evaluation (waves opened, halts, with their evidence), one line per bundle
    an action changed, and the holding of new bundles turned on or off:
    append-only, written by ``action_release``, ``action_roll_back`` and the
    IoT settings (a few lines per action, whatever the fleet's size)."""

    _name = "iot.handlers.bundle.log"
    _description = "IoT Drivers Bundle Roll-out Log"
    _order = "date desc, id desc"
    _log_access = False

    bundle_id = fields.Many2one(
        "iot.handlers.bundle",
        readonly=True,
        ondelete="cascade",
        index=True,
        help="The bundle the action changed (none for the holding turned on or off).",
    )
    variant = fields.Selection(related="bundle_id.variant")
    date = fields.Datetime(required=True, readonly=True, default=fields.Datetime.now, index=True)
    user_id = fields.Many2one(
        "res.users", string="By", required=True, readonly=True, ondelete="restrict", default=lambda self: self.env.uid
    )
    action = fields.Selection(
        [
            ("released", "Released to all"),
            ("rolled_back", "Rolled back"),
            ("restored", "Current again (roll back)"),
            ("hold_on", "New bundles held"),
            ("hold_off", "New bundles no longer held"),
            ("rollout_started", "Roll-out planned"),
            ("wave_opened", "Wave opened"),
            ("halted", "Roll-out halted"),
            ("paused", "Roll-out paused"),
            ("resumed", "Roll-out resumed"),
            ("completed", "Roll-out completed"),
        ],
        required=True,
        readonly=True,
    )
    other_bundle_id = fields.Many2one(
        "iot.handlers.bundle",
        readonly=True,
        ondelete="set null",
        help="Released to all: the bundle it superseded. Rolled back: the bundle made current again. "
        "Current again: the bundle rolled back.",
    )
    box_count = fields.Integer(
        string="Boxes Flagged",
        readonly=True,
        help="Boxes whose handlers status changed; for a wave opened, the boxes it made due the bundle.",
    )
    detail = fields.Text(
        readonly=True, help="What the action rests on: the boxes, the signals and their evidence for a roll-out."
    )

    @api.model
    def _log(self, action, bundle=None, replaced=None, box_count=0, detail=None):
        """Record that the current user (OdooBot for the scheduled roll-out
        evaluation) did ``action`` (on ``bundle``)."""
        return self.create(
            [
                {
                    "action": action,
                    "bundle_id": bundle.id if bundle else False,
                    "other_bundle_id": replaced.id if replaced else False,
                    "user_id": self.env.uid,
                    "box_count": box_count,
                    "detail": detail or False,
                }
            ]
        )
