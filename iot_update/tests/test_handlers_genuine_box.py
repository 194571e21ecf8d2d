# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The genuine 18.0 box's own download code against this server.

``hw_drivers/tools/helpers.py`` is loaded from the Odoo tree on its own
(importing the ``hw_drivers`` package would start the box's threads). Its
server URL, MAC address and folders are pointed at the test's values, then its
real ``download_iot_handlers`` runs against the test server over HTTP.
"""

import contextlib
import importlib.util
import shutil
import sys
import tempfile
import types
import warnings
from pathlib import Path

from odoo.modules.module import get_module_path
from odoo.tools import mute_logger

from .handlers_common import LINUX_HANDLERS, LINUX_VERSION, MAC, WINDOWS_HANDLERS, WINDOWS_VERSION, HandlersFolderMixin
from .handlers_common import read_tree as read_folder
from .iot_common import IotHttpCase

GENUINE_MODULE = "iot_update_tests_genuine_box_helpers"
HANDLERS_FOLDER = "odoo/addons/hw_drivers/iot_handlers"


def load_genuine_helpers():
    """``hw_drivers/tools/helpers.py`` of the Odoo tree, loaded as a lone module."""
    path = Path(get_module_path("hw_drivers")) / "tools" / "helpers.py"
    spec = importlib.util.spec_from_file_location(GENUINE_MODULE, path)
    module = importlib.util.module_from_spec(spec)
    # helpers.py imports netifaces (network interfaces, a box-only dependency a
    # server may lack) at module level; only get_ip/get_mac_address use it and
    # the test replaces get_mac_address. So when netifaces is missing, an empty
    # module stands in for it while the file loads, and nothing else is faked.
    stand_in = importlib.util.find_spec("netifaces") is None
    if stand_in:
        sys.modules["netifaces"] = types.ModuleType("netifaces")
    try:
        with warnings.catch_warnings(), mute_logger(GENUINE_MODULE):
            # It also imports the stdlib's deprecated `crypt` (logging a warning
            # where it is gone); irrelevant to downloading handlers.
            warnings.simplefilter("ignore", DeprecationWarning)
            spec.loader.exec_module(module)
    finally:
        if stand_in:
            del sys.modules["netifaces"]
    return module


def point_genuine_helpers(test, helpers, mac, home):
    """Point the genuine ``helpers`` at ``test``'s server, at the MAC address
    ``mac()`` returns and at the box home ``home()`` returns, until the test ends."""
    replacements = {
        "get_odoo_server_url": test.base_url,
        "get_mac_address": mac,
        # Files go to the box's home instead of the real ~ and Odoo tree ...
        "path_file": lambda filename: home() / filename,
        "file_path": lambda path: str(home() / "odoo" / "addons" / path),
        # ... without remounting / read-write with sudo as the box does.
        "writable": contextlib.nullcontext,
    }
    for name, replacement in replacements.items():
        test.assertTrue(callable(getattr(helpers, name)), f"helpers.py has no {name}() any more")
        original = getattr(helpers, name)
        setattr(helpers, name, replacement)
        test.addCleanup(setattr, helpers, name, original)


class TestGenuineBoxDownload(HandlersFolderMixin, IotHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.helpers = load_genuine_helpers()

    def setUp(self):
        super().setUp()
        self.setup_handlers_folder()
        # The box's home: its handlers live in ~/odoo/addons/hw_drivers/iot_handlers.
        self.box_home = Path(tempfile.mkdtemp(prefix="iot_update_box_"))
        self.addCleanup(shutil.rmtree, self.box_home, ignore_errors=True)
        self.box_handlers = self.box_home / HANDLERS_FOLDER
        for kind in ("drivers", "interfaces"):
            (self.box_handlers / kind).mkdir(parents=True)
        self.mac = MAC
        point_genuine_helpers(self, self.helpers, lambda: self.mac, lambda: self.box_home)

    def download(self, auto):
        """Run the box's ``download_iot_handlers(auto)``; return what its folder holds."""
        self.env.flush_all()
        with self.assertNoLogs(GENUINE_MODULE, "ERROR"):
            self.helpers.download_iot_handlers(auto=auto)
        self.env.invalidate_all()
        return read_folder(self.box_handlers)

    def test_genuine_box_downloads_its_handlers(self):
        # What an older download left: replaced, or deleted when gone from the bundle.
        (self.box_handlers / "drivers" / "PrinterDriver_L.py").write_bytes(b"# old printer driver\n")
        (self.box_handlers / "drivers" / "RetiredDriver_L.py").write_bytes(b"# retired\n")
        self.check_in(identifier=MAC, version=LINUX_VERSION)
        self.assertEqual(self.download(auto=True), LINUX_HANDLERS)
        box = self.box(MAC)
        self.assertTrue(box.handlers_digest)
        self.assertFalse(box.handlers_outdated)
        event = self.env["iot.box.event"].search([("box_id", "=", box.id), ("kind", "=", "delivery")])
        self.assertEqual((event.bundle_digest, event.detail), (box.handlers_digest, "automatic"))

    def test_genuine_box_with_auto_update_off_keeps_its_handlers(self):
        self.check_in(identifier=MAC, version=LINUX_VERSION)
        box = self.box(MAC)
        box.drivers_auto_update = False
        kept = {"drivers/PrinterDriver_L.py": b"# the box's own printer driver\n"}
        (self.box_handlers / "drivers" / "PrinterDriver_L.py").write_bytes(kept["drivers/PrinterDriver_L.py"])
        # At start-up (auto=True): the empty answer leaves the box's files alone.
        self.assertEqual(self.download(auto=True), kept)
        self.assertFalse(box.handlers_digest)
        # "Load handlers" on the box homepage (auto=False) downloads anyway.
        self.assertEqual(self.download(auto=False), LINUX_HANDLERS)
        self.assertTrue(box.handlers_digest)

    def test_unknown_genuine_box_keeps_its_handlers(self):
        self.mac = "aa:bb:cc:dd:ee:99"
        kept = {"interfaces/SerialInterface.py": b"# the box's own serial interface\n"}
        (self.box_handlers / "interfaces" / "SerialInterface.py").write_bytes(kept["interfaces/SerialInterface.py"])
        with self.assertLogs("odoo.addons.iot_update.models.iot_handlers_bundle", "WARNING"):
            self.assertEqual(self.download(auto=True), kept)

    def test_genuine_box_registered_as_windows_gets_windows_files(self):
        self.check_in(identifier=MAC, version=WINDOWS_VERSION)
        self.assertEqual(self.download(auto=True), WINDOWS_HANDLERS)
