# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The end of a box's bus connection (issue 17): recorded by the bus's close
callback, Offline once the grace ended, one event per transition, nothing for
a server stop or a box that reconnected, one dashboard notification per
transaction."""

import importlib.util
import json
import socket
import threading
from datetime import timedelta
from pathlib import Path
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.modules.module import get_module_path

from odoo.addons.bus.websocket import LifecycleEvent, TimeoutManager, Websocket
from odoo.addons.iot_update.models import iot_box_liveness
from odoo.addons.iot_update.models.iot_box_liveness import BOXES_CHANGED, DEFAULT_GRACE_MINUTES, GRACE_PARAM

from .iot_common import IotCase
from .test_bus_liveness import MAC, OTHER_MAC, WAIT, BusCase

try:
    import websocket as websocket_client_lib
except ImportError:  # WebsocketCase skips the websocket tests without it
    websocket_client_lib = None


class Relay:
    """A TCP relay between a box and the test server that can be "unplugged":
    it stops forwarding without closing anything, as a cable pulled out or a
    box switched off (no close frame, no FIN)."""

    def __init__(self, port):
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        with self.listener:
            client, __ = self.listener.accept()
        server = socket.create_connection(self.target)
        self.sockets += [client, server]
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source, sink):
        try:
            while data := source.recv(65536):
                if not self.forwarding.is_set():
                    return  # unplugged: nothing goes through any more, nothing is closed
                sink.sendall(data)
        except OSError:
            return

    def unplug(self):
        self.forwarding.clear()

    def close(self):
        for sock in self.sockets:
            sock.close()


class DisconnectionCase(BusCase):
    def setUp(self):
        super().setUp()
        self.closed = threading.Semaphore(0)
        closed = self.closed
        IrWebsocket = type(self.env["ir.websocket"])
        original = IrWebsocket._on_websocket_closed

        # The last thing the bus does when a websocket ends, after the close
        # callbacks, in its last cursor.
        def on_websocket_closed(websocket_model, cookies):
            try:
                return original(websocket_model, cookies)
            finally:
                closed.release()

        self.startPatcher(patch.object(IrWebsocket, "_on_websocket_closed", on_websocket_closed))

    def wait_for_close(self):
        """Return once a websocket's end was handled, its cursors closed."""
        self.assertTrue(self.closed.acquire(timeout=3 * WAIT), "no websocket closed in time")
        # The test cursors of the server's threads hold this lock while open.
        with self.registry.test_lock:
            self.env.invalidate_all()

    def online_box(self, identifier=MAC):
        box, channel = self.silent_box(identifier=identifier)
        data = {"channels": [channel], "last": 0, "mac_address": identifier}
        ws = self.box_subscribes(data)
        self.assertEqual(box.bus_state, "connected")
        self.assertFalse(box.is_offline)
        return box, data, ws

    def past_grace(self, minutes=DEFAULT_GRACE_MINUTES + 1):
        return freeze_time(fields.Datetime.now() + timedelta(minutes=minutes))


class TestDisconnectionOverTheBus(DisconnectionCase):
    def test_closed_box_goes_offline_after_the_grace_once(self):
        box, data, ws = self.online_box()
        ws.close()
        self.wait_for_close()
        self.assertTrue(box.disconnected_since)
        self.assertEqual(box.bus_state, "disconnected")
        # Within the grace: still online.
        self.Box._cron_refresh_update_status()
        self.assertFalse(box.is_offline)
        with self.past_grace():
            self.Box._cron_refresh_update_status()
            self.Box._cron_refresh_update_status()
        self.assertTrue(box.is_offline)
        self.assertEqual(box.update_status, "offline")
        went = self.events(box, "went_offline")
        self.assertEqual(len(went), 1, "one event per transition")
        self.assertIn("last seen", went.detail)
        self.box_subscribes(data)
        self.assertFalse(box.is_offline)
        self.assertFalse(box.disconnected_since)
        self.assertEqual(len(self.events(box, "back_online")), 2)  # the first subscription of online_box, and this

    def test_silent_connection_is_dropped_and_recorded(self):
        """No close frame, no FIN: the bus's ping gets no pong and the
        connection is dropped (timers shortened from 45 s and 15 s)."""
        box, channel = self.silent_box()
        self.startPatcher(patch.object(Websocket, "INACTIVITY_TIMEOUT", 0.5))
        self.startPatcher(patch.object(TimeoutManager, "TIMEOUT", 0.5))
        relay = Relay(self.http_port())
        self.addCleanup(relay.close)
        self.env.flush_all()
        ws = websocket_client_lib.create_connection(
            self._WEBSOCKET_URL.replace(f":{self.http_port()}/", f":{relay.port}/"),
            header={"User-Agent": "OdooIoTBox/1.0"},
        )
        self.addCleanup(ws.close)
        ws.send(json.dumps({"event_name": "subscribe", "data": {"channels": [channel], "last": 0, "mac_address": MAC}}))
        self.wait_for_subscription()
        self.assertEqual(box.bus_state, "connected")
        relay.unplug()
        self.wait_for_close()
        self.assertTrue(box.disconnected_since, "the silent connection's end was not recorded")
        with self.past_grace():
            self.Box._cron_refresh_update_status()
        self.assertTrue(box.is_offline)
        self.assertEqual(len(self.events(box, "went_offline")), 1)

    def test_reconnection_within_the_grace_is_no_outage(self):
        """Keep-alive recycling: the connection closes, the box opens another."""
        box, data, ws = self.online_box()
        ws.close()
        self.wait_for_close()
        self.assertTrue(box.disconnected_since)
        with self.past_grace(minutes=1):
            self.box_subscribes(data)
        self.assertFalse(box.disconnected_since)
        with self.past_grace(minutes=60):
            self.Box._cron_refresh_update_status()
        self.assertFalse(box.is_offline)
        self.assertFalse(self.events(box, "went_offline"))
        self.assertEqual(len(self.events(box, "back_online")), 1)

    def test_close_of_an_old_connection_writes_nothing(self):
        box, data, old = self.online_box()
        self.box_subscribes(data)  # a second connection of the same box
        key = self.env["iot.box"].sudo().browse(box.id).bus_connection
        old.close()
        self.wait_for_close()
        self.assertFalse(box.disconnected_since, "the old connection's close was recorded")
        self.assertEqual(box.bus_connection, key)

    def test_close_while_the_server_stops_writes_nothing(self):
        box, data, ws = self.online_box()
        self.startPatcher(patch.dict(Websocket._Websocket__event_callbacks))
        self.startPatcher(patch.object(iot_box_liveness, "server_stopping", False))
        iot_box_liveness.mark_server_stopping()
        self.assertTrue(iot_box_liveness.server_stopping)
        self.assertNotIn(
            iot_box_liveness._on_box_websocket_close,
            Websocket._Websocket__event_callbacks[LifecycleEvent.CLOSE],
            "closes at stop still cost a cursor",
        )
        ws.close()
        self.wait_for_close()
        self.assertFalse(box.disconnected_since)
        with self.past_grace(minutes=60):
            self.Box._cron_refresh_update_status()
        self.assertFalse(box.is_offline)
        self.assertFalse(self.events(box, "went_offline"))

    def test_stop_flag_is_the_first_stop_function(self):
        from odoo.service.server import CommonServer

        self.assertIs(CommonServer._on_stop_funcs[0], iot_box_liveness.mark_server_stopping)


class TestLivenessModel(IotCase):
    def disconnected_box(self, identifier, minutes_ago, key="k"):
        self.check_in(identifier=identifier)
        box = self.box(identifier)
        box.last_contact = fields.Datetime.now() - timedelta(hours=1)
        box.flush_recordset()
        box._refresh_update_status()
        self.env.cr.execute(
            "UPDATE iot_box SET bus_connection = %s, disconnected_since = %s WHERE id = %s",
            [key, fields.Datetime.now() - timedelta(minutes=minutes_ago), box.id],
        )
        box.invalidate_recordset()
        return box

    def test_grace_setting(self):
        box = self.disconnected_box(MAC, 7)
        self.env["ir.config_parameter"].sudo().set_param(GRACE_PARAM, "10")
        self.Box._cron_refresh_update_status()
        self.assertFalse(box.is_offline)
        self.env["ir.config_parameter"].sudo().set_param(GRACE_PARAM, "5")
        self.Box._cron_refresh_update_status()
        self.assertTrue(box.is_offline)

    def test_check_in_after_the_disconnection_keeps_online(self):
        box = self.disconnected_box(MAC, 30)
        self.check_in(identifier=MAC)
        self.Box._cron_refresh_update_status()
        self.assertFalse(box.is_offline)

    def test_offline_box_checking_in_is_back_online_once(self):
        box = self.disconnected_box(MAC, 30)
        self.Box._cron_refresh_update_status()
        self.assertTrue(box.is_offline)
        self.check_in(identifier=MAC)
        self.assertFalse(box.is_offline)
        back = box.event_ids.filtered(lambda event: event.kind == "back_online")
        self.assertEqual((len(back), back.detail, back.remote_addr), (1, "checked in", "127.0.0.1"))
        # A box that is on checking in again: no event.
        self.check_in(identifier=MAC)
        self.assertEqual(len(box.event_ids.filtered(lambda event: event.kind == "back_online")), 1)

    def test_disconnection_of_the_key_only(self):
        box = self.disconnected_box(MAC, 30, key="a")
        self.env.cr.execute("UPDATE iot_box SET disconnected_since = NULL WHERE id = %s", [box.id])
        self.assertEqual(self.Box._record_bus_disconnection(MAC, "b"), 0)
        self.assertEqual(self.Box._record_bus_disconnection(MAC, "a"), 1)
        self.assertEqual(self.Box._record_bus_disconnection(MAC, "a"), 0, "a second close moved the date")

    def test_bus_state(self):
        self.check_in(identifier=MAC)
        self.assertEqual(self.box(MAC).bus_state, "never")
        box = self.disconnected_box(OTHER_MAC, 1)
        self.assertEqual(box.bus_state, "disconnected")

    def test_cron_reads_only_the_grace_ended_boxes(self):
        ended = self.disconnected_box(MAC, 30)
        recent = self.disconnected_box(OTHER_MAC, 1)
        refreshed = []
        original = type(self.Box)._refresh_update_status

        def spy(boxes):
            if boxes:  # the 3-hour backstop's search may find none
                refreshed.append(set(boxes.ids))
            return original(boxes)

        with patch.object(type(self.Box), "_refresh_update_status", spy):
            self.Box._cron_refresh_update_status()
        self.assertEqual(refreshed, [{ended.id}])
        self.assertTrue(ended.is_offline)
        self.assertFalse(recent.is_offline)
        with patch.object(type(self.Box), "_refresh_update_status", spy):
            self.Box._cron_refresh_update_status()
        self.assertEqual(refreshed, [{ended.id}], "an offline box was refreshed again")
        self.assertEqual(len(self.env["iot.box.event"].search([("kind", "=", "went_offline")])), 1)

    def test_one_notification_per_transaction(self):
        boxes = self.Box.browse()
        for index in range(30):
            boxes |= self.disconnected_box(f"aa:bb:cc:dd:{index // 256:02x}:{index % 256:02x}", 30)
        self.env.cr.precommit.run()
        self.env.cr.execute("SELECT count(*) FROM bus_bus")
        before = self.env.cr.fetchone()[0]
        self.Box._cron_refresh_update_status()
        self.assertEqual(set(boxes.mapped("is_offline")), {True})
        self.env.cr.precommit.run()
        self.env.cr.execute("SELECT message FROM bus_bus ORDER BY id DESC")
        rows = self.env.cr.fetchall()
        self.assertEqual(len(rows) - before, 1)
        message = json.loads(rows[0][0])
        self.assertEqual(message["type"], BOXES_CHANGED)
        self.assertEqual(message["payload"]["count"], 30)
        self.assertEqual(len(self.env["iot.box.event"].search([("kind", "=", "went_offline")])), 30)

    def test_grace_in_both_settings_screens(self):
        self.assertEqual(
            self.env["iot.update.settings"].default_get(["disconnect_grace_minutes"]),
            {"disconnect_grace_minutes": DEFAULT_GRACE_MINUTES},
        )
        self.env["iot.update.settings"].create({"disconnect_grace_minutes": 7})
        self.assertEqual(self.Box._get_disconnect_grace_minutes(), 7)
        self.env["res.config.settings"].create({"iot_disconnect_grace_minutes": 9}).execute()
        self.assertEqual(self.Box._get_disconnect_grace_minutes(), 9)
        self.assertEqual(self.env["res.config.settings"].create({}).iot_disconnect_grace_minutes, 9)


class TestRefreshEveryMinuteUpgrade(IotCase):
    """Upgrading to 18.0.1.3.0: the status refresh runs every minute."""

    def migrate(self):
        path = Path(get_module_path("iot_update")) / "migrations" / "18.0.1.3.0" / "post-migration.py"
        spec = importlib.util.spec_from_file_location("iot_update_tests_migration_18_0_1_3_0", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.migrate(self.env.cr, "18.0.1.2.0")

    def test_old_interval_moves_to_one_minute(self):
        cron = self.env.ref("iot_update.ir_cron_refresh_update_status")
        cron.write({"interval_number": 15, "interval_type": "minutes"})
        cron.flush_recordset()
        self.migrate()
        cron.invalidate_recordset()
        self.assertEqual(cron.interval_number, 1)

    def test_a_chosen_interval_is_kept(self):
        cron = self.env.ref("iot_update.ir_cron_refresh_update_status")
        cron.write({"interval_number": 5})
        cron.flush_recordset()
        self.migrate()
        cron.invalidate_recordset()
        self.assertEqual(cron.interval_number, 5)
