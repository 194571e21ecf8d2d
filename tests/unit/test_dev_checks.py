# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""What ./dev reads to judge the wheel and Odoo's own test runner, and the demo it sets up."""

import ast
import importlib.util
import re
import zipfile
from pathlib import Path

import pytest
from test_dev_get_odoo import dev

from iotbox_sim.fleet import plan_fleet

ROOT = Path(__file__).resolve().parents[2]


def test_a_file_missing_from_the_wheel_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(dev, "shipped_files", lambda: {"__manifest__.py", "views/a.xml", "i18n/iot_update.pot"})
    wheel = tmp_path / "odoo_addon_iot_update-18.0.1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("odoo/addons/iot_update/__manifest__.py", "{}")
        archive.writestr("odoo/addons/iot_update/views/a.xml", "<odoo/>")
        archive.writestr("odoo_addon_iot_update-18.0.1.0.0.dist-info/i18n/iot_update.pot", "")
    assert dev.wheel_missing(wheel) == ["i18n/iot_update.pot"]


def test_the_wheel_must_ship_every_tracked_addon_file_but_its_build_file():
    shipped = dev.shipped_files()
    assert {"__manifest__.py", "README.rst", "static/description/index.html", "i18n/iot_update.pot"} <= shipped
    assert "static/tests/tours/iot_update_tour.esm.js" in shipped
    assert "pyproject.toml" not in shipped


def test_both_runners_test_ids_match_in_one_form():
    odoo_log = (
        "2026-11-30 03:47:30,101 3470 INFO db odoo.addons.iot_update.tests.test_views: "
        "Starting TestViews.test_list ...\n"
        "2026-11-30 03:47:30,102 3470 INFO db odoo.addons.iot_update.tests.test_views: "
        "Starting TestViews.test_form ...\n"
        "2026-11-30 03:47:30,103 3470 INFO db odoo.addons.base.tests.test_x: Starting TestX.test_y ...\n"
    )
    collected = (
        "iot_update/tests/test_views.py::TestViews::test_list\n"
        "iot_update/tests/test_views.py::TestViews::test_form[sub]\n"
        "iot_update/tests/test_plain.py::test_function\n"
        "\n2 tests collected in 0.1s\n"
    )
    started = dev.odoo_runner_tests(odoo_log)
    assert started == {
        "odoo.addons.iot_update.tests.test_views.TestViews.test_list",
        "odoo.addons.iot_update.tests.test_views.TestViews.test_form",
    }
    assert dev.pytest_tests(collected) == started  # a plain function is not an Odoo test


def test_log_problems_follow_ocas_checklog():
    log = (
        "2026-11-30 1 INFO db odoo.modules.loading: loading 1 modules...\n"
        "2026-11-30 1 WARNING db odoo.tests.result: 0 failed, 0 error(s) of 3 tests when loading\n"
        "2026-11-30 1 WARNING db odoo.tests.common: Killing chrome descendants-or-self of 12\n"
        "2026-11-30 1 WARNING db odoo.fields: Field iot.box.name: unknown parameter 'x'\n"
        "2026-11-30 1 ERROR db odoo.addons.iot_update.tests.test_views: FAIL: TestViews.test_list\n"
    )
    assert dev.log_problems(log) == log.splitlines()[3:]


def test_the_test_run_ends_with_pytests_counts_read_from_its_report(tmp_path):
    report = tmp_path / "report.xml"
    report.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="9">'
        '<testcase classname="a" name="ok"/><testcase classname="a" name="ok2"/>'
        '<testcase classname="a" name="bad"><failure message="x"/></testcase>'
        '<testcase classname="a" name="broken"><error message="x"/></testcase>'
        '<testcase classname="a" name="later"><skipped message="x"/></testcase>'
        "</testsuite></testsuites>"
    )
    assert dev.pytest_closing_line(report) == "pytest: 2 passed, 2 failed, 1 skipped"
    assert dev.pytest_closing_line(tmp_path / "none.xml").startswith("pytest: 0 passed, 0 failed")


def test_tests_that_could_not_run_fail_the_run_under_both_runners(tmp_path):
    report = tmp_path / "report.xml"
    report.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="4">'
        '<testcase classname="a" name="tour"><skipped message="BROWSER TOUR NOT RUN: no Chromium found"/></testcase>'
        '<testcase classname="a" name="prop"><skipped message="PROPERTY TESTS NOT RUN: hypothesis is missing"/>'
        '</testcase><testcase classname="a" name="other"><skipped message="not on Windows"/></testcase>'
        '<testcase classname="a" name="ok"/></testsuite></testsuites>'
    )
    assert dev.tests_not_run(report) == [
        "BROWSER TOUR NOT RUN: no Chromium found",
        "PROPERTY TESTS NOT RUN: hypothesis is missing",
    ]
    assert dev.tests_not_run(tmp_path / "none.xml") == []
    odoo_log = (
        "2026-11-30 1 INFO db odoo.addons.iot_update.tests.test_setup_properties: "
        "Starting TestSetupProperties.test_raw_bodies ...\n"
        "2026-11-30 1 INFO db odoo.addons.iot_update.tests.test_setup_properties: skipped "
        "test_raw_bodies (odoo.addons.iot_update.tests.test_setup_properties.TestSetupProperties."
        "test_raw_bodies) : PROPERTY TESTS NOT RUN: the Python package hypothesis is missing\n"
        "2026-11-30 1 INFO db odoo.addons.base.tests.test_x: skipped test_y : not on Windows\n"
    )
    assert dev.odoo_runner_not_run(odoo_log) == [odoo_log.splitlines()[1]]


def test_the_demo_boxes_named_by_dev_run_are_in_the_simulated_fleet():
    fleet = {box.name: box for box in plan_fleet(dev.DEMO_BOXES, seed=dev.DEMO_SEED)}
    for names in (dev.DEMO_CANARIES, dev.DEMO_AUTO_UPDATE_OFF, dev.DEMO_OFFLINE):
        assert set(names) <= set(fleet)
    # The canaries start and pull their drivers: none is switched off or refused them.
    assert not set(dev.DEMO_CANARIES) & {*dev.DEMO_AUTO_UPDATE_OFF, *dev.DEMO_OFFLINE}
    assert {fleet[name].profile.split("-")[0] for name in dev.DEMO_CANARIES} == {"linux", "windows"}


def test_the_demo_drivers_module_is_on_the_demo_databases_addons_path_only(tmp_path, monkeypatch):
    monkeypatch.setattr(dev, "DEMO_ADDONS", tmp_path / "demo-addons")
    odoo_root = tmp_path / "odoo"
    assert dev.demo_addons_args(odoo_root, dev.TEST_DB) == []
    assert not (tmp_path / "demo-addons").exists()
    args = dev.demo_addons_args(odoo_root, dev.DEMO_DB)
    assert args == [f"--addons-path={odoo_root / 'addons'},{dev.ROOT},{tmp_path / 'demo-addons'}"]
    module = tmp_path / "demo-addons" / dev.DEMO_DRIVERS_MODULE
    manifest = ast.literal_eval((module / "__manifest__.py").read_text())
    assert manifest["depends"] == ["iot_update"]
    assert manifest["installable"]
    # A handler file where the server looks for a module's drivers (iot_handlers/drivers).
    handlers = sorted(path.relative_to(module).as_posix() for path in (module / "iot_handlers").rglob("*.py"))
    assert handlers == ["iot_handlers/drivers/DemoShelfLabelDriver.py"]
    compile((module / handlers[0]).read_text(), handlers[0], "exec")
    # Written again as this script says.
    (module / handlers[0]).write_text("changed")
    dev.demo_addons_args(odoo_root, dev.DEMO_DB)
    assert (module / handlers[0]).read_text() == dev.DEMO_DRIVERS_FILES[handlers[0]]


def test_setup_fails_when_the_venv_still_cannot_import_odoo(tmp_path, monkeypatch):
    """odoo-bin finds its own folder: only an import check tells a venv that
    cannot import Odoo (its editable install failed quietly, say)."""
    commands = []
    monkeypatch.setattr(dev, "STATE", tmp_path)
    monkeypatch.setattr(dev, "run", lambda command, **kwargs: commands.append(command))
    monkeypatch.setattr(dev, "odoo_root_in", lambda python: None)
    (tmp_path / "odoo").mkdir()
    (tmp_path / "odoo" / "requirements.txt").write_text("requests\n")
    with pytest.raises(dev.SetupError, match="cannot import Odoo"):
        dev.ensure_odoo_importable(tmp_path / "odoo")
    assert commands[-1][-2:] == ["-e", tmp_path / "odoo"]


def test_setup_accepts_a_venv_that_imports_the_tree_it_installed(tmp_path, monkeypatch):
    roots = iter([None, tmp_path / "odoo"])  # before the install, then after it
    monkeypatch.setattr(dev, "STATE", tmp_path)
    monkeypatch.setattr(dev, "run", lambda command, **kwargs: None)
    monkeypatch.setattr(dev, "odoo_root_in", lambda python: next(roots))
    (tmp_path / "odoo").mkdir()
    (tmp_path / "odoo" / "requirements.txt").write_text("requests\n")
    dev.ensure_odoo_importable(tmp_path / "odoo")
    assert next(roots, "all read") == "all read"


def test_setup_odoo19_copies_the_iot_drivers_of_a_19_tree(tmp_path):
    tree = tmp_path / "odoo19"
    tools = tree / "addons" / "iot_drivers" / "tools"
    tools.mkdir(parents=True)
    (tools / "helpers.py").write_text("def download_iot_handlers(auto=True, server_url=None):\n    pass\n")
    (tools / "system.py").write_text("IS_TEST = True\n")
    (tools / "__pycache__").mkdir()
    cache = tmp_path / "cache" / "iot_drivers-19.0"
    assert dev.box19_folder(cache) is None
    assert dev.box19_env(cache).get("IOT_UPDATE_BOX19") is None
    assert dev.copy_box19(tree, cache) == cache
    assert sorted(path.name for path in (cache / "tools").iterdir()) == ["helpers.py", "system.py"]
    assert dev.box19_folder(cache) == cache
    assert dev.box19_env(cache)["IOT_UPDATE_BOX19"] == str(cache)
    # Given again (the folder itself this time): replaced, not merged.
    (tools / "system.py").unlink()
    dev.copy_box19(tree / "addons" / "iot_drivers", cache)
    assert sorted(path.name for path in (cache / "tools").iterdir()) == ["helpers.py"]


def test_setup_odoo19_refuses_a_tree_without_the_19_box_download(tmp_path):
    (tmp_path / "odoo18" / "addons" / "hw_drivers" / "tools").mkdir(parents=True)
    with pytest.raises(dev.SetupError, match="no 19.0 iot_drivers"):
        dev.copy_box19(tmp_path / "odoo18", tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_the_genuine_19_box_tests_not_run_fail_the_run(tmp_path):
    report = tmp_path / "report.xml"
    report.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="1">'
        '<testcase classname="a" name="box19"><skipped message="BOX19 TESTS NOT RUN: no iot_drivers"/>'
        "</testcase></testsuite></testsuites>"
    )
    assert dev.tests_not_run(report) == ["BOX19 TESTS NOT RUN: no iot_drivers"]
    line = "2026-12-02 1 INFO db odoo.addons.iot_update.tests.test_x: skipped test_y : BOX19 TESTS NOT RUN: none"
    assert dev.odoo_runner_not_run(line) == [line]


def test_bus_tests_skipped_without_websocket_client_fail_the_run(tmp_path):
    report = tmp_path / "report.xml"
    report.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="2">'
        '<testcase classname="a" name="bus"><skipped message="BUS TESTS NOT RUN: websocket-client is missing"/>'
        '</testcase><testcase classname="a" name="w"><skipped message="websocket-client module is not installed"/>'
        "</testcase></testsuite></testsuites>"
    )
    assert dev.tests_not_run(report) == ["BUS TESTS NOT RUN: websocket-client is missing"]
    assert dev.BUS_NOT_RUN == "BUS TESTS NOT RUN"


def test_nginx_missing_is_reported_not_run_and_fails_the_run(tmp_path, monkeypatch):
    """Without nginx, the two-servers test through nginx skips with the reason
    ./dev counts as not run (never a silent skip)."""
    spec = importlib.util.spec_from_file_location("nginx_proxy_for_test", ROOT / "deploy" / "nginx_proxy.py")
    nginx_proxy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nginx_proxy)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(nginx_proxy, "NGINX_PATHS", [str(tmp_path / "sbin" / "nginx")])
    assert nginx_proxy.nginx_binary() is None
    source = (ROOT / "tests" / "odoo" / "test_two_servers.py").read_text()
    reason = re.search(r'^NGINX_NOT_RUN = "([^"]+)"', source, re.M).group(1)
    assert reason.startswith(dev.NGINX_NOT_RUN)
    assert "self.skipTest(NGINX_NOT_RUN)" in source
    report = tmp_path / "report.xml"
    report.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="1">'
        f'<testcase classname="a" name="nginx"><skipped message="{reason}"/></testcase></testsuite></testsuites>'
    )
    assert dev.tests_not_run(report) == [reason]
