# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The genuine 19 box's own download code against this server (SPEC 3.2).

``iot_drivers/tools/helpers.py`` of a 19.0 tree (``./dev setup --odoo19 PATH``
copies its ``iot_drivers`` folder; ``./dev test`` gives it in
``IOT_UPDATE_BOX19``) is loaded on its own, with its ``tools/system.py``, and
pointed at the test server and at a box home; its real
``download_iot_handlers`` then posts ``identifier``, ``auto`` and the
``If-None-Match`` of the ETag it keeps in its ``odoo.conf``.
"""

import importlib.util
import os
import shutil
import sys
import tempfile
import types
import warnings
from pathlib import Path

import odoo.tools.func
from odoo.tools import mute_logger

from .handlers_common import LINUX_HANDLERS, LINUX_VERSION, HandlersFolderMixin
from .handlers_common import read_tree as read_folder
from .iot_common import IotHttpCase

#: Start of the skip reason when no 19.0 iot_drivers is given; ./dev counts these.
BOX19_NOT_RUN = "BOX19 TESTS NOT RUN"
GENUINE_MODULE = "iot_update_tests_genuine_box19_helpers"
SYSTEM_MODULE = "odoo.addons.iot_drivers.tools.system"
HANDLERS_FOLDER = "odoo/addons/iot_drivers/iot_handlers"
IDENTIFIER = "box19-serial-0001"


def box19_folder():
    """The 19.0 ``iot_drivers`` folder given in IOT_UPDATE_BOX19, or None."""
    folder = os.environ.get("IOT_UPDATE_BOX19")
    if folder and (Path(folder) / "tools" / "helpers.py").is_file():
        return Path(folder)
    return None


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_genuine19_helpers(folder):
    """``iot_drivers/tools/helpers.py`` of 19.0, loaded as a lone module.

    What it imports that an 18.0 server lacks is given for the time it loads:
    its own ``tools/system.py`` (genuine), netifaces when missing (only
    get_ip uses it, replaced by the test) and ``reset_cached_properties``
    (19's odoo.tools.func; not used to download handlers)."""
    given = {SYSTEM_MODULE: _load(SYSTEM_MODULE, folder / "tools" / "system.py")}
    if importlib.util.find_spec("netifaces") is None:
        given["netifaces"] = types.ModuleType("netifaces")
    added_func = not hasattr(odoo.tools.func, "reset_cached_properties")
    if added_func:
        odoo.tools.func.reset_cached_properties = lambda *args, **kwargs: None
    sys.modules.update(given)
    try:
        with warnings.catch_warnings(), mute_logger(GENUINE_MODULE):
            warnings.simplefilter("ignore", DeprecationWarning)
            return _load(GENUINE_MODULE, folder / "tools" / "helpers.py")
    finally:
        for name in given:
            del sys.modules[name]
        if added_func:
            del odoo.tools.func.reset_cached_properties


class TestGenuineBox19Download(HandlersFolderMixin, IotHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        folder = box19_folder()
        cls.helpers = load_genuine19_helpers(folder) if folder else None

    def setUp(self):
        super().setUp()
        if self.helpers is None:
            self.skipTest(
                f"{BOX19_NOT_RUN}: IOT_UPDATE_BOX19 does not name a 19.0 iot_drivers folder (./dev setup --odoo19 PATH)"
            )
        self.setup_handlers_folder()
        self.box_home = Path(tempfile.mkdtemp(prefix="iot_update_box19_"))
        self.addCleanup(shutil.rmtree, self.box_home, ignore_errors=True)
        self.box_handlers = self.box_home / HANDLERS_FOLDER
        for kind in ("drivers", "interfaces"):
            (self.box_handlers / kind).mkdir(parents=True)
        replacements = {
            "get_odoo_server_url": self.base_url,
            "get_ip": lambda: "192.0.2.19",
            "get_identifier": lambda: IDENTIFIER,
            # Its files (odoo.conf, handlers) in the box's home, not next to sys.path[0] ...
            "path_file": lambda *args: self.box_home.joinpath(*args),
            "file_path": lambda path: str(self.box_home / "odoo" / "addons" / path),
        }
        for name, replacement in replacements.items():
            self.assertTrue(callable(getattr(self.helpers, name)), f"helpers.py has no {name}() any more")
            self.addCleanup(setattr, self.helpers, name, getattr(self.helpers, name))
            setattr(self.helpers, name, replacement)
        self.check_in(identifier=IDENTIFIER, version=LINUX_VERSION)

    def download(self, auto):
        self.env.flush_all()
        with self.assertNoLogs(GENUINE_MODULE, "ERROR"):
            self.helpers.download_iot_handlers(auto=auto)
        self.env.invalidate_all()
        return read_folder(self.box_handlers)

    def etag(self):
        return self.helpers.get_conf("iot_handlers_etag")

    def events(self, kind):
        box = self.box(IDENTIFIER)
        return self.env["iot.box.event"].search_count([("box_id", "=", box.id), ("kind", "=", kind)])

    def lose_files(self):
        shutil.rmtree(self.box_handlers)
        for kind in ("drivers", "interfaces"):
            (self.box_handlers / kind).mkdir(parents=True)

    def test_load_handlers_button_gets_lost_files_back(self):
        self.assertEqual(self.download(auto=True), LINUX_HANDLERS)
        etag = self.etag()
        self.assertEqual(etag, self.box(IDENTIFIER).handlers_digest)
        self.lose_files()
        # "Load handlers" pressed: the same ETag, yet the whole bundle.
        self.assertEqual(self.download(auto=False), LINUX_HANDLERS)
        self.assertEqual(self.etag(), etag)
        self.assertEqual(self.events("delivery"), 2)

    def test_automatic_download_with_its_etag_is_not_modified(self):
        self.assertEqual(self.download(auto=True), LINUX_HANDLERS)
        self.lose_files()
        self.assertEqual(self.download(auto=True), {}, "304: the box keeps what it has")
        self.assertEqual((self.events("delivery"), self.events("not_modified")), (1, 1))
