# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The box simulator against the test Odoo server, over real HTTP.

The simulator runs in-process (its ``run`` function) so that its requests go
through the test's cursor; they are not made through ``self.opener``, hence
the flush before and the invalidation after.

Not in the addon's tests (Odoo's runner): it tests the simulator, a tool of this
repository that the addon's wheel does not ship.
"""

import json
import tempfile
from pathlib import Path

from odoo.addons.iot_update.tests.iot_common import IotHttpCase

from iotbox_sim.cli import HANDLERS, SETUP, run
from iotbox_sim.fleet import plan_fleet

FLEET = 12  # every profile in both styles
# Status of each profile once checked in, before any handlers download, with
# 25.07 as the latest published image.
STATUS_WITHOUT_HANDLERS = {
    "linux-current": ("handlers_outdated", False),
    "linux-minimum": ("handlers_outdated", True),
    "linux-old-image": ("image_required", True),
    "linux-other-series": ("code_pending", False),
    "windows-current": ("handlers_outdated", False),
    "windows-other-series": ("code_pending", False),
}
STATUS_WITH_HANDLERS = {
    **STATUS_WITHOUT_HANDLERS,
    "linux-current": ("up_to_date", False),
    "linux-minimum": ("up_to_date", True),
    "windows-current": ("up_to_date", False),
}


class TestSimulator(IotHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["iot.image.release"].create(
            [
                {"image_version": "24.11", "file_name": "iotboxv24_11.zip", "sha1": "a" * 40},
                {"image_version": "25.07", "file_name": "iotboxv25_07.zip", "sha1": "b" * 40, "is_latest": True},
            ]
        )

    def setUp(self):
        super().setUp()
        state_dir = tempfile.TemporaryDirectory()
        self.addCleanup(state_dir.cleanup)
        self.state_file = Path(state_dir.name) / "sim-state.json"

    def simulate(self, **kwargs):
        kwargs.setdefault("boxes", FLEET)
        kwargs.setdefault("seed", 11)
        kwargs.setdefault("concurrency", 3)
        kwargs.setdefault("state_file", self.state_file)
        self.env.flush_all()
        try:
            return run(self.base_url(), self.token, **kwargs)
        finally:
            self.env.invalidate_all()

    def fleet_boxes(self, fleet):
        return self.Box.search([("identifier", "in", [spec.identifier for spec in fleet])])

    def assert_fleet(self, statuses, with_handlers):
        fleet = plan_fleet(FLEET, seed=11, server_series="18.0")
        boxes = {box.identifier: box for box in self.fleet_boxes(fleet)}
        self.assertEqual(len(boxes), FLEET)
        for spec in fleet:
            box = boxes[spec.identifier]
            with self.subTest(box=spec.name):
                self.assertEqual((box.name, box.version, box.ip), (spec.name, spec.version, spec.ip))
                self.assertEqual(box.mac or "", spec.mac if spec.style == "19" else "")
                self.assertEqual(sorted(box.device_ids.mapped("identifier")), sorted(spec.devices))
                self.assertEqual((box.update_status, box.image_upgrade_available), statuses[spec.profile])
                self.assertEqual(bool(box.handlers_digest), with_handlers)

    def test_fleet_checks_in(self):
        report = self.simulate(handlers=False)
        self.assertEqual(report.server_series, "18.0")  # asked to the server, as the box does
        self.assertTrue(report.ok, [r.setup.outcome for r in report.results])
        self.assertEqual([(r.setup.status, r.handlers) for r in report.results], [(200, None)] * FLEET)
        self.assert_fleet(STATUS_WITHOUT_HANDLERS, with_handlers=False)
        # Running the same fleet again updates the same boxes.
        count = self.Box.search_count([])
        self.simulate(handlers=False)
        self.assertEqual(self.Box.search_count([]), count)

    def test_wrong_token_registers_nothing(self):
        self.token = "not-the-pairing-token"
        with self.assertLogs("odoo.addons.iot_update.models.iot_box_checkin", "WARNING") as logs:
            report = self.simulate(handlers=False, boxes=2)
        self.assertEqual(len(logs.records), 2)
        # The genuine server answers a refused box like an accepted one.
        self.assertEqual([r.setup.status for r in report.results], [200, 200])
        self.assertFalse(self.fleet_boxes(plan_fleet(2, seed=11)))

    def test_load_run_counts_every_request(self):
        report = self.simulate(handlers=False, boxes=4, repeat=3)
        stats = report.stats()
        self.assertEqual(list(stats), [SETUP])
        self.assertEqual((stats[SETUP]["count"], stats[SETUP]["errors"]), (12, 0))
        self.assertGreater(stats[SETUP]["rps"], 0)
        self.assertLessEqual(stats[SETUP]["p50"], stats[SETUP]["p95"])
        self.assertLessEqual(stats[SETUP]["p95"], stats[SETUP]["p99"])

    # The tests below need POST /iot/get_handlers (the handlers issue):
    # 200 + zip + quoted ETag, 304 on a matching If-None-Match, and the
    # refusals (18.0-style: 200 with an empty body; 19-style: 401).

    def test_fleet_downloads_handlers_then_19_boxes_get_304(self):
        first = self.simulate()
        self.assertTrue(first.ok, [(r.box.name, r.handlers.outcome) for r in first.results])
        for result in first.results:
            with self.subTest(box=result.box.name):
                self.assertEqual(result.handlers.status, 200)
                self.assertTrue(result.handlers.outcome.startswith("downloaded"), result.handlers.outcome)
        self.assert_fleet(STATUS_WITH_HANDLERS, with_handlers=True)
        etags = json.loads(self.state_file.read_text())["etags"]
        nineteen = {r.box.identifier for r in first.results if r.box.style == "19"}
        self.assertEqual(set(etags), nineteen)
        for etag in etags.values():
            self.assertTrue(etag and '"' not in etag)  # kept bare, as the genuine 19 box does

        second = self.simulate()
        self.assertTrue(second.ok)
        for result in second.results:
            with self.subTest(box=result.box.name):
                expected = 304 if result.box.style == "19" else 200
                self.assertEqual(result.handlers.status, expected, result.handlers.outcome)
        self.assertEqual(json.loads(self.state_file.read_text())["etags"], etags)
        self.assertEqual(second.stats()[HANDLERS]["count"], FLEET)

    def test_handlers_refused_when_automatic_update_is_off(self):
        self.simulate(handlers=False)
        self.fleet_boxes(plan_fleet(FLEET, seed=11)).drivers_auto_update = False
        report = self.simulate()
        for result in report.results:
            with self.subTest(box=result.box.name):
                if result.box.style == "18":
                    self.assertEqual(result.handlers.outcome, "refused (200, empty body)")
                else:
                    self.assertEqual(result.handlers.outcome, "refused (401)")
        self.assert_fleet(STATUS_WITHOUT_HANDLERS, with_handlers=False)
