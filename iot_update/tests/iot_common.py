# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Shared fixtures of the Odoo-backed tests."""

import json
from contextlib import contextmanager
from datetime import timedelta

from odoo import fields
from odoo.modules.registry import Registry
from odoo.tests import HttpCase, TransactionCase, tagged

from odoo.addons.iot_update.models.iot_box_errors import error_starts
from odoo.addons.iot_update.models.iot_box_log import box_lines
from odoo.addons.iot_update.tools.box_log import box_log_refusals
from odoo.addons.iot_update.tools.setup_payload import read_setup_payload

BOX_LOGGER = "odoo.addons.iot_update.models.iot_box_checkin"
CONTROLLER_LOGGER = "odoo.addons.iot_update.controllers.iot_update"
#: The route's refusals and the write's (``iot.box.log._write_batches``).
ADDON_LOGGER = "odoo.addons.iot_update"


@contextmanager
def registry_lock_released():
    """Let threads of a test open environments and retry transactions as
    server workers do.

    Both go through ``Registry(dbname)``, which takes the registries' lock.
    Odoo's own test runner holds that lock while it runs the tests (pytest-odoo
    does not), so a thread of a test would wait for it forever: the test's
    thread gives it up for the block, and takes it back after.
    """
    lock = Registry._lock
    held = 0
    while lock._is_owned():
        lock.release()
        held += 1
    try:
        yield
    finally:
        for __ in range(held):
            lock.acquire()


def box_payload(token, identifier="aa:bb:cc:dd:ee:01", version="L24.11-18.0#1a2b3c4", devices=None, **extra):
    """The body the genuine 18.0 box builds in ``Manager.send_alldevices``."""
    iot_box = {
        "name": extra.pop("name", "iotbox-" + str(identifier)[-2:]),
        "identifier": identifier,
        "ip": extra.pop("ip", "192.168.1.20"),
        "token": token,
        "version": version,
    }
    iot_box.update(extra)
    return {"params": {"iot_box": iot_box, "devices": devices or {}}}


PRINTER = {"name": "Epson TM-T20", "type": "printer", "manufacturer": "Epson", "connection": "usb", "subtype": ""}
SCALE = {"name": "Toledo", "type": "scale", "manufacturer": "Mettler", "connection": "serial", "subtype": ""}


class IotCaseMixin:
    @classmethod
    def setup_iot(cls):
        cls.Box = cls.env["iot.box"].sudo()
        cls.token = cls.Box._get_pairing_token()
        # The entries of accepted log batches are written when a test says
        # (``write_box_lines``), in its transaction, not by a timer's thread;
        # likewise no timer tells the dashboards that boxes started reporting
        # errors (a test committing through a cursor of its own would have it
        # fire inside a later test's transaction).
        cls.classPatch(box_lines, "schedule", lambda delay, function: None)
        cls.classPatch(error_starts, "schedule", lambda delay, function: None)

    def setUp(self):
        super().setUp()
        self.addCleanup(box_lines.take, self.env.cr.dbname)
        # Each test sees the first refusal of a log batch logged.
        box_log_refusals.reset()
        self.addCleanup(box_log_refusals.reset)
        self.addCleanup(error_starts.take, self.env.cr.dbname)

    def write_box_lines(self):
        """Write the log batches the server collected, as it does within the
        second after accepting them; the batches it refused, with why."""
        return self.env["iot.box.log"].sudo()._write_batches(box_lines.take(self.env.cr.dbname) or [])

    def log_lines(self, box=None):
        """The box log entries (of ``box``, else of every box), oldest first,
        once the server wrote what it collected."""
        self.write_box_lines()
        domain = [("box_id", "=", box.id)] if box else []
        return self.env["iot.box.log"].search(domain, order="date, id")

    def check_in(self, **kwargs):
        """Call the check-in service as the controller does."""
        payload = box_payload(kwargs.pop("token", self.token), **kwargs)
        return self.Box._iot_setup(read_setup_payload(payload), "127.0.0.1")

    def stale_offline_box(self):
        """A box silent for three days whose stored status still says "up to
        date": only a status refresh would correct it."""
        self.check_in()
        box = self.box()
        box.last_contact = fields.Datetime.now() - timedelta(days=3)
        box.flush_recordset()
        self.env.cr.execute("UPDATE iot_box SET update_status = 'up_to_date' WHERE id = %s", [box.id])
        box.invalidate_recordset()
        return box

    def box(self, identifier="aa:bb:cc:dd:ee:01"):
        return self.Box.with_context(active_test=False).search([("identifier", "=", identifier)])


@tagged("post_install", "-at_install")
class IotCase(IotCaseMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_iot()


@tagged("post_install", "-at_install")
class IotHttpCase(IotCaseMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_iot()

    def post_setup(self, payload):
        """POST /iot/setup with the bytes and headers of the genuine 18.0 box."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf8")
        return self.opener.post(
            self.base_url() + "/iot/setup",
            data=body,
            headers={"Content-type": "application/json", "Accept": "text/plain"},
            timeout=30,
        )
