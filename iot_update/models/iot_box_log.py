# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import logging
import threading
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple

from psycopg2.extensions import TransactionRollbackError

from odoo import SUPERUSER_ID, api, fields, models
from odoo.modules.registry import Registry
from odoo.tools import SQL, create_index, ormcache, str2bool

from ..tools.box_log import LEVEL_NUMBERS, LEVELS, box_log_refusals, level_of
from ..tools.coalesce import Coalescer
from ..tools.pg_array import array_literal
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

#: Seconds the entries of accepted batches are collected for, per server
#: process, before they are written together (one transaction a second).
LINES_DELAY = 1.0
#: Characters of lines a server process holds at most before writing them: the
#: batch that reaches it writes them at once (a fleet restarting, 2,000 boxes
#: posting 100 batches a second, holds about 0.7 MiB a second).
LINES_LIMIT_CHARS = 4 * 1024 * 1024
#: Times the write of collected entries is tried (a deadlock with another
#: server process's write is tried again).
LINES_WRITE_TRIES = 3


class CollectedBatch(NamedTuple):
    """A batch of a box's log, accepted by ``POST /iot/log`` and waiting for
    the write (``IotBoxLog._write_batches``) that checks whom it came from."""

    key: str  # the MAC address or serial number the batch names
    remote_addr: str | None
    date: datetime  # when it was accepted, to the microsecond
    entries: list  # [(levelno, [message])]: the lines at the level kept, a run per level number


def _write_box_lines(dbname, batches):
    """Write the ``batches`` collected for ``dbname`` (in a transaction of
    their own, tried again when it deadlocks with another process's)."""
    threading.current_thread().dbname = dbname
    for attempt in range(1, LINES_WRITE_TRIES + 1):
        try:
            with Registry(dbname).cursor() as cr:
                # Each statement sees what the other server processes
                # committed before it: two processes writing entries of the
                # same box both delete its oldest ones, where the second of
                # two REPEATABLE READ transactions would fail.
                cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                api.Environment(cr, SUPERUSER_ID, {})["iot.box.log"]._write_batches(batches)
            return
        except TransactionRollbackError:
            if attempt == LINES_WRITE_TRIES:
                _logger.warning("%s batches of IoT box logs not written", len(batches), exc_info=True)
        except Exception:
            _logger.warning("%s batches of IoT box logs not written", len(batches), exc_info=True)
            return


#: The batches a server process accepted in the last second, per database, in
#: the order accepted: one transaction a second checks whom they came from and
#: writes them all, instead of a query per batch. What is held when
#: the process exits normally is written then; a process killed outright
#: loses that second's lines (as a box drops its lines when the server is
#: slow).
box_lines = Coalescer(
    LINES_DELAY,
    _write_box_lines,
    collect=list,
    limit=LINES_LIMIT_CHARS,
    weigh=lambda batches: sum(len(message) for batch in batches for __, run in batch.entries for message in run),
)


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
    # Newest first: the order their batches were accepted in, by whichever
    # server process (each writes what it accepted once a second, so the ids
    # of two processes' entries interleave by the second, not by the batch).
    _order = "date desc, id desc"
    # Written by one INSERT a second per server process (``_write_entries``), never edited.
    _log_access = False

    box_id = fields.Many2one("iot.box", string="IoT Box", required=True, ondelete="cascade", readonly=True)
    # When the batch was accepted, to the microsecond (the order). Indexed
    # with the id by ``init``: the fleet's Box Log and the daily purge.
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
        cr = self.env.cr
        sequence = f"{self._table}_id_seq"
        # Entries take ids at the pace of the fleet's logs (a box logging an
        # error in a loop takes two a second, a thousand such boxes would use
        # up 32-bit ids in under two weeks): the ids are 64-bit. Odoo leaves
        # the type of an existing ``id`` column alone, so this holds.
        cr.execute(
            SQL(
                """SELECT column_type.typname, sequence_type.typname
                     FROM pg_attribute col
                     JOIN pg_type column_type ON column_type.oid = col.atttypid
                     JOIN pg_sequence seq ON seq.seqrelid = %(sequence)s::regclass
                     JOIN pg_type sequence_type ON sequence_type.oid = seq.seqtypid
                    WHERE col.attrelid = %(table)s::regclass AND col.attname = 'id'""",
                table=self._table,
                sequence=sequence,
            )
        )
        if cr.fetchone() != ("int8", "int8"):
            cr.execute(
                SQL(
                    "ALTER TABLE %s ALTER COLUMN id TYPE bigint; ALTER SEQUENCE %s AS bigint",
                    SQL.identifier(self._table),
                    SQL.identifier(sequence),
                )
            )
        # A box's lines newest first (the Box Log tab and the count bound),
        # and the fleet's (the Box Log menu and the purge), in the order of
        # ``_order``. An index entry costs an INSERT far less than its
        # foreign key check (about a sixth of it, measured).
        cr.execute(SQL("DROP INDEX IF EXISTS %s", SQL.identifier("iot_box_log_box_id_id_idx")))
        create_index(cr, "iot_box_log_box_id_date_id_idx", self._table, ["box_id", "date", "id"])
        create_index(cr, "iot_box_log_date_id_idx", self._table, ["date", "id"])

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
        """Collect the lines of ``batch`` (a ``BoxLogBatch``) that reach the
        level setting, as sent from ``remote_addr``, for the write of the
        batches this server process accepts within the second
        (``box_lines``, ``_write_batches``): that write checks whom each
        batch came from, for all of them at once. The box is answered
        without a query: the settings come from the registry's cache.

        Returns the number of lines collected (0 for a batch without a line
        at the level kept: nothing of it would be written, whichever box
        sent it from wherever)."""
        settings = self._get_log_settings()
        threshold = LEVEL_NUMBERS[settings["box_log_level"]]
        # A batch longer than the count bound keeps its newest lines.
        lines = [(levelno, message) for levelno, message in batch.lines if levelno >= threshold]
        lines = lines[-settings["box_log_max_lines"] :]
        if not lines:
            return 0
        entries = [(levelno, [message for __, message in run]) for levelno, run in groupby(lines, key=itemgetter(0))]
        # To the microsecond: the Box Log lists entries in the order the
        # batches were accepted, by whichever server process (each writes
        # its own every second).
        box_lines.add(self.env.cr.dbname, [CollectedBatch(batch.key, remote_addr, datetime.now(), entries)])
        return len(lines)

    @api.model
    def _write_batches(self, batches):
        """Write the ``batches`` (``CollectedBatch``, collected by
        ``box_lines``) that come from the box they name, in a few statements
        whatever their number:

        - one query finds the boxes they name (``iot.box._find_log_boxes``);
        - a batch is kept when its box is active and it came from one of the
          box's addresses (its last check-in's, its bus connection's), else
          it is refused: nothing of it is written, one warning line a minute
          at most says why (``box_log_refusals``), so that a stranger can
          neither fill a box's log nor raise its error flag;
        - one INSERT writes the entries of the batches kept, one DELETE
          keeps no more than the newest ``box_log_max_lines`` lines of each
          of their boxes (``_write_entries``);
        - one UPDATE records the last error date of their boxes that sent
          errors (``iot.box._record_error_dates``), at most once a minute per
          box.

        Their lines then go to the server log when the setting says so.
        Returns the batches refused, with why: ``[(batch, reason)]``."""
        if not batches:
            return []
        found = self.env["iot.box"]._find_log_boxes({batch.key for batch in batches})
        kept, refused, error_dates, recorded = [], [], {}, {}
        for batch in batches:
            box = found.get(batch.key)
            if not box:
                refused.append((batch, "unknown box"))
            elif not box["active"]:
                refused.append((batch, "archived box"))
            elif not batch.remote_addr or batch.remote_addr not in (box["checkin_remote_addr"], box["bus_remote_addr"]):
                refused.append((batch, "not from the box's address"))
            else:
                kept.append((box, batch))
                if max(levelno for levelno, __ in batch.entries) >= LEVEL_NUMBERS["error"]:
                    error_dates[box["id"]] = batch.date.replace(microsecond=0)
                    recorded[box["id"]] = box["last_error_date"]
        self._write_entries(
            [
                (box["id"], batch.date, level_of(levelno), levelno, "\n".join(run), len(run), batch.remote_addr)
                for box, batch in kept
                for levelno, run in batch.entries
            ]
        )
        if error_dates:
            self.env["iot.box"]._record_error_dates(error_dates, recorded)
        for batch, reason in refused:
            box_log_refusals.note(_logger, reason, batch.key, batch.remote_addr)
        if kept and self._get_log_settings()["box_log_forward"]:
            for box, batch in kept:
                for levelno, run in batch.entries:
                    for message in run:
                        _forward_logger.log(levelno, "IoT box %s: %s", box["name"], message)
        return refused

    @api.model
    def _write_entries(self, rows):
        """Write the entries ``rows`` (``(box_id, date, level, levelno,
        message, line_count, remote_addr)``, in the order their batches were
        accepted) and keep no more than the newest ``box_log_max_lines``
        lines of each box they belong to, in one round trip to PostgreSQL:
        one INSERT for all of them (their columns sent as seven array
        literals, ``array_literal``; their ids taken in that order), one
        DELETE of the entries past each box's bound (read from the box's
        ``(box_id, date, id)`` index, see ``_bound_query``). The commit does
        not wait for the disk: a box's log is best effort (the box itself
        drops lines when the server is slow); a crash of the database server
        may lose the last moments of lines, never corrupt anything. Entries
        of a box deleted since it was found are left out. An entry that
        would cross the bound goes whole."""
        if not rows:
            return
        box_ids, dates, levels, levelnos, messages, counts, addrs = zip(*rows, strict=True)
        max_lines = self._get_log_settings()["box_log_max_lines"]
        # Output expressions are computed after the ORDER BY (PostgreSQL
        # 9.6+): the ids follow the order of the rows.
        self.env.cr.execute(
            SQL(
                """SET LOCAL synchronous_commit TO OFF;
                   INSERT INTO iot_box_log (id, box_id, date, level, levelno, message, line_count, remote_addr)
                   SELECT nextval(%(sequence)s), entry.box_id, entry.date, entry.level, entry.levelno,
                          entry.message, entry.line_count, entry.remote_addr
                     FROM unnest(%(boxes)s::int[], %(dates)s::timestamp[], %(levels)s::varchar[],
                                 %(levelnos)s::int[], %(messages)s::text[], %(counts)s::int[], %(addrs)s::varchar[])
                          WITH ORDINALITY AS entry(box_id, date, level, levelno, message, line_count, remote_addr, rank)
                     JOIN iot_box box ON box.id = entry.box_id
                 ORDER BY entry.rank;
                   DELETE FROM iot_box_log entry
                    USING (SELECT touched.box_id, bound.date, bound.id
                             FROM unnest(%(touched)s::int[]) AS touched(box_id),
                                  LATERAL (%(bound)s) bound) bounds
                    WHERE entry.box_id = bounds.box_id AND (entry.date, entry.id) <= (bounds.date, bounds.id)""",
                sequence=f"{self._table}_id_seq",
                boxes=array_literal(box_ids),
                dates=array_literal(dates),
                levels=array_literal(levels),
                levelnos=array_literal(levelnos),
                messages=array_literal(messages),
                counts=array_literal(counts),
                addrs=array_literal(addrs),
                touched=array_literal(sorted(set(box_ids))),
                bound=self._bound_query(SQL("touched.box_id"), max_lines),
            )
        )
        self.env["iot.box"].browse(box_ids).invalidate_recordset(["log_ids"], flush=False)

    @api.model
    def _bound_query(self, box, keep):
        """The ``(date, id)`` of the newest entry of ``box`` (an id, or an SQL
        expression of the enclosing query) past its ``keep`` newest lines
        (no row when it has no more). It reads the box's ``(box_id, date,
        id)`` index backwards and stops at that entry: neither the box's
        older entries nor the dead rows of those deleted before are read,
        where a bitmap scan and a sort of the box's whole range (what
        ordering the outer query again makes PostgreSQL choose) read them
        all."""
        return SQL(
            """SELECT date, id
                 FROM (SELECT date, id,
                              sum(line_count) OVER (ORDER BY box_id DESC, date DESC, id DESC) AS lines
                         FROM iot_box_log
                        WHERE box_id = %(box)s
                     ORDER BY box_id DESC, date DESC, id DESC) older
                WHERE lines > %(keep)s
                LIMIT 1""",
            box=box,
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
