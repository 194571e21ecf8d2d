# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import re

from odoo import api, fields, models
from odoo.tools import format_datetime

#: The line of the genuine box for a driver file that failed to import (SPEC 3.5).
LOAD_ERROR = re.compile(r"Unable to load file: ?(\S+)")


class IotRolloutLine(models.Model):
    """One box in the roll-out of a held bundle: the wave it belongs to,
    whether it took the bundle and how it went since, with the evidence.

    Lines are written set-based (``iot.handlers.bundle`` opens waves and
    evaluates them with a few statements, whatever the fleet's size)."""

    _name = "iot.rollout.line"
    _description = "IoT Roll-out Box"
    _order = "bundle_id, wave_id, state, id"
    _rec_name = "box_id"

    bundle_id = fields.Many2one(
        "iot.handlers.bundle", string="Bundle", required=True, readonly=True, ondelete="cascade"
    )
    wave_id = fields.Many2one("iot.rollout.wave", string="Wave", required=True, readonly=True, ondelete="cascade")
    box_id = fields.Many2one("iot.box", string="IoT Box", required=True, readonly=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="box_id.company_id")
    state = fields.Selection(
        [
            ("pending", "Pending"),
            ("taken", "Taken"),
            ("healthy", "Healthy"),
            ("lost_devices", "Lost devices"),
            ("errors", "Errors"),
            ("dark", "Went dark"),
        ],
        string="Outcome",
        required=True,
        readonly=True,
        default="pending",
        help="Pending: due (or waiting for its wave), not taken yet. Taken: downloaded, under watch for the "
        "soak time. Healthy: no failure within the soak time. Lost devices: serves fewer devices once "
        "settled. Errors: logged ERROR lines it did not log with its previous bundle. Went dark: went "
        "offline within the soak time.",
    )
    due_date = fields.Datetime(string="Due Since", readonly=True, help="When its wave opened.")
    taken_date = fields.Datetime(string="Taken", readonly=True, help="Its first download of the bundle.")
    devices_before = fields.Json(readonly=True, help="Identifiers of the devices the box served when its wave opened.")
    lost_devices = fields.Char(readonly=True, help="Devices it served before and no longer reports.")
    error_lines = fields.Text(readonly=True, help="The first new ERROR lines of its log after the download.")
    error_remote_addr = fields.Char(
        string="Log Address",
        readonly=True,
        help="Address the error lines came from (the box's check-in or bus address: log lines are not "
        "authenticated otherwise).",
    )
    failed_date = fields.Datetime(string="Failed", readonly=True, help="When the failure was seen.")
    reverted = fields.Boolean(readonly=True, help="The roll-out halted and this box is due the previous bundle again.")
    acknowledged = fields.Boolean(
        readonly=True, help="An administrator resumed the roll-out after this failure: it no longer halts it."
    )
    evidence = fields.Char(compute="_compute_evidence", help="What the outcome rests on.")

    _sql_constraints = [
        ("bundle_box_unique", "unique(bundle_id, box_id)", "A box is once in a roll-out."),
    ]

    def init(self):
        result = super().init()
        self.env.cr.execute(
            """CREATE INDEX IF NOT EXISTS iot_rollout_line_bundle_state_index
                   ON iot_rollout_line (bundle_id, state)"""
        )
        return result

    @api.depends("state", "lost_devices", "error_lines", "error_remote_addr", "failed_date", "taken_date")
    @api.depends_context("lang", "tz")
    def _compute_evidence(self):
        for line in self:
            line.evidence = line._evidence()

    def _evidence(self):
        """The outcome in words: the signal, what it showed, and when."""
        self.ensure_one()
        when = format_datetime(self.env, self.failed_date, dt_format="short") if self.failed_date else ""
        if self.state == "lost_devices":
            return self.env._(
                "Device list (check-in): no longer serves %(devices)s, seen %(date)s",
                devices=self.lost_devices,
                date=when,
            )
        if self.state == "errors":
            first = (self.error_lines or "").splitlines()[:1]
            failed = LOAD_ERROR.search(self.error_lines or "")
            what = (
                self.env._("driver %(file)s failed to load", file=failed.group(1))
                if failed
                else (first[0] if first else "")
            )
            return self.env._(
                "Box log (lines from %(address)s, the box's address): %(what)s, %(date)s",
                address=self.error_remote_addr or "?",
                what=what,
                date=when,
            )
        if self.state == "dark":
            return self.env._("Bus connection: went offline %(date)s, within the soak time", date=when)
        if self.state == "healthy":
            return self.env._("No failure within the soak time")
        if self.state == "taken":
            return self.env._(
                "Taken %(date)s, under watch",
                date=format_datetime(self.env, self.taken_date, dt_format="short") if self.taken_date else "",
            )
        return ""
