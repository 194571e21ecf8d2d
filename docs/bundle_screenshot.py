# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""docs/driver_bundle.png: the form of a drivers bundle after a staged roll-out.

Not a test: run it on its own with pytest-odoo (the command ``./dev test``
prints, with this file as the only path), e.g.::

    .venv/bin/python -m pytest -p no:cacheprovider --odoo-config=.dev/odoo.conf \\
        --odoo-database=$IOT_UPDATE_TEST_DB --odoo-http docs/bundle_screenshot.py

In the test database's transaction (nothing is kept): twelve Linux boxes take
their drivers over HTTP; a module update brings a new scale driver and changes
the printer driver; new bundles are held, so the two canary boxes take it
first; it is released to all, and seven more boxes take it. Headless Chromium,
driven by Odoo's test browser, then shows the bundle's form as an IoT
administrator sees it.
"""

import base64
import shutil
import tempfile
from pathlib import Path
from unittest.mock import patch

from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tests.common import ChromeBrowser

from odoo.addons.iot_update.models.iot_handlers_bundle import HOLD_PARAM, IotHandlersBundle, bundle_cache
from odoo.addons.iot_update.tests.iot_common import box_payload
from odoo.addons.iot_update.tools.setup_payload import read_setup_payload

OUTPUT = Path(__file__).resolve().parent / "driver_bundle.png"
LINUX_VERSION = "L24.11-18.0#1a2b3c4"


def write(root, files):
    for entry, data in files.items():
        path = root / entry
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@tagged("post_install", "-at_install")
class BundleScreenshot(HttpCase):
    browser_size = "1280x900"

    def test_driver_bundle_form(self):
        base = Path(tempfile.mkdtemp(prefix="iot_update_screenshot_"))
        self.addCleanup(shutil.rmtree, base, ignore_errors=True)
        shop = base / "shop_scale_drivers" / "iot_handlers"
        write(shop, {"drivers/ShopPrinterDriver_L.py": b"# shop printer\n" + b"PRINTER = 1\n" * 200})
        roots = IotHandlersBundle._handler_roots
        patcher = patch.object(IotHandlersBundle, "_handler_roots", lambda model: [*roots(model), str(shop)])
        patcher.start()
        self.addCleanup(patcher.stop)
        bundle_cache.clear()
        self.addCleanup(bundle_cache.clear)
        Bundle = self.env["iot.handlers.bundle"].sudo()
        Bundle._notice_bundle_change()

        Box = self.env["iot.box"].sudo()
        token = Box._get_pairing_token()
        names = ["Front desk", "Bakery", "Butcher", "Checkout 1", "Checkout 2", "Checkout 3"]
        names += ["Deli", "Kitchen", "Warehouse", "Pharmacy", "Garden", "Café"]
        boxes = Box
        for number, name in enumerate(names):
            identifier = f"aa:bb:cc:40:00:{number:02x}"
            payload = box_payload(token, identifier=identifier, version=LINUX_VERSION, name=name)
            Box._iot_setup(read_setup_payload(payload), "192.168.1.%s" % (20 + number))
            boxes |= Box.search([("identifier", "=", identifier)])
        boxes[:2].canary = True

        def take_drivers(selection):
            self.env.flush_all()
            for box in selection:
                response = self.url_open(
                    "/iot/get_handlers", files={"mac": (None, box.identifier), "auto": (None, "True")}
                )
                response.raise_for_status()
            self.env.invalidate_all()

        take_drivers(boxes)
        self.env["ir.config_parameter"].sudo().set_param(HOLD_PARAM, "True")
        write(
            shop,
            {
                "drivers/ShopPrinterDriver_L.py": b"# shop printer, cutter fixed\n" + b"PRINTER = 2\n" * 200,
                "drivers/ShopScaleDriver.py": b"# shop scale\n" + b"SCALE = 1\n" * 300,
            },
        )
        bundle_cache.clear()
        Bundle._cron_sync_digests()
        held = Bundle.search([("variant", "=", "linux"), ("state", "=", "held")])
        take_drivers(boxes[:2])
        admin = new_test_user(self.env, "bundle_admin", groups="base.group_user,iot_update.group_iot_admin")
        held.with_user(admin).action_release()
        take_drivers(boxes[2:9])

        browser = ChromeBrowser(self)
        self.addCleanup(browser.stop)
        self.authenticate("bundle_admin", "bundle_admin", browser=browser)
        self.env.flush_all()
        browser.navigate_to(f"{self.base_url()}/odoo/action-iot_update.iot_handlers_bundle_action/{held.id}")
        self.assertTrue(
            browser._wait_ready("document.querySelectorAll('.o_form_view .o_data_row').length >= 2", timeout=60)
        )
        shot = browser._websocket_send("Page.captureScreenshot", with_future=True).result(timeout=30)
        OUTPUT.write_bytes(base64.b64decode(shot["data"]))
