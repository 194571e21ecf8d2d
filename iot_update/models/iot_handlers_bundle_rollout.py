# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The roll-out of a held bundle: waves that advance on the health of the
boxes that took it, and an automatic halt when they lose devices, log new
errors or go dark.

Every step is set-based: opening a wave, evaluating the boxes and halting
are a few statements whatever the fleet's size, run by the scheduled action
``IoT: evaluate roll-outs`` (every minute) and the administrators' buttons,
never by the box routes. The box routes read one stored boolean per box
(``iot.box.rollout_due``), as they read the canary flag before.
"""

import itertools
import logging
import math
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from .iot_handlers_bundle import VARIANT_PLATFORMS
from .iot_rollout_wave import FAILED_STATES, TAKEN_STATES

_logger = logging.getLogger(__name__)

#: Roll-out settings: ``{field: (system parameter, default)}``.
ROLLOUT_PARAMS = {
    "rollout_waves": ("iot_update.rollout_waves", "10,50,100"),
    "rollout_soak_hours": ("iot_update.rollout_soak_hours", 24.0),
    "rollout_settle_minutes": ("iot_update.rollout_settle_minutes", 5),
    "rollout_healthy_percent": ("iot_update.rollout_healthy_percent", 80),
    "rollout_failure_percent": ("iot_update.rollout_failure_percent", 0),
    "rollout_dark_percent": ("iot_update.rollout_dark_percent", 10),
    "rollout_revert": ("iot_update.rollout_revert", "failed"),
}
REVERT_POLICIES = [
    ("failed", "The boxes that failed"),
    ("taken", "Every box that took it"),
    ("none", "None"),
]
#: Roll-out states in which the boxes are watched.
WATCHED_STATES = ("running", "paused", "halted")
#: A line of the box's own log without the box's date, process, level, database and logger.
LOG_PREFIX = r"^(\S+\s+){5}\S+:\s"


def parse_waves(text):
    """``[10, 50, 100]`` from ``"10, 50, 100"``: rising shares of the
    platform's boxes ending at 100. Raises ``ValueError`` otherwise."""
    parts = [part.strip().rstrip("%").strip() for part in (text or "").split(",") if part.strip()]
    waves = [int(part) for part in parts]
    if not waves or waves[-1] != 100 or any(not 0 < share <= 100 for share in waves):
        raise ValueError(text)
    if any(later <= earlier for earlier, later in itertools.pairwise(waves)):
        raise ValueError(text)
    return waves


def platform_sql(variant, alias="b"):
    platforms = tuple(platform for platform in VARIANT_PLATFORMS[variant] if platform)
    condition = SQL("%s IN %s", SQL.identifier(alias, "platform"), platforms)
    if False in VARIANT_PLATFORMS[variant]:
        condition = SQL("(%s OR %s IS NULL)", condition, SQL.identifier(alias, "platform"))
    return condition


class IotHandlersBundle(models.Model):
    # One concern per file, as Odoo's large models are split.
    _inherit = "iot.handlers.bundle"  # pylint: disable=consider-merging-classes-inherited

    rollout_state = fields.Selection(
        [
            ("running", "Running"),
            ("paused", "Paused"),
            ("halted", "Halted"),
            ("released", "Released"),
            ("withdrawn", "Withdrawn"),
        ],
        string="Roll-out Status",
        readonly=True,
        index="btree_not_null",
        copy=False,
        help="Running: waves open as their boxes prove healthy. Paused: no wave opens by itself. "
        "Halted: boxes failed after taking the bundle; no further box becomes due. "
        "Released: every box is due it. Withdrawn: rolled back or replaced.",
    )
    rollout_start_date = fields.Datetime(string="Roll-out Started", readonly=True, copy=False)
    rollout_halt_date = fields.Datetime(string="Halted", readonly=True, copy=False)
    rollout_halt_reason = fields.Text(
        string="Why It Halted", readonly=True, copy=False, help="The boxes, the signal and the evidence."
    )
    rollout_soak_hours = fields.Float(
        string="Soak Time (hours)",
        help="A box that took the bundle is healthy when nothing failed for this long (0.5: half an hour).",
    )
    rollout_healthy_percent = fields.Integer(
        string="Healthy to Advance (%)",
        help="A wave opens the next when this share of its boxes that took the bundle (at least one) is healthy.",
    )
    rollout_failure_percent = fields.Integer(
        string="Failures to Halt (%)",
        help="The roll-out halts when more than this share of a wave's boxes that took the bundle lose "
        "devices or log new errors (0: any box). Any failure among the canaries halts it.",
    )
    rollout_dark_percent = fields.Integer(
        string="Gone Dark to Halt (%)",
        help="The roll-out halts when more than this share of a wave's boxes that took the bundle go offline "
        "within the soak time.",
    )
    rollout_revert = fields.Selection(
        REVERT_POLICIES,
        string="On Halt, Back to the Previous Bundle",
        help="Which boxes are due the previous bundle again when the roll-out halts.",
    )
    wave_ids = fields.One2many("iot.rollout.wave", "bundle_id", string="Waves", readonly=True)
    rollout_line_ids = fields.One2many("iot.rollout.line", "bundle_id", string="Roll-out Boxes", readonly=True)
    rollout_failed_line_ids = fields.One2many(
        "iot.rollout.line",
        "bundle_id",
        string="Failed Boxes",
        readonly=True,
        domain=[("state", "in", FAILED_STATES)],
    )
    rollout_summary = fields.Char(string="Roll-out Stage", compute="_compute_rollout_summary")

    @api.depends("rollout_state", "wave_ids.state", "wave_ids.percent")
    @api.depends_context("lang")
    def _compute_rollout_summary(self):
        labels = dict(self._fields["rollout_state"]._description_selection(self.env))
        for bundle in self:
            if not bundle.rollout_state:
                bundle.rollout_summary = False
                continue
            opened = bundle.wave_ids.filtered(lambda wave: wave.state == "open").sorted("sequence")[-1:]
            bundle.rollout_summary = (
                self.env._("%(state)s: %(wave)s", state=labels[bundle.rollout_state], wave=opened.name)
                if opened and bundle.rollout_state in WATCHED_STATES
                else labels[bundle.rollout_state]
            )

    # ------------------------------------------------------------------
    # Settings
    # ------------------------------------------------------------------

    @api.model
    def _get_rollout_settings(self):
        """The roll-out settings, keyed by the field names of the IoT settings
        (a parameter that is not a valid value reads as its default)."""
        params = self.env["ir.config_parameter"].sudo()
        values = {}
        for name, (key, default) in ROLLOUT_PARAMS.items():
            raw = (params.get_param(key) or "").strip()
            if isinstance(default, float):
                try:
                    values[name] = float(raw) if raw else default
                except ValueError:
                    values[name] = default
            elif isinstance(default, int):
                values[name] = int(raw) if raw.isdigit() else default
            else:
                values[name] = raw or default
        try:
            self._check_rollout_settings(values)
        except ValidationError:
            _logger.warning("IoT roll-out settings not valid, defaults used: %s", values)
            values = {name: default for name, (__, default) in ROLLOUT_PARAMS.items()}
        return values

    @api.model
    def _check_rollout_settings(self, values):
        try:
            parse_waves(values["rollout_waves"])
        except ValueError as error:
            raise ValidationError(
                self.env._("The waves are rising shares of the boxes ending at 100, such as 10, 50, 100.")
            ) from error
        for name in ("rollout_soak_hours", "rollout_settle_minutes", "rollout_healthy_percent"):
            if values[name] <= 0:
                raise ValidationError(self.env._("The soak time, settling time and healthy share must be positive."))
        for name in ("rollout_healthy_percent", "rollout_failure_percent", "rollout_dark_percent"):
            if not 0 <= values[name] <= 100:
                raise ValidationError(self.env._("A share of the boxes is between 0 and 100 %."))
        if values["rollout_revert"] not in dict(REVERT_POLICIES):
            raise ValidationError(self.env._("Unknown roll back policy."))

    @api.model
    def _set_rollout_settings(self, values):
        """Write the roll-out settings (``{field: value}``); they apply to the roll-outs started later."""
        current = self._get_rollout_settings()
        values = {**current, **{name: value for name, value in values.items() if name in ROLLOUT_PARAMS}}
        self._check_rollout_settings(values)
        if values == current:
            return False
        params = self.env["ir.config_parameter"].sudo()
        for name, (key, __) in ROLLOUT_PARAMS.items():
            params.set_param(key, str(values[name]))
        _logger.info("IoT roll-out settings set by user %s: %s", self.env.uid, values)
        return True

    @api.constrains("rollout_soak_hours", "rollout_healthy_percent", "rollout_failure_percent", "rollout_dark_percent")
    def _check_rollout_thresholds(self):
        for bundle in self.filtered("rollout_state"):
            self._check_rollout_settings(
                {
                    "rollout_waves": "100",
                    "rollout_settle_minutes": 1,
                    "rollout_soak_hours": bundle.rollout_soak_hours,
                    "rollout_healthy_percent": bundle.rollout_healthy_percent,
                    "rollout_failure_percent": bundle.rollout_failure_percent,
                    "rollout_dark_percent": bundle.rollout_dark_percent,
                    "rollout_revert": bundle.rollout_revert,
                }
            )

    # ------------------------------------------------------------------
    # Hooks in the bundle's life
    # ------------------------------------------------------------------

    @api.model
    def _take_bundle(self, bundle, modules):
        record = super()._take_bundle(bundle, modules)
        if record.state == "held" and record.rollout_state not in WATCHED_STATES:
            record._rollout_start()
        return record

    def _retire(self, state):
        ended = self.filtered(lambda bundle: bundle.rollout_state in WATCHED_STATES)
        if ended:
            ended.write({"rollout_state": "withdrawn"})
            ended._rollout_clear_due()
        return super()._retire(state)

    def action_release(self):
        started = self.filtered(lambda bundle: bundle.rollout_state in WATCHED_STATES)
        if started:
            self._check_iot_admin()
            started.sudo()._rollout_clear_due()
        result = super().action_release()
        if started:
            started.sudo().write({"rollout_state": "released"})
        return result

    def _rollout_clear_due(self):
        """None of the boxes of these roll-outs is due their bundle any more."""
        self.env["iot.box"].flush_model(["rollout_due"])
        self.env.cr.execute(
            SQL(
                """UPDATE iot_box b SET rollout_due = false
                     FROM iot_rollout_line l
                    WHERE l.bundle_id IN %s AND l.box_id = b.id AND b.rollout_due""",
                tuple(self.ids),
            )
        )
        self.env["iot.box"].invalidate_model(["rollout_due"], flush=False)

    # ------------------------------------------------------------------
    # The plan: waves and their boxes
    # ------------------------------------------------------------------

    def _rollout_start(self):
        """Plan the roll-out of this held bundle: the canary wave, then the
        waves of the settings; every active box of the platform gets a line,
        in one INSERT per kind; the first wave with boxes opens. The caller
        flags the platform's boxes once (``_apply_rollout``), as for any
        bundle it records."""
        self.ensure_one()
        settings = self._get_rollout_settings()
        now = fields.Datetime.now()
        self.write(
            {
                "rollout_state": "running",
                "rollout_start_date": now,
                "rollout_halt_date": False,
                "rollout_halt_reason": False,
                **{
                    name: settings[name]
                    for name in (
                        "rollout_soak_hours",
                        "rollout_healthy_percent",
                        "rollout_failure_percent",
                        "rollout_dark_percent",
                        "rollout_revert",
                    )
                },
            }
        )
        shares = parse_waves(settings["rollout_waves"])
        # A bundle held again after it was withdrawn starts a new plan.
        self.env.cr.execute(SQL("DELETE FROM iot_rollout_wave WHERE bundle_id = %s", self.id))
        self.invalidate_recordset(["wave_ids", "rollout_line_ids"])
        self.env["iot.rollout.wave"].create(
            [{"bundle_id": self.id, "sequence": 0, "percent": 0}]
            + [
                {"bundle_id": self.id, "sequence": number, "percent": share}
                for number, share in enumerate(shares, start=1)
            ]
        )
        self.env.flush_all()
        # A box due an earlier held bundle of the platform is not due this one.
        self.env.cr.execute(
            SQL("UPDATE iot_box b SET rollout_due = false WHERE b.rollout_due AND %s", platform_sql(self.variant))
        )
        self._rollout_plan_boxes(now)
        self.env["iot.box"].invalidate_model(["rollout_due"], flush=False)
        self.env["iot.handlers.bundle.log"].sudo()._log(
            "rollout_started",
            self,
            box_count=len(self.rollout_line_ids),
            detail=self.env._("Waves: canary boxes, then %(waves)s %%", waves=", ".join(map(str, shares))),
        )
        # The canary wave opens at once, even empty: a box marked canary later is due the bundle at once.
        canaries = self.wave_ids.filtered(lambda wave: wave.sequence == 0)
        self._rollout_open_wave(canaries, flag=False)
        if not canaries.line_ids and self.rollout_line_ids:
            # No canary: the first wave of the other boxes takes its place.
            self._rollout_open_next(flag=False)

    def _rollout_plan_boxes(self, now):
        """The lines of the roll-out: the canaries in wave 0; the other boxes
        in the waves by a stable order spread over companies.

        Each company's boxes are ranked by a hash of their identifier (the
        same order at every roll-out), and a box's place in the fleet is its
        place within its company (its share of the company's boxes): the
        first wave takes the first tenth of every company's boxes, not of
        one company's.
        """
        uid = self.env.uid
        self.env.cr.execute(
            SQL(
                """
                WITH waves AS (
                    SELECT id, sequence, percent FROM iot_rollout_wave WHERE bundle_id = %(bundle)s
                ), candidates AS (
                    SELECT b.id, coalesce(b.canary, false) AS canary, b.company_id, md5(b.identifier) AS rank_key
                      FROM iot_box b
                     WHERE b.active AND %(platform)s
                ), placed AS (
                    SELECT id, rank_key,
                           (row_number() OVER (PARTITION BY company_id ORDER BY rank_key, id) - 0.5)
                               / count(*) OVER (PARTITION BY company_id) AS place
                      FROM candidates WHERE NOT canary
                ), ordered AS (
                    SELECT id, row_number() OVER (ORDER BY place, rank_key, id) AS position,
                           count(*) OVER () AS total
                      FROM placed
                ), assigned AS (
                    SELECT id AS box_id, (SELECT id FROM waves WHERE sequence = 0) AS wave_id
                      FROM candidates WHERE canary
                    UNION ALL
                    SELECT o.id, (SELECT w.id FROM waves w
                                   WHERE w.sequence > 0 AND o.position <= ceil(w.percent * o.total / 100.0)
                                   ORDER BY w.sequence LIMIT 1)
                      FROM ordered o
                )
                INSERT INTO iot_rollout_line
                       (bundle_id, wave_id, box_id, state, reverted, acknowledged,
                        create_uid, create_date, write_uid, write_date)
                SELECT %(bundle)s, wave_id, box_id, 'pending', false, false, %(uid)s, %(now)s, %(uid)s, %(now)s
                  FROM assigned
                """,
                bundle=self.id,
                platform=platform_sql(self.variant),
                uid=uid,
                now=now,
            )
        )
        self.invalidate_recordset(["rollout_line_ids"])

    def _rollout_open_next(self, manual=False, flag=True):
        """Open the next wave that has boxes; when none is left, release the
        bundle to all (the roll-out is complete). A roll-out none of whose
        waves has a box (no box of its platform yet) waits: it is released
        by hand, or by "Advance now"."""
        self.ensure_one()
        if not manual and not self.rollout_line_ids:
            return self.env["iot.rollout.wave"]
        counts = dict(self.env["iot.rollout.line"]._read_group([("bundle_id", "=", self.id)], ["wave_id"], ["__count"]))
        for wave in self.wave_ids.filtered(lambda wave: wave.state == "waiting").sorted("sequence"):
            if not counts.get(wave):
                wave.state = "skipped"
                continue
            self._rollout_open_wave(wave, manual=manual, flag=flag)
            return wave
        self._rollout_complete(manual=manual)
        return self.env["iot.rollout.wave"]

    def _rollout_open_wave(self, wave, manual=False, flag=True):
        """Its boxes are due the bundle from now: their devices are noted
        (what they serve before), their flag set and (``flag``) the statuses
        of the platform's boxes updated, in three statements."""
        now = fields.Datetime.now()
        wave.write({"state": "open", "open_date": now})
        self.env.flush_all()
        cr = self.env.cr
        cr.execute(
            SQL(
                """UPDATE iot_rollout_line l
                      SET due_date = %(now)s,
                          devices_before = coalesce(
                              (SELECT jsonb_agg(d.identifier ORDER BY d.identifier)
                                 FROM iot_device d WHERE d.box_id = l.box_id AND d.connected), '[]'::jsonb)
                    WHERE l.wave_id = %(wave)s AND l.state = 'pending'""",
                now=now,
                wave=wave.id,
            )
        )
        due = self._rollout_set_due(SQL("l.wave_id = %s AND l.state = 'pending' AND NOT l.reverted", wave.id))
        self.env["iot.rollout.line"].invalidate_model()
        if flag:
            self._rollout_flag()
        self.env["iot.handlers.bundle.log"].sudo()._log(
            "wave_opened", self, box_count=due, detail=self._rollout_wave_detail(wave, manual)
        )
        _logger.info(
            "IoT roll-out of bundle %s %s: %s open (%s boxes due)",
            self.variant,
            self.digest,
            wave.name,
            len(wave.line_ids),
        )

    def _rollout_wave_detail(self, wave, manual):
        previous = self.wave_ids.filtered(lambda other: other.state == "open" and other.sequence < wave.sequence)
        previous = previous.sorted("sequence")[-1:]
        if manual:
            return self.env._("%(wave)s opened by hand (Advance now)", wave=wave.name)
        if not previous:
            return self.env._("%(wave)s opened", wave=wave.name)
        return self.env._(
            "%(wave)s opened: %(healthy)s of the %(taken)s boxes of %(previous)s that took the bundle are healthy "
            "after %(hours)s hours (%(percent)s %% needed)",
            wave=wave.name,
            healthy=previous.healthy_count,
            taken=previous.taken_count,
            previous=previous.name,
            hours=format(self.rollout_soak_hours, "g"),
            percent=self.rollout_healthy_percent,
        )

    def _rollout_set_due(self, condition, due=True):
        """Set ``rollout_due`` of the boxes of the lines of this roll-out
        matching ``condition`` (on ``l``); returns how many changed."""
        self.env["iot.box"].flush_model(["rollout_due"])
        self.env.cr.execute(
            SQL(
                """UPDATE iot_box b SET rollout_due = %(due)s
                     FROM iot_rollout_line l
                    WHERE l.bundle_id = %(bundle)s AND l.box_id = b.id AND b.rollout_due IS DISTINCT FROM %(due)s
                      AND %(condition)s""",
                due=due,
                bundle=self.id,
                condition=condition,
            )
        )
        changed = self.env.cr.rowcount
        self.env["iot.box"].invalidate_model(["rollout_due"], flush=False)
        return changed

    def _rollout_flag(self):
        """Flag the platform's boxes against the due bundles; tell the open dashboards."""
        current, __ = self._due_digests(self.variant)
        boxes = self._flag_handlers(self.variant, current, self.digest if self.state == "held" else None)
        if boxes:
            self.env["iot.box"]._notify_boxes_changed(boxes.ids)
        return boxes

    def _rollout_complete(self, manual=False):
        """Every wave passed: the bundle is released to all."""
        self.ensure_one()
        bundle = self.sudo()
        bundle.action_release()
        bundle.env["iot.handlers.bundle.log"]._log(
            "completed",
            bundle,
            detail=self.env._("Last wave passed by hand (Advance now)")
            if manual
            else self.env._("Every wave passed: the bundle is current"),
        )

    # ------------------------------------------------------------------
    # Watching the boxes
    # ------------------------------------------------------------------

    @api.model
    def _cron_evaluate_rollouts(self):
        """Evaluate the boxes of every roll-out under way (one per platform at most)."""
        for bundle in self.sudo().search([("state", "=", "held"), ("rollout_state", "in", WATCHED_STATES)]):
            bundle._rollout_evaluate()

    def _rollout_evaluate(self):
        """Update the outcome of the roll-out's boxes, then halt it or open
        its next wave. Five UPDATEs, whatever the number of boxes:

        1. taken: a due box holds the bundle (its first delivery since due);
        2. errors: ERROR lines of its log since the download that it had not
           logged before it (a driver failing on every bundle is not news);
        3. went dark: a "Went offline" event within the soak time;
        4. lost devices: once settled after the download, a device it served
           before is not connected in its check-ins (boxes online only: an
           offline box is dark, not short of devices);
        5. healthy: the soak time passed with none of the above.
        """
        self.ensure_one()
        # One step of the roll-out at a time: an administrator's button waits, or this does.
        self._lock_variant(self.variant)
        self.invalidate_recordset()
        if self.state != "held" or self.rollout_state not in WATCHED_STATES:
            return
        settings = self._get_rollout_settings()
        now = fields.Datetime.now()
        params = {
            "bundle": self.id,
            "digest": self.digest,
            "now": now,
            "settled": now - timedelta(minutes=settings["rollout_settle_minutes"]),
            "soaked": now - timedelta(hours=self.rollout_soak_hours or 24),
            "soak": timedelta(hours=self.rollout_soak_hours or 24),
            "prefix": LOG_PREFIX,
        }
        self.env.flush_all()
        cr = self.env.cr
        cr.execute(
            SQL(
                """UPDATE iot_rollout_line l
                      SET state = 'taken',
                          taken_date = coalesce(
                              (SELECT min(e.date) FROM iot_box_event e
                                WHERE e.box_id = l.box_id AND e.bundle_digest = %(digest)s
                                  AND e.kind IN ('delivery', 'not_modified') AND e.date >= l.due_date),
                              b.handlers_date, %(now)s)
                     FROM iot_box b
                    WHERE b.id = l.box_id AND l.bundle_id = %(bundle)s AND l.state = 'pending'
                      AND l.due_date IS NOT NULL AND NOT l.reverted AND b.handlers_digest = %(digest)s""",
                **params,
            )
        )
        cr.execute(
            SQL(
                """WITH new_errors AS (
                       SELECT l.id AS line_id, g.date, line.text AS message, g.remote_addr,
                              row_number() OVER (PARTITION BY l.id ORDER BY g.id, line.n) AS n
                         FROM iot_rollout_line l
                         JOIN iot_box_log g ON g.box_id = l.box_id AND g.levelno >= 40 AND g.date >= l.taken_date
                        CROSS JOIN LATERAL unnest(string_to_array(g.message, E'\n')) WITH ORDINALITY AS line(text, n)
                        WHERE l.bundle_id = %(bundle)s AND l.state = 'taken'
                          AND NOT EXISTS (
                              SELECT 1 FROM iot_box_log o
                               CROSS JOIN LATERAL unnest(string_to_array(o.message, E'\n')) AS old(text)
                               WHERE o.box_id = l.box_id AND o.levelno >= 40 AND o.date < l.taken_date
                                 AND regexp_replace(old.text, %(prefix)s, '')
                                     = regexp_replace(line.text, %(prefix)s, ''))
                   ), firsts AS (
                       SELECT line_id, min(date) AS failed,
                              string_agg(message, E'\n' ORDER BY n) AS lines,
                              (array_agg(remote_addr ORDER BY n))[1] AS addr
                         FROM new_errors WHERE n <= 3 GROUP BY line_id
                   )
                   UPDATE iot_rollout_line l
                      SET state = 'errors', failed_date = f.failed, error_lines = f.lines, error_remote_addr = f.addr
                     FROM firsts f WHERE l.id = f.line_id""",
                **params,
            )
        )
        cr.execute(
            SQL(
                """UPDATE iot_rollout_line l SET state = 'dark', failed_date = d.date
                     FROM (SELECT l2.id, min(e.date) AS date
                             FROM iot_rollout_line l2
                             JOIN iot_box_event e ON e.box_id = l2.box_id AND e.kind = 'went_offline'
                                  AND e.date >= l2.taken_date AND e.date <= l2.taken_date + %(soak)s
                            WHERE l2.bundle_id = %(bundle)s AND l2.state = 'taken'
                            GROUP BY l2.id) d
                    WHERE l.id = d.id""",
                **params,
            )
        )
        cr.execute(
            SQL(
                """UPDATE iot_rollout_line l SET state = 'lost_devices', failed_date = %(now)s, lost_devices = x.names
                     FROM (SELECT l2.id, string_agg(coalesce(d.name, dev.identifier), ', '
                                                    ORDER BY dev.identifier) AS names
                             FROM iot_rollout_line l2
                             JOIN iot_box b ON b.id = l2.box_id AND NOT coalesce(b.is_offline, false)
                             CROSS JOIN LATERAL jsonb_array_elements_text(l2.devices_before) AS dev(identifier)
                             LEFT JOIN iot_device d ON d.box_id = l2.box_id AND d.identifier = dev.identifier
                            WHERE l2.bundle_id = %(bundle)s AND l2.state = 'taken' AND l2.taken_date <= %(settled)s
                              AND (d.id IS NULL OR NOT d.connected)
                            GROUP BY l2.id) x
                    WHERE l.id = x.id""",
                **params,
            )
        )
        cr.execute(
            SQL(
                """UPDATE iot_rollout_line SET state = 'healthy'
                    WHERE bundle_id = %(bundle)s AND state = 'taken' AND taken_date <= %(soaked)s""",
                **params,
            )
        )
        self.env["iot.rollout.line"].invalidate_model()
        self.wave_ids.invalidate_recordset()
        if self.rollout_state in ("running", "paused"):
            failed = self._rollout_failures()
            if failed:
                self._rollout_halt(*failed)
                return
        if self.rollout_state == "running":
            wave = self.wave_ids.filtered(lambda wave: wave.state == "open").sorted("sequence")[-1:]
            needed = max(1, math.ceil(wave.taken_count * self.rollout_healthy_percent / 100))
            if wave and wave.healthy_count >= needed:
                self._rollout_open_next()

    def _rollout_failures(self):
        """``(lines, reasons)`` when a wave open crosses a halt threshold:
        the failed boxes it rests on and why, else None. Failures an
        administrator saw when resuming are counted no more."""
        rows = self.env["iot.rollout.line"]._read_group(
            [("bundle_id", "=", self.id), ("wave_id.state", "=", "open")],
            ["wave_id", "state", "acknowledged"],
            ["__count"],
        )
        stats = {}
        for wave, state, acknowledged, count in rows:
            wave_stats = stats.setdefault(wave, {"taken": 0, "failed": 0, "dark": 0})
            if state in TAKEN_STATES:
                wave_stats["taken"] += count
            if acknowledged:
                continue
            if state in ("lost_devices", "errors"):
                wave_stats["failed"] += count
            elif state == "dark":
                wave_stats["dark"] += count
        reasons, halting_waves, states = [], self.env["iot.rollout.wave"], set()
        for wave, wave_stats in sorted(stats.items(), key=lambda item: item[0].sequence):
            failed, dark, taken = wave_stats["failed"], wave_stats["dark"], wave_stats["taken"]
            wave_reasons = []
            if wave.sequence == 0:
                if failed + dark:
                    wave_reasons.append(self.env._("%(count)s of the canary boxes failed", count=failed + dark))
                    states |= set(FAILED_STATES)
            else:
                if failed and failed * 100 > self.rollout_failure_percent * taken:
                    wave_reasons.append(
                        self.env._(
                            "%(wave)s: %(count)s of %(taken)s boxes that took the bundle lost devices or logged "
                            "new errors (more than %(percent)s %%)",
                            wave=wave.name,
                            count=failed,
                            taken=taken,
                            percent=self.rollout_failure_percent,
                        )
                    )
                    states |= {"lost_devices", "errors"}
                if dark and dark * 100 > self.rollout_dark_percent * taken:
                    wave_reasons.append(
                        self.env._(
                            "%(wave)s: %(count)s of %(taken)s boxes that took the bundle went dark "
                            "(more than %(percent)s %%)",
                            wave=wave.name,
                            count=dark,
                            taken=taken,
                            percent=self.rollout_dark_percent,
                        )
                    )
                    states.add("dark")
            if wave_reasons:
                reasons += wave_reasons
                halting_waves |= wave
        if not reasons:
            return None
        lines = self.env["iot.rollout.line"].search(
            [
                ("bundle_id", "=", self.id),
                ("wave_id", "in", halting_waves.ids),
                ("state", "in", sorted(states)),
                ("acknowledged", "=", False),
            ],
            order="failed_date, id",
            limit=5,
        )
        return lines, reasons

    # ------------------------------------------------------------------
    # Halting
    # ------------------------------------------------------------------

    def _rollout_halt(self, lines, reasons):
        """Stop the roll-out: no further box becomes due (the boxes of the
        open waves that have not taken it are due the previous bundle
        again), the boxes the policy names return to the previous bundle,
        the IoT administrators are told with the evidence, and the roll-out
        log records it. Three UPDATEs and the flags of the platform."""
        self.ensure_one()
        now = fields.Datetime.now()
        outcomes = dict(self.env["iot.rollout.line"]._fields["state"]._description_selection(self.env))
        evidence = []
        for line in lines:
            evidence.append(
                self.env._(
                    "%(box)s (%(wave)s): %(outcome)s. %(evidence)s",
                    box=line.box_id.display_name,
                    wave=line.wave_id.name,
                    outcome=outcomes[line.state],
                    evidence=line.evidence,
                )
            )
            if line.error_lines:
                # The box's own first line, as it sent it.
                evidence.append("    " + line.error_lines.splitlines()[0][:300])
        evidence = "\n".join(evidence)
        reason = "\n".join([*reasons, evidence])
        reverted = {"failed": FAILED_STATES, "taken": TAKEN_STATES, "none": ()}[self.rollout_revert or "failed"]
        self.env.flush_all()
        if reverted:
            self.env.cr.execute(
                SQL(
                    """UPDATE iot_rollout_line SET reverted = true
                        WHERE bundle_id = %s AND state IN %s AND NOT reverted""",
                    self.id,
                    tuple(reverted),
                )
            )
        self._rollout_set_due(SQL("(l.reverted OR l.state = 'pending')"), due=False)
        self.env["iot.rollout.line"].invalidate_model()
        self.write({"rollout_state": "halted", "rollout_halt_date": now, "rollout_halt_reason": reason})
        boxes = self._rollout_flag()
        self.env["iot.handlers.bundle.log"].sudo()._log("halted", self, box_count=len(boxes), detail=reason)
        _logger.warning(
            "IoT roll-out of bundle %s %s halted: %s", self.variant, self.digest, reason.replace("\n", "; ")
        )
        self._rollout_notify(
            self.env._("Roll-out halted: %(bundle)s", bundle=self.display_name),
            reason,
        )

    def _rollout_notify(self, title, message):
        """Tell the IoT administrators in their open web clients (a sticky
        notification); the dashboard and the Driver Bundles list show it too."""
        group = self.env.ref("iot_update.group_iot_admin", raise_if_not_found=False)
        if group:
            self.env["bus.bus"].sudo()._sendone(
                group,
                "simple_notification",
                {"title": title, "message": message, "sticky": True, "type": "danger"},
            )

    # ------------------------------------------------------------------
    # Actions (IoT administrators)
    # ------------------------------------------------------------------

    def _check_rollout(self, states):
        """The roll-out, as superuser, locked (one step at a time) and in one of ``states``."""
        self._check_iot_admin()
        self.ensure_one()
        bundle = self.sudo()
        bundle._lock_variant(bundle.variant)
        bundle.invalidate_recordset()
        if bundle.state != "held" or bundle.rollout_state not in states:
            raise UserError(self.env._("This roll-out cannot do that in its present state."))
        return bundle

    def action_rollout_advance(self):
        """Advance now: open the next wave without waiting for its health."""
        bundle = self._check_rollout(("running", "paused"))
        bundle._rollout_open_next(manual=True)
        return True

    def action_rollout_pause(self):
        bundle = self._check_rollout(("running",))
        bundle.rollout_state = "paused"
        bundle.env["iot.handlers.bundle.log"]._log("paused", bundle)
        return True

    def action_rollout_resume(self):
        """Resume a paused or halted roll-out. After a halt, the failures
        seen so far no longer count (the administrator saw them); the boxes
        of the open waves that were not reverted are due the bundle again."""
        bundle = self._check_rollout(("paused", "halted"))
        if bundle.rollout_state == "halted":
            bundle.env.flush_all()
            bundle.env.cr.execute(
                SQL(
                    """UPDATE iot_rollout_line SET acknowledged = true
                        WHERE bundle_id = %s AND state IN %s AND NOT acknowledged""",
                    bundle.id,
                    FAILED_STATES,
                )
            )
            open_waves = bundle.wave_ids.filtered(lambda wave: wave.state == "open")
            bundle._rollout_set_due(SQL("l.wave_id IN %s AND NOT l.reverted", tuple(open_waves.ids) or (0,)))
            bundle.env["iot.rollout.line"].invalidate_model()
            bundle.write({"rollout_state": "running", "rollout_halt_date": False})
            boxes = bundle._rollout_flag()
            bundle.env["iot.handlers.bundle.log"]._log("resumed", bundle, box_count=len(boxes))
        else:
            bundle.rollout_state = "running"
            bundle.env["iot.handlers.bundle.log"]._log("resumed", bundle)
        return True

    def action_rollout_withdraw(self):
        """Roll back a roll-out: the held bundle is withdrawn, every box is
        due the current bundle again."""
        bundle = self._check_rollout(WATCHED_STATES)
        bundle._retire("withdrawn")
        boxes = bundle._apply_rollout(bundle.variant)
        if boxes:
            bundle.env["iot.box"]._notify_boxes_changed(boxes.ids)
        bundle.env["iot.handlers.bundle.log"]._log("rolled_back", bundle, box_count=len(boxes))
        _logger.info(
            "IoT roll-out of bundle %s %s rolled back by user %s: %s boxes flagged",
            bundle.variant,
            bundle.digest,
            self.env.uid,
            len(boxes),
        )
        return True

    def action_view_rollout_lines(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Boxes of the roll-out"),
            "res_model": "iot.rollout.line",
            "view_mode": "list",
            "domain": [("bundle_id", "=", self.id)],
            "context": {"create": False, "search_default_group_wave": 1},
        }
