# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import api, fields, models
from odoo.tools import SQL

from ..tools.bundle import variant_for


class IotBox(models.Model):
    """The box in the roll-outs of held bundles: whether it is due the held
    bundle of its platform now, and how each roll-out went on it."""

    # One concern per file, as Odoo's large models are split.
    _inherit = "iot.box"  # pylint: disable=consider-merging-classes-inherited

    rollout_due = fields.Boolean(
        string="Due the Held Bundle",
        readonly=True,
        copy=False,
        help="The box is in an open wave of the roll-out of its platform's held bundle (and was not "
        "returned to the previous bundle by a halt): it gets the held bundle.",
    )
    rollout_line_ids = fields.One2many("iot.rollout.line", "box_id", string="Roll-outs", readonly=True)
    rollout_line_id = fields.Many2one(
        "iot.rollout.line",
        string="Roll-out",
        compute="_compute_rollout_line",
        help="The box in the roll-out of its platform's held bundle.",
    )
    rollout_outcome = fields.Selection(
        selection=lambda self: self.env["iot.rollout.line"]._fields["state"]._description_selection(self.env),
        string="Roll-out Outcome",
        compute="_compute_rollout_line",
    )

    def _compute_rollout_line(self):
        lines = self.env["iot.rollout.line"].search(
            [("box_id", "in", self.ids), ("bundle_id.state", "=", "held")], order="id desc"
        )
        by_box = {}
        for line in lines:
            by_box.setdefault(line.box_id.id, line)
        for box in self:
            line = by_box.get(box.id, self.env["iot.rollout.line"])
            box.rollout_line_id = line
            box.rollout_outcome = line.state

    @api.model_create_multi
    def create(self, vals_list):
        boxes = super().create(vals_list)
        boxes.filtered("canary")._join_canary_waves()
        return boxes

    def write(self, vals):
        result = super().write(vals)
        if "canary" in vals:
            if vals["canary"]:
                self._join_canary_waves()
            else:
                self._leave_canary_waves()
        return result

    def _join_canary_waves(self):
        """Boxes marked canary while a roll-out of their platform is under
        way join its canary wave, and are due the held bundle at once when
        that wave is open."""
        Bundle = self.env["iot.handlers.bundle"].sudo()
        for variant in {variant_for(box.platform) for box in self}:
            bundle = Bundle.search(
                [("variant", "=", variant), ("state", "=", "held"), ("rollout_state", "in", ("running", "paused"))],
                limit=1,
            )
            wave = bundle.wave_ids.filtered(lambda wave: wave.sequence == 0)
            boxes = self.filtered(lambda box, variant=variant: variant_for(box.platform) == variant and box.active)
            if not wave or not boxes:
                continue
            self.env.flush_all()
            self.env.cr.execute(
                SQL(
                    """INSERT INTO iot_rollout_line
                           (bundle_id, wave_id, box_id, state, reverted, acknowledged, due_date, devices_before,
                            create_uid, create_date, write_uid, write_date)
                       SELECT %(bundle)s, %(wave)s, b.id, 'pending', false, false, %(due)s,
                              coalesce((SELECT jsonb_agg(d.identifier ORDER BY d.identifier)
                                          FROM iot_device d WHERE d.box_id = b.id AND d.connected), '[]'::jsonb),
                              %(uid)s, %(now)s, %(uid)s, %(now)s
                         FROM iot_box b WHERE b.id IN %(boxes)s
                       ON CONFLICT (bundle_id, box_id) DO UPDATE SET wave_id = EXCLUDED.wave_id,
                              due_date = coalesce(iot_rollout_line.due_date, EXCLUDED.due_date)
                        WHERE iot_rollout_line.state = 'pending'""",
                    bundle=bundle.id,
                    wave=wave.id,
                    due=fields.Datetime.now() if wave.state == "open" else None,
                    uid=self.env.uid,
                    now=fields.Datetime.now(),
                    boxes=tuple(boxes.ids),
                )
            )
            self.env["iot.rollout.line"].invalidate_model()
            if wave.state == "open":
                bundle._rollout_set_due(SQL("l.box_id IN %s AND NOT l.reverted", tuple(boxes.ids)))
                bundle._rollout_flag()

    def _leave_canary_waves(self):
        """A box no longer canary that has not taken the held bundle is due the current one again."""
        lines = (
            self.env["iot.rollout.line"]
            .sudo()
            .search(
                [
                    ("box_id", "in", self.ids),
                    ("state", "=", "pending"),
                    ("wave_id.sequence", "=", 0),
                    ("bundle_id.state", "=", "held"),
                ]
            )
        )
        for bundle in lines.bundle_id:
            boxes = lines.filtered(lambda line, bundle=bundle: line.bundle_id == bundle).box_id
            bundle._rollout_set_due(SQL("l.box_id IN %s", tuple(boxes.ids)), due=False)
            bundle._rollout_flag()
        lines.unlink()
