# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""One check-in costs a bounded number of queries, whatever the size of the fleet."""

import threading
from functools import partial

from odoo.service.model import retrying
from odoo.tests.common import warmup

from odoo.addons.iot_update.tools.setup_payload import read_setup_payload

from .iot_common import PRINTER, SCALE, IotCase, IotHttpCase, box_payload, registry_lock_released

DEVICES = {"usb_printer": PRINTER, "serial_scale": SCALE}


def other_boxes(env, count):
    env["iot.box"].sudo().create(
        [
            {"name": f"other-{i}", "identifier": f"00:00:00:00:{i // 256:02x}:{i % 256:02x}", "version": "L24.11"}
            for i in range(count)
        ]
    )


class TestSetupQueryCount(IotCase):
    # Queries per check-in of a known box (new version, a device gone or back).
    BUDGET = 7

    def setUp(self):
        super().setUp()
        self.check_in(devices=DEVICES)

    def check_in_again(self):
        self.check_in(version="L25.07-18.0#0000001", devices={"usb_printer": PRINTER})
        self.check_in(version="L24.11-18.0#0000002", devices=DEVICES)

    @warmup
    def test_known_box_small_fleet(self):
        with self.assertQueryCount(self.BUDGET * 2):
            self.check_in_again()

    @warmup
    def test_known_box_large_fleet(self):
        other_boxes(self.env, 300)
        with self.assertQueryCount(self.BUDGET * 2):
            self.check_in_again()


class TestSetupHttpQueryCount(IotHttpCase):
    @warmup
    def test_http_check_in_is_bounded(self):
        self.post_setup(box_payload(self.token, devices=DEVICES))
        for fleet in (0, 300):
            other_boxes(self.env, fleet)
            with self.subTest(fleet=fleet), self.assertQueryCount(10):
                self.post_setup(box_payload(self.token, version=f"L25.07-18.0#{fleet:07d}", devices=DEVICES))


class TestConcurrentCheckIns(IotCase):
    """Two check-ins of one box at the same time, each in its own committed
    transaction and run as the HTTP server runs requests, as two server
    workers would."""

    IDENTIFIER = "aa:bb:cc:dd:ee:c0"

    def tearDown(self):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM iot_box WHERE identifier = %s", [self.IDENTIFIER])
        super().tearDown()

    def run_concurrently(self, *payloads):
        barrier = threading.Barrier(len(payloads))
        errors = []

        def worker(payload):
            try:
                with self.registry.cursor() as cr:
                    env = self.env(cr=cr, su=True)
                    env.cr.execute("SELECT 1")  # every snapshot predates every write
                    barrier.wait(timeout=10)
                    setup = partial(env["iot.box"]._iot_setup, read_setup_payload(payload), "127.0.0.1")
                    retrying(setup, env)
            except Exception as error:
                errors.append(error)

        threads = [threading.Thread(target=worker, args=(payload,)) for payload in payloads]
        with registry_lock_released():
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
        self.assertEqual([thread for thread in threads if thread.is_alive()], [], "a worker still running: deadlock")
        self.assertEqual(errors, [])
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT d.identifier FROM iot_device d JOIN iot_box b ON b.id = d.box_id WHERE b.identifier = %s",
                [self.IDENTIFIER],
            )
            devices = sorted(row[0] for row in cr.fetchall())
            cr.execute("SELECT count(*) FROM iot_box WHERE identifier = %s", [self.IDENTIFIER])
            return cr.fetchone()[0], devices

    def test_first_check_in_creates_one_box(self):
        payload = box_payload(self.token, identifier=self.IDENTIFIER, devices=DEVICES)
        self.assertEqual(self.run_concurrently(payload, payload), (1, ["serial_scale", "usb_printer"]))

    def test_known_box_loses_no_device(self):
        self.run_concurrently(box_payload(self.token, identifier=self.IDENTIFIER))
        payload = box_payload(self.token, identifier=self.IDENTIFIER, devices=DEVICES)
        self.assertEqual(self.run_concurrently(payload, payload), (1, ["serial_scale", "usb_printer"]))
