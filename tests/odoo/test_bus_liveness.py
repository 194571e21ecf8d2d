# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Liveness over the bus websocket (SPEC 3.4): a box's subscription to its own
channel is its heartbeat.

Odoo's threaded test server serves ``/websocket`` itself; the websocket's
cursors go through the test's cursor, as for HTTP requests. Odoo's own
``WebsocketCase`` (bus tests) opens and closes the connections.
"""

import json
from datetime import timedelta
from threading import Event
from unittest.mock import patch

from odoo import fields

from odoo.addons.bus.tests.common import WebsocketCase
from odoo.addons.bus.websocket import Websocket

from iot_common import IotCaseMixin

MAC = "aa:bb:cc:dd:ee:01"
VERSION = "L24.11-18.0#1a2b3c4"


class BusCase(IotCaseMixin, WebsocketCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_iot()

    def silent_box(self, identifier=MAC, hours=5, **kwargs):
        """A box checked in ``hours`` ago and never seen since: offline."""
        channel = self.check_in(identifier=identifier, **kwargs)
        box = self.box(identifier)
        box.last_contact = fields.Datetime.now() - timedelta(hours=hours)
        box._refresh_update_status()
        self.assertEqual(box.update_status, "offline")
        return box, channel

    def box_subscribes(self, data, cookie=""):
        """Open a websocket as a box does (no cookie unless given) and send
        ``{"event_name": "subscribe", "data": data}``; wait until Odoo has
        handled it."""
        self.env.flush_all()
        ws = self.websocket_connect(cookie=cookie, header={"User-Agent": "OdooIoTBox/1.0"})
        self.subscribe_raw(ws, data)
        self.env.invalidate_all()
        return ws

    def subscribe_raw(self, ws, data):
        """``WebsocketCase.subscribe`` with the data as given (a box's keys)."""
        done = Event()
        original = Websocket._dispatch_bus_notifications

        def dispatched(websocket, *args):
            original(websocket, *args)
            done.set()

        with patch.object(Websocket, "_dispatch_bus_notifications", dispatched):
            ws.send(json.dumps({"event_name": "subscribe", "data": data}))
            self.assertTrue(done.wait(timeout=10), "the subscription was not handled")


class TestBoxChannel(BusCase):
    def test_18_box_subscription_brings_it_back_online(self):
        box, channel = self.silent_box()
        self.assertTrue(channel.startswith("iot_box-"))
        self.box_subscribes({"channels": [channel], "last": 0, "mac_address": MAC})
        self.assertFalse(box.is_offline)
        self.assertNotEqual(box.update_status, "offline")
        self.assertTrue(box.last_seen_bus)
        events = self.env["iot.box.event"].search([("box_id", "=", box.id), ("kind", "=", "back_online")])
        self.assertEqual(len(events), 1)

    def test_forged_subscriptions_change_nothing(self):
        box, channel = self.silent_box()
        other, other_channel = self.silent_box("aa:bb:cc:dd:ee:02")
        forged = {
            "wrong channel": {"channels": ["iot_box-" + "0" * 64], "last": 0, "mac_address": MAC},
            "another box's channel": {"channels": [other_channel], "last": 0, "mac_address": MAC},
            "no channel": {"channels": [], "last": 0, "mac_address": MAC},
            "no identity": {"channels": [channel], "last": 0},
        }
        for name, data in forged.items():
            with self.subTest(name):
                self.box_subscribes(data)
                self.assertFalse(box.last_seen_bus)
                self.assertTrue(box.is_offline)
                self.assertFalse(other.last_seen_bus)
