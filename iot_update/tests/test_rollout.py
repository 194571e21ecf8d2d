# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Roll-outs in waves (issue: roll-outs that protect the fleet).

The boxes act through the services of their routes (check-in, handlers,
log), as the controllers call them; time moves with ``freeze_time``, never by
sleeping. What a box "serves" is what its check-ins report (SPEC 3.5), the
error lines are those of the genuine box (``Unable to load file: <driver>``,
formatted as its ``server_logger`` formats them, SPEC 3.6).
"""

import math
import unittest
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import patch

import requests
from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.modules.module import get_module_path
from odoo.tests import new_test_user

from odoo.addons.iot_update.models.iot_handlers_bundle import IotHandlersBundle, bundle_cache
from odoo.addons.iot_update.tools.box_log import read_log_batch
from odoo.addons.iot_update.tools.handlers_request import HandlersRequest

from .handlers_common import LINUX_HANDLERS, LINUX_VERSION, HandlersFolderMixin
from .iot_common import PRINTER, SCALE, IotCase, IotHttpCase, box_payload
from .test_box_log_http import genuine_box_log, load_genuine_server_logger
from .test_bundle_rollout import CANARY, OTHER, PINNED, RolloutMixin
from .test_tour import BrowserCleanupMixin

#: The next bundle: one driver changed.
NEW_PRINTER = {"drivers/PrinterDriver_L.py": b"# linux printer driver, new version\n"}
#: The box's own formatter (SPEC 3.6): "<date> <pid> <LEVEL> <db> <logger>: <message> <perf>".
BOX_LINE = "{date} 4242 ERROR ? odoo.addons.hw_drivers.main: {message} "


ROLLOUT_LOGGER = "odoo.addons.iot_update.models.iot_handlers_bundle_rollout"


def mac(number):
    return f"aa:bb:cc:30:{number // 256:02x}:{number % 256:02x}"


class RolloutSteps(HandlersFolderMixin):
    """A fleet, a held bundle and the steps of its roll-out, for a ``IotCase`` or ``IotHttpCase``."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.iot_admin = new_test_user(cls.env, "waves_admin", groups="base.group_user,iot_update.group_iot_admin")
        cls.iot_user = new_test_user(cls.env, "waves_user", groups="base.group_user,iot_update.group_iot_user")

    def setUp(self):
        super().setUp()
        self.setup_handlers_folder()
        self.Bundle = self.bundle_service()
        self.params = self.env["ir.config_parameter"].sudo()
        self.params.set_param("iot_update.hold_bundles", "True")
        self.current = self.Bundle.search([("variant", "=", "linux"), ("state", "=", "current")])

    # The boxes ---------------------------------------------------------

    def add_boxes(self, count, start=0, devices=None, company=None):
        boxes = self.Box.browse()
        for number in range(start, start + count):
            self.check_in(identifier=mac(number), version=LINUX_VERSION, devices=devices)
            boxes |= self.box(mac(number))
        if company:
            boxes.write({"company_id": company.id})
        return boxes

    def devices(self, *kinds):
        known = {"printer": ("usb-epson-1", PRINTER), "scale": ("serial-toledo-1", SCALE)}
        return dict(known[kind] for kind in kinds)

    def serve(self, box, auto=True):
        """The box asks for its handlers (at its start), as the route does."""
        answer = self.Bundle._serve_handlers(
            HandlersRequest(identifier=box.identifier, mac=box.identifier, auto=auto, mac_style=True), None, "127.0.0.1"
        )
        self.env.flush_all()
        return answer.bundle.digest

    def restart(self, box, *kinds):
        """What a box does when it starts (SPEC 3.5): a check-in with no
        device, its download, then a check-in with the devices it detects."""
        self.check_in(identifier=box.identifier, version=LINUX_VERSION)
        digest = self.serve(box)
        self.check_in(identifier=box.identifier, version=LINUX_VERSION, devices=self.devices(*kinds))
        return digest

    def log(self, box, *messages, remote_addr="127.0.0.1"):
        """A batch of the box's log (POST /iot/log) with an ERROR line per
        message, and the write of it: the batches refused, with why."""
        lines = "".join(
            f"40,{BOX_LINE.format(date=fields.Datetime.now(), message=message)}<log/>\n" for message in messages
        )
        body = f"mac {box.identifier}<log/>\n{lines}".encode()
        self.env["iot.box.log"]._receive(read_log_batch(body), remote_addr)
        return self.write_box_lines()  # what the server does within the second

    # The server --------------------------------------------------------

    def new_bundle(self, files=None):
        """The handler folders change (an upgrade); the cron notices it."""
        self.write_handlers(files or NEW_PRINTER)
        bundle_cache.clear()
        self.Bundle._cron_sync_digests()
        self.env.invalidate_all()
        return self.Bundle.search([("variant", "=", "linux"), ("state", "=", "held")])

    def evaluate(self, after, halts=False):
        """The scheduled evaluation, ``after`` (a timedelta) from now; a halt
        is logged as a warning, which ``halts`` says to expect."""
        with freeze_time(fields.Datetime.now() + after):
            if halts:
                with self.assertLogs(ROLLOUT_LOGGER, "WARNING") as logged:
                    self.Bundle._cron_evaluate_rollouts()
                self.assertIn("halted", logged.output[0])
            else:
                self.Bundle._cron_evaluate_rollouts()
        self.env.invalidate_all()

    def line(self, bundle, box):
        return bundle.rollout_line_ids.filtered(lambda line: line.box_id == box)

    def wave(self, bundle, sequence):
        return bundle.wave_ids.filtered(lambda wave: wave.sequence == sequence)

    def halt_notifications(self):
        group = self.env.ref("iot_update.group_iot_admin")
        self.env.cr.precommit.run()  # the bus writes its notifications when the transaction commits
        return (
            self.env["bus.bus"]
            .sudo()
            .search([("channel", "like", f'"res.groups",{group.id}]'), ("message", "like", "simple_notification")])
        )


class RolloutCase(RolloutSteps, IotCase):
    pass


class TestRolloutPlan(RolloutCase):
    def test_waves_are_stable_shares_spread_over_companies(self):
        other_company = self.env["res.company"].create({"name": "Second shop chain"})
        first = self.add_boxes(40)
        second = self.add_boxes(10, start=40, company=other_company)
        canaries = first[:2]
        canaries.write({"canary": True})
        bundle = self.new_bundle()
        self.assertEqual(bundle.rollout_state, "running")
        self.assertEqual(bundle.wave_ids.mapped("percent"), [0, 10, 50, 100])
        others = (first | second) - canaries
        # Cumulative shares of the 48 other boxes (10 %, 50 %, 100 %).
        sizes = [len(self.wave(bundle, number).line_ids) for number in (1, 2, 3)]
        self.assertEqual(sizes, [math.ceil(48 * 0.1), math.ceil(48 * 0.5) - 5, 48 - math.ceil(48 * 0.5)])
        self.assertEqual(self.wave(bundle, 0).line_ids.box_id, canaries)
        self.assertEqual(bundle.rollout_line_ids.box_id, first | second)
        # Spread: the second company (a fifth of the boxes) is in the first wave.
        self.assertTrue(self.wave(bundle, 1).line_ids.box_id & second)
        self.assertTrue(self.wave(bundle, 1).line_ids.box_id & (first - canaries))
        # Only the open wave is due: the canaries.
        self.assertEqual(self.wave(bundle, 0).state, "open")
        self.assertEqual(self.Box.search([("rollout_due", "=", True)]), canaries)
        self.assertFalse(others.filtered("rollout_due"))
        first_wave = self.wave(bundle, 1).line_ids.box_id

        # The next roll-out picks the same boxes first: a stable order.
        bundle.with_user(self.iot_admin).action_rollout_withdraw()
        again = self.new_bundle({"drivers/PrinterDriver_L.py": b"# linux printer driver, third version\n"})
        self.assertNotEqual(again, bundle)
        self.assertEqual(self.wave(again, 1).line_ids.box_id, first_wave)

    def test_boxes_of_an_open_wave_get_the_held_bundle_the_others_the_current(self):
        boxes = self.add_boxes(20)
        boxes[0].canary = True
        bundle = self.new_bundle()
        self.assertEqual(self.serve(boxes[0]), bundle.digest)
        self.assertEqual(self.serve(boxes[1]), self.current.digest)
        bundle.with_user(self.iot_admin).action_rollout_advance()
        wave = self.wave(bundle, 1)
        self.assertEqual(wave.state, "open")
        self.assertEqual(len(wave.line_ids), math.ceil(19 * 0.1))
        for box in boxes[1:]:
            due = box in wave.line_ids.box_id
            with self.subTest(box=box.identifier, due=due):
                self.assertEqual(self.serve(box), bundle.digest if due else self.current.digest)
                self.assertEqual(box.rollout_due, due)
        log = bundle.log_ids.filtered(lambda entry: entry.action == "wave_opened")[:1]
        self.assertEqual(log.user_id, self.iot_admin)
        self.assertIn("by hand", log.detail)

    def test_a_held_bundle_flags_its_platform_once(self):
        """Recording the held bundle and planning its roll-out (the canary wave
        open) flag the platform's boxes in one pass, once for the change."""
        boxes = self.add_boxes(5)
        boxes[0].canary = True
        calls = []
        original = IotHandlersBundle._flag_handlers

        def flag_handlers(model, variant, *args, **kwargs):
            calls.append(variant)
            return original(model, variant, *args, **kwargs)

        with patch.object(IotHandlersBundle, "_flag_handlers", flag_handlers):
            bundle = self.new_bundle()
        self.assertEqual(calls.count("linux"), 1)
        self.assertEqual(boxes[0].handlers_current_digest, bundle.digest, "the canary is due the held bundle")
        self.assertEqual(boxes[1].handlers_current_digest, self.current.digest)
        opened = bundle.log_ids.filtered(lambda entry: entry.action == "wave_opened")
        self.assertEqual(opened.box_count, 1, "the boxes the wave made due")

    def test_opening_a_wave_costs_the_same_statements_for_ten_or_two_hundred_boxes(self):
        counts = []
        for size, start in ((10, 0), (200, 10)):
            boxes = self.add_boxes(size, start=start)
            bundle = self.new_bundle({"drivers/PrinterDriver_L.py": f"# version {size}\n".encode()})
            self.env.flush_all()
            self.env.invalidate_all()
            queries = self.cr.sql_log_count
            bundle.action_rollout_advance()
            self.env.flush_all()
            counts.append(self.cr.sql_log_count - queries)
            self.assertEqual(len(self.wave(bundle, 1).line_ids), math.ceil(len(boxes.search([])) * 0.1))
            bundle.action_rollout_withdraw()
        self.assertEqual(counts[0], counts[1], "opening a wave is set-based")


class TestRolloutHealth(RolloutCase):
    def setUp(self):
        super().setUp()
        self.boxes = self.add_boxes(12, devices=self.devices("printer", "scale"))
        self.canary = self.boxes[0]
        self.canary.canary = True
        self.bundle = self.new_bundle()
        self.env["bus.bus"].sudo().search([]).unlink()

    def test_a_healthy_canary_after_the_soak_time_opens_the_next_wave(self):
        self.assertEqual(self.restart(self.canary, "printer", "scale"), self.bundle.digest)
        line = self.line(self.bundle, self.canary)
        self.assertEqual(line.devices_before, ["serial-toledo-1", "usb-epson-1"])
        self.evaluate(timedelta(minutes=10))
        self.assertEqual(line.state, "taken")
        self.assertFalse(self.wave(self.bundle, 1).open_date)
        self.evaluate(timedelta(hours=23))
        self.assertEqual(line.state, "taken", "still soaking")
        self.evaluate(timedelta(hours=25))
        self.assertEqual(line.state, "healthy")
        self.assertEqual(self.wave(self.bundle, 1).state, "open")
        opened = self.bundle.log_ids.filtered(lambda entry: entry.action == "wave_opened")[:1]
        self.assertEqual(opened.user_id, self.env.ref("base.user_root"))
        self.assertIn("1 of the 1 boxes of Canary boxes", opened.detail)
        self.assertEqual(self.bundle.rollout_state, "running")

    def test_boxes_that_never_restart_do_not_block_a_wave(self):
        self.restart(self.canary, "printer", "scale")
        self.evaluate(timedelta(hours=25))
        wave = self.wave(self.bundle, 1)
        self.assertEqual(len(wave.line_ids), 2)
        taker, idle = wave.line_ids.box_id
        self.restart(taker, "printer", "scale")
        self.evaluate(timedelta(hours=25))
        self.assertEqual(self.line(self.bundle, idle).state, "pending")
        self.assertEqual(self.line(self.bundle, taker).state, "healthy")
        self.assertEqual(self.wave(self.bundle, 2).state, "open")

    def test_a_canary_that_loses_a_device_halts_the_roll_out(self):
        self.restart(self.canary, "printer")  # the scale's driver broke
        self.evaluate(timedelta(minutes=2))
        self.assertEqual(self.bundle.rollout_state, "running", "devices are compared once settled")
        self.evaluate(timedelta(minutes=6), halts=True)
        line = self.line(self.bundle, self.canary)
        self.assertEqual(line.state, "lost_devices")
        self.assertEqual(line.lost_devices, SCALE["name"])
        self.assertEqual(self.bundle.rollout_state, "halted")
        self.assertIn(self.canary.name, self.bundle.rollout_halt_reason)
        self.assertIn(f"no longer serves {SCALE['name']}", self.bundle.rollout_halt_reason)
        # The failed box is due the previous bundle again (the default policy).
        self.assertTrue(line.reverted)
        self.assertFalse(self.canary.rollout_due)
        self.assertEqual(self.serve(self.canary), self.current.digest)
        halt = self.bundle.log_ids.filtered(lambda entry: entry.action == "halted")
        self.assertEqual(len(halt), 1)
        self.assertIn("Device list (check-in)", halt.detail)
        # The administrators are told in their web clients.
        notification = self.halt_notifications()
        self.assertEqual(len(notification), 1)
        self.assertIn("Roll-out halted", notification.message)
        self.assertIn(self.canary.name, notification.message)
        # Halted: nothing opens, whatever the time.
        self.evaluate(timedelta(days=3))
        self.assertEqual(self.wave(self.bundle, 1).state, "waiting")
        self.assertEqual(len(self.halt_notifications()), 1, "told once")

    def test_a_box_that_lost_its_devices_while_offline_is_dark_not_short_of_devices(self):
        self.restart(self.canary, "printer", "scale")
        self.check_in(identifier=self.canary.identifier, version=LINUX_VERSION)  # its devices gone
        self.Box._record_went_offline(self.canary.ids)
        self.canary.write({"disconnected_since": fields.Datetime.now()})
        self.evaluate(timedelta(minutes=10), halts=True)
        line = self.line(self.bundle, self.canary)
        self.assertEqual(line.state, "dark")
        self.assertIn("Bus connection", line.evidence)
        self.assertEqual(self.bundle.rollout_state, "halted", "any canary failure halts")

    def test_new_error_lines_halt_errors_seen_before_do_not(self):
        self.log(self.canary, "Unable to load file: MissingLibraryDriver.py")
        with freeze_time(fields.Datetime.now() + timedelta(seconds=5)):
            self.restart(self.canary, "printer", "scale")
            # The same failure with the new bundle: a library the image lacks, not news.
            self.log(self.canary, "Unable to load file: MissingLibraryDriver.py")
        self.evaluate(timedelta(minutes=10))
        self.assertEqual(self.line(self.bundle, self.canary).state, "taken")
        self.assertEqual(self.bundle.rollout_state, "running")
        with freeze_time(fields.Datetime.now() + timedelta(minutes=11)):
            self.log(self.canary, "Unable to load file: PrinterDriver_L.py")
        self.evaluate(timedelta(minutes=12), halts=True)
        line = self.line(self.bundle, self.canary)
        self.assertEqual(line.state, "errors")
        self.assertIn("Unable to load file: PrinterDriver_L.py", line.error_lines)
        self.assertNotIn("MissingLibraryDriver", line.error_lines)
        self.assertEqual(line.error_remote_addr, "127.0.0.1")
        self.assertIn("driver PrinterDriver_L.py failed to load", line.evidence)
        self.assertEqual(self.bundle.rollout_state, "halted")
        self.assertIn("Box log (lines from 127.0.0.1", self.bundle.rollout_halt_reason)

    def test_error_lines_are_compared_one_by_one_whatever_their_batches(self):
        # Before the download: two known errors in one batch (one entry of the box log).
        self.log(self.canary, "Unable to load file: MissingLibraryDriver.py", "No module named 'usb'")
        with freeze_time(fields.Datetime.now() + timedelta(seconds=5)):
            self.restart(self.canary, "printer", "scale")
            self.log(self.canary, "No module named 'usb'")  # one of them alone: not news
        self.evaluate(timedelta(minutes=10))
        self.assertEqual(self.line(self.bundle, self.canary).state, "taken")
        with freeze_time(fields.Datetime.now() + timedelta(minutes=11)):
            # A new error between two known ones, in one batch.
            self.log(
                self.canary,
                "Unable to load file: MissingLibraryDriver.py",
                "Unable to load file: PrinterDriver_L.py",
                "No module named 'usb'",
            )
        self.evaluate(timedelta(minutes=12), halts=True)
        line = self.line(self.bundle, self.canary)
        self.assertEqual(line.state, "errors")
        self.assertEqual(len(line.error_lines.splitlines()), 1, line.error_lines)
        self.assertIn("Unable to load file: PrinterDriver_L.py", line.error_lines)

    def test_lines_from_another_address_cannot_halt_a_roll_out(self):
        self.restart(self.canary, "printer", "scale")
        with (
            freeze_time(fields.Datetime.now() + timedelta(seconds=5)),
            self.assertLogs("odoo.addons.iot_update.models.iot_box_log", "WARNING"),
        ):
            refused = self.log(self.canary, "Unable to load file: PrinterDriver_L.py", remote_addr="203.0.113.9")
        self.assertEqual([reason for __, reason in refused], ["not from the box's address"])
        self.evaluate(timedelta(minutes=10))
        self.assertEqual(self.line(self.bundle, self.canary).state, "taken")
        self.assertEqual(self.bundle.rollout_state, "running")

    def open_first_wave_of(self, count):
        """A roll-out whose first wave holds ``count`` boxes, every one of which took the bundle."""
        self.bundle.with_user(self.iot_admin).action_rollout_advance()
        wave = self.wave(self.bundle, 1)
        self.assertEqual(len(wave.line_ids), count)
        for box in wave.line_ids.box_id:
            self.restart(box, "printer", "scale")
        self.evaluate(timedelta(minutes=1))
        self.assertEqual(wave.taken_count, count)
        return wave

    def test_going_dark_halts_above_its_share(self):
        self.params.set_param("iot_update.rollout_waves", "100")
        self.bundle.with_user(self.iot_admin).action_rollout_withdraw()
        self.bundle = self.new_bundle({"drivers/PrinterDriver_L.py": b"# a third version\n"})
        wave = self.open_first_wave_of(11)
        first, second, *__ = wave.line_ids.box_id
        self.Box._record_went_offline(first.ids)
        self.evaluate(timedelta(minutes=2))
        self.assertEqual(self.line(self.bundle, first).state, "dark")
        self.assertEqual(self.bundle.rollout_state, "running", "1 of 11 is not more than 10 %")
        self.Box._record_went_offline(second.ids)
        self.evaluate(timedelta(minutes=3), halts=True)
        self.assertEqual(self.bundle.rollout_state, "halted")
        self.assertIn("2 of 11 boxes that took the bundle went dark", self.bundle.rollout_halt_reason)

    def test_halt_policies_and_pending_boxes(self):
        for policy, reverted in (("taken", {"failed", "healthy_taker"}), ("none", set())):
            with self.subTest(policy=policy):
                for box in self.boxes:  # every box serves both devices again
                    self.check_in(
                        identifier=box.identifier, version=LINUX_VERSION, devices=self.devices("printer", "scale")
                    )
                self.bundle.with_user(self.iot_admin).action_rollout_withdraw()
                self.params.set_param("iot_update.rollout_revert", policy)
                self.bundle = self.new_bundle({"drivers/PrinterDriver_L.py": f"# {policy}\n".encode()})
                self.assertEqual(self.bundle.rollout_revert, policy)
                wave = self.open_first_wave_of(2)
                failed, healthy_taker = wave.line_ids.box_id
                # A box of the next wave, due once it opens: pending when the roll-out halts.
                self.bundle.with_user(self.iot_admin).action_rollout_advance()
                pending = self.wave(self.bundle, 2).line_ids.box_id[0]
                self.assertTrue(pending.rollout_due)
                self.check_in(identifier=failed.identifier, version=LINUX_VERSION, devices=self.devices("printer"))
                self.evaluate(timedelta(minutes=10), halts=True)
                self.assertEqual(self.bundle.rollout_state, "halted")
                boxes = {"failed": failed, "healthy_taker": healthy_taker}
                for name, box in boxes.items():
                    self.assertEqual(box.rollout_due, name not in reverted, name)
                    expected = self.current.digest if name in reverted else self.bundle.digest
                    self.assertEqual(self.serve(box), expected, name)
                self.assertFalse(pending.rollout_due, "no further box becomes due")
                self.assertEqual(self.serve(pending), self.current.digest)

    def test_resume_pause_advance_and_roll_back(self):
        self.restart(self.canary, "printer")
        self.evaluate(timedelta(minutes=10), halts=True)
        self.assertEqual(self.bundle.rollout_state, "halted")
        bundle = self.bundle.with_user(self.iot_admin)
        with self.assertRaises(UserError):
            bundle.action_rollout_pause()
        bundle.action_rollout_resume()
        self.assertEqual(self.bundle.rollout_state, "running")
        self.assertTrue(self.line(self.bundle, self.canary).acknowledged)
        self.evaluate(timedelta(minutes=11))
        self.assertEqual(self.bundle.rollout_state, "running", "a failure seen when resuming halts no more")
        self.assertFalse(self.canary.rollout_due, "a reverted box stays on the previous bundle")

        bundle.action_rollout_pause()
        self.evaluate(timedelta(days=2))
        self.assertEqual(self.wave(self.bundle, 1).state, "waiting", "paused: no wave opens by itself")
        bundle.action_rollout_advance()
        self.assertEqual(self.wave(self.bundle, 1).state, "open")
        bundle.action_rollout_resume()
        self.assertEqual(
            [entry.action for entry in self.bundle.log_ids.sorted("id", reverse=True)[:5]],
            ["resumed", "wave_opened", "paused", "resumed", "halted"],
        )
        due = self.Box.search([("rollout_due", "=", True)])
        self.assertTrue(due)
        bundle.action_rollout_withdraw()
        self.assertEqual((self.bundle.state, self.bundle.rollout_state), ("withdrawn", "withdrawn"))
        self.assertFalse(self.Box.search([("rollout_due", "=", True)]))
        for box in due:
            self.assertEqual(self.serve(box), self.current.digest)

    def test_the_last_wave_passed_releases_the_bundle(self):
        self.params.set_param("iot_update.rollout_waves", "100")
        self.bundle.with_user(self.iot_admin).action_rollout_withdraw()
        bundle = self.new_bundle({"drivers/PrinterDriver_L.py": b"# released in the end\n"})
        self.restart(self.canary, "printer", "scale")
        self.evaluate(timedelta(hours=25))
        self.assertEqual(self.wave(bundle, 1).state, "open")
        for box in self.boxes[1:10]:
            self.restart(box, "printer", "scale")
        self.evaluate(timedelta(hours=50))
        self.assertEqual(self.wave(bundle, 1).healthy_count, 9)
        self.assertEqual((bundle.state, bundle.rollout_state), ("current", "released"))
        self.assertFalse(self.Box.search([("rollout_due", "=", True)]))
        self.assertEqual(bundle.log_ids[0].action, "completed")
        self.assertEqual(self.serve(self.boxes[11]), bundle.digest)

    def test_a_good_bundle_reaches_the_fleet_wave_after_wave_without_a_button(self):
        """Canaries, then 10 %, 50 % and 100 % of the 11 other boxes (2, 4 and 5
        boxes), each wave opening once its boxes took the bundle and stayed
        healthy for the soak time; the last one releases it."""
        sizes, later = [], timedelta()
        for sequence in (0, 1, 2, 3):
            wave = self.wave(self.bundle, sequence)
            self.assertEqual(wave.state, "open", f"wave {sequence}")
            sizes.append(len(wave.line_ids))
            later += timedelta(hours=1)
            with freeze_time(fields.Datetime.now() + later):
                for box in wave.line_ids.box_id:
                    self.restart(box, "printer", "scale")
            later += timedelta(hours=25)
            self.evaluate(later)
            self.assertEqual(wave.healthy_count, len(wave.line_ids))
        self.assertEqual(sizes, [1, 2, 4, 5])
        self.assertEqual((self.bundle.state, self.bundle.rollout_state), ("current", "released"))
        self.assertEqual(
            [entry.action for entry in self.bundle.log_ids.sorted("id")],
            ["rollout_started", "wave_opened", "wave_opened", "wave_opened", "wave_opened", "released", "completed"],
        )
        self.assertTrue(all(entry.user_id == self.env.ref("base.user_root") for entry in self.bundle.log_ids))

    def test_a_failure_share_above_zero_tolerates_failures_up_to_it(self):
        self.params.set_param("iot_update.rollout_waves", "100")
        self.params.set_param("iot_update.rollout_failure_percent", "50")
        self.bundle.with_user(self.iot_admin).action_rollout_withdraw()
        self.bundle = self.new_bundle({"drivers/PrinterDriver_L.py": b"# tolerant\n"})
        self.assertEqual(self.bundle.rollout_failure_percent, 50)
        wave = self.open_first_wave_of(11)
        short = wave.line_ids.box_id[:5]
        for box in short:
            self.check_in(identifier=box.identifier, version=LINUX_VERSION, devices=self.devices("printer"))
        self.evaluate(timedelta(minutes=10))
        self.assertEqual(wave.failed_count, 5)
        self.assertEqual(self.bundle.rollout_state, "running", "5 of 11 is not more than 50 %")
        sixth = wave.line_ids.box_id[5]
        self.check_in(identifier=sixth.identifier, version=LINUX_VERSION, devices=self.devices("printer"))
        self.evaluate(timedelta(minutes=11), halts=True)
        self.assertEqual(self.bundle.rollout_state, "halted")

    def test_iot_users_read_roll_outs(self):
        bundle = self.bundle.with_user(self.iot_user)
        self.assertEqual(bundle.rollout_state, "running")
        self.assertEqual(len(bundle.wave_ids), 4)
        self.assertEqual(len(bundle.rollout_line_ids), len(self.boxes))
        self.assertTrue(bundle.wave_ids.mapped("box_count"))
        with self.assertRaises(AccessError):
            bundle.wave_ids[:1].write({"percent": 5})
        with self.assertRaises(AccessError):
            bundle.rollout_line_ids[:1].unlink()

    def test_release_by_hand_ends_the_roll_out(self):
        self.bundle.with_user(self.iot_admin).action_release()
        self.assertEqual((self.bundle.state, self.bundle.rollout_state), ("current", "released"))
        self.assertFalse(self.canary.rollout_due)
        # The next held bundle starts a roll-out of its own: the canary is due it, nobody else.
        later = self.new_bundle({"drivers/PrinterDriver_L.py": b"# later\n"})
        self.assertEqual(self.Box.search([("rollout_due", "=", True)]), self.canary)
        self.assertEqual(later.rollout_state, "running")

    def test_a_box_marked_canary_during_a_roll_out_joins_its_canary_wave(self):
        box = self.boxes[5]
        self.assertFalse(box.rollout_due)
        box.with_user(self.iot_admin).canary = True
        self.assertTrue(box.rollout_due)
        self.assertEqual(self.line(self.bundle, box).wave_id, self.wave(self.bundle, 0))
        self.assertEqual(self.serve(box), self.bundle.digest)
        other = self.boxes[6]
        other.with_user(self.iot_admin).canary = True
        other.with_user(self.iot_admin).canary = False
        self.assertFalse(other.rollout_due)
        self.assertEqual(self.serve(other), self.current.digest)

    def test_only_iot_administrators_steer_a_roll_out(self):
        for method in ("action_rollout_advance", "action_rollout_pause", "action_rollout_withdraw"):
            with self.subTest(method=method), self.assertRaises(AccessError):
                getattr(self.bundle.with_user(self.iot_user), method)()
        self.assertEqual(self.bundle.rollout_state, "running")

    def test_the_box_form_says_which_roll_out_and_how_it_went(self):
        self.restart(self.canary, "printer")
        self.evaluate(timedelta(minutes=10), halts=True)
        self.assertEqual(self.canary.rollout_line_id.bundle_id, self.bundle)
        self.assertEqual(self.canary.rollout_outcome, "lost_devices")
        failed = self.Box.search([("rollout_line_ids.state", "in", ("lost_devices", "errors", "dark"))])
        self.assertEqual(failed, self.canary)
        self.assertEqual(self.bundle.rollout_failed_line_ids.box_id, self.canary)
        self.assertIn("Halted", self.bundle.rollout_summary)


class TestRolloutSettings(RolloutCase):
    def test_settings_are_saved_checked_and_copied_into_each_roll_out(self):
        settings = self.env["iot.update.settings"].with_user(self.iot_admin).create({})
        self.assertEqual(settings.rollout_waves, "10,50,100")
        self.assertEqual((settings.rollout_soak_hours, settings.rollout_healthy_percent), (24, 80))
        settings.write({"rollout_waves": "5, 25,100", "rollout_soak_hours": 0.5, "rollout_revert": "taken"})
        self.assertEqual(self.params.get_param("iot_update.rollout_waves"), "5, 25,100")
        for bad in ("10,50", "50,10,100", "0,100", "abc"):
            with self.subTest(waves=bad), self.assertRaises(ValidationError):
                settings.write({"rollout_waves": bad})
        with self.assertRaises(ValidationError):
            settings.write({"rollout_dark_percent": 150})
        self.add_boxes(3)
        bundle = self.new_bundle()
        self.assertEqual(bundle.wave_ids.mapped("percent"), [0, 5, 25, 100])
        self.assertEqual((bundle.rollout_soak_hours, bundle.rollout_revert), (0.5, "taken"))
        # The general settings show and save the same values.
        general = self.env["res.config.settings"].create({})
        self.assertEqual(general.iot_rollout_waves, "5, 25,100")
        general.iot_rollout_failure_percent = 20
        general.execute()
        self.assertEqual(self.Bundle._get_rollout_settings()["rollout_failure_percent"], 20)
        self.assertEqual(self.Bundle._get_rollout_settings()["rollout_soak_hours"], 0.5)

    def test_a_bundle_held_before_the_upgrade_gets_a_roll_out(self):
        boxes = self.add_boxes(4)
        boxes[0].canary = True
        held = self.new_bundle()
        # As a database of the previous version has it: no plan, no box due by a plan.
        self.env.flush_all()
        self.env.cr.execute("DELETE FROM iot_rollout_wave WHERE bundle_id = %s", [held.id])
        self.env.cr.execute("UPDATE iot_handlers_bundle SET rollout_state = NULL WHERE id = %s", [held.id])
        self.env.cr.execute("UPDATE iot_box SET rollout_due = false")
        self.env.invalidate_all()
        path = Path(get_module_path("iot_update"), "migrations", "18.0.1.4.0", "post-migration.py")
        namespace = {}
        exec(compile(path.read_text(), str(path), "exec"), namespace)
        namespace["migrate"](self.env.cr, "18.0.1.3.0")
        self.env.invalidate_all()
        self.assertEqual(held.rollout_state, "running")
        self.assertEqual(self.Box.search([("rollout_due", "=", True)]), boxes[0])
        self.assertEqual(self.serve(boxes[0]), held.digest)
        self.assertEqual(self.serve(boxes[1]), self.current.digest)


class TestRolloutGenuineBox(RolloutMixin, IotHttpCase):
    """The genuine 18.0 box code over real HTTP: a canary downloads a bundle
    whose new driver fails to import on it; its own log handler reports
    ``Unable to load file``, its next check-in lacks the device that driver
    served; the roll-out halts, and the box's next download brings the
    previous bundle back."""

    def test_a_broken_driver_on_a_canary_halts_the_roll_out_and_the_box_gets_its_drivers_back(self):
        helpers = self.helpers
        module = load_genuine_server_logger(
            Path(get_module_path("hw_drivers"), "server_logger.py"), "hw_drivers", helpers
        )
        # What the box does after loading handlers (reset its own web app) is not the test's.
        patcher = patch.object(helpers, "lazy_property", SimpleNamespace(reset_all=lambda app: None))
        patcher.start()
        self.addCleanup(patcher.stop)
        devices = {"usb-epson-1": PRINTER, "serial-toledo-1": SCALE}

        def box_checks_in(served):
            self.env.flush_all()
            response = self.post_setup(
                box_payload(self.token, identifier=CANARY, version=LINUX_VERSION, devices=served)
            )
            self.assertEqual(response.status_code, 200)
            self.env.invalidate_all()

        box_checks_in(devices)
        self.assertEqual(self.download(CANARY), LINUX_HANDLERS)
        self.hold_new_bundles()
        self.change_drivers({"drivers/BrokenScaleDriver_L.py": b"import iot_update_no_such_module\n"})
        held = self.bundle_record("held")
        self.assertEqual(held.rollout_state, "running")

        # The canary restarts (SPEC 3.5): a check-in with no device, its download, its
        # drivers loaded (the new one fails, its own log handler queues the lines), its
        # log sent, then the check-ins of the devices it finds: the scale is not among them.
        box_checks_in({})
        self.assertIn("drivers/BrokenScaleDriver_L.py", self.download(CANARY))
        with genuine_box_log(module, self.base_url()) as handler:
            helpers.load_iot_handlers()
        self.env.flush_all()
        handler._flush_logs(requests.Session())
        self.write_box_lines()  # what the server does within the second
        box_checks_in({"usb-epson-1": PRINTER})
        self.env.invalidate_all()
        canary = self.box(CANARY)
        self.assertTrue(canary.reporting_errors)

        with freeze_time(fields.Datetime.now() + timedelta(minutes=10)):
            with self.assertLogs(ROLLOUT_LOGGER, "WARNING"):
                self.Bundle._cron_evaluate_rollouts()
        self.env.invalidate_all()
        self.assertEqual(held.rollout_state, "halted")
        line = held.rollout_line_ids.filtered(lambda line: line.box_id == canary)
        self.assertEqual(line.state, "errors", "the log tells first, and names the driver")
        self.assertIn("driver BrokenScaleDriver_L.py failed to load", line.evidence)
        self.assertIn("Unable to load file: BrokenScaleDriver_L.py", held.rollout_halt_reason)
        self.assertTrue(line.reverted)
        # No other box is ever due it: the other boxes were in waves that never opened.
        self.assertFalse(self.Box.search([("rollout_due", "=", True)]))
        for mac in (OTHER, PINNED):
            self.assertNotIn("drivers/BrokenScaleDriver_L.py", self.download(mac))
        # The IoT administrators are told, with the box and the evidence.
        self.env.cr.precommit.run()
        group = self.env.ref("iot_update.group_iot_admin")
        told = self.env["bus.bus"].sudo().search([("channel", "like", f'"res.groups",{group.id}]')])
        self.assertIn("BrokenScaleDriver_L.py", "".join(told.mapped("message")))
        # The box's next start brings the previous bundle back (its ETag is another one).
        # Loading its drivers left Python's bytecode caches beside them: not the bundle's.
        files = {entry: data for entry, data in self.download(CANARY).items() if "__pycache__" not in entry}
        self.assertEqual(files, LINUX_HANDLERS)
        self.assertEqual(canary.handlers_digest, self.first.digest)


class TestHaltedRolloutTour(BrowserCleanupMixin, RolloutSteps, IotHttpCase):
    def test_the_dashboard_shows_a_halted_roll_out_and_opens_it(self):
        boxes = self.add_boxes(3, devices=self.devices("printer", "scale"))
        canary = boxes[0]
        canary.canary = True
        bundle = self.new_bundle()
        self.restart(canary, "printer")
        canary.name = "tour-broken-canary"  # after its check-ins, which name it
        self.evaluate(timedelta(minutes=10), halts=True)
        self.assertEqual(bundle.rollout_state, "halted")
        try:
            self.start_tour("/odoo/action-iot_update.iot_box_action", "iot_update_halted_rollout_tour", login="admin")
        except unittest.SkipTest as error:
            self.fail(f"Chromium is installed but the tour could not run: {error}")
