# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Shared pytest set-up.

- The addon's plain-Python package is importable as ``iot_update_tools``:
  ``iot_update/tools`` imports nothing of Odoo, so the unit tests load it on
  its own and run the same with or without an Odoo on the machine.
- No test may log a warning it does not expect (clean logs).
"""

import importlib.util
import logging
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "iot_update" / "tools"

if "iot_update_tools" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "iot_update_tools", TOOLS / "__init__.py", submodule_search_locations=[str(TOOLS)]
    )
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["iot_update_tools"] = _module
    _spec.loader.exec_module(_module)


class _WarningCollector(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_unexpected_warnings():
    """Fail a test during which anything logged a warning or an error it did not
    expect: expected ones are caught with ``assertLogs`` or ``mute_logger``."""
    collector = _WarningCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield
    finally:
        root.removeHandler(collector)
    if collector.records:
        lines = "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}" for r in collector.records[:10])
        pytest.fail(f"unexpected log records:\n{lines}", pytrace=False)
