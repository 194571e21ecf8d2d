# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Liveness over the bus websocket (SPEC 3.4): a box's subscription to its own
channel is its heartbeat.

Odoo's threaded test server serves ``/websocket`` itself, and the websocket's
cursors go through the test's cursor, as HTTP requests do. Odoo's own
``WebsocketCase`` (bus tests) allows websockets in test mode and waits for the
connections to close. The 18.0 box is the genuine one:
``hw_drivers/websocket_client.py`` loaded from the Odoo tree.
"""

import contextlib
import importlib.util
import json
import logging
import sys
import threading
import time
import types
import unittest
from datetime import timedelta
from pathlib import Path
from unittest.mock import patch

import requests
from freezegun import freeze_time
from lxml import etree

from odoo import SUPERUSER_ID, api, fields
from odoo.exceptions import AccessError
from odoo.modules.module import get_module_path
from odoo.modules.registry import Registry
from odoo.service.model import retrying
from odoo.tests import BaseCase, new_test_user, tagged
from odoo.tests.common import get_db_name, warmup
from odoo.tools import mute_logger

from odoo.addons.bus.tests.common import WebsocketCase
from odoo.addons.bus.websocket import CloseCode, Websocket
from odoo.addons.iot_update.models.iot_box import BUS_CONTACT_THROTTLE_MINUTES, DEFAULT_OFFLINE_DELAY_HOURS

from .iot_common import IotCase, IotCaseMixin, box_payload

try:
    import websocket as websocket_client_lib
except ImportError:  # an optional test dependency, as in Odoo's own bus tests:
    websocket_client_lib = None  # without it these tests are skipped, saying so (BUS_NOT_RUN)

#: Start of the skip reason without websocket-client; ./dev counts these as not run.
BUS_NOT_RUN = "BUS TESTS NOT RUN"

MAC = "aa:bb:cc:dd:ee:01"
OTHER_MAC = "aa:bb:cc:dd:ee:02"
SERIAL = "SN-0001-19"
WAIT = 10  # seconds: an upper bound, never a measurement
GENUINE_CLIENT = "iot_update_tests_genuine_websocket_client"


# ----------------------------------------------------------------------
# The genuine 18.0 box's websocket client
# ----------------------------------------------------------------------


class StopBox(BaseException):
    """Raised in the box's thread to end its reconnection loop."""


def load_genuine_websocket_client(helpers, main):
    """``hw_drivers/websocket_client.py`` of the Odoo tree, loaded on its own.

    Importing the ``hw_drivers`` package would start the box's threads, so
    the two box modules the file imports, ``hw_drivers.main`` (the devices)
    and ``hw_drivers.tools.helpers`` (the box's MAC address and server URL),
    are given while it loads: ``main`` and ``helpers``. The file also turns
    on websocket-client's frame tracing for the whole process: turned off
    again once loaded.
    """
    path = Path(get_module_path("hw_drivers")) / "websocket_client.py"
    spec = importlib.util.spec_from_file_location(GENUINE_CLIENT, path)
    module = importlib.util.module_from_spec(spec)
    package = types.ModuleType("odoo.addons.hw_drivers")
    package.__path__ = []
    tools = types.ModuleType("odoo.addons.hw_drivers.tools")
    tools.__path__ = []
    package.main, package.tools, tools.helpers = main, tools, helpers
    box_modules = {
        "odoo.addons.hw_drivers": package,
        "odoo.addons.hw_drivers.main": main,
        "odoo.addons.hw_drivers.tools": tools,
        "odoo.addons.hw_drivers.tools.helpers": helpers,
    }
    try:
        with patch.dict(sys.modules, box_modules):
            spec.loader.exec_module(module)
    finally:
        websocket_client_lib.enableTrace(False)
    return module


class GenuineBox:
    """An 18.0 box's websocket side: the genuine ``WebsocketClient`` thread,
    whose ``run()`` loops for ever (``run_forever(reconnect=10)``, then sleeps
    10 s and starts again). ``stop()`` closes its websocket and ends the loop
    at its next sleep, so the thread ends."""

    def __init__(self, server_url, mac, channel):
        self.actions = []
        self.action_done = threading.Event()
        box = self

        class Device:
            def action(self, payload):
                box.actions.append(payload)
                box.action_done.set()

        self.main = types.SimpleNamespace(iot_devices={"usb_printer": Device()})
        self.helpers = types.SimpleNamespace(get_mac_address=lambda: mac, get_odoo_server_url=lambda: server_url)
        self.module = load_genuine_websocket_client(self.helpers, self.main)
        self.stopping = threading.Event()
        self.module.time = types.SimpleNamespace(perf_counter=time.perf_counter, sleep=self._sleep)
        self.client = self.module.WebsocketClient(server_url)
        self.client.iot_channel = channel
        self.client.daemon = True
        self.client.run = self._run

    def _run(self):
        # The stand-in sleep raises StopBox to end the box's reconnection loop.
        with contextlib.suppress(StopBox):
            self.module.WebsocketClient.run(self.client)

    def _sleep(self, seconds):
        if self.stopping.wait(seconds):
            raise StopBox()

    def start(self):
        self.client.start()

    def stop(self):
        """Close the box's websocket until its thread ends: a close that comes
        while ``run_forever`` is still connecting does not end it, so close
        again until the loop reaches its sleep."""
        self.stopping.set()
        deadline = time.monotonic() + 3 * WAIT
        while self.client.is_alive() and time.monotonic() < deadline:
            ws = getattr(self.client, "ws", None)
            if ws is not None:
                ws.close(status=CloseCode.CLEAN)
            self.client.join(0.5)
        return not self.client.is_alive()


# ----------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------


class BusCase(IotCaseMixin, WebsocketCase):
    @classmethod
    def setUpClass(cls):
        if websocket_client_lib is None:
            # WebsocketCase would skip with its own reason, which ./dev could not tell from any skip.
            raise unittest.SkipTest(f"{BUS_NOT_RUN}: the Python package websocket-client is missing")
        super().setUpClass()
        cls.setup_iot()

    def setUp(self):
        super().setUp()
        self.subscriptions = threading.Semaphore(0)
        original = Websocket._dispatch_bus_notifications
        subscriptions = self.subscriptions

        # Odoo dispatches pending notifications right after a subscription
        # was handled (and committed): its end is the subscription's end.
        def dispatched(websocket, *args):
            try:
                original(websocket, *args)
            finally:
                subscriptions.release()

        self.startPatcher(patch.object(Websocket, "_dispatch_bus_notifications", dispatched))

    def wait_for_subscription(self):
        self.assertTrue(self.subscriptions.acquire(timeout=WAIT), "no subscription handled in time")
        self.env.invalidate_all()

    def silent_box(self, identifier=MAC, hours=DEFAULT_OFFLINE_DELAY_HOURS + 2, **kwargs):
        """A box that checked in ``hours`` ago, never seen since: offline.
        Returns the box and the channel its check-in answered."""
        channel = self.check_in(identifier=identifier, **kwargs)
        box = self.box(identifier)
        box.last_contact = fields.Datetime.now() - timedelta(hours=hours)
        box._refresh_update_status()
        self.assertEqual(box.update_status, "offline")
        return box, channel

    def connect_as_box(self, cookie=""):
        """A websocket opened as a box opens it: no cookie unless given."""
        self.env.flush_all()
        return self.websocket_connect(cookie=cookie, header={"User-Agent": "OdooIoTBox/1.0"})

    def box_subscribes(self, data, ws=None):
        """Send ``{"event_name": "subscribe", "data": data}`` on a box's
        websocket; return once Odoo has handled it."""
        ws = ws or self.connect_as_box()
        ws.send(json.dumps({"event_name": "subscribe", "data": data}))
        self.wait_for_subscription()
        return ws

    def events(self, box, kind="back_online"):
        return self.env["iot.box.event"].search([("box_id", "=", box.id), ("kind", "=", kind)])


class TestGenuineBoxOnTheBus(BusCase):
    def run_genuine_box(self, channel, mac=MAC):
        box = GenuineBox(self.base_url(), mac, channel)
        self.env.flush_all()
        box.start()
        self.addCleanup(box.stop)
        self.wait_for_subscription()
        return box

    def test_genuine_18_box_comes_back_online(self):
        box, __ = self.silent_box()
        # The channel as the box gets it: the answer to its check-in over HTTP.
        response = self.url_open(
            "/iot/setup",
            data=json.dumps(box_payload(self.token)),
            headers={"Content-Type": "application/json"},
        )
        channel = response.json()["result"]
        self.assertTrue(channel)
        box.last_contact = fields.Datetime.now() - timedelta(hours=DEFAULT_OFFLINE_DELAY_HOURS + 2)
        box._refresh_update_status()
        self.assertTrue(box.is_offline)
        events_before = self.events(box)

        genuine = self.run_genuine_box(channel)
        self.assertFalse(box.is_offline)
        self.assertNotEqual(box.update_status, "offline")
        self.assertAlmostEqual(box.last_seen_bus, fields.Datetime.now(), delta=timedelta(minutes=1))
        self.assertEqual(box.last_seen, box.last_seen_bus)
        self.assertEqual(len(self.events(box) - events_before), 1)
        # Where the box's websocket came from: the address its log is accepted from.
        self.assertEqual(box.bus_remote_addr, "127.0.0.1")
        self.assertTrue(genuine.stop(), "the box's thread did not end")

    def test_genuine_18_box_receives_its_orders(self):
        box, channel = self.silent_box()
        genuine = self.run_genuine_box(channel)
        self.assertFalse(box.is_offline)
        payload = {
            "iotDevice": {"iotIdentifiers": [MAC], "identifiers": [{"identifier": "usb_printer"}]},
            "print_id": 42,
        }
        self.env["bus.bus"]._sendone(channel, "iot_action", payload)
        self.trigger_notification_dispatching([channel])
        self.assertTrue(genuine.action_done.wait(WAIT), "the box did not get its order")
        self.assertEqual(genuine.actions, [payload])
        self.assertTrue(genuine.stop())

    def test_genuine_box_with_another_box_channel_changes_nothing(self):
        box, __ = self.silent_box()
        other, other_channel = self.silent_box(OTHER_MAC)
        genuine = self.run_genuine_box(other_channel, mac=MAC)
        self.assertTrue(box.is_offline)
        self.assertTrue(other.is_offline)
        self.assertFalse(box.last_seen_bus or other.last_seen_bus)
        self.assertTrue(genuine.stop())


class Test19Subscription(BusCase):
    def test_19_box_comes_back_online(self):
        box, channel = self.silent_box(SERIAL, mac=MAC, version="L25.07-19.0#1a2b3c4")
        self.env.flush_all()
        # The 19 box first asks a session of the database it is paired with.
        login = requests.get(f"{self.base_url()}/web/login?db={self.env.cr.dbname}", timeout=WAIT)
        session_id = login.cookies.get("session_id") or next(
            (r.cookies["session_id"] for r in login.history if "session_id" in r.cookies), None
        )
        self.assertTrue(session_id)
        ws = self.connect_as_box(cookie=f"session_id={session_id}")
        self.box_subscribes({"channels": [channel], "last": 0, "identifier": SERIAL}, ws)
        self.assertFalse(box.is_offline)
        self.assertTrue(box.last_seen_bus)
        self.assertEqual(len(self.events(box)), 1)
        # Another 19 box's own MAC address, with its own channel, proves nothing:
        # the channel is the one of its identifier.
        mac_box, mac_channel = self.silent_box("SN-5678", mac=OTHER_MAC, version="L25.07-19.0#1a2b3c4")
        self.assertEqual(mac_box.mac, OTHER_MAC)
        self.box_subscribes({"channels": [mac_channel], "last": 0, "mac_address": OTHER_MAC})
        self.assertTrue(mac_box.is_offline)
        self.assertFalse(mac_box.last_seen_bus)
        self.assertFalse(self.events(mac_box))


class TestForgedSubscriptions(BusCase):
    def test_forged_subscriptions_change_nothing(self):
        box, channel = self.silent_box()
        other, other_channel = self.silent_box(OTHER_MAC)
        forged = {
            "wrong channel": {"channels": ["iot_box-" + "0" * 64], "last": 0, "mac_address": MAC},
            "another box's channel": {"channels": [other_channel], "last": 0, "mac_address": MAC},
            "a MAC without the channel": {"channels": [], "last": 0, "mac_address": MAC},
            "the channel without identity": {"channels": [channel], "last": 0},
            "the channel, another identity": {"channels": [channel], "last": 0, "identifier": OTHER_MAC},
            "identity of the wrong type": {"channels": [channel], "last": 0, "mac_address": [MAC]},
        }
        for name, data in forged.items():
            with self.subTest(name):
                self.box_subscribes(data)
                self.assertFalse(box.last_seen_bus or other.last_seen_bus)
                self.assertTrue(box.is_offline and other.is_offline)
        self.assertFalse(self.events(box) | self.events(other))

    def test_archived_box_stays_silent(self):
        box, channel = self.silent_box()
        box.active = False
        self.box_subscribes({"channels": [channel], "last": 0, "mac_address": MAC})
        self.assertFalse(box.last_seen_bus)

    def test_refused_check_in_answers_no_channel(self):
        with mute_logger("odoo.addons.iot_update.models.iot_box_checkin"):
            self.assertEqual(self.check_in(token="wrong"), "")


class TestWebClientSubscriptions(BusCase):
    def test_web_client_still_gets_its_notifications(self):
        user = new_test_user(self.env, "iot_bus_web_client", groups="base.group_user")
        session = self.authenticate(user.login, user.login)
        ws = self.websocket_connect(cookie=f"session_id={session.sid}")
        ws.send(json.dumps({"event_name": "subscribe", "data": {"channels": [], "last": 0}}))
        self.wait_for_subscription()
        self.env["bus.bus"]._sendone(user.partner_id, "iot_update_test", {"hello": "web client"})
        self.trigger_notification_dispatching([user.partner_id])
        notifications = json.loads(ws.recv())
        self.assertEqual(
            [(n["message"]["type"], n["message"]["payload"]) for n in notifications],
            [("iot_update_test", {"hello": "web client"})],
        )

    def test_box_channel_is_a_plain_bus_channel(self):
        """What Odoo sends to a box's channel reaches the websocket subscribed to it."""
        __, channel = self.silent_box()
        ws = self.box_subscribes({"channels": [channel], "last": 0, "mac_address": MAC})
        self.env["bus.bus"]._sendone(channel, "iot_action", {"iotDevice": {"iotIdentifiers": [MAC]}})
        self.trigger_notification_dispatching([channel])
        notifications = json.loads(ws.recv())
        self.assertEqual([n["message"]["type"] for n in notifications], ["iot_action"])

    def test_junk_subscription_data_raises_nothing(self):
        box, channel = self.silent_box()
        junk = [
            {"channels": [channel, "x" * 100_000], "last": 0, "mac_address": "y" * 100_000},
            {"channels": [channel], "last": 0, "mac_address": {"nested": MAC}, "identifier": 7},
            {"channels": ["iot_box-" + "\u00e9" * 64], "last": 0, "mac_address": MAC},
        ]
        ws = self.connect_as_box()
        for data in junk:
            with self.subTest(data=str(data)[:60]):
                self.box_subscribes(data, ws)
                self.assertTrue(ws.connected)
                self.assertTrue(box.is_offline, "junk proves nothing")
                self.assertFalse(box.last_seen_bus)
        # The same socket still serves: the box's genuine subscription is handled.
        self.box_subscribes({"channels": [channel], "last": 0, "mac_address": MAC}, ws)
        self.assertFalse(box.is_offline)
        self.assertTrue(box.last_seen_bus)


class TestThrottleAndEvents(BusCase):
    def test_one_write_per_box_within_the_throttle(self):
        """Within the throttle, the subscriptions on one connection write
        nothing; a new connection is always written (its key, issue 17)."""
        box, channel = self.silent_box()
        data = {"channels": [channel], "last": 0, "mac_address": MAC}
        ws = self.box_subscribes(data)
        first = box.last_seen_bus
        self.assertTrue(first)
        recent = first - timedelta(minutes=BUS_CONTACT_THROTTLE_MINUTES - 1)
        box.last_seen_bus = recent
        box.flush_recordset()
        self.box_subscribes(data, ws)
        self.assertEqual(box.last_seen_bus, recent, "a subscription within the throttle wrote")
        box.last_seen_bus = first - timedelta(minutes=BUS_CONTACT_THROTTLE_MINUTES + 1)
        box.flush_recordset()
        self.box_subscribes(data, ws)
        self.assertGreaterEqual(box.last_seen_bus, first)
        box.last_seen_bus = recent
        box.flush_recordset()
        self.box_subscribes(data)
        self.assertGreaterEqual(box.last_seen_bus, first, "a new connection within the throttle was not recorded")

    def test_back_online_event_once(self):
        box, channel = self.silent_box()
        data = {"channels": [channel], "last": 0, "mac_address": MAC}
        self.box_subscribes(data)
        self.assertEqual(len(self.events(box)), 1)
        self.assertEqual(self.events(box).detail, "seen on the bus")
        # Seen again past the throttle while online: no event.
        box.last_seen_bus = fields.Datetime.now() - timedelta(minutes=BUS_CONTACT_THROTTLE_MINUTES + 1)
        box.flush_recordset()
        self.box_subscribes(data)
        self.assertEqual(len(self.events(box)), 1)
        self.assertFalse(self.events(box, "checkin"))


class TestSubscriptionQueries(BusCase):
    @warmup
    def test_box_subscription_costs_one_query_more_than_a_web_client(self):
        """Over the websocket: a box's subscription (throttled, the common case
        at fleet scale) costs what a public web client's costs, plus the
        indexed UPDATE that finds nothing to write."""
        __, channel = self.silent_box()
        ws = self.connect_as_box()
        self.box_subscribes({"channels": [channel], "last": 0, "mac_address": MAC}, ws)

        def count(data):
            self.env.flush_all()
            before = self.cr.sql_log_count
            self.box_subscribes(data, ws)
            return self.cr.sql_log_count - before

        web_client = count({"channels": [], "last": 0})
        box = count({"channels": [channel], "last": 0, "mac_address": MAC})
        forged = count({"channels": ["iot_box-" + "0" * 64], "last": 0, "mac_address": MAC})
        if self.warm:
            self.assertEqual(box, web_client + 1)
            self.assertEqual(forged, web_client)


# ----------------------------------------------------------------------
# The service, without a websocket
# ----------------------------------------------------------------------


class TestBusContact(IotCase):
    def subscribe(self, data):
        return self.Box._on_bus_subscription(data, "10.0.0.9")

    def test_channel_is_stable_per_box_and_secret(self):
        channel = self.check_in()
        self.assertEqual(self.check_in(version="L25.07-18.0#0000001"), channel)
        other = self.check_in(identifier=OTHER_MAC)
        self.assertNotEqual(other, channel)
        self.assertRegex(channel, r"^iot_box-[0-9a-f]{64}$")
        self.env["ir.config_parameter"].sudo().set_param("database.secret", "another secret")
        self.assertNotEqual(self.box()._get_channel(), channel)

    def test_channel_readable_by_system_administrators_only(self):
        self.check_in()
        box = self.box()
        iot_admin = new_test_user(self.env, "iot_bus_admin", groups="base.group_user,iot_update.group_iot_admin")
        with self.assertRaises(AccessError):
            box.with_user(iot_admin).read(["bus_channel"])
        self.assertEqual(box.with_user(self.env.ref("base.user_admin")).bus_channel, box._get_channel())

    def test_views_show_both_contacts(self):
        views = self.Box.get_views([(False, "form"), (False, "kanban"), (False, "list")])["views"]
        fields_of = {
            view_type: {node.get("name") for node in etree.fromstring(views[view_type]["arch"]).iter("field")}
            for view_type in ("form", "kanban", "list")
        }
        self.assertLessEqual({"last_contact", "last_seen_bus"}, fields_of["form"])
        self.assertIn("last_seen", fields_of["kanban"])
        self.assertLessEqual({"last_seen", "last_contact", "last_seen_bus"}, fields_of["list"])
        events = self.env["iot.box.event"].get_views([(False, "search")])["views"]["search"]["arch"]
        self.assertIn("back_online", events)

    def test_offline_rule_takes_the_later_contact(self):
        with freeze_time("2026-01-01 10:00:00"):
            channel = self.check_in()
        box = self.box()
        data = {"channels": [channel], "last": 0, "mac_address": MAC}
        with freeze_time("2026-01-01 12:00:00"):
            self.subscribe(data)
        self.assertEqual(box.last_contact, fields.Datetime.to_datetime("2026-01-01 10:00:00"))
        self.assertEqual(box.last_seen, fields.Datetime.to_datetime("2026-01-01 12:00:00"))
        # 4.5 h after the check-in, 2.5 h after the bus: online.
        with freeze_time("2026-01-01 14:30:00"):
            self.Box._cron_refresh_update_status()
            self.assertFalse(box.is_offline)
        # 3 h after both: offline, and the card says so.
        with freeze_time("2026-01-01 15:01:00"):
            self.Box._cron_refresh_update_status()
            self.assertTrue(box.is_offline)
            self.assertIn("not seen on the bus", box.update_advice)
        # A check-in later than the bus counts the same.
        with freeze_time("2026-01-01 15:30:00"):
            self.check_in()
            self.assertFalse(box.is_offline)
            self.assertEqual(box.last_seen, box.last_contact)
        with freeze_time("2026-01-01 18:00:00"):
            self.Box._cron_refresh_update_status()
            self.assertFalse(box.is_offline)

    def test_default_delay_never_flags_a_connected_box(self):
        """A box that is on re-subscribes within ~1.5 h (Odoo closes its
        websocket after 1 h plus up to 50 %): never offline, however long it
        stays idle; off, it is offline within the delay."""
        with freeze_time("2026-01-01 10:00:00"):
            channel = self.check_in()
        box = self.box()
        data = {"channels": [channel], "last": 0, "mac_address": MAC}
        now = fields.Datetime.to_datetime("2026-01-01 10:00:00")
        for __ in range(48):  # three days of reconnections every 1.5 h
            now += timedelta(minutes=90)
            with freeze_time(now):
                self.subscribe(data)
                self.Box._cron_refresh_update_status()
                self.assertFalse(box.is_offline)
        with freeze_time(now + timedelta(hours=DEFAULT_OFFLINE_DELAY_HOURS, minutes=1)):
            self.Box._cron_refresh_update_status()
            self.assertTrue(box.is_offline)

    def test_junk_never_raises(self):
        channel = self.check_in()
        junk = [
            None,
            "subscribe",
            42,
            [channel, MAC],
            {},
            {"channels": channel, "mac_address": MAC},
            {"channels": {channel: 1}, "mac_address": MAC},
            {"channels": [None, 1, [channel], {"c": channel}], "mac_address": MAC},
            {"channels": [channel], "mac_address": None},
            {"channels": [channel], "mac_address": MAC * 10_000},
            {"channels": [channel], "identifier": ["x"], "mac_address": 1.5},
            {"channels": ["iot_box-\ud800" + "0" * 63], "mac_address": MAC},
            {"channels": ["iot_box-" + "é" * 64], "mac_address": MAC},
        ]
        for data in junk:
            with self.subTest(data=repr(data)[:60]), self.assertQueryCount(0):
                self.assertFalse(self.subscribe(data))
        self.assertFalse(self.box().last_seen_bus)

    @warmup
    def test_query_budget(self):
        channel = self.check_in()
        box = self.box()
        self.env.flush_all()
        cases = [
            ("web client", {"channels": ["odoo-presence-res.partner_3"], "last": 0}, 0),
            ("forged channel", {"channels": ["iot_box-" + "0" * 64], "last": 0, "mac_address": MAC}, 0),
            # The UPDATE by identifier, which writes (the box is online).
            ("box, written", {"channels": [channel], "last": 0, "mac_address": MAC}, 1),
            # The same UPDATE, which finds the box seen a moment ago.
            ("box, throttled", {"channels": [channel], "last": 0, "mac_address": MAC}, 1),
        ]
        box.last_seen_bus = False
        box.flush_recordset()
        for name, data, budget in cases:
            with self.subTest(name), self.assertQueryCount(budget):
                self.subscribe(data)
        self.assertTrue(box.last_seen_bus)

    def test_back_online_budget_does_not_grow_with_the_fleet(self):
        """A box coming back from offline: its statuses and one event, with
        queries that do not depend on the fleet's size."""

        def back_online_queries(identifier, fleet):
            if fleet:
                self.Box.create(
                    [
                        {"name": f"other-{identifier}-{i}", "identifier": f"{identifier}-{i}", "version": "L24.11"}
                        for i in range(fleet)
                    ]
                )
            channel = self.check_in(identifier=identifier)
            box = self.box(identifier)
            box.last_contact = fields.Datetime.now() - timedelta(hours=DEFAULT_OFFLINE_DELAY_HOURS + 1)
            box._refresh_update_status()
            self.assertTrue(box.is_offline)
            self.env.flush_all()
            before = self.cr.sql_log_count
            self.subscribe({"channels": [channel], "last": 0, "identifier": identifier})
            self.env.flush_all()
            self.assertFalse(box.is_offline)
            return self.cr.sql_log_count - before

        back_online_queries("warm-up", 0)
        small = back_online_queries("aa:00:00:00:00:01", 0)
        large = back_online_queries("aa:00:00:00:00:02", 300)
        self.assertEqual(small, large)
        self.assertLessEqual(small, 12)

    def test_throttle_at_the_model(self):
        with freeze_time("2026-01-01 10:00:00"):
            channel = self.check_in()
            box = self.box()
            data = {"channels": [channel], "last": 0, "mac_address": MAC}
            self.assertEqual(self.subscribe(data), box)
        with freeze_time(f"2026-01-01 10:{BUS_CONTACT_THROTTLE_MINUTES - 1:02d}:00"):
            self.assertFalse(self.subscribe(data))
            self.assertEqual(box.last_seen_bus, fields.Datetime.to_datetime("2026-01-01 10:00:00"))
        with freeze_time(f"2026-01-01 10:{BUS_CONTACT_THROTTLE_MINUTES + 1:02d}:00"):
            self.assertEqual(self.subscribe(data), box)
            self.assertEqual(box.last_seen_bus.minute, BUS_CONTACT_THROTTLE_MINUTES + 1)

    def test_a_new_address_is_recorded_within_the_throttle(self):
        with freeze_time("2026-01-01 10:00:00"):
            channel = self.check_in()
            box = self.box()
            data = {"channels": [channel], "last": 0, "mac_address": MAC}
            self.assertEqual(self.subscribe(data), box)
            self.assertEqual(box.bus_remote_addr, "10.0.0.9")
        with freeze_time("2026-01-01 10:01:00"):
            # The same address within the throttle: nothing written.
            self.assertFalse(self.subscribe(data))
            # Another address (the box moved, or its router got a new one): recorded at once.
            self.assertEqual(self.env["iot.box"]._record_bus_contact(MAC, "10.0.0.10"), box)
            self.assertEqual(box.bus_remote_addr, "10.0.0.10")
            self.assertEqual(box.last_seen_bus, fields.Datetime.to_datetime("2026-01-01 10:01:00"))

    def test_back_online_logged(self):
        channel = self.check_in()
        box = self.box()
        box.last_contact = fields.Datetime.now() - timedelta(days=2)
        box._refresh_update_status()
        with self.assertLogs("odoo.addons.iot_update.models.iot_box_checkin", logging.INFO) as logs:
            self.subscribe({"channels": [channel], "last": 0, "mac_address": MAC})
        self.assertIn("back online", logs.output[0])
        event = self.env["iot.box.event"].search([("box_id", "=", box.id), ("kind", "=", "back_online")])
        self.assertEqual((event.remote_addr, event.identifier), ("10.0.0.9", MAC))


class TestOfflineDelayUpgrade(IotCase):
    """Upgrading from 18.0.1.0.0: the old default delay moves to the new one."""

    def migrate(self):
        path = Path(get_module_path("iot_update")) / "migrations" / "18.0.1.1.0" / "post-migration.py"
        spec = importlib.util.spec_from_file_location("iot_update_tests_migration_18_0_1_1_0", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.migrate(self.env.cr, "18.0.1.0.0")
        self.env.invalidate_all()

    def test_old_default_moves_to_the_new_one(self):
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("iot_update.offline_delay_hours", "24")
        self.check_in()
        box = self.box()
        box.last_contact = fields.Datetime.now() - timedelta(hours=5)
        box._refresh_update_status()
        self.assertFalse(box.is_offline)
        self.migrate()
        self.assertEqual(params.get_param("iot_update.offline_delay_hours"), str(DEFAULT_OFFLINE_DELAY_HOURS))
        self.assertTrue(box.is_offline)

    def test_a_chosen_delay_is_kept(self):
        params = self.env["ir.config_parameter"].sudo()
        for value in ("12", "48", "3"):
            with self.subTest(value=value):
                params.set_param("iot_update.offline_delay_hours", value)
                self.migrate()
                self.assertEqual(params.get_param("iot_update.offline_delay_hours"), value)


@tagged("post_install", "-at_install")
class TestConcurrentContact(BaseCase):
    """Two real transactions, committed, as on a busy server: the subscription's
    transaction began, then another one changed the same box and committed.
    (The only test here that commits: it creates its own box and deletes it.)"""

    IDENTIFIER = "iot-update-test-concurrent-01"

    def setUp(self):
        super().setUp()
        self.registry = Registry(get_db_name())
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["iot.box"].create(
                {
                    "name": "concurrent",
                    "identifier": self.IDENTIFIER,
                    "version": "L24.11-18.0#1a2b3c4",
                    "last_contact": fields.Datetime.now() - timedelta(hours=DEFAULT_OFFLINE_DELAY_HOURS + 2),
                }
            )
        self.addCleanup(self.delete_box)

    def delete_box(self):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM iot_box WHERE identifier = %s", [self.IDENTIFIER])

    def test_concurrent_change_is_retried_without_error_logs(self):
        attempts = []
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            cr.execute("SELECT 1")  # the subscription's snapshot is taken
            with self.registry.cursor() as other:  # commits on leaving
                other.execute("UPDATE iot_box SET name = 'renamed' WHERE identifier = %s", [self.IDENTIFIER])

            def subscribe():
                attempts.append(1)
                return env["iot.box"]._record_bus_contact(self.IDENTIFIER, "10.0.0.9")

            # What the websocket does with each message: Odoo's retry loop,
            # which logs the retry at INFO. Nothing logs an error (the test
            # fails on any warning or error logged).
            box = retrying(subscribe, env)
            self.assertEqual(len(attempts), 2, "the first attempt should have met the concurrent change")
            self.assertEqual((box.name, box.is_offline), ("renamed", False))
            self.assertTrue(box.last_seen_bus)
