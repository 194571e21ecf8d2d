# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The addon's property tests where hypothesis is missing (it is not one of Odoo's
requirements): the addon's tests still load, and each property test is reported as
skipped with the reason that ``./dev test`` counts as a failure, never as a pass.

pytest-odoo runs the real test modules in a subprocess in which ``import hypothesis``
fails (``sys.modules["hypothesis"] = None``, as for a package that is not installed);
plugins are not loaded from the installed packages there (hypothesis' own is one of
them), only pytest-odoo.
"""

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from odoo.tools import config

ROOT = Path(__file__).resolve().parents[2]
_loader = importlib.machinery.SourceFileLoader("iot_update_dev", str(ROOT / "dev"))
dev = importlib.util.module_from_spec(importlib.util.spec_from_loader("iot_update_dev", _loader))
_loader.exec_module(dev)
PROPERTY_TESTS = ("iot_update/tests/test_setup_properties.py", "iot_update/tests/test_handlers_properties.py")
WITHOUT_HYPOTHESIS = (
    "import sys; sys.modules['hypothesis'] = None; import pytest; raise SystemExit(pytest.main(sys.argv[1:]))"
)


def test_property_tests_are_reported_not_run_without_hypothesis(tmp_path):
    report = tmp_path / "report.xml"
    command = [sys.executable, "-c", WITHOUT_HYPOTHESIS, "-p", "no:cacheprovider", "-p", "pytest_odoo"]
    command += [f"--odoo-config={config.rcfile}", f"--odoo-database={config['db_name']}", "--odoo-http"]
    command += ["--odoo-log-level=warn", "--odoo-extra=log-handler=odoo.tests.common:CRITICAL"]
    command += [f"--junitxml={report}", "-q", *PROPERTY_TESTS]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "4 skipped" in result.stdout, result.stdout[-4000:]
    reasons = dev.tests_not_run(report)
    assert len(reasons) == 4, reasons
    assert all(
        reason.startswith(f"{dev.PROPERTIES_NOT_RUN}: the Python package hypothesis is missing") for reason in reasons
    ), reasons
