# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL, create_index, str2bool

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
    _name = "iot.box.log"
    _description = "IoT Box Log Line"
    # Newest first: the order lines were received in (the primary key's).
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
    message = fields.Text(readonly=True, help="The line as the box formatted it (its own date, process and logger).")
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
        params = self.env["ir.config_parameter"].sudo()
        return {
            "box_log_level": level_param(params.get_param(LEVEL_PARAM)),
            "box_log_max_lines": positive_int(params.get_param(MAX_LINES_PARAM), DEFAULT_MAX_LINES),
            "box_log_retention_days": positive_int(params.get_param(RETENTION_PARAM), DEFAULT_RETENTION_DAYS),
            "box_log_forward": str2bool(params.get_param(FORWARD_PARAM) or "False", False),
        }

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
        """Keep ``lines`` and no more than the newest ``max_lines`` of the box,
        in one round trip to PostgreSQL: the transaction's commit is made not
        to wait for the disk (a box's log is best effort: the box itself
        drops lines when the server is slow; a crash of the database server
        may lose the last moments of lines, never corrupt anything), then one
        statement INSERTs the lines and DELETEs the box's older lines beyond
        the bound (by the (box_id, id) index: that box only).

        The DELETE of a data-modifying WITH sees the table as it was before
        the INSERT: it keeps the newest ``max_lines - len(lines)`` older
        lines, and a batch longer than the bound is cut to its newest lines
        first, which is what an INSERT followed by a DELETE keeping the
        newest ``max_lines`` would leave.
        """
        lines = lines[-max_lines:]
        self.env.cr.execute(
            SQL(
                """SET LOCAL synchronous_commit TO OFF;
                   WITH inserted AS (
                       INSERT INTO iot_box_log (box_id, date, level, levelno, message, remote_addr)
                       SELECT %(box)s, %(now)s, line.level, line.levelno, line.message, %(addr)s
                         FROM unnest(%(levels)s::varchar[], %(levelnos)s::int[], %(messages)s::text[])
                              AS line(level, levelno, message)
                   )
                   DELETE FROM iot_box_log
                    WHERE box_id = %(box)s
                      AND id <= (SELECT id FROM iot_box_log WHERE box_id = %(box)s
                                  ORDER BY id DESC OFFSET %(keep)s LIMIT 1)""",
                box=box.id,
                now=now,
                addr=remote_addr,
                levels=[level_of(levelno) for levelno, __ in lines],
                levelnos=[levelno for levelno, __ in lines],
                messages=[message for __, message in lines],
                keep=max_lines - len(lines),
            )
        )
        box.invalidate_recordset(["log_ids"], flush=False)

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
