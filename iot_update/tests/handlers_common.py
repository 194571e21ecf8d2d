# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Fixtures of the handlers tests: a throw-away addon-like handlers folder."""

import io
import shutil
import tempfile
import zipfile
from pathlib import Path
from unittest.mock import patch

from odoo.addons.iot_update.models import iot_handlers_bundle
from odoo.addons.iot_update.models.iot_handlers_bundle import IotHandlersBundle, bundle_cache

MAC = "aa:bb:cc:dd:ee:01"
LINUX_VERSION = "L24.11-18.0#1a2b3c4"
WINDOWS_VERSION = "W23.11-18.0-20241105"

#: Handler files of the test folder: several KB each so that compression matters.
HANDLERS = {
    "drivers/PrinterDriver_L.py": b"# linux printer driver\n" + b"PRINTER_L = 1\n" * 300,
    "drivers/PrinterDriver_W.py": b"# windows printer driver\n" + b"PRINTER_W = 1\n" * 300,
    "drivers/SerialScaleDriver.py": b"# scale driver\n" + b"SCALE = 1\n" * 500,
    "interfaces/USBInterface_L.py": b"# usb interface\n" + b"USB = 1\n" * 100,
    "interfaces/SerialInterface.py": b"# serial interface\n" + b"SERIAL = 1\n" * 100,
}
LINUX_HANDLERS = {entry: data for entry, data in HANDLERS.items() if "_W." not in entry}
WINDOWS_HANDLERS = {entry: data for entry, data in HANDLERS.items() if "_L." not in entry}


def unzip(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def read_tree(folder):
    """``{"<kind>/<name>": bytes}`` of the files under ``folder``."""
    folder = Path(folder)
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


class HandlersFolderMixin:
    """Serve the bundle from a temporary addon-like ``iot_handlers`` folder
    instead of the installed modules' folders, with an empty bundle cache."""

    def setup_handlers_folder(self, files=None, with_real_roots=False, record=True):
        files = HANDLERS if files is None else files
        base = Path(tempfile.mkdtemp(prefix="iot_update_test_"))
        self.addCleanup(shutil.rmtree, base, ignore_errors=True)
        self.handlers_root = base / "iot_test_addon" / "iot_handlers"
        self.write_handlers(files)
        # What the bundle must never hold.
        drivers = self.handlers_root / "drivers"
        (drivers / ".PrinterDriver_L.py.swp").write_bytes(b"swap")
        (drivers / "__init__.py").write_bytes(b"")
        (drivers / "__pycache__").mkdir()
        (drivers / "__pycache__" / "SerialScaleDriver.cpython-311.pyc").write_bytes(b"\0")
        (drivers / "old").mkdir()
        (drivers / "old" / "OldDriver.py").write_bytes(b"old")
        (base / "secret.txt").write_bytes(b"not a driver")
        (drivers / "Secret.py").symlink_to(base / "secret.txt")

        self.real_handler_roots = real_roots = IotHandlersBundle._handler_roots
        extra = str(self.handlers_root)

        def handler_roots(model):
            return [*real_roots(model), extra] if with_real_roots else [extra]

        patcher = patch.object(IotHandlersBundle, "_handler_roots", handler_roots)
        patcher.start()
        self.addCleanup(patcher.stop)
        bundle_cache.clear()
        self.addCleanup(bundle_cache.clear)
        # The changes this process asked the cron to record: none yet.
        patcher = patch.object(iot_handlers_bundle, "_triggered", set())
        patcher.start()
        self.addCleanup(patcher.stop)
        if record:
            # As the registry's load does: the current digests are those of the test folder.
            self.bundle_service()._notice_bundle_change()

    def write_handlers(self, files):
        for entry, data in files.items():
            path = self.handlers_root / entry
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def bundle_service(self):
        return self.env["iot.handlers.bundle"].sudo()
