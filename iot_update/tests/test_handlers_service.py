# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The handlers service: current digests, per-box tracking, history and its purge."""

import os
import re
from contextlib import closing
from datetime import datetime, timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.sql_db import Cursor
from odoo.tests import warmup
from odoo.tools import SQL

from odoo.addons.iot_update.models.iot_box import IotBox
from odoo.addons.iot_update.models.iot_handlers_bundle import DIGEST_PARAM, bundle_cache
from odoo.addons.iot_update.tools.handlers_request import HandlersRequest

from .handlers_common import LINUX_VERSION, MAC, WINDOWS_VERSION, HandlersFolderMixin
from .iot_common import BOX_LOGGER, IotCase

BUNDLE_MODULE = "odoo.addons.iot_update.models.iot_handlers_bundle"
BUNDLE_LOGGER = BUNDLE_MODULE


def request(identifier=MAC, auto=True, mac_style=True):
    return HandlersRequest("" if mac_style else identifier, identifier if mac_style else "", auto, mac_style)


class TestHandlersService(HandlersFolderMixin, IotCase):
    def setUp(self):
        super().setUp()
        self.setup_handlers_folder()
        self.Event = self.env["iot.box.event"]

    def serve(self, *args, **kwargs):
        return self.bundle_service()._serve_handlers(*args, **kwargs)

    def test_current_digests_in_parameters(self):
        service = self.bundle_service()
        params = self.env["ir.config_parameter"].sudo()
        for variant in ("all", "linux", "windows"):
            self.assertEqual(params.get_param(DIGEST_PARAM % variant), service._get_bundle(variant).digest)
        self.assertEqual(len(set(service._current_digests().values())), 3)

    def test_box_outdated_until_it_gets_the_current_bundle(self):
        self.check_in(version=LINUX_VERSION)
        box = self.box()
        self.assertTrue(box.handlers_outdated, "never received a bundle")
        answer = self.serve(request())
        self.assertEqual(answer.kind, "delivery")
        self.assertEqual(box.handlers_digest, answer.bundle.digest)
        self.assertFalse(box.handlers_outdated)
        self.assertEqual(box.update_status, "up_to_date")
        self.assertEqual(box.handlers_current_digest, answer.bundle.digest)  # shown on the form
        # Holding another platform's bundle is not holding the current one.
        box.handlers_digest = self.bundle_service()._get_bundle("windows").digest
        self.assertTrue(box.handlers_outdated)

    def test_delivered_to_the_box_holding_the_identifier(self):
        """A 19-style request naming one box's identifier and another's MAC
        address is the first box's, whatever their names."""
        self.Box.create({"name": "aa-18", "identifier": MAC, "version": WINDOWS_VERSION})
        self.Box.create({"name": "ab-19", "identifier": "SN-000B", "mac": MAC, "version": WINDOWS_VERSION})
        wanted = self.Box.create({"name": "zz-19", "identifier": "SN-000A", "version": LINUX_VERSION})
        answer = self.serve(HandlersRequest("SN-000A", MAC, True, False))
        self.assertEqual(answer.kind, "delivery")
        self.assertEqual(answer.bundle.variant, "linux")
        self.assertEqual(wanted.handlers_digest, answer.bundle.digest)
        self.assertEqual(self.Event.search([("kind", "=", "delivery")]).box_id, wanted)

    def test_archived_box_gets_no_handlers(self):
        self.check_in(version=LINUX_VERSION)
        self.box().action_archive()
        for auto in (True, False):
            with self.subTest(auto=auto), self.assertLogs(BUNDLE_LOGGER, "WARNING"):
                answer = self.serve(request(auto=auto))
                self.assertEqual((answer.kind, answer.reason), ("refusal", "archived box"))
        self.assertFalse(self.box().handlers_digest)

    def test_new_bundle_flips_boxes_in_one_batch(self):
        for number in range(5):
            self.check_in(identifier=f"aa:bb:cc:dd:ee:{number:02d}", version=LINUX_VERSION)
            self.serve(request(f"aa:bb:cc:dd:ee:{number:02d}"))
        self.check_in(identifier="aa:bb:cc:dd:ee:99", version=WINDOWS_VERSION)
        self.serve(request("aa:bb:cc:dd:ee:99"))
        self.check_in(identifier="aa:bb:cc:dd:ee:98", version=LINUX_VERSION)  # never got one
        linux = self.Box.search([("platform", "=", "linux"), ("handlers_digest", "!=", False)])
        self.assertEqual(len(linux), 5)
        self.assertFalse(any(linux.mapped("handlers_outdated")))

        self.write_handlers({"interfaces/SerialInterface.py": b"# serial interface v2\n"})
        with (
            patch.object(IotBox, "_refresh_update_status") as refresh,
            patch.object(IotBox, "write") as write,
            patch.object(IotBox, "_compute_update_status") as compute,
        ):
            changed = self.bundle_service()._cron_sync_digests()
        # Set-based: no box went through the ORM's compute or write.
        refresh.assert_not_called()
        write.assert_not_called()
        compute.assert_not_called()
        # All three variants hold SerialInterface.py: each changed.
        self.assertEqual(set(changed), {"all", "linux", "windows"})
        self.assertEqual(changed["linux"], linux)
        self.assertEqual(changed["windows"], self.box("aa:bb:cc:dd:ee:99"))
        self.assertTrue(all(linux.mapped("handlers_outdated")))
        self.assertEqual(set(linux.mapped("update_status")), {"handlers_outdated"})
        self.assertTrue(self.box("aa:bb:cc:dd:ee:99").handlers_outdated)
        # Nothing new: nothing built, nothing written.
        with patch(f"{BUNDLE_MODULE}.build_bundle") as build, self.assertQueryCount(1):
            self.assertEqual(self.bundle_service()._cron_sync_digests(), {})
        build.assert_not_called()

    def test_handler_roots_include_standard_drivers_by_path(self):
        roots = self.real_handler_roots(self.bundle_service())
        self.assertTrue(roots[0].endswith(os.path.join("hw_drivers", "iot_handlers")))
        self.assertNotIn("hw_drivers", self.env.registry._init_modules)
        for root in roots:
            self.assertTrue(os.path.isdir(root))
        files = {}
        for kind in ("drivers", "interfaces"):
            folder = os.path.join(roots[0], kind)
            for name in os.listdir(folder):
                if not name.startswith(("_", ".")) and os.path.isfile(os.path.join(folder, name)):
                    files[f"{kind}/{name}"] = True
        with patch.object(type(self.bundle_service()), "_handler_roots", self.real_handler_roots):
            bundle_cache.clear()
            bundle = self.bundle_service()._get_bundle("all")
        self.assertTrue(files)
        self.assertLessEqual(set(files), set(bundle.entries))

    @warmup
    def test_query_count_of_a_cached_delivery(self):
        self.check_in(version=LINUX_VERSION)
        self.serve(request())
        self.env.flush_all()
        digest = self.box().handlers_digest
        self.env.invalidate_all()
        # Find the box, record the event, date the delivery on the box.
        with self.assertQueryCount(default=3):
            self.assertEqual(self.serve(request()).kind, "delivery")
        # Find the box, record the event.
        with self.assertQueryCount(default=2):
            self.assertEqual(self.serve(request(), if_none_match=digest).kind, "not_modified")

    def test_same_bundle_again_dates_the_delivery(self):
        self.check_in(version=LINUX_VERSION)
        box = self.box()
        with freeze_time("2026-03-01 10:00:00"):
            first = self.serve(request())
        status, events = box.update_status, box.event_ids
        with (
            freeze_time("2026-03-02 11:00:00"),
            patch.object(IotBox, "modified", autospec=True, side_effect=IotBox.modified) as modified,
        ):
            self.assertEqual(self.serve(request()).kind, "delivery")
        # The ORM's cache and the database agree on the new date.
        self.assertEqual(box.handlers_date, datetime(2026, 3, 2, 11))
        self.assertEqual(box.write_date, datetime(2026, 3, 2, 11))
        self.env.cr.execute("SELECT handlers_date, handlers_digest FROM iot_box WHERE id = %s", [box.id])
        self.assertEqual(self.env.cr.fetchone(), (datetime(2026, 3, 2, 11), first.bundle.digest))
        modified.assert_any_call(box, ["handlers_date", "write_uid", "write_date"])
        self.assertEqual(box.handlers_digest, first.bundle.digest)
        self.assertEqual(box.update_status, status)
        # The box's history, read before, shows the new event.
        new = box.event_ids - events
        self.assertEqual(len(new), 1)
        self.assertEqual((new.kind, new.date, new.company_id), ("delivery", datetime(2026, 3, 2, 11), box.company_id))

    # ------------------------------------------------------------------
    # History
    # ------------------------------------------------------------------

    def test_check_ins_recorded(self):
        self.check_in(version=LINUX_VERSION, devices={"printer": {"name": "P", "type": "printer"}})
        self.check_in(version="L25.07-18.0#bbbbbbb", ip="10.0.0.9")
        box = self.box()
        events = self.Event.search([("box_id", "=", box.id)], order="id")
        self.assertEqual(events.mapped("kind"), ["admission", "checkin"])
        self.assertEqual(events.mapped("version"), [LINUX_VERSION, "L25.07-18.0#bbbbbbb"])
        self.assertEqual(events.mapped("remote_addr"), ["127.0.0.1", "127.0.0.1"])
        self.assertEqual(events.mapped("detail"), ["ip 192.168.1.20, 1 devices", "ip 10.0.0.9, 0 devices"])
        self.assertEqual(events[0].company_id, box.company_id)

    def test_check_in_refusals_recorded(self):
        self.check_in()
        with self.assertLogs(BOX_LOGGER, "WARNING"):
            self.check_in(token="stolen")
            self.check_in(identifier="aa:bb:cc:dd:ee:77", token="wrong")
            self.check_in(identifier="aa:bb:cc:dd:ee:77", token="wrong")
        refusals = self.Event.search([("kind", "=", "refusal")], order="id")
        self.assertEqual(refusals.mapped("box_id"), self.box())
        self.assertEqual(refusals.mapped("identifier"), ["aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:77"])
        self.assertEqual(
            refusals.mapped("detail"), ["check-in: wrong token", "check-in: unknown box, wrong pairing token"]
        )

    def test_unknown_box_refusals_recorded_again_after_quiet_delay(self):
        with freeze_time("2026-03-01 10:00:00"), self.assertLogs(BUNDLE_LOGGER, "WARNING"):
            self.serve(request("aa:bb:cc:dd:ee:55"), remote_addr="10.0.0.1")
            self.serve(request("aa:bb:cc:dd:ee:55"), remote_addr="10.0.0.1")
            # Another identifier from the same address each time: still one event.
            self.serve(request("aa:bb:cc:dd:ee:56"), remote_addr="10.0.0.1")
            self.serve(request("aa:bb:cc:dd:ee:55"), remote_addr="10.0.0.2")
        with freeze_time("2026-03-01 10:11:00"), self.assertLogs(BUNDLE_LOGGER, "WARNING"):
            self.serve(request("aa:bb:cc:dd:ee:55"), remote_addr="10.0.0.1")
        refusals = self.Event.search([("box_id", "=", False)])
        self.assertEqual(sorted(refusals.mapped("remote_addr")), ["10.0.0.1", "10.0.0.1", "10.0.0.2"])
        self.assertFalse(refusals.company_id)

    def test_unknown_event_kind_refused(self):
        self.check_in()
        before = self.Event.search_count([])
        with self.assertRaises(ValueError):
            self.Event._record("reboot", self.box())
        self.assertEqual(self.Event.search_count([]), before)

    def test_refusals_of_known_boxes_always_recorded(self):
        self.check_in()
        self.box().drivers_auto_update = False
        for __ in range(3):
            self.assertEqual(self.serve(request()).kind, "refusal")
        self.assertEqual(self.Event.search_count([("kind", "=", "refusal"), ("box_id", "=", self.box().id)]), 3)

    def test_purge_old_events(self):
        self.check_in()
        box = self.box()
        now = fields.Datetime.now()
        old = self.Event.create(
            [
                {"kind": "checkin", "box_id": box.id, "date": now - timedelta(days=91)},
                {"kind": "refusal", "identifier": "x", "date": now - timedelta(days=400)},
            ]
        )
        kept = self.Event.create({"kind": "delivery", "box_id": box.id, "date": now - timedelta(days=89)})
        before = self.Event.search_count([])
        self.assertEqual(self.Event._cron_purge_events(), 2)
        self.assertFalse(old.exists())
        self.assertTrue(kept.exists())
        self.assertEqual(self.Event.search_count([]), before - 2)
        # A shorter retention, then nonsense that falls back to 90 days.
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("iot_update.event_retention_days", "30")
        self.assertEqual(self.Event._cron_purge_events(), 1)
        self.assertFalse(kept.exists())
        for value in ("0", "-5", "soon"):
            params.set_param("iot_update.event_retention_days", value)
            self.assertEqual(self.Event._get_retention_days(), 90)

    def test_purge_is_one_unlink(self):
        now = fields.Datetime.now()
        self.Event.create(
            [{"kind": "checkin", "identifier": str(n), "date": now - timedelta(days=100)} for n in range(20)]
        )
        with patch.object(type(self.Event), "unlink", autospec=True, return_value=True) as unlink:
            self.Event._cron_purge_events()
        unlink.assert_called_once()
        self.assertEqual(len(unlink.call_args.args[0]), 20)

    def test_purge_finds_old_events_by_the_date_index(self):
        """The purge removes one day's rows among the retention's (docs/benchmarks.md,
        "History at fleet size"): it finds them through the index on the
        date, not by reading the whole history."""
        statements = []
        execute = Cursor.execute

        def recording(cr, query, params=None, log_exceptions=True):
            statements.append((query.code, query.params) if isinstance(query, SQL) else (query, params))
            return execute(cr, query, params, log_exceptions)

        with patch.object(Cursor, "execute", recording):
            self.Event._cron_purge_events()
        lookup = re.compile(r'\s*SELECT\b.*\bFROM "iot_box_event"', re.S)
        selects = [SQL(code, *params) for code, params in statements if lookup.match(code)]
        self.assertTrue(selects, "the purge looks the old events up")
        # Rolled back: the setting ends with it. The test database's history is
        # small: make any usable index cheaper than reading the table.
        with closing(self.env.cr.savepoint(flush=False)):
            self.env.cr.execute("SET LOCAL enable_seqscan TO off")
            for select in selects:
                self.env.cr.execute(SQL("EXPLAIN %s", select))
                plan = "\n".join(row[0] for row in self.env.cr.fetchall())
                self.assertIn("iot_box_event__date_index", plan, plan)

    def test_crons_exist(self):
        for xmlid, code in (
            ("iot_update.ir_cron_purge_events", "model._cron_purge_events()"),
            ("iot_update.ir_cron_sync_handlers_digests", "model._cron_sync_digests()"),
        ):
            cron = self.env.ref(xmlid)
            self.assertEqual(cron.code, code)
            self.assertTrue(cron.active)
