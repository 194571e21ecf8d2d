# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""pytest set-up of the repository's tests (the clean-log rule is in ../conftest.py).

The addon's plain-Python package is importable as ``iot_update_tools``:
``iot_update/tools`` imports nothing of Odoo, so the unit tests load it on
its own and run the same with or without an Odoo on the machine.
"""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "iot_update" / "tools"

if "iot_update_tools" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "iot_update_tools", TOOLS / "__init__.py", submodule_search_locations=[str(TOOLS)]
    )
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["iot_update_tools"] = _module
    _spec.loader.exec_module(_module)
