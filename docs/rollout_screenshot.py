# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""docs/rollout.png: the form of a held bundle whose roll-out halted by itself.

Not a test: run it on its own with pytest-odoo, as ``bundle_screenshot.py``::

    .venv/bin/python -m pytest -p no:cacheprovider --odoo-config=.dev/odoo.conf \\
        --odoo-database=$IOT_UPDATE_TEST_DB --odoo-http docs/rollout_screenshot.py

In the test database's transaction (nothing is kept): twenty Linux boxes with
a printer and a scale each take their drivers; a module update changes the
scale driver; new bundles are rolled out in waves, the two canary boxes take
it and stay healthy for the soak time, the first wave opens, and one of its
boxes comes back without its scale: the roll-out halts. Time moves with
freezegun. Headless Chromium, driven by Odoo's test browser, then shows the
bundle's Waves tab as an IoT administrator sees it.
"""

import base64
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tests.common import ChromeBrowser
from odoo.tools import mute_logger

from odoo.addons.iot_update.models.iot_handlers_bundle import HOLD_PARAM, IotHandlersBundle, bundle_cache
from odoo.addons.iot_update.tests.iot_common import PRINTER, SCALE, box_payload
from odoo.addons.iot_update.tools.handlers_request import HandlersRequest
from odoo.addons.iot_update.tools.setup_payload import read_setup_payload

OUTPUT = Path(__file__).resolve().parent / "rollout.png"
LINUX_VERSION = "L24.11-18.0#1a2b3c4"
DEVICES = {"usb-epson-1": PRINTER, "serial-toledo-1": SCALE}
NAMES = ["Front desk", "Bakery", "Butcher", "Checkout 1", "Checkout 2", "Checkout 3", "Deli", "Kitchen"]
NAMES += ["Warehouse", "Pharmacy", "Garden", "Café", "Florist", "Wine cellar", "Cheese counter"]
NAMES += ["Fish market", "Newsstand", "Toy shop", "Bookshop", "Tea room"]
ROLLOUT_LOGGER = "odoo.addons.iot_update.models.iot_handlers_bundle_rollout"


def write(root, files):
    for entry, data in files.items():
        path = root / entry
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@tagged("post_install", "-at_install")
class RolloutScreenshot(HttpCase):
    browser_size = "1280x1500"

    def test_halted_rollout_form(self):
        held = self.halted_rollout()
        new_test_user(self.env, "rollout_admin", groups="base.group_user,iot_update.group_iot_admin")
        browser = ChromeBrowser(self)
        self.addCleanup(browser.stop)
        self.authenticate("rollout_admin", "rollout_admin", browser=browser)
        self.env.flush_all()
        browser.navigate_to(f"{self.base_url()}/odoo/action-iot_update.iot_rollout_action/{held.id}")
        self.assertTrue(
            browser._wait_ready("document.querySelectorAll('.o_form_view .o_data_row').length >= 3", timeout=60)
        )
        shot = browser._websocket_send("Page.captureScreenshot", with_future=True).result(timeout=30)
        OUTPUT.write_bytes(base64.b64decode(shot["data"]))

    def handlers_folder(self):
        """A shop's scale driver module beside the standard drivers; returns its ``iot_handlers`` folder."""
        base = Path(tempfile.mkdtemp(prefix="iot_update_screenshot_"))
        self.addCleanup(shutil.rmtree, base, ignore_errors=True)
        shop = base / "shop_scale_drivers" / "iot_handlers"
        write(shop, {"drivers/ShopScaleDriver_L.py": b"# shop scale\n" + b"SCALE = 1\n" * 200})
        roots = IotHandlersBundle._handler_roots
        patcher = patch.object(IotHandlersBundle, "_handler_roots", lambda model: [*roots(model), str(shop)])
        patcher.start()
        self.addCleanup(patcher.stop)
        bundle_cache.clear()
        self.addCleanup(bundle_cache.clear)
        return shop

    def halted_rollout(self):
        """The fleet, the new bundle, its canaries healthy, its first wave open, one of its boxes short of its scale."""
        shop = self.handlers_folder()
        Bundle = self.env["iot.handlers.bundle"].sudo()
        Bundle._notice_bundle_change()
        Box = self.env["iot.box"].sudo()
        token = Box._get_pairing_token()

        def check_in(box_name, identifier, devices):
            payload = box_payload(token, identifier=identifier, version=LINUX_VERSION, name=box_name, devices=devices)
            Box._iot_setup(read_setup_payload(payload), "192.168.1.20")

        def restart(box, devices=DEVICES):
            check_in(box.name, box.identifier, {})
            Bundle._serve_handlers(HandlersRequest("", box.identifier, True, True), None, "192.168.1.20")
            check_in(box.name, box.identifier, devices)
            self.env.flush_all()

        boxes = Box
        for number, name in enumerate(NAMES):
            identifier = f"aa:bb:cc:50:00:{number:02x}"
            check_in(name, identifier, DEVICES)
            boxes |= Box.search([("identifier", "=", identifier)])
        boxes[:2].canary = True
        for box in boxes:
            restart(box)
        self.env["ir.config_parameter"].sudo().set_param(HOLD_PARAM, "True")
        write(shop, {"drivers/ShopScaleDriver_L.py": b"# shop scale, new protocol\n" + b"SCALE = 2\n" * 200})
        bundle_cache.clear()
        Bundle._cron_sync_digests()
        held = Bundle.search([("variant", "=", "linux"), ("state", "=", "held")])
        for box in boxes[:2]:
            restart(box)
        now = fields.Datetime.now()
        with freeze_time(now + timedelta(hours=25)):
            Bundle._cron_evaluate_rollouts()
        wave = held.wave_ids.filtered(lambda wave: wave.sequence == 1)
        first, second = wave.line_ids.box_id[:2]
        with freeze_time(now + timedelta(hours=26)):
            restart(first)
            restart(second, {"usb-epson-1": PRINTER})
        with freeze_time(now + timedelta(hours=26, minutes=10)), mute_logger(ROLLOUT_LOGGER):
            Bundle._cron_evaluate_rollouts()
        self.assertEqual(held.rollout_state, "halted")
        return held
