# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import api, fields, models

#: Outcomes of a roll-out line that count as a failure of the box.
FAILED_STATES = ("lost_devices", "errors", "dark")
#: Outcomes of a box that took the bundle.
TAKEN_STATES = ("taken", "healthy", *FAILED_STATES)


class IotRolloutWave(models.Model):
    """A wave of the roll-out of a held bundle: the canary boxes, then a
    share of the other boxes of its platform (cumulative: 10 %, 50 %, 100 %
    of them). Its boxes are due the bundle from the moment it opens."""

    _name = "iot.rollout.wave"
    _description = "IoT Roll-out Wave"
    _order = "bundle_id, sequence, id"

    bundle_id = fields.Many2one(
        "iot.handlers.bundle", string="Bundle", required=True, readonly=True, ondelete="cascade", index=True
    )
    sequence = fields.Integer(readonly=True, help="0: the canary boxes; then the waves in the order they open.")
    percent = fields.Integer(
        string="Share (%)",
        readonly=True,
        help="Share of the platform's boxes (canaries aside) due the bundle once this wave is open, "
        "counting the waves before it.",
    )
    name = fields.Char(compute="_compute_name")
    state = fields.Selection(
        [("waiting", "Waiting"), ("open", "Open"), ("skipped", "Skipped (no box)")],
        required=True,
        readonly=True,
        default="waiting",
    )
    open_date = fields.Datetime(string="Opened", readonly=True)
    line_ids = fields.One2many("iot.rollout.line", "wave_id", string="Boxes of the Wave", readonly=True)
    box_count = fields.Integer(string="Boxes", compute="_compute_counts")
    pending_count = fields.Integer(string="Pending", compute="_compute_counts", help="Due, not taken yet.")
    taken_count = fields.Integer(string="Taken", compute="_compute_counts", help="Boxes that took the bundle.")
    healthy_count = fields.Integer(string="Healthy", compute="_compute_counts")
    failed_count = fields.Integer(
        string="Failed", compute="_compute_counts", help="Boxes that lost devices, reported new errors or went dark."
    )

    @api.depends("sequence", "percent")
    def _compute_name(self):
        for wave in self:
            if wave.sequence == 0:
                wave.name = self.env._("Canary boxes")
            else:
                wave.name = self.env._("Wave %(number)s: %(percent)s %%", number=wave.sequence, percent=wave.percent)

    def _compute_counts(self):
        rows = self.env["iot.rollout.line"]._read_group(
            [("wave_id", "in", self.ids)], ["wave_id", "state"], ["__count"]
        )
        counts = {}
        for wave, state, count in rows:
            counts.setdefault(wave.id, {})[state] = count
        for wave in self:
            by_state = counts.get(wave.id, {})
            wave.box_count = sum(by_state.values())
            wave.pending_count = by_state.get("pending", 0)
            wave.taken_count = sum(by_state.get(state, 0) for state in TAKEN_STATES)
            wave.healthy_count = by_state.get("healthy", 0)
            wave.failed_count = sum(by_state.get(state, 0) for state in FAILED_STATES)
