# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The dashboard in a real browser (headless Chromium)."""

import contextlib
import os
import signal
import subprocess
import threading
import time
import unittest
from datetime import timedelta
from pathlib import Path
from unittest.mock import patch

from odoo import fields
from odoo.tests import common, new_test_user

from odoo.addons.bus.websocket import WebsocketConnectionHandler, _websocket_instances
from odoo.addons.iot_update.models.iot_handlers_bundle import bundle_cache
from odoo.addons.iot_update.tools.handlers_request import HandlersRequest

from .handlers_common import LINUX_VERSION, HandlersFolderMixin
from .iot_common import IotHttpCase
from .iot_fleet import fleet_patchers, make_fleet

#: Start of the skip reason when no browser can run the tour; ./dev counts these.
TOUR_NOT_RUN = "BROWSER TOUR NOT RUN"


def browser_missing():
    """Why Odoo cannot drive a browser here, or "" when it can."""
    try:
        import websocket  # noqa: F401 - what Odoo's ChromeBrowser needs
    except ImportError:
        return "the Python package websocket-client is missing (./dev setup installs it)"
    try:
        common._find_executable()
    except unittest.SkipTest:
        return "no Chromium or Chrome found (Debian: apt-get install chromium; ./dev setup does it as root)"
    return ""


def spawn_chrome_in_own_group(cmd):
    """Odoo's ChromeBrowser._chrome_without_limit, in a process group of its own."""

    def preexec():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    # pylint: disable=subprocess-popen-preexec-fn
    return subprocess.Popen(cmd, stderr=subprocess.DEVNULL, preexec_fn=preexec, start_new_session=True)  # noqa: PLW1509


def live_group_members(pgid):
    """Pids of the processes of group ``pgid`` that still run (zombies aside)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def end_process_group(process, grace=10):
    """Terminate a browser and every process it started; kill what is left after
    ``grace`` seconds; return the pids still running then (none expected)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    # The leader is gone or stuck; its renderers share its group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    deadline = time.monotonic() + grace
    while (left := live_group_members(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)  # the kernel ending what was killed
    return left


class BrowserCleanupMixin:
    """Every Chromium a test starts is ended with the test, even when the tour fails,
    times out or Odoo's ChromeBrowser.stop() raises before terminating it."""

    def setUp(self):
        super().setUp()
        missing = browser_missing()
        if missing:
            self.skipTest(f"{TOUR_NOT_RUN}: {missing}")
        self.browser_processes = []

        def spawn(browser, cmd):
            process = spawn_chrome_in_own_group(cmd)
            self.browser_processes.append(process)
            return process

        self.startPatcher(patch.object(common.ChromeBrowser, "_chrome_without_limit", spawn))
        self.addCleanup(self.end_browsers)

    def end_browsers(self):
        left = [pid for process in self.browser_processes for pid in end_process_group(process)]
        self.assertEqual(left, [], "browser processes left running")


class TestDashboardTour(BrowserCleanupMixin, IotHttpCase):
    def setUp(self):
        super().setUp()
        for patcher in fleet_patchers():
            self.startPatcher(patcher)

    def test_untick_drivers_update_from_dashboard(self):
        boxes = make_fleet(self, ["fleet-offline", "fleet-old-image", "fleet-up-to-date"])
        boxes["fleet-old-image"].name = "tour-old-image"
        boxes["fleet-up-to-date"].name = "tour-up-to-date"
        self.assertEqual(boxes["fleet-old-image"].update_status, "image_required")
        try:
            self.start_tour("/odoo/action-iot_update.iot_box_action", "iot_update_dashboard_tour", login="admin")
        except unittest.SkipTest as error:
            # A browser is there but Odoo could not drive it: that is a failure, not a skip.
            self.fail(f"Chromium is installed but the tour could not run: {error}")
        self.assertFalse(boxes["fleet-old-image"].drivers_auto_update)
        self.assertTrue(boxes["fleet-up-to-date"].drivers_auto_update)
        self.assertTrue(boxes["fleet-offline"].drivers_auto_update)

    def test_generate_pairing_token_from_settings(self):
        """IoT > Configuration > Settings, as an IoT administrator who is not a Settings administrator."""
        new_test_user(self.env, "tour_iot_admin", groups="base.group_user,iot_update.group_iot_admin")
        self.env["ir.config_parameter"].set_param("iot_token", "tour-old-token")
        try:
            self.start_tour(
                "/odoo/action-iot_update.iot_update_settings_action",
                "iot_update_pairing_token_tour",
                login="tour_iot_admin",
            )
        except unittest.SkipTest as error:
            self.fail(f"Chromium is installed but the tour could not run: {error}")
        token = self.Box._get_pairing_token()
        self.assertNotEqual(token, "tour-old-token")
        self.assertGreaterEqual(len(token), 20)
        self.assertEqual(self.env["ir.config_parameter"].get_param("iot_update.offline_delay_hours"), "12")


class TestLiveDashboardTour(BrowserCleanupMixin, IotHttpCase):
    """The dashboard updates itself (issue 17): a box going offline moves to
    the Offline column without a reload, through the bus notification."""

    def setUp(self):
        super().setUp()
        # Odoo's runner refuses websockets while a test runs (current_test): the
        # web client's bus is what this tour tests, so allow it, as Odoo's bus tests do.
        self.startPatcher(patch.object(WebsocketConnectionHandler, "websocket_allowed", return_value=True))
        for patcher in fleet_patchers():
            self.startPatcher(patcher)

    def dispatch_bus_notifications(self, stop):
        """Odoo NOTIFYs the websockets at commit, which test transactions never
        do: wake them up as that NOTIFY would (as Odoo's bus tests do)."""
        while not stop.wait(0.3):
            for websocket in list(_websocket_instances):
                websocket.trigger_notification_dispatching()

    def test_box_going_offline_moves_without_reload(self):
        boxes = make_fleet(self, ["fleet-up-to-date"])
        box = boxes["fleet-up-to-date"]
        box.name = "tour-live-box"
        self.assertEqual(box.update_status, "up_to_date")
        box.flush_recordset()
        # Checked in 20 minutes ago, its bus connection ended 10 minutes ago,
        # and no refresh ran since.
        now = fields.Datetime.now()
        self.env.cr.execute(
            """UPDATE iot_box SET bus_connection = 'k', disconnected_since = %s, last_contact = %s, last_seen = %s
                WHERE id = %s""",
            [now - timedelta(minutes=10), now - timedelta(minutes=20), now - timedelta(minutes=20), box.id],
        )
        box.invalidate_recordset()
        stop = threading.Event()
        dispatcher = threading.Thread(target=self.dispatch_bus_notifications, args=(stop,), daemon=True)
        dispatcher.start()
        try:
            self.start_tour("/odoo/action-iot_update.iot_box_action", "iot_update_live_dashboard_tour", login="admin")
        except unittest.SkipTest as error:
            self.fail(f"Chromium is installed but the tour could not run: {error}")
        finally:
            stop.set()
            dispatcher.join()
        box.invalidate_recordset()
        self.assertTrue(box.is_offline)
        self.assertEqual(len(box.event_ids.filtered(lambda event: event.kind == "went_offline")), 1)


class TestRolloutTour(BrowserCleanupMixin, HandlersFolderMixin, IotHttpCase):
    def setUp(self):
        super().setUp()
        self.setup_handlers_folder()

    def test_release_from_driver_bundles_and_read_the_logs(self):
        """IoT > Driver Bundles, as an IoT administrator who is not a Settings administrator."""
        admin = new_test_user(
            self.env,
            "tour_rollout_admin",
            name="tour rollout admin",
            groups="base.group_user,iot_update.group_iot_admin",
        )
        Bundle = self.env["iot.handlers.bundle"]
        self.env["iot.update.settings"].with_user(admin).create({"hold_bundles": True})
        self.write_handlers({"drivers/SerialScaleDriver.py": b"# scale v2\n"})
        bundle_cache.clear()
        Bundle._cron_sync_digests()
        held = Bundle.search([("variant", "=", "linux"), ("state", "=", "held")])
        self.assertTrue(held)
        self.check_in(identifier="aa:bb:cc:40:00:01", version=LINUX_VERSION)
        canary = self.box("aa:bb:cc:40:00:01")
        canary.write({"name": "tour-canary", "canary": True})
        answer = self.bundle_service()._serve_handlers(HandlersRequest("", canary.identifier, True, True))
        self.assertEqual(answer.bundle.digest, held.digest)
        try:
            self.start_tour(
                "/odoo/action-iot_update.iot_handlers_bundle_action", "iot_update_rollout_tour", login=admin.login
            )
        except unittest.SkipTest as error:
            self.fail(f"Chromium is installed but the tour could not run: {error}")
        self.assertEqual(held.state, "current")
        self.assertEqual(
            [(line.action, line.user_id) for line in held.log_ids],
            [
                ("released", admin),
                ("wave_opened", self.env.ref("base.user_root")),
                ("rollout_started", self.env.ref("base.user_root")),
            ],
        )
