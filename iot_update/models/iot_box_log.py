# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import logging
from datetime import timedelta
from itertools import groupby
from operator import itemgetter

from odoo import api, fields, models
from odoo.tools import SQL, create_index, ormcache, str2bool

from ..tools.box_log import LEVEL_NUMBERS, LEVELS, level_of
from ..tools.settings import positive_int

_logger = logging.getLogger(__name__)
#: The server log the box lines are forwarded to, when the setting says so.
_forward_logger = logging.getLogger("odoo.addons.iot_update.box_log")

LEVEL_PARAM = "iot_update.box_log_level"
MAX_LINES_PARAM = "iot_update.box_log_max_lines"
RETENTION_PARAM = "iot_update.box_log_retention_days"
FORWARD_PARAM = "iot_update.box_log_forward"
DEFAULT_LEVEL = "warning"
DEFAULT_MAX_LINES = 200
DEFAULT_RETENTION_DAYS = 7
#: A box's last error date is written at most once within this delay: a box
#: logging errors in a loop (a batch every 0.5 s) costs one write of its row a
#: minute, not two a second. The "reporting errors" flag may thus end up to a
#: minute early.
ERROR_DATE_THROTTLE_SECONDS = 60


def level_param(value):
    """The level a system parameter names (``WARNING``, ``warning`` or ``30``),
    else the default."""
    text = str(value or "").strip().lower()
    if text in LEVEL_NUMBERS:
        return text
    if text.isdigit():
        return level_of(int(text))
    return DEFAULT_LEVEL


class IotBoxLog(models.Model):
    """An entry of a box's own log: one line, or several consecutive lines of
    one batch at the same level number, in the box's order.

    A batch (up to 50 lines every 0.5 s) is kept as one row per run of lines
    at the same level: a burst of warnings or a traceback logged line by line
    is one entry with one level badge, and a batch costs PostgreSQL a few
    rows (their index entries and foreign key checks) instead of one per line.
    """

    _name = "iot.box.log"
    _description = "IoT Box Log Entry"
    # Newest first: the order entries were received in (the primary key's).
    _order = "id desc"
    # Written by one INSERT per batch (``_receive``), never edited.
    _log_access = False

    box_id = fields.Many2one("iot.box", string="IoT Box", required=True, ondelete="cascade", readonly=True)
    # Not indexed: only the daily purge searches by date (one sequential
    # scan of a table bounded per box); each index would weigh on every batch.
    date = fields.Datetime(string="Received", required=True, readonly=True)
    level = fields.Selection(
        [(name, name.capitalize()) for name in LEVELS],
        required=True,
        readonly=True,
        help="Level of the line on the box (from its level number).",
    )
    levelno = fields.Integer(string="Level Number", readonly=True, help="Python level number the box sent.")
    message = fields.Text(
        readonly=True,
        help="The lines as the box formatted them (its own date, process and logger), one after the other.",
    )
    line_count = fields.Integer(
        string="Lines",
        readonly=True,
        default=1,
        help="Consecutive lines of the batch at this level number, kept as one entry.",
    )
    remote_addr = fields.Char(string="Address", readonly=True, help="Address the batch came from.")
    # The box's: not stored, so that a batch's INSERT checks one foreign key per line, not two.
    company_id = fields.Many2one(related="box_id.company_id")

    def init(self):
        # A box's lines newest first: the Box Log tab and the count bound.
        create_index(self.env.cr, "iot_box_log_box_id_id_idx", self._table, ["box_id", "id"])

    # ------------------------------------------------------------------
    # Settings
    # ------------------------------------------------------------------

    @api.model
    def _get_log_settings(self):
        """The box log settings, keyed by the field names of the IoT settings."""
        return dict(self._get_log_settings_cached())

    @ormcache()
    def _get_log_settings_cached(self):
        # One cache lookup per batch rather than four: the registry's cache
        # is cleared whenever a system parameter changes.
        params = self.env["ir.config_parameter"].sudo()
        return (
            ("box_log_level", level_param(params.get_param(LEVEL_PARAM))),
            ("box_log_max_lines", positive_int(params.get_param(MAX_LINES_PARAM), DEFAULT_MAX_LINES)),
            ("box_log_retention_days", positive_int(params.get_param(RETENTION_PARAM), DEFAULT_RETENTION_DAYS)),
            ("box_log_forward", str2bool(params.get_param(FORWARD_PARAM) or "False", False)),
        )

    @api.model
    def _set_log_settings(self, box_log_level, box_log_max_lines, box_log_retention_days, box_log_forward):
        params = self.env["ir.config_parameter"].sudo()
        params.set_param(LEVEL_PARAM, level_param(box_log_level).upper())
        params.set_param(MAX_LINES_PARAM, str(box_log_max_lines))
        params.set_param(RETENTION_PARAM, str(box_log_retention_days))
        params.set_param(FORWARD_PARAM, "True" if box_log_forward else False)

    # ------------------------------------------------------------------
    # Receiving a batch (POST /iot/log)
    # ------------------------------------------------------------------

    @api.model
    def _receive(self, batch, remote_addr):
        """Keep the lines of ``batch`` (a ``BoxLogBatch``) that reach the
        level setting, for the paired, active box it names, when it comes from
        that box's address (its last check-in or its bus connection).

        Returns ``(box, kept)``: the box and the number of lines kept, or an
        empty box and the reason of the refusal. One query finds the box; an
        accepted batch costs one more round trip to PostgreSQL (its commit
        not waiting for the disk, the INSERT and the DELETE bounding the
        box's lines) and, when it holds errors, one UPDATE of the box's last
        error date, at most once a minute per box.
        """
        Box = self.env["iot.box"].sudo()
        found = Box._find_log_box(batch.key)
        if not found:
            return Box, "unknown box"
        box_id, active, checkin_addr, bus_addr, error_date, name = found
        if not active:
            return Box, "archived box"
        box = Box.browse(box_id)
        if not remote_addr or remote_addr not in (checkin_addr, bus_addr):
            return Box, "not from the box's address"
        settings = self._get_log_settings()
        threshold = LEVEL_NUMBERS[settings["box_log_level"]]
        lines = [(levelno, message) for levelno, message in batch.lines if levelno >= threshold]
        if not lines:
            return box, 0
        now = fields.Datetime.now()
        self._insert_lines(box, lines, now, remote_addr, settings["box_log_max_lines"])
        if max(levelno for levelno, __ in lines) >= LEVEL_NUMBERS["error"]:
            box._record_error_date(now, error_date)
        if settings["box_log_forward"]:
            for levelno, message in lines:
                _forward_logger.log(levelno, "IoT box %s: %s", name, message)
        return box, len(lines)

    def _insert_lines(self, box, lines, now, remote_addr, max_lines):
        """Keep ``lines`` and no more than the newest ``max_lines`` lines of
        the box, in one round trip to PostgreSQL: the transaction's commit is
        made not to wait for the disk (a box's log is best effort: the box
        itself drops lines when the server is slow; a crash of the database
        server may lose the last moments of lines, never corrupt anything),
        then one statement INSERTs the entries (one per run of consecutive
        lines at the same level number) and DELETEs the box's older entries
        beyond the bound (by the (box_id, id) index: that box only).

        The DELETE of a data-modifying WITH sees the table as it was before
        the INSERT: it keeps the newest older entries whose lines, with the
        batch's, are at most ``max_lines`` (an entry that would cross the
        bound goes whole), and a batch longer than the bound is cut to its
        newest lines first. The entry the bound starts at is the first past
        it in the box's ``(box_id, id)`` index read backwards, a scan that
        stops there: neither the box's older entries nor the dead rows of
        those deleted before are read, where a bitmap scan and a sort of the
        box's whole range (what ordering the outer query again makes
        PostgreSQL choose) read them all. Whatever entry past the bound came
        first, only entries past the bound would be deleted; the first makes
        the bound exact.
        """
        lines = lines[-max_lines:]
        entries = [(levelno, [message for __, message in run]) for levelno, run in groupby(lines, key=itemgetter(0))]
        self.env.cr.execute(
            SQL(
                """SET LOCAL synchronous_commit TO OFF;
                   WITH inserted AS (
                       INSERT INTO iot_box_log (box_id, date, level, levelno, message, line_count, remote_addr)
                       SELECT %(box)s, %(now)s, entry.level, entry.levelno, entry.message, entry.line_count, %(addr)s
                         FROM unnest(%(levels)s::varchar[], %(levelnos)s::int[], %(messages)s::text[],
                                     %(counts)s::int[]) AS entry(level, levelno, message, line_count)
                   )
                   DELETE FROM iot_box_log WHERE box_id = %(box)s AND id <= (%(bound)s)""",
                box=box.id,
                bound=self._bound_query(box.id, max_lines - len(lines)),
                now=now,
                addr=remote_addr,
                levels=[level_of(levelno) for levelno, __ in entries],
                levelnos=[levelno for levelno, __ in entries],
                messages=["\n".join(messages) for __, messages in entries],
                counts=[len(messages) for __, messages in entries],
            )
        )
        box.invalidate_recordset(["log_ids"], flush=False)

    @api.model
    def _bound_query(self, box_id, keep):
        """The id of the box's newest entry past its ``keep`` newest lines
        (none when it has no more), read from the ``(box_id, id)`` index
        backwards up to that entry (see ``_insert_lines``)."""
        return SQL(
            """SELECT id
                 FROM (SELECT id, sum(line_count) OVER (ORDER BY box_id DESC, id DESC) AS lines
                         FROM iot_box_log
                        WHERE box_id = %(box)s
                     ORDER BY box_id DESC, id DESC) older
                WHERE lines > %(keep)s
                LIMIT 1""",
            box=box_id,
            keep=keep,
        )

    # ------------------------------------------------------------------
    # Purge
    # ------------------------------------------------------------------

    @api.model
    def _cron_purge_box_logs(self):
        """Delete the lines older than the retention setting: one DELETE (by the date index)."""
        limit = fields.Datetime.now() - timedelta(days=self._get_log_settings()["box_log_retention_days"])
        self.env.cr.execute(SQL("DELETE FROM iot_box_log WHERE date < %s", limit))
        count = self.env.cr.rowcount
        self.invalidate_model()
        _logger.info("Purged %s IoT box log lines older than %s", count, limit)
        return count
