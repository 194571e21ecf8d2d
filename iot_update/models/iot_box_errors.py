# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import logging
import threading
from datetime import timedelta
from functools import partial

from odoo import SUPERUSER_ID, api, fields, models
from odoo.modules.registry import Registry
from odoo.tools import SQL

from ..tools.coalesce import Coalescer
from ..tools.pg_array import array_literal
from .iot_box_log import ERROR_DATE_THROTTLE_SECONDS

#: A box is "reporting errors" while its last error line is more recent than this.
REPORTING_ERRORS_HOURS = 24
#: Seconds the boxes that start reporting errors are collected for, per server
#: process, before the open dashboards are told (one notification).
ERROR_STARTS_DELAY = 1.0

_logger = logging.getLogger(__name__)


def _send_error_starts(dbname, box_ids):
    """Tell the open dashboards of ``dbname`` that ``box_ids`` started
    reporting errors (one bus notification, in a transaction of its own)."""
    threading.current_thread().dbname = dbname
    try:
        with Registry(dbname).cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["iot.box"]._notify_boxes_changed(sorted(box_ids))
    except Exception:
        _logger.warning(
            "Open dashboards not told that %s IoT boxes started reporting errors", len(box_ids), exc_info=True
        )


#: A fleet whose boxes start reporting errors together (a bundle failing on
#: all of them) sends one notification a second per server process, not one
#: per box.
error_starts = Coalescer(ERROR_STARTS_DELAY, _send_error_starts)


class IotBox(models.Model):
    """The box's own log (POST /iot/log) on the box: its lines and whether it
    reported errors lately."""

    # One concern per file, as Odoo's large models are split (issue 20).
    _inherit = "iot.box"  # pylint: disable=consider-merging-classes-inherited

    log_ids = fields.One2many("iot.box.log", "box_id", string="Box Log")
    last_error_date = fields.Datetime(
        string="Last Error Reported",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="When the box last sent a line of its log at level ERROR or above " "(recorded at most once a minute).",
    )
    reporting_errors = fields.Boolean(
        compute="_compute_reporting_errors",
        search="_search_reporting_errors",
        help="The box sent lines of its log at level ERROR or above in the last 24 hours (see its Box Log).",
    )

    @api.depends("last_error_date")
    def _compute_reporting_errors(self):
        since = self._reporting_errors_since()
        for box in self:
            box.reporting_errors = bool(box.last_error_date) and box.last_error_date >= since

    def _search_reporting_errors(self, operator, value):
        if operator not in ("=", "!="):
            return NotImplemented
        since = self._reporting_errors_since()
        if (operator == "=") == bool(value):
            return [("last_error_date", ">=", since)]
        return ["|", ("last_error_date", "=", False), ("last_error_date", "<", since)]

    @api.model
    def _reporting_errors_since(self):
        return fields.Datetime.now() - timedelta(hours=REPORTING_ERRORS_HOURS)

    @api.model
    def _record_error_dates(self, dates, recorded):
        """The boxes ``dates`` names (``{box id: date}``) sent an error line at
        that date: one UPDATE for all of them, which skips a box whose date
        recorded is less than a minute older. The boxes that were not
        reporting errors start to (``_on_reporting_errors``).

        ``recorded``: the boxes' last error dates as the caller read them
        (``{box id: date or None}``): a box whose date is within the minute
        is left out without a query (a box logging errors in a loop costs
        one write of its row a minute)."""
        throttle = timedelta(seconds=ERROR_DATE_THROTTLE_SECONDS)
        due = {
            box_id: date
            for box_id, date in sorted(dates.items())
            if not recorded.get(box_id) or recorded[box_id] < date - throttle
        }
        if not due:
            return
        self.flush_model(["last_error_date"])
        # The rows are locked in the order of their ids (no deadlock with
        # another server process's write of the same boxes); ``old`` holds
        # the dates before the UPDATE, as committed when the lock is taken.
        self.env.cr.execute(
            SQL(
                """UPDATE iot_box box SET last_error_date = new.date
                     FROM unnest(%(ids)s::int[], %(dates)s::timestamp[]) AS new(id, date),
                          (SELECT id, last_error_date FROM iot_box
                            WHERE id = ANY(%(ids)s::int[]) ORDER BY id FOR NO KEY UPDATE) old
                    WHERE box.id = new.id AND old.id = new.id
                      AND (old.last_error_date IS NULL OR old.last_error_date < new.date - %(throttle)s)
                RETURNING box.id, old.last_error_date, new.date""",
                ids=array_literal(due),
                dates=array_literal(due.values()),
                throttle=throttle,
            ),
            log_exceptions=False,
        )
        rows = self.env.cr.fetchall()
        boxes = self.browse([row[0] for row in rows])
        boxes.invalidate_recordset(["last_error_date"], flush=False)
        boxes.modified(["last_error_date"])
        starting = self.browse(
            [box_id for box_id, old, date in rows if not old or old < date - timedelta(hours=REPORTING_ERRORS_HOURS)]
        )
        if starting:
            # Their cards and the dashboard's count of boxes reporting
            # errors change: the open dashboards are told once the write is
            # committed, with the other boxes that start within the second.
            self.env.cr.postcommit.add(partial(error_starts.add, self.env.cr.dbname, starting.ids))
            starting._on_reporting_errors()

    def _on_reporting_errors(self):
        """Hook called when the boxes ``self`` start reporting errors (their
        first error line in 24 hours), in the transaction that recorded it."""

    @api.model
    def _cron_refresh_update_status(self):
        """Also tell the open dashboards about the boxes whose "Reporting
        errors" flag ended since the previous run (their last error line is
        now 24 hours old): one range query on the index of the last error
        date, nothing read per box that still reports errors or never did."""
        result = super()._cron_refresh_update_status()
        now = fields.Datetime.now()
        # The previous run ended at ``lastcall`` (the cron's, in the context)
        # and looked from its own start: a minute of overlap covers its
        # duration; a box told twice only reloads the dashboard twice.
        previous = self.env.context.get("lastcall") or now
        ended_from = previous - timedelta(hours=REPORTING_ERRORS_HOURS, minutes=1)
        self.flush_model(["last_error_date"])
        self.env.cr.execute(
            SQL(
                "SELECT id FROM iot_box WHERE last_error_date >= %s AND last_error_date < %s",
                ended_from,
                now - timedelta(hours=REPORTING_ERRORS_HOURS),
            )
        )
        ended = [row[0] for row in self.env.cr.fetchall()]
        if ended:
            self._notify_boxes_changed(ended)
        return result
