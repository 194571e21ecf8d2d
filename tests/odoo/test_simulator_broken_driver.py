# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The simulator's broken driver (``--broken-driver``) against the test Odoo
server, over real HTTP: the canary that takes a held bundle holding the driver
sends the genuine 18.0 box's error lines (SPEC 3.5, 3.6), which land in its
Box Log, and checks in without the driver's device; the roll-out evaluation
(time moved, not slept) then halts the roll-out and sends the canary back to
the previous bundle, which it takes at its next start with its devices back.

The simulator runs in-process (its ``run`` function), as in
``test_simulator.py``: its requests go through the test's cursor.
"""

import re
import tempfile
from datetime import timedelta
from pathlib import Path

from odoo.addons.iot_update.tests.iot_common import IotHttpCase
from odoo.addons.iot_update.tests.test_rollout import RolloutSteps

from iotbox_sim.boxlog import BrokenDriver
from iotbox_sim.cli import HANDLERS, LOG, SETUP, run
from iotbox_sim.fleet import plan_fleet

BOXES, SEED = 6, 11
DRIVER = "ShelfLabelDriver.py"
#: A driver importing a library the box's image lacks.
BROKEN_FILES = {f"drivers/{DRIVER}": b"import missing_sdk\n"}
ERROR = "No module named 'missing_sdk'"
#: The lines of the genuine 18.0 box (``load_iot_handlers`` logging through the
#: format of ``server_logger.py``): "<date> <pid> ERROR ? <logger>: <message> <perf_info>".
BOX_LINE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ ERROR \? odoo\.addons\.hw_drivers\.tools\.helpers: %s "
UNABLE = BOX_LINE % re.escape(f"Unable to load file: {DRIVER} ")
ENCOUNTERED = BOX_LINE % re.escape(f"An error encountered : {ERROR} ")


class TestSimulatorBrokenDriver(RolloutSteps, IotHttpCase):
    def setUp(self):
        super().setUp()
        state_dir = tempfile.TemporaryDirectory()
        self.addCleanup(state_dir.cleanup)
        self.state_file = Path(state_dir.name) / "sim-state.json"
        self.fleet = plan_fleet(BOXES, seed=SEED, style="18", server_series="18.0")
        # sim-00-linux-current serves a scale (and more); sim-01 is not a canary.
        self.canary_spec, self.other_spec = self.fleet[0], self.fleet[1]
        self.scales = {key for key, values in self.canary_spec.devices.items() if values["type"] == "scale"}
        self.assertTrue(self.scales and set(self.canary_spec.devices) - self.scales)

    def simulate(self, **kwargs):
        self.env.flush_all()
        try:
            return run(
                self.base_url(),
                self.token,
                boxes=BOXES,
                seed=SEED,
                style="18",
                concurrency=2,
                state_file=self.state_file,
                **kwargs,
            )
        finally:
            self.env.invalidate_all()

    def connected(self, box):
        return set(box.device_ids.filtered("connected").mapped("identifier"))

    def test_broken_canary_logs_loses_its_scale_and_halts_the_rollout(self):
        self.simulate(handlers=False)  # paired, with their devices
        canary = self.box(self.canary_spec.identifier)
        other = self.box(self.other_spec.identifier)
        self.assertEqual(self.connected(canary), set(self.canary_spec.devices))
        canary.canary = True
        bundle = self.new_bundle(BROKEN_FILES)
        self.assertEqual((bundle.rollout_state, self.wave(bundle, 0).state), ("running", "open"))

        broken = BrokenDriver(DRIVER, frozenset({self.canary_spec.name, self.other_spec.name}), frozenset({"scale"}))
        report = self.simulate(broken=broken)
        self.assertTrue(report.ok, [call.outcome for call in report.calls if not call.ok])
        results = {result.box.name: result for result in report.results}
        # The canary took the held bundle and broke; sim-01 got the current one (no such file).
        canary_result = results[self.canary_spec.name]
        self.assertEqual([call.endpoint for call in canary_result.calls], [SETUP, HANDLERS, LOG, SETUP])
        self.assertEqual([call.endpoint for call in results[self.other_spec.name].calls], [SETUP, HANDLERS])
        self.assertEqual(canary.handlers_digest, bundle.digest)
        self.assertNotEqual(other.handlers_digest, bundle.digest)

        # Its Box Log: the two error lines of the genuine box, one entry, from the address of its check-in.
        entry = self.log_lines(canary)
        self.assertEqual((len(entry), entry.line_count, entry.level), (1, 2, "error"), entry.mapped("message"))
        unable, encountered = entry.message.split("\n")
        self.assertRegex(unable, f"^{UNABLE}$")
        self.assertRegex(encountered, f"^{ENCOUNTERED}$")
        self.assertEqual(entry.remote_addr, canary.checkin_remote_addr)
        self.assertFalse(self.env["iot.box.log"].search([("box_id", "!=", canary.id)]))
        # Its last check-in lacks the scale the driver served.
        self.assertEqual(self.connected(canary), set(self.canary_spec.devices) - self.scales)
        self.assertEqual(self.connected(other), set(self.other_spec.devices))

        # The next evaluation halts the roll-out on the canary's errors.
        self.evaluate(timedelta(minutes=1), halts=True)
        line = self.line(bundle, canary)
        self.assertEqual((bundle.rollout_state, line.state, line.reverted), ("halted", "errors", True))
        self.assertRegex(line.error_lines.splitlines()[0], f"^{UNABLE}$")
        self.assertIn(f"Unable to load file: {DRIVER}", bundle.rollout_halt_reason)
        self.assertFalse(canary.rollout_due)
        # No box of the Linux roll-out is due it any more (the Windows bundle has its own).
        self.assertFalse(bundle.rollout_line_ids.box_id.filtered("rollout_due"))

        # At its next start the canary takes the previous bundle: nothing breaks, its scale is back.
        report = self.simulate(broken=broken)
        self.assertEqual([call.endpoint for call in report.results[0].calls], [SETUP, HANDLERS])
        self.assertEqual(canary.handlers_digest, self.current.digest)
        self.assertEqual(self.connected(canary), set(self.canary_spec.devices))
        self.assertEqual(len(self.log_lines(canary)), 1)

    def test_without_the_options_nothing_breaks(self):
        self.simulate(handlers=False)
        canary = self.box(self.canary_spec.identifier)
        canary.canary = True
        bundle = self.new_bundle(BROKEN_FILES)
        report = self.simulate()
        self.assertEqual({len(result.calls) for result in report.results}, {2})
        self.assertEqual(canary.handlers_digest, bundle.digest)
        self.assertFalse(self.env["iot.box.log"].search([]))
        self.assertEqual(self.connected(canary), set(self.canary_spec.devices))
        self.evaluate(timedelta(minutes=1))
        self.assertEqual((bundle.rollout_state, self.line(bundle, canary).state), ("running", "taken"))
