# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""A check-in and a handlers delivery of one box at the same moment, each in
its own committed transaction, run as Odoo runs a request (``retrying``).

The order is forced: the transaction that loses took its snapshot before the
other one committed, as two server workers do when their requests overlap.
Odoo retries the loser; what matters here is that the expected conflict is
not logged as an error. Every test commits: the box is deleted afterwards.

Likewise two server processes writing the log entries they collected for
the same box at the same moment.
"""

import logging
import threading
import time
from functools import partial
from unittest.mock import patch

from psycopg2.errors import SerializationFailure

from odoo.service.model import retrying

from odoo.addons.iot_update.models import iot_box_log
from odoo.addons.iot_update.tools.box_log import BoxLogBatch
from odoo.addons.iot_update.tools.handlers_request import HandlersRequest
from odoo.addons.iot_update.tools.setup_payload import read_setup_payload

from .iot_common import PRINTER, SCALE, IotCase, box_payload, registry_lock_released

MAC = "aa:bb:cc:dd:ee:d0"
DELIVERY = HandlersRequest("", MAC, True, True)


class TestCheckInDuringDelivery(IotCase):
    def setUp(self):
        super().setUp()
        self.addCleanup(self.delete_box)
        # Odoo waits a random delay before a retry: none here.
        patcher = patch("odoo.service.model.random.uniform", return_value=0)
        patcher.start()
        self.addCleanup(patcher.stop)

    def delete_box(self):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM iot_box WHERE identifier = %s", [MAC])

    def env_for(self, cr):
        return self.env(cr=cr, su=True)

    def as_request(self, cr, method):
        """Run ``method(env)`` in ``cr`` as Odoo runs a request; its result."""
        env = self.env_for(cr)
        return retrying(partial(method, env), env)

    def check_in_as(self, env, version="L25.07-18.0#0000001", devices=None):
        payload = box_payload(self.token, identifier=MAC, version=version, devices=devices or {"usb": PRINTER})
        return env["iot.box"]._iot_setup(read_setup_payload(payload), "127.0.0.1")

    def deliver(self, env):
        return env["iot.handlers.bundle"]._serve_handlers(DELIVERY, None, "127.0.0.1")

    def box_state(self):
        with self.registry.cursor() as cr:
            cr.execute(
                """SELECT b.version, b.handlers_digest, b.handlers_date IS NOT NULL,
                          (SELECT count(*) FROM iot_box_event e WHERE e.box_id = b.id AND e.kind = 'delivery'),
                          (SELECT array_agg(d.identifier ORDER BY d.identifier) FROM iot_device d
                            WHERE d.box_id = b.id AND d.connected)
                     FROM iot_box b WHERE b.identifier = %s""",
                [MAC],
            )
            return cr.fetchone()

    def overlap(self, first, second):
        """``second`` takes its snapshot, ``first`` runs and commits, then
        ``second`` runs: Odoo retries it once. Returns their results."""
        with self.registry.cursor() as late, self.registry.cursor() as early:
            late.execute("SELECT 1")  # the snapshot of the later request
            first_result = self.as_request(early, first)
            with (
                self.assertNoLogs("odoo.sql_db", "ERROR"),
                self.assertLogs("odoo.service.model", logging.INFO) as retries,
            ):
                second_result = self.as_request(late, second)
        self.assertIn("SERIALIZATION_FAILURE, 4 tries left", retries.output[0])
        return first_result, second_result

    def test_delivery_after_a_check_in_it_overlapped(self):
        with self.registry.cursor() as cr:
            self.check_in_as(self.env_for(cr))
        # The first delivery writes the digest, the next ones only the date.
        for deliveries, version in ((1, "L25.07-18.0#0000002"), (2, "L25.07-18.0#0000003")):
            with self.subTest(deliveries=deliveries):
                __, answer = self.overlap(partial(self.check_in_as, version=version), self.deliver)
                self.assertEqual(answer.kind, "delivery")
                self.assertEqual(self.box_state(), (version, answer.bundle.digest, True, deliveries, ["usb"]))

    def test_check_in_after_a_delivery_it_overlapped(self):
        with self.registry.cursor() as cr:
            self.check_in_as(self.env_for(cr))
        answer, channel = self.overlap(
            self.deliver, partial(self.check_in_as, version="L25.07-18.0#0000002", devices={"scale": SCALE})
        )
        self.assertEqual(answer.kind, "delivery")
        self.assertIsInstance(channel, str)
        self.assertEqual(self.box_state(), ("L25.07-18.0#0000002", answer.bundle.digest, True, 1, ["scale"]))

    def test_two_deliveries_at_once(self):
        with self.registry.cursor() as cr:
            env = self.env_for(cr)
            self.check_in_as(env)
            self.deliver(env)
        first, second = self.overlap(self.deliver, self.deliver)
        self.assertEqual((first.kind, second.kind), ("delivery", "delivery"))
        self.assertEqual(self.box_state()[3], 3)


LOG_MAC = "aa:bb:cc:dd:ee:d1"
LOG_LOGGER = "odoo.addons.iot_update.models.iot_box_log"


class TestLogWritesOfTwoProcesses(IotCase):
    """Each server process writes the entries it collected once a second, in
    a transaction of its own: two of them holding lines of the same box
    write them at the same moment, and both delete its oldest entries."""

    def setUp(self):
        super().setUp()
        self.addCleanup(self.delete_box)
        with self.registry.cursor() as cr:
            env = self.env(cr=cr, su=True)
            payload = box_payload(self.token, identifier=LOG_MAC)
            env["iot.box"]._iot_setup(read_setup_payload(payload), "127.0.0.1")
        # The box at its bound: 200 lines, one entry each (two level numbers in turn).
        self.write_committed(self.collect(*[f"old {n}" for n in range(200)]))

    def delete_box(self, identifier=LOG_MAC):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM iot_box WHERE identifier = %s", [identifier])

    def collect(self, *messages):
        """What a server process collects for a batch of ``messages``."""
        # Warnings only: the box's error date and its notification are not this test's.
        lines = [(30 + n % 2, message) for n, message in enumerate(messages)]
        with self.registry.cursor() as cr:
            self.env(cr=cr, su=True)["iot.box.log"]._receive(BoxLogBatch("mac", LOG_MAC, lines), "127.0.0.1")
        return iot_box_log.box_lines.take(self.env.cr.dbname)

    def write_committed(self, batches):
        with self.registry.cursor() as cr:
            self.env(cr=cr, su=True)["iot.box.log"]._write_batches(batches)

    def messages(self):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT message FROM iot_box_log l JOIN iot_box b ON b.id = l.box_id"
                " WHERE b.identifier = %s ORDER BY l.date DESC, l.id DESC",
                [LOG_MAC],
            )
            return [row[0] for row in cr.fetchall()]

    def waiting_for_a_lock(self, timeout=30):
        """Whether a transaction on this database waits for a row lock, within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self.registry.cursor() as cr:
            while time.monotonic() < deadline:
                cr.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
                if cr.fetchone()[0]:
                    return True
                cr.rollback()
                time.sleep(0.01)
        return False

    def test_both_write_at_the_first_try(self):
        first, second = self.collect("first"), self.collect("second")
        dbname = self.env.cr.dbname
        # No second try: the write that waited for the other's must not fail.
        self.patch(iot_box_log, "LINES_WRITE_TRIES", 1)
        with registry_lock_released(), self.assertNoLogs(LOG_LOGGER, "WARNING"):
            with self.registry.cursor() as early:
                # The first process deletes the box's oldest entry, not committed yet.
                self.env(cr=early, su=True)["iot.box.log"]._write_batches(first)
                late = threading.Thread(target=iot_box_log._write_box_lines, args=(dbname, second))
                late.start()
                self.assertTrue(self.waiting_for_a_lock(), "the second process waits for the first")
            late.join(30)
        messages = self.messages()
        self.assertEqual(messages[:2], ["second", "first"])
        self.assertNotIn("old 0", messages)
        self.assertIn("old 2", messages)

    def test_a_write_that_fails_with_a_concurrency_error_is_tried_again(self):
        batches = self.collect("again")
        Log = type(self.env["iot.box.log"])
        original = Log._write_batches
        calls = []

        def fail_once(model, batches):
            calls.append(len(batches))
            if len(calls) == 1:
                raise SerializationFailure("could not serialize access due to concurrent update")
            return original(model, batches)

        with (
            registry_lock_released(),
            patch.object(Log, "_write_batches", fail_once),
            self.assertNoLogs(LOG_LOGGER, "WARNING"),
        ):
            iot_box_log._write_box_lines(self.env.cr.dbname, batches)
        self.assertEqual(calls, [1, 1])
        self.assertEqual(self.messages()[0], "again")

    def test_two_writes_of_a_box_s_first_errors_start_it_once(self):
        """Two processes write a box's first errors at the same moment: the
        second waits for the first's lock on the box, then reads the error
        date the first wrote; the box starts reporting errors once (one
        hook call, one dashboard notification), not twice."""
        fresh = "aa:bb:cc:dd:ee:d2"  # no entries: neither write trims it, the UPDATEs meet
        with self.registry.cursor() as cr:
            self.env(cr=cr, su=True)["iot.box"]._iot_setup(
                read_setup_payload(box_payload(self.token, identifier=fresh)), "127.0.0.1"
            )
        self.addCleanup(self.delete_box, fresh)
        collected = []
        for message in ("first error", "second error"):
            with self.registry.cursor() as cr:
                self.env(cr=cr, su=True)["iot.box.log"]._receive(
                    BoxLogBatch("mac", fresh, [(40, message)]), "127.0.0.1"
                )
            collected.append(iot_box_log.box_lines.take(self.env.cr.dbname))
        Box = type(self.env["iot.box"])
        starts = []
        self.patch(Box, "_on_reporting_errors", lambda boxes: starts.append(boxes.ids))
        self.patch(iot_box_log, "LINES_WRITE_TRIES", 1)
        dbname = self.env.cr.dbname
        with registry_lock_released(), self.assertNoLogs(LOG_LOGGER, "WARNING"):
            with self.registry.cursor() as early:
                self.env(cr=early, su=True)["iot.box.log"]._write_batches(collected[0])
                late = threading.Thread(target=iot_box_log._write_box_lines, args=(dbname, collected[1]))
                late.start()
                self.assertTrue(self.waiting_for_a_lock(), "the second process waits for the first")
            late.join(30)
        self.assertEqual(len(starts), 1)
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT count(*), bool_and(b.last_error_date IS NOT NULL) FROM iot_box_log l"
                " JOIN iot_box b ON b.id = l.box_id WHERE b.identifier = %s",
                [fresh],
            )
            self.assertEqual(cr.fetchone(), (2, True))

    def test_a_write_that_fails_writes_nothing_of_its_batches(self):
        """Whatever else fails in the write of a second's batches, nothing of
        them is committed and the server says so (the boxes got their empty
        200 already)."""
        with self.registry.cursor() as cr:
            batch = BoxLogBatch("mac", LOG_MAC, [(30, "a warning"), (40, "an error")])
            self.env(cr=cr, su=True)["iot.box.log"]._receive(batch, "127.0.0.1")
        batches = iot_box_log.box_lines.take(self.env.cr.dbname)
        Box = type(self.env["iot.box"])
        original = Box._record_error_dates

        def record_then_fail(box, *args, **kwargs):
            original(box, *args, **kwargs)
            raise RuntimeError("disk on fire")

        with (
            registry_lock_released(),
            patch.object(Box, "_record_error_dates", record_then_fail),
            self.assertLogs(LOG_LOGGER, "WARNING") as logs,
        ):
            iot_box_log._write_box_lines(self.env.cr.dbname, batches)
        self.assertIn("1 batches of IoT box logs not written", logs.output[0])
        self.assertIn("disk on fire", logs.output[0])
        self.assertEqual(self.messages()[0], "old 199")
        with self.registry.cursor() as cr:
            cr.execute("SELECT last_error_date FROM iot_box WHERE identifier = %s", [LOG_MAC])
            self.assertEqual(cr.fetchone(), (None,))
