# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""``iotbox-sim --stay-on`` against the test Odoo server: the simulated boxes'
own websockets (18.0 and 19 styles) bring boxes that looked dead back online.

The simulator runs in-process, over real HTTP and a real websocket to the
threaded test server, whose cursors go through the test's cursor.

Not in the addon's tests (Odoo's runner): it tests the simulator, a tool of this
repository that the addon's wheel does not ship.
"""

from datetime import timedelta
from threading import Lock
from unittest.mock import patch

from odoo import fields

from odoo.addons.bus.websocket import LifecycleEvent, Websocket
from odoo.addons.iot_update.models.iot_box_liveness import _on_box_websocket_close
from odoo.addons.iot_update.tests.test_bus_liveness import BusCase

from iotbox_sim.bus import keep_connected, stop_all, wait_connected
from iotbox_sim.cli import run


class TestSimulatorStaysOn(BusCase):
    def test_simulated_boxes_subscriptions_bring_them_online(self):
        self.env.flush_all()
        report = run(self.base_url(), self.token, boxes=12, seed=5, handlers=False)
        self.env.invalidate_all()
        self.assertTrue(report.ok, [r.setup.outcome for r in report.results])
        # One box of each style; a third one stays off.
        on = [next(r for r in report.results if r.box.style == style) for style in ("18", "19")]
        off = next(r for r in report.results if r not in on)
        boxes = {r.box.name: self.box(r.box.identifier) for r in (*on, off)}
        for result in (*on, off):
            box = boxes[result.box.name]
            self.assertEqual(result.setup.channel, box.sudo().bus_channel)
            box.last_contact = fields.Datetime.now() - timedelta(hours=5)
            box._refresh_update_status()
            self.assertEqual(box.update_status, "offline")
        self.env.flush_all()

        handled = []
        lock = Lock()
        original = Websocket._dispatch_bus_notifications

        def dispatched(websocket, *args):
            original(websocket, *args)
            with lock:
                handled.append(websocket)

        # The boxes' closes at the end would record their disconnection through the
        # test's cursor while this thread reads it: closes are tested in
        # iot_update/tests/test_bus_disconnection.py; here they record nothing.
        callbacks = Websocket._Websocket__event_callbacks
        without_close = {LifecycleEvent.CLOSE: callbacks[LifecycleEvent.CLOSE] - {_on_box_websocket_close}}
        with (
            patch.dict(callbacks, without_close),
            patch.object(Websocket, "_dispatch_bus_notifications", dispatched),
        ):
            links = keep_connected(
                self.base_url(), [(r.box, r.setup.channel) for r in on], db=self.env.cr.dbname, reconnect=30
            )
            try:
                self.assertEqual(wait_connected(links, timeout=15), [])
                deadline = fields.Datetime.now() + timedelta(seconds=15)
                while len(handled) < len(links) and fields.Datetime.now() < deadline:
                    links[0].connected.wait(0.05)
            finally:
                stop_all(links)
        self.assertEqual(len(handled), 2)
        self.assertEqual([link.errors for link in links], [[], []])
        # The server still handles the closes (Odoo's own close handlers take the
        # test cursor): read it only while no request holds it, and let go before
        # the test ends (its teardown waits for the server's threads).
        with self.registry.test_lock:
            self.env.invalidate_all()
            for result in on:
                with self.subTest(box=result.box.name):
                    box = boxes[result.box.name]
                    self.assertTrue(box.last_seen_bus)
                    self.assertFalse(box.is_offline)
                    self.assertNotEqual(box.update_status, "offline")
                    self.assertEqual(
                        box.event_ids.filtered(lambda e: e.kind == "back_online").mapped("detail"), ["seen on the bus"]
                    )
            self.assertFalse(boxes[off.box.name].last_seen_bus)
            self.assertEqual(boxes[off.box.name].update_status, "offline")
