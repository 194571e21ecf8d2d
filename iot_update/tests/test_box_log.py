# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The box log kept on the server: levels, bounds, the "Reporting errors"
flag as time passes, forwarding, settings and access rights. The batches are
given to the model as the controller gives them (HTTP: test_box_log_http)."""

import json
from datetime import datetime, timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo.exceptions import AccessError, ValidationError
from odoo.sql_db import db_connect
from odoo.tests import BaseCase, Form, new_test_user, tagged
from odoo.tools import SQL

from odoo.addons.iot_update.models.iot_box_errors import ERROR_STARTS_DELAY, error_starts
from odoo.addons.iot_update.models.iot_box_liveness import BOXES_CHANGED
from odoo.addons.iot_update.models.iot_box_log import LINES_DELAY, box_lines
from odoo.addons.iot_update.tools.box_log import (
    MAX_MESSAGE_CHARS,
    TRUNCATED,
    BoxLogBatch,
    BoxLogError,
    level_of,
    read_log_batch,
)
from odoo.addons.iot_update.tools.pg_array import array_literal

from .iot_common import IotCase

MAC = "aa:bb:cc:dd:ee:01"
ADDR = "127.0.0.1"
T0 = datetime(2026, 3, 1, 12, 0, 0)
MODEL_LOGGER = "odoo.addons.iot_update.models.iot_box_log"


def batch(*lines, key=MAC, kind="mac"):
    return BoxLogBatch(kind, key, list(lines))


@tagged("post_install", "-at_install")
class TestBoxLogFormat(BaseCase):
    """The body format, from the genuine ``_flush_logs``: ``mac <MAC>`` or
    ``identifier <serial>``, then ``<levelno>,<line>``, each followed by ``<log/>\\n``."""

    def test_batches(self):
        self.assertEqual(
            read_log_batch(b"mac aa:bb<log/>\n40,one<log/>\n30,two, with a comma<log/>\n"),
            ("mac", "aa:bb", [(40, "one"), (30, "two, with a comma")]),
        )
        self.assertEqual(read_log_batch(b"identifier SN-1<log/>\n"), ("identifier", "SN-1", []))
        # A line holding the separator comes in two pieces: kept whole.
        self.assertEqual(
            read_log_batch(b"mac m<log/>\n40,Traceback<log/>\n  x<log/>\n").lines, [(40, "Traceback<log/>\n  x")]
        )
        self.assertEqual(read_log_batch(b"mac m<log/>\n40,a\x00b<log/>\n").lines, [(40, "a\ufffdb")])
        long_line = read_log_batch(b"mac m<log/>\n40," + b"x" * 20_000 + b"<log/>\n").lines[0][1]
        self.assertEqual((len(long_line), long_line[-len(TRUNCATED) :]), (MAX_MESSAGE_CHARS, TRUNCATED))

    def test_not_batches(self):
        for body in (
            b"",
            b"mac m",
            b"mac <log/>\n",
            b"mac  m<log/>\n",
            b"MAC m<log/>\n",
            b"serial m<log/>\n",
            b"mac m<log/>\nboom<log/>\n",
            b"mac m<log/>\n40,x<log/>\ntrailing",
            b"mac m<log/>\n40,\xff<log/>\n",
            b"mac \xff<log/>\n",
            b"mac " + b"m" * 65 + b"<log/>\n",
            b"mac m\x01<log/>\n",
            b"mac m<log/>\n" + b"40,x<log/>\n" * 101,
            b"mac m<log/>\n1234567890,x<log/>\n",
        ):
            with self.subTest(body=body[:40]), self.assertRaises(BoxLogError):
                read_log_batch(body)

    def test_levels(self):
        self.assertEqual(
            [level_of(n) for n in (0, 5, 10, 19, 20, 25, 30, 39, 40, 45, 50, 99)],
            ["debug"] * 4 + ["info"] * 2 + ["warning"] * 2 + ["error"] * 2 + ["critical"] * 2,
        )


class TestBoxLog(IotCase):
    def setUp(self):
        super().setUp()
        self.check_in(identifier=MAC)
        self.box_ = self.box(MAC)
        self.Log = self.env["iot.box.log"].sudo()

    def receive(self, *lines, remote_addr=ADDR, **kwargs):
        """What POST /iot/log does with the batch, and the write of it within
        the second after: the number of lines collected."""
        collected = self.Log._receive(batch(*lines, **kwargs), remote_addr)
        self.write_box_lines()
        return collected

    def box_receiving(self, *lines, **kwargs):
        """The box whose log the batch went to."""
        self.receive(*lines, **kwargs)
        return self.Log.search([], limit=1).box_id

    def messages(self, box=None):
        return self.Log.search([("box_id", "=", (box or self.box_).id)]).mapped("message")

    def test_level_setting(self):
        lines = [(10, "debug"), (20, "info"), (30, "warning"), (40, "error"), (50, "critical"), (35, "custom")]
        self.assertEqual(self.receive(*lines), 4)
        self.assertEqual(sorted(self.messages()), ["critical", "custom", "error", "warning"])
        self.env["ir.config_parameter"].set_param("iot_update.box_log_level", "DEBUG")
        self.assertEqual(self.receive(*lines), 6)
        self.env["ir.config_parameter"].set_param("iot_update.box_log_level", "error")
        self.assertEqual(self.receive(*lines), 2)
        self.env["ir.config_parameter"].set_param("iot_update.box_log_level", "nonsense")
        self.assertEqual(self.receive(*lines), 4, "a mistyped level is the default, WARNING")

    def entries(self, box=None):
        """The box's entries, newest first: (level, levelno, message, line_count)."""
        return [
            (entry.level, entry.levelno, entry.message, entry.line_count)
            for entry in self.Log.search([("box_id", "=", (box or self.box_).id)])
        ]

    def line_count(self, box=None):
        return sum(entry[3] for entry in self.entries(box))

    def test_consecutive_lines_at_one_level_are_one_entry(self):
        self.receive((30, "w1"), (30, "w2"), (40, "e1"), (40, "e2\n  traceback"), (30, "w3"), (35, "c"), (30, "w4"))
        self.assertEqual(
            self.entries(),
            [
                ("warning", 30, "w4", 1),
                ("warning", 35, "c", 1),
                ("warning", 30, "w3", 1),
                ("error", 40, "e1\ne2\n  traceback", 2),
                ("warning", 30, "w1\nw2", 2),
            ],
        )
        self.receive((30, "w5"))
        self.assertEqual(self.entries()[0], ("warning", 30, "w5", 1), "batches are never merged")

    def test_count_bound_is_per_box_and_keeps_the_newest(self):
        self.check_in(identifier="aa:bb:cc:dd:ee:02")
        other = self.box("aa:bb:cc:dd:ee:02")
        self.receive(*[(30, f"other {i}") for i in range(5)], key=other.identifier)
        self.env["ir.config_parameter"].set_param("iot_update.box_log_max_lines", "10")
        # Warnings and errors in turn: one entry per line.
        for start in range(0, 30, 6):
            self.receive(*[(30 + 10 * (i % 2), f"line {i}") for i in range(start, start + 6)])
        self.assertEqual(self.messages(), [f"line {i}" for i in range(29, 19, -1)], "newest first")
        self.assertEqual(self.line_count(other), 5)
        self.assertEqual(self.box_.log_ids.mapped("message")[0], "line 29")

    def test_count_bound_keeps_whole_entries(self):
        self.env["ir.config_parameter"].set_param("iot_update.box_log_max_lines", "10")
        self.receive(*[(30, f"a{i}") for i in range(6)])
        self.receive(*[(30, f"b{i}") for i in range(3)])
        self.assertEqual(self.line_count(), 9)
        # 9 + 4 lines: the oldest entry (6 lines) goes whole, the batch of 3 stays.
        self.receive(*[(40, f"c{i}") for i in range(4)])
        self.assertEqual([entry[2] for entry in self.entries()], ["c0\nc1\nc2\nc3", "b0\nb1\nb2"])
        self.assertEqual(self.line_count(), 7)

    def test_a_batch_costs_no_query_and_is_written_with_the_others(self):
        with freeze_time(T0) as frozen:
            self.receive((40, "warm"))  # already reporting errors: no dashboard notification below
            frozen.tick(timedelta(minutes=2))
            self.env.flush_all()
            self.env.invalidate_all()
            with self.assertQueryCount(0):
                self.Log._receive(batch(*[(40 + i % 2, f"e{i}") for i in range(50)]), ADDR)
                self.Log._receive(batch(*[(40, f"f{i}") for i in range(50)]), ADDR)
            self.assertEqual(self.messages(), ["warm"], "nothing written by the requests themselves")
            # The write of both batches: finding the box; the INSERT and the
            # DELETE of the bound (one round trip); the UPDATE of its error date.
            with self.assertQueryCount(3):
                self.write_box_lines()
        self.assertEqual(len(self.messages()), 1 + 50 + 1)
        self.assertEqual(self.line_count(), 101)
        self.box_.invalidate_recordset()
        self.assertEqual(self.box_.last_error_date, T0 + timedelta(minutes=2))

    def test_the_write_costs_as_many_queries_for_a_fleet_as_for_a_box(self):
        """A second's batches of 20 boxes, some with errors, some refused:
        the same three queries as one box's batch."""
        boxes = self.Box
        for number in range(20):
            self.check_in(identifier=f"aa:bb:cc:dd:e0:{number:02x}")
            boxes |= self.box(f"aa:bb:cc:dd:e0:{number:02x}")
        self.env.flush_all()
        for box in boxes:
            for levelno in (30, 40):
                self.Log._receive(batch((levelno, f"{box.identifier} {levelno}"), key=box.identifier), ADDR)
        self.Log._receive(batch((40, "from a stranger"), key=MAC), "203.0.113.9")
        self.Log._receive(batch((40, "from nobody"), key="aa:bb:cc:dd:ee:99"), ADDR)
        with self.assertQueryCount(3), self.assertLogs(MODEL_LOGGER, "WARNING"):
            refused = self.write_box_lines()
        self.assertEqual([reason for __, reason in refused], ["not from the box's address", "unknown box"])
        for box in boxes:
            self.assertEqual(self.messages(box), [f"{box.identifier} 40", f"{box.identifier} 30"])
        self.assertEqual(self.messages(), [])
        self.assertEqual(self.Box.search([("reporting_errors", "=", True)]), boxes)

    def test_a_batch_with_nothing_at_the_level_kept_costs_no_query(self):
        """Nothing of it would be written, whichever box sent it from
        wherever: it is neither looked up nor refused."""
        below = [(20, "status polled"), (10, "debug")]
        self.Log._get_log_settings()  # read once per process, then cached
        for name, key, addr in [
            ("the box", MAC, ADDR),
            ("an unknown box", "aa:bb:cc:dd:ee:99", ADDR),
            ("another address", MAC, "203.0.113.9"),
        ]:
            with self.subTest(name), self.assertQueryCount(0):
                self.assertEqual(self.Log._receive(batch(*below, key=key), addr), 0)
        self.assertIsNone(box_lines.take(self.env.cr.dbname), "nothing collected")

    def test_batches_are_collected_for_a_second_and_written_together(self):
        scheduled = []
        self.patch(box_lines, "schedule", lambda delay, function: scheduled.append(delay))
        self.Log._receive(batch((30, "first")), ADDR)
        self.Log._receive(batch((40, "second")), ADDR)
        self.assertEqual(scheduled, [LINES_DELAY], "one write for both, a second after the first")
        self.assertEqual(self.messages(), [])
        self.write_box_lines()
        self.assertEqual(self.messages(), ["second", "first"])

    def test_what_a_batch_writes_does_not_wait_for_the_disk(self):
        """The write of the entries commits without waiting for PostgreSQL's
        disk flush."""

        def synchronous_commit():
            self.env.cr.execute("SHOW synchronous_commit")
            return self.env.cr.fetchone()[0]

        # The write runs in the test's transaction: what it SETs LOCAL stays visible here.
        self.env.cr.execute("SET LOCAL synchronous_commit TO on")
        self.Log._receive(batch((30, "kept")), ADDR)
        self.assertEqual(synchronous_commit(), "on")
        self.write_box_lines()
        self.assertEqual(synchronous_commit(), "off")
        self.assertEqual(self.messages(), ["kept"])

    def test_a_process_holding_too_many_lines_writes_them_at_once(self):
        """What a server process holds is bounded by the characters of its
        lines: the batch that reaches the bound hands them all to the write
        itself, without waiting for the second to end."""
        written = []
        self.patch(
            box_lines,
            "send",
            lambda dbname, batches: written.append([line for b in batches for __, run in b.entries for line in run]),
        )
        self.patch(box_lines, "limit", 100)
        self.Log._receive(batch((30, "x" * 60)), ADDR)
        self.assertEqual(written, [])
        self.Log._receive(batch((30, "y" * 40)), ADDR)
        self.assertEqual(written, [["x" * 60, "y" * 40]])
        self.assertIsNone(box_lines.take(self.env.cr.dbname), "nothing left waiting")

    def accepted_apart(self, *batches):
        """What two server processes collect when ``batches`` are accepted
        one after the other, each by the next process."""
        collected = []
        for value in batches:
            self.Log._receive(value, ADDR)
            collected.append(box_lines.take(self.env.cr.dbname))
        return collected

    def test_entries_are_listed_in_the_order_their_batches_were_accepted(self):
        """Two server processes accept a box's batches one after the other
        and write them in the other order: the box log lists them as
        accepted, and the count bound holds over both writes."""
        first, second = self.accepted_apart(batch((30, "a0"), (30, "a1")), batch((30, "b0"), (30, "b1")))
        self.Log._write_batches(second)
        self.Log._write_batches(first)
        self.assertEqual(self.messages(), ["b0\nb1", "a0\na1"], "newest first, as accepted")
        self.assertEqual(self.box_.log_ids.mapped("message"), ["b0\nb1", "a0\na1"], "the Box Log tab too")
        self.Log.search([]).unlink()
        self.env["ir.config_parameter"].set_param("iot_update.box_log_max_lines", "3")
        first, second = self.accepted_apart(batch((30, "a0"), (30, "a1")), batch((30, "b0"), (30, "b1")))
        self.Log._write_batches(second)
        self.assertEqual(self.messages(), ["b0\nb1"])
        self.Log._write_batches(first)
        self.assertEqual(self.messages(), ["b0\nb1"], "the older batch, written last, is past the bound")
        self.Log._receive(batch((30, "c0")), ADDR)
        self.Log._receive(batch((30, "d0")), ADDR)
        self.write_box_lines()
        self.assertEqual(self.messages(), ["d0", "c0"], "3 lines at most: the entry crossing the bound goes whole")

    def test_array_literals_read_back_by_postgresql(self):
        """The write sends its columns as array literals: PostgreSQL reads
        back every value as psycopg2 would have sent it element by element."""
        texts = ["plain", "", " spaced ", 'say "hi"', "back\\slash\\", "{braces}, commas", "NULL", None, "é\nline"]
        dates = [datetime(2026, 12, 4, 7, 30), datetime(2026, 12, 4, 7, 30, 1, 250)]
        numbers = [0, -1, 2**40]
        self.env.cr.execute(
            "SELECT %s::text[], %s::timestamp[], %s::bigint[], %s::varchar[]",
            [array_literal(texts), array_literal(dates), array_literal(numbers), array_literal([])],
        )
        self.assertEqual(self.env.cr.fetchone(), (texts, dates, numbers, []))

    def test_lines_are_written_as_the_box_sent_them(self):
        lines = ['a "quoted" word', "a back\\slash", "{braces}, commas and NULL", "  indented"]
        self.receive(*[(30 + 10 * (i % 2), line) for i, line in enumerate(lines)])
        self.assertEqual(self.messages(), lines[::-1])

    def restore_sequence_at_cleanup(self):
        """Put the entries' sequence back as it is now once the test is over,
        through a connection of its own: a sequence ignores the test's
        rollback, and the test's transaction may be aborted by then."""
        self.env.cr.execute("SELECT last_value, is_called FROM iot_box_log_id_seq")
        state = self.env.cr.fetchone()

        def restore():
            with db_connect(self.env.cr.dbname).cursor() as cr:
                cr.execute("SELECT setval('iot_box_log_id_seq', %s, %s)", state)

        self.addCleanup(restore)

    def test_entries_take_64_bit_ids(self):
        """A fleet's logs take ids fast (a box logging an error in a loop
        takes two a second; a thousand such boxes would use up 32-bit ids
        in under two weeks): entries are still written and listed in order past
        2**31."""
        self.restore_sequence_at_cleanup()
        self.env.cr.execute("SELECT setval('iot_box_log_id_seq', %s)", [2**31 - 2])
        self.receive((30, "before"), (40, "across"))
        self.receive((30, "after"))
        self.assertEqual(self.messages(), ["after", "across", "before"])
        self.assertEqual(self.Log.search([("box_id", "=", self.box_.id)]).ids, [2**31 + 1, 2**31, 2**31 - 1])

    def test_an_install_with_32_bit_ids_is_converted(self):
        """A database whose box log was created with Odoo's 32-bit ids gets
        64-bit ones at the module's upgrade (``init``), its entries kept."""
        self.receive((30, "kept"))
        self.env.cr.execute("ALTER TABLE iot_box_log ALTER COLUMN id TYPE integer")
        self.env.cr.execute("ALTER SEQUENCE iot_box_log_id_seq AS integer")

        def types():
            self.env.cr.execute(
                """SELECT format_type(atttypid, atttypmod),
                          (SELECT format_type(seqtypid, NULL) FROM pg_sequence
                            WHERE seqrelid = 'iot_box_log_id_seq'::regclass)
                     FROM pg_attribute WHERE attrelid = 'iot_box_log'::regclass AND attname = 'id'"""
            )
            return self.env.cr.fetchone()

        self.assertEqual(types(), ("integer", "integer"))
        self.Log.init()
        self.assertEqual(types(), ("bigint", "bigint"))
        self.assertEqual(self.messages(), ["kept"])
        self.env.cr.execute("SELECT max_value FROM pg_sequences WHERE sequencename = 'iot_box_log_id_seq'")
        self.assertEqual(self.env.cr.fetchone()[0], 2**63 - 1)

    def test_an_install_with_the_index_by_id_gets_the_indexes_by_date(self):
        """Entries are listed by their date since the write takes their ids:
        a database installed with the ``(box_id, id)`` index gets the
        ``(box_id, date, id)`` and ``(date, id)`` ones at the module's
        upgrade, and loses the old one."""

        def indexes():
            self.env.cr.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'iot_box_log' AND indexname <> %s",
                ["iot_box_log_pkey"],
            )
            return {name: definition.split(" USING ")[1] for name, definition in self.env.cr.fetchall()}

        self.env.cr.execute("DROP INDEX iot_box_log_box_id_date_id_idx, iot_box_log_date_id_idx")
        self.env.cr.execute("CREATE INDEX iot_box_log_box_id_id_idx ON iot_box_log (box_id, id)")
        self.Log.init()
        self.assertEqual(
            indexes(),
            {
                "iot_box_log_box_id_date_id_idx": "btree (box_id, date, id)",
                "iot_box_log_date_id_idx": "btree (date, id)",
            },
        )

    def test_count_bound_reads_the_box_newest_entries_only(self):
        """A box posting batches all day leaves dead entries below its bound
        (deleted, not yet vacuumed): finding the bound reads the box's entries
        newest first from an index and stops at it, whatever lies below."""
        self.check_in(identifier="aa:bb:cc:dd:ee:02")
        self.receive(*[(30 + 10 * (i % 2), f"other {i}") for i in range(50)], key="aa:bb:cc:dd:ee:02")
        # Warnings and errors in turn: one entry per line, 1,500 entries of which 1,300 deleted.
        for index in range(30):
            self.receive(*[(30 + 10 * (i % 2), f"batch {index} line {i}") for i in range(50)])
        self.assertEqual(self.line_count(), 200)
        self.env.cr.execute("ANALYZE iot_box_log")
        bound = self.Log._bound_query(self.box_.id, 150)
        self.env.cr.execute(SQL("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) %s", bound))
        plan = "\n".join(row[0] for row in self.env.cr.fetchall())
        self.assertNotIn("Sort", plan)
        self.assertNotIn("Bitmap", plan)
        # The 151st entry is the first past the bound: the scan ends with the
        # next one (the running sum reads one row ahead).
        self.assertRegex(plan, r"Index Scan Backward using \w+ on iot_box_log \(actual rows=152 loops=1\)")
        self.env.cr.execute(bound)
        self.assertEqual(self.env.cr.fetchone()[1], self.Log.search([("box_id", "=", self.box_.id)])[150].id)

    def test_a_batch_longer_than_the_bound_keeps_its_newest_lines(self):
        self.env["ir.config_parameter"].set_param("iot_update.box_log_max_lines", "10")
        self.receive(*[(30, f"old {i}") for i in range(4)])
        self.receive(*[(30 + 10 * (i % 2), f"line {i}") for i in range(12)])
        self.assertEqual(self.messages(), [f"line {i}" for i in range(11, 1, -1)])
        self.receive(*[(30 + 10 * (i % 2), f"new {i}") for i in range(3)])
        self.assertEqual(
            self.messages(), [f"new {i}" for i in range(2, -1, -1)] + [f"line {i}" for i in range(11, 4, -1)]
        )
        self.receive(*[(30, f"same level {i}") for i in range(12)])
        self.assertEqual(self.entries(), [("warning", 30, "\n".join(f"same level {i}" for i in range(2, 12)), 10)])

    def test_days_bound(self):
        with freeze_time(T0) as frozen:
            self.receive((30, "old"))
            frozen.tick(timedelta(days=6, hours=23))
            self.receive((30, "recent"))
            self.assertEqual(self.Log._cron_purge_box_logs(), 0)
            frozen.tick(timedelta(hours=2))
            self.assertEqual(self.Log._cron_purge_box_logs(), 1)
            self.assertEqual(self.messages(), ["recent"])
            self.env["ir.config_parameter"].set_param("iot_update.box_log_retention_days", "1")
            frozen.tick(timedelta(days=1, seconds=1))
            self.Log._cron_purge_box_logs()
            self.assertEqual(self.messages(), [])

    def test_reporting_errors_for_24_hours(self):
        Box = self.Box
        with freeze_time(T0) as frozen:
            self.receive((30, "a warning"))
            self.assertFalse(self.box_.reporting_errors)
            self.assertFalse(Box.search([("reporting_errors", "=", True)]))
            self.receive((40, "an error"))
            self.box_.invalidate_recordset()
            self.assertEqual(self.box_.last_error_date, T0)
            self.assertTrue(self.box_.reporting_errors)
            self.assertEqual(Box.search([("reporting_errors", "=", True)]), self.box_)
            self.assertNotIn(self.box_, Box.search([("reporting_errors", "=", False)]))
            frozen.tick(timedelta(hours=23, minutes=59))
            self.box_.invalidate_recordset()
            self.assertTrue(self.box_.reporting_errors)
            self.assertEqual(Box.search([("reporting_errors", "!=", False)]), self.box_)
            frozen.tick(timedelta(minutes=2))
            self.box_.invalidate_recordset()
            self.assertFalse(self.box_.reporting_errors)
            self.assertFalse(Box.search([("reporting_errors", "=", True)]))
            self.assertIn(self.box_, Box.search([("reporting_errors", "=", False)]))
            # A new error flags it again.
            self.receive((50, "critical"))
            self.box_.invalidate_recordset()
            self.assertTrue(self.box_.reporting_errors)

    def test_hook_when_a_box_starts_reporting_errors(self):
        Box = type(self.Box)
        with freeze_time(T0) as frozen, patch.object(Box, "_on_reporting_errors", autospec=True) as hook:
            self.receive((40, "first"))
            self.assertEqual([call.args[0] for call in hook.call_args_list], [self.box_])
            for minutes in (2, 60, 23 * 60):
                frozen.tick(timedelta(minutes=minutes))
                self.receive((40, "again"))
            self.assertEqual(hook.call_count, 1, "still reporting errors: no new start")
            frozen.tick(timedelta(hours=25))
            self.receive((30, "a warning"))
            self.assertEqual(hook.call_count, 1)
            self.receive((50, "after a quiet day"))
            self.assertEqual(hook.call_count, 2)

    def test_open_dashboards_are_told_when_boxes_start_reporting_errors(self):
        # The send opens a cursor of its own: in test mode, the test's.
        self.registry.enter_test_mode(self.env.cr)
        self.addCleanup(self.registry.leave_test_mode)
        scheduled = []
        self.patch(error_starts, "schedule", lambda delay, function: scheduled.append((delay, function)))
        self.addCleanup(error_starts.flush, self.env.cr.dbname)

        def committed():
            """What the batch's commit does: its post-commit hooks."""
            self.env.cr.postcommit.run()

        self.env.cr.execute("SELECT coalesce(max(id), 0) FROM bus_bus")
        before = self.env.cr.fetchone()[0]

        def notifications():
            """This test's notifications (the database may hold others' rows)."""
            self.env.cr.execute(
                "SELECT message FROM bus_bus WHERE id > %s AND message::jsonb->>'type' = %s ORDER BY id",
                [before, BOXES_CHANGED],
            )
            return [json.loads(row[0])["payload"] for row in self.env.cr.fetchall()]

        others = self.Box
        for index in range(30):
            identifier = f"aa:bb:cc:dd:ef:{index:02x}"
            self.check_in(identifier=identifier)
            others |= self.box(identifier)
        with freeze_time(T0) as frozen:
            self.receive((30, "a warning"))
            committed()
            self.assertEqual(scheduled, [], "a warning changes no status")
            self.receive((40, "an error"))
            self.assertEqual(scheduled, [], "nothing before the batch is committed")
            committed()
            # 30 more boxes start reporting errors within the second: one notification.
            for box in others:
                self.receive((40, "an error"), key=box.identifier)
                committed()
            self.assertEqual([delay for delay, __ in scheduled], [ERROR_STARTS_DELAY])
            self.assertEqual(notifications(), [])
            scheduled.pop()[1]()
            self.assertEqual(notifications(), [{"count": 31, "ids": sorted((self.box_ | others).ids)}])
            frozen.tick(timedelta(hours=1))
            self.receive((40, "still failing"))
            committed()
            self.assertEqual(scheduled, [], "already reporting errors: nothing changed")
            frozen.tick(timedelta(hours=25))
            self.receive((40, "failing again after a quiet day"))
            committed()
            scheduled.pop()[1]()
            self.assertEqual(notifications()[-1], {"count": 1, "ids": [self.box_.id]})

    def test_open_dashboards_are_told_when_the_error_flag_ends(self):
        self.env.cr.execute("SELECT coalesce(max(id), 0) FROM bus_bus")
        before = self.env.cr.fetchone()[0]
        last_errors = {
            "ended since the last run": T0 - timedelta(hours=24, seconds=30),
            "still reporting errors": T0 - timedelta(hours=23, minutes=59),
            "ended before the last run": T0 - timedelta(hours=24, minutes=5),
            "ended days ago": T0 - timedelta(days=3),
        }
        boxes = {}
        with freeze_time(T0):
            for index, (name, date) in enumerate(last_errors.items()):
                identifier = f"aa:bb:cc:dd:ef:{index:02x}"
                self.check_in(identifier=identifier)
                boxes[name] = self.box(identifier)
                boxes[name].last_error_date = date
            self.assertEqual(
                self.Box.search([("reporting_errors", "=", True)]) & self.Box.browse([b.id for b in boxes.values()]),
                boxes["still reporting errors"],
            )
            # The scheduled action as the cron worker runs it: its last call in the context.
            cron = self.env.ref("iot_update.ir_cron_refresh_update_status")
            cron.lastcall = T0 - timedelta(minutes=1)
            cron.method_direct_trigger()
            self.env.flush_all()
            self.env.cr.precommit.run()
        self.env.cr.execute(
            "SELECT message FROM bus_bus WHERE id > %s AND message::jsonb->>'type' = %s ORDER BY id",
            [before, BOXES_CHANGED],
        )
        told = [json.loads(row[0])["payload"]["ids"] for row in self.env.cr.fetchall()]
        self.assertEqual(len(told), 1, "one notification")
        ours = {box.id: name for name, box in boxes.items()}
        self.assertEqual([ours[box_id] for box_id in told[0] if box_id in ours], ["ended since the last run"])

    def test_error_date_written_once_a_minute(self):
        with freeze_time(T0) as frozen:
            self.receive((40, "e1"))
            frozen.tick(timedelta(seconds=30))
            self.receive((40, "e2"))
            self.box_.invalidate_recordset()
            self.assertEqual(self.box_.last_error_date, T0)
            frozen.tick(timedelta(seconds=31))
            self.receive((40, "e3"))
            self.box_.invalidate_recordset()
            self.assertEqual(self.box_.last_error_date, T0 + timedelta(seconds=61))

    def test_refusals(self):
        archived = self.Box.create({"name": "old", "identifier": "aa:bb:cc:dd:ee:0a", "active": False})
        archived.checkin_remote_addr = ADDR
        cases = [
            (batch((40, "x"), key="aa:bb:cc:dd:ee:99"), ADDR, "unknown box"),
            (batch((40, "x"), key="aa:bb:cc:dd:ee:0a"), ADDR, "archived box"),
            (batch((40, "x")), "203.0.113.9", "not from the box's address"),
            (batch((40, "x")), None, "not from the box's address"),
        ]
        with self.assertLogs(MODEL_LOGGER, "WARNING") as logs:
            for value, addr, reason in cases:
                with self.subTest(reason):
                    self.assertEqual(self.Log._receive(value, addr), 1, "collected, without a query")
                    refused = self.write_box_lines()
                    self.assertEqual([(b.key, b.remote_addr, why) for b, why in refused], [(value.key, addr, reason)])
        self.assertEqual(len(logs.output), 1, "one line a minute at most")
        self.assertIn("refused (unknown box, box 'aa:bb:cc:dd:ee:99')", logs.output[0])
        self.assertFalse(self.Log.search([]))
        self.assertFalse(self.Box.with_context(active_test=False).search([("last_error_date", "!=", False)]))

    def test_box_found_by_serial_or_mac(self):
        self.check_in(identifier="SN-19", mac="aa:bb:cc:dd:ee:19")
        box19 = self.box("SN-19")
        self.assertEqual(self.box_receiving((30, "by serial"), key="SN-19", kind="identifier"), box19)
        self.assertEqual(self.box_receiving((30, "by mac"), key="aa:bb:cc:dd:ee:19"), box19)

    def test_the_box_is_found_as_the_other_routes_find_it(self):
        # docs/protocol.md, "Which box a request speaks for": the box whose
        # identifier is the key, else the oldest box with that MAC address.
        shared = "aa:bb:cc:dd:ee:42"
        older, newer = self.Box.create(
            [
                {"name": "older", "identifier": "SN-OLD", "mac": shared, "checkin_remote_addr": ADDR},
                {"name": "newer", "identifier": "SN-NEW", "mac": shared, "checkin_remote_addr": ADDR},
            ]
        )
        self.assertEqual(self.box_receiving((30, "x"), key=shared), older)
        self.assertEqual(self.box_receiving((30, "x"), key=shared, kind="identifier"), older)
        named = self.Box.create({"name": "named", "identifier": shared, "checkin_remote_addr": ADDR})
        self.assertEqual(self.box_receiving((30, "x"), key=shared), named)
        self.assertEqual(self.box_receiving((30, "x"), key="SN-NEW", kind="identifier"), newer)
        self.assertEqual(self.Box._find_box(shared, shared), named, "as check-ins find it")

    def test_forward_to_the_server_log(self):
        with self.assertNoLogs("odoo.addons.iot_update.box_log", "DEBUG"):
            self.receive((40, "not forwarded"))
        self.env["ir.config_parameter"].set_param("iot_update.box_log_forward", "True")
        with self.assertLogs("odoo.addons.iot_update.box_log", "DEBUG") as logs:
            self.receive((20, "below the level"), (30, "disk low"), (40, "driver failed"))
        self.assertEqual(
            logs.output,
            [
                f"WARNING:odoo.addons.iot_update.box_log:IoT box {self.box_.name}: disk low",
                f"ERROR:odoo.addons.iot_update.box_log:IoT box {self.box_.name}: driver failed",
            ],
        )
        # A stranger's batch does not reach the server log in the box's name.
        with (
            self.assertNoLogs("odoo.addons.iot_update.box_log", "DEBUG"),
            self.assertLogs(MODEL_LOGGER, "WARNING"),
        ):
            self.receive((40, "forged"), remote_addr="203.0.113.9")

    def test_access_rights(self):
        self.receive((40, "an error"))
        line = self.Log.search([])
        user = new_test_user(self.env, "iot_log_user", groups="base.group_user,iot_update.group_iot_user")
        admin = new_test_user(self.env, "iot_log_admin", groups="base.group_user,iot_update.group_iot_admin")
        nobody = new_test_user(self.env, "iot_log_nobody", groups="base.group_user")
        for who in (user, admin):
            with self.subTest(who.login):
                as_who = line.with_user(who)
                self.assertEqual(as_who.message, "an error")
                self.assertEqual(self.box_.with_user(who).log_ids, line)
                with self.assertRaises(AccessError):
                    as_who.write({"message": "forged"})
                with self.assertRaises(AccessError):
                    as_who.unlink()
                with self.assertRaises(AccessError):
                    as_who.create({"box_id": self.box_.id, "date": T0, "level": "error", "message": "forged"})
        with self.assertRaises(AccessError):
            line.with_user(nobody).read(["message"])

    def test_lines_follow_the_box_company(self):
        self.receive((40, "an error"))
        other = self.env["res.company"].create({"name": "Other shop"})
        user = new_test_user(
            self.env, "iot_log_other", groups="base.group_user,iot_update.group_iot_user", company_id=other.id
        )
        user.company_ids = other
        self.assertFalse(self.env["iot.box.log"].with_user(user).search([]))
        self.box_.company_id = other
        self.assertEqual(self.env["iot.box.log"].with_user(user).search([]).mapped("message"), ["an error"])

    def test_views_show_the_log_and_the_flag(self):
        Box = self.env["iot.box"]
        views = Box.get_views([(False, "form"), (False, "kanban"), (False, "list"), (False, "search")])["views"]
        form, kanban = views["form"]["arch"], views["kanban"]["arch"]
        self.assertIn('name="box_log"', form)
        self.assertIn('name="log_ids"', form)
        self.assertIn('widget="badge"', form.split('name="box_log"')[1])
        self.assertIn("Reporting errors", form)
        self.assertIn("record.reporting_errors.raw_value", kanban)
        self.assertIn('name="reporting_errors"', views["list"]["arch"])
        self.assertIn('name="reporting_errors"', views["search"]["arch"])
        # The Box Log menu is for IoT administrators.
        menu = self.env.ref("iot_update.iot_box_log_menu")
        self.assertEqual(menu.groups_id, self.env.ref("iot_update.group_iot_admin"))

    def test_settings_in_both_screens(self):
        admin = new_test_user(self.env, "iot_log_settings", groups="base.group_user,iot_update.group_iot_admin")
        form = Form(self.env["iot.update.settings"].with_user(admin))
        self.assertEqual(
            (form.box_log_level, form.box_log_max_lines, form.box_log_retention_days, form.box_log_forward),
            ("warning", 200, 7, False),
        )
        form.box_log_level = "error"
        form.box_log_max_lines = 50
        form.box_log_retention_days = 3
        form.box_log_forward = True
        form.save()
        params = self.env["ir.config_parameter"]
        self.assertEqual(params.get_param("iot_update.box_log_level"), "ERROR")
        self.assertEqual(params.get_param("iot_update.box_log_forward"), "True")
        general = self.env["res.config.settings"].create({})
        self.assertEqual(
            (
                general.iot_box_log_level,
                general.iot_box_log_max_lines,
                general.iot_box_log_retention_days,
                general.iot_box_log_forward,
            ),
            ("error", 50, 3, True),
        )
        general.write({"iot_box_log_level": "info", "iot_box_log_forward": False, "iot_box_log_max_lines": 20})
        general.execute()
        self.assertEqual(
            self.Log._get_log_settings(),
            {"box_log_level": "info", "box_log_max_lines": 20, "box_log_retention_days": 3, "box_log_forward": False},
        )
        with self.assertRaises(ValidationError):
            self.env["res.config.settings"].create({"iot_box_log_max_lines": 0, "iot_box_log_retention_days": 3})
