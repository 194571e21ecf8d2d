# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""POST /iot/log over real HTTP: the genuine boxes' own log handlers
(``AsyncHTTPHandler`` of 18.0 ``hw_drivers/server_logger.py`` and of 19
``iot_drivers/server_logger.py``) against this server, and hostile requests.

The genuine modules are loaded from the Odoo trees on their own, with the
box-side ``helpers`` they import pointed at the test: importing their
packages would start the boxes' threads. Loading a module installs its handler
on the root logger (the box sends every line of its log): that one is removed
at once, and the test builds its own handler from the module's class, with
the module's formatter and filter, attached to the logger of the box code that
logs (the 18.0 ``helpers``). The test flushes the queue itself, with the
genuine ``_flush_logs``, instead of the box's thread that does it every 0.5 s.
"""

import contextlib
import importlib.util
import logging
import sys
import types
import unittest
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import patch

import requests

from odoo.modules.module import get_module_path
from odoo.tools import config, mute_logger

from odoo.addons.iot_update.tools.box_log import box_log_refusals

from .iot_common import ADDON_LOGGER, CONTROLLER_LOGGER, IotHttpCase
from .test_handlers_genuine_box import GENUINE_MODULE, load_genuine_helpers, point_genuine_helpers
from .test_tour import BrowserCleanupMixin

MAC = "aa:bb:cc:dd:ee:01"
SERIAL = "SN-19-0001"
ODOO19 = Path("/opt/odoo19/addons/iot_drivers")


def load_genuine_server_logger(path, package, helpers, system=None):
    """``server_logger.py`` at ``path``, loaded as a lone module importing
    ``helpers`` (and ``system``) as ``<package>.tools.*``; the handler it
    installs on the root logger is removed."""
    name = f"iot_update_tests_genuine_{package}_server_logger"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    tools = types.ModuleType(f"odoo.addons.{package}.tools")
    tools.helpers = helpers
    modules = {
        f"odoo.addons.{package}": types.ModuleType(f"odoo.addons.{package}"),
        f"odoo.addons.{package}.tools": tools,
        f"odoo.addons.{package}.tools.helpers": helpers,
    }
    if system is not None:
        tools.system = system
        modules[f"odoo.addons.{package}.tools.system"] = system
    root = logging.getLogger()
    before = list(root.handlers)
    # While it loads, the module's own handler gets no server (no thread).
    with (
        patch.dict(sys.modules, modules),
        patch.object(helpers, "get_odoo_server_url", lambda: None),
        patch.object(helpers, "get_conf", lambda *args, **kwargs: None),
    ):
        try:
            spec.loader.exec_module(module)
        finally:
            for handler in set(root.handlers) - set(before):
                root.removeHandler(handler)
    return module


def genuine_handler(module, url):
    """An ``AsyncHTTPHandler`` of ``module`` sending to ``url``, formatted and
    filtered as the module's own, whose queue the test flushes."""
    handler = module.AsyncHTTPHandler(url, False)  # no flush thread
    handler.setFormatter(module._server_log_sender_handler.formatter or module.ColoredFormatter(FORMAT))
    handler.addFilter(module._server_log_sender_handler_filter)
    handler._active = True  # what toggle_active(True) sets, without its thread
    return handler


FORMAT = "%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s %(perf_info)s"


@contextlib.contextmanager
def genuine_box_log(module, url):
    """While the block runs, the box code's log lines go to a genuine
    ``AsyncHTTPHandler`` of ``module`` (yielded), whose queue the test flushes.
    On the box the handler is on the root logger; here the lines stop at the
    box code's logger (the test's log stays clean)."""
    handler = genuine_handler(module, url)
    box_logger = logging.getLogger(GENUINE_MODULE)
    box_logger.addHandler(handler)
    propagate, box_logger.propagate = box_logger.propagate, False
    try:
        yield handler
    finally:
        box_logger.propagate = propagate
        box_logger.removeHandler(handler)


class BoxLogHttpMixin:
    def post_log(self, body, headers=None):
        return self.opener.post(self.base_url() + "/iot/log", data=body, headers=headers or {}, timeout=60)

    def assert_empty_ok(self, response):
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, b"")


class TestGenuineBoxLog(BoxLogHttpMixin, IotHttpCase):
    def test_genuine_18_box_reports_a_driver_that_failed_to_load(self):
        """The genuine 18.0 box loads its handlers; a broken driver logs
        ``Unable to load file: <driver>``; its AsyncHTTPHandler sends it."""
        helpers = load_genuine_helpers()
        module = load_genuine_server_logger(
            Path(get_module_path("hw_drivers"), "server_logger.py"), "hw_drivers", helpers
        )
        home = Path(self.env["ir.attachment"]._filestore()).parent / "iot_update_box_log_test"
        self.addCleanup(lambda: __import__("shutil").rmtree(home, ignore_errors=True))
        handlers = home / "odoo" / "addons" / "hw_drivers" / "iot_handlers"
        for kind in ("drivers", "interfaces"):
            (handlers / kind).mkdir(parents=True, exist_ok=True)
        (handlers / "drivers" / "BrokenDriver.py").write_text("import iot_update_no_such_module\n")
        point_genuine_helpers(self, helpers, lambda: MAC, lambda: home)
        # What the box does after loading handlers (reset its own web app) is not the test's.
        patcher = patch.object(helpers, "lazy_property", SimpleNamespace(reset_all=lambda app: None))
        patcher.start()
        self.addCleanup(patcher.stop)

        self.check_in(identifier=MAC)
        box = self.box(MAC)
        self.assertEqual(box.checkin_remote_addr, "127.0.0.1")
        self.assertFalse(box.reporting_errors)

        with genuine_box_log(module, self.base_url()) as handler:
            helpers.load_iot_handlers()
        self.assertEqual(handler._log_queue.qsize(), 2)
        self.env.flush_all()
        # The genuine box sends its batch as a generator: requests posts it chunked.
        prepared = requests.Request("POST", self.base_url() + "/iot/log", data=iter([b"x"])).prepare()
        self.assertEqual(prepared.headers.get("Transfer-Encoding"), "chunked")
        with self.assertNoLogs(module.__name__, "INFO"):
            handler._flush_logs(requests.Session())
        self.env.invalidate_all()

        # Two error lines in a row: one entry of two lines.
        entry = self.log_lines(box)
        self.assertEqual((entry.level, entry.levelno, entry.line_count), ("error", 40, 2))
        first, second = entry.message.split("\n", 1)
        # As the box's formatter wrote it: "<date> <pid> ERROR <db> <logger>: <message> <perf>".
        self.assertRegex(first, rf" ERROR \S+ {GENUINE_MODULE}: Unable to load file: BrokenDriver.py ")
        self.assertIn("iot_update_no_such_module", second)
        self.assertEqual(entry.remote_addr, "127.0.0.1")
        self.assertTrue(box.reporting_errors)
        self.assertTrue(box.last_error_date)
        # The Box Log tab.
        self.assertEqual(box.log_ids, entry)
        self.assertIn(box, self.Box.search([("reporting_errors", "=", True)]))

    def test_genuine_19_box_sends_its_lines(self):
        """The genuine 19 handler's batch (``identifier <serial>``)."""
        path = ODOO19 / "server_logger.py"
        if not path.is_file():
            self.skipTest(f"no Odoo 19 tree at {ODOO19}")
        db_name = self.env.cr.dbname
        helpers = SimpleNamespace(
            get_conf=lambda key=None, section="iot.box": db_name if key == "db_name" else None,
            get_odoo_server_url=lambda: None,
            get_identifier=lambda: SERIAL,
        )
        module = load_genuine_server_logger(path, "iot_drivers", helpers, SimpleNamespace(IS_TEST=True))
        self.check_in(identifier=SERIAL, mac="aa:bb:cc:dd:ee:19", version="L25.07-19.0#1a2b3c4")
        box = self.box(SERIAL)
        handler = genuine_handler(module, self.base_url())
        box_logger = logging.getLogger("iot_update_tests_box_19")
        box_logger.addHandler(handler)
        box_logger.propagate = False
        self.addCleanup(setattr, box_logger, "propagate", True)
        self.addCleanup(box_logger.removeHandler, handler)
        box_logger.info("printer found")  # below the level kept
        box_logger.warning("printer out of paper")
        box_logger.critical("disk full <log/>\nstill the same line")
        self.env.flush_all()
        with self.assertNoLogs(module.__name__, "INFO"):
            handler._flush_logs(requests.Session())
        self.env.invalidate_all()
        lines = self.log_lines(box)
        self.assertEqual(lines.mapped("level"), ["warning", "critical"])
        self.assertIn("printer out of paper", lines[0].message)
        self.assertIn("disk full <log/>\nstill the same line", lines[1].message)
        self.assertTrue(box.reporting_errors)


class TestBoxLogRefusals(BoxLogHttpMixin, IotHttpCase):
    def setUp(self):
        super().setUp()
        self.check_in(identifier=MAC)
        self.known = self.box(MAC)

    def body(self, key=f"mac {MAC}", lines=((40, "boom"),)):
        return b"".join(f"{text}<log/>\n".encode() for text in [key, *(f"{no},{msg}" for no, msg in lines)])

    def test_accepted_batch(self):
        self.assert_empty_ok(self.post_log(self.body(lines=[(30, "w"), (20, "i"), (50, "c")])))
        self.assertEqual(self.log_lines(self.known).mapped("message"), ["w", "c"])

    def test_refused_requests_write_nothing(self):
        archived = self.Box.create({"name": "old", "identifier": "aa:bb:cc:dd:ee:0a", "active": False})
        archived.checkin_remote_addr = "127.0.0.1"
        other_addr = self.Box.create({"name": "far", "identifier": "aa:bb:cc:dd:ee:0b"})
        other_addr.write({"checkin_remote_addr": "203.0.113.5", "bus_remote_addr": "203.0.113.6"})

        def big_chunks():
            for __ in range(160):
                yield b"40," + b"x" * 65536 + b"<log/>\n"

        cases = [
            ("unknown MAC", self.body("mac aa:bb:cc:dd:ee:99")),
            ("unknown serial", self.body("identifier SN-NOBODY")),
            ("archived box", self.body("mac aa:bb:cc:dd:ee:0a")),
            ("another address", self.body("mac aa:bb:cc:dd:ee:0b")),
            ("garbage", b"\x00\xff garbage"),
            ("empty", b""),
            ("no header", b"40,boom<log/>\n"),
            ("not UTF-8", self.body(lines=[(40, "x")]).replace(b"x", b"\xff")),
            ("unterminated", self.body()[:-1]),
            ("10 MB", self.body() + b"40," + b"x" * (10 * 1024 * 1024) + b"<log/>\n"),
            ("10 MB chunked", big_chunks()),
        ]
        for name, body in cases:
            with self.subTest(name), self.assertLogs(ADDON_LOGGER, "WARNING") as logs:
                box_log_refusals.reset()
                self.assert_empty_ok(self.post_log(body))
                self.assertFalse(self.log_lines())
                self.env.invalidate_all()
                self.assertFalse(self.Box.with_context(active_test=False).search([("last_error_date", "!=", False)]))
            self.assertIn("refused", logs.output[0])

    def test_a_batch_below_the_level_kept_is_not_refused(self):
        """A box whose level an administrator raised sends batches of info
        lines: nothing to keep, so nothing to refuse or log, even from a box
        this server does not know."""
        with self.assertNoLogs(ADDON_LOGGER, "WARNING"):
            for key in (f"mac {MAC}", "mac aa:bb:cc:dd:ee:99"):
                box_log_refusals.reset()
                self.assert_empty_ok(self.post_log(self.body(key, lines=[(20, "status polled")])))
            self.assertFalse(self.log_lines())

    def test_form_body_over_the_limit(self):
        """A form body is read by Odoo before the route: over the limit it is
        refused unread by Odoo, still answered 200 with an empty body."""
        with self.assertLogs(CONTROLLER_LOGGER, "WARNING"):
            response = self.post_log(
                b"a=" + b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/x-www-form-urlencoded"}
            )
        self.assert_empty_ok(response)
        self.assertFalse(self.log_lines())

    def test_bus_address_is_the_box_address_too(self):
        self.known.write({"checkin_remote_addr": "203.0.113.5", "bus_remote_addr": "127.0.0.1"})
        self.assert_empty_ok(self.post_log(self.body()))
        self.assertEqual(len(self.log_lines(self.known)), 1)

    def test_proxy_mode_reads_the_forwarded_address(self):
        """Behind --proxy-mode the box's address is X-Forwarded-For's: the one
        its check-in was recorded with; a forged header without proxy mode is
        not believed."""
        self.known.checkin_remote_addr = "198.51.100.7"
        forwarded = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Host": "localhost"}
        with self.assertLogs(ADDON_LOGGER, "WARNING"):
            self.assert_empty_ok(self.post_log(self.body(), headers=forwarded))
            self.assertFalse(self.log_lines())
        with patch.dict(config.options, {"proxy_mode": True}):
            self.assert_empty_ok(self.post_log(self.body(), headers=forwarded))
        self.assertEqual(self.log_lines(self.known).mapped("remote_addr"), ["198.51.100.7"])

    def test_a_forged_address_before_the_proxy_s_own_is_not_believed(self):
        """nginx (``proxy_add_x_forwarded_for``) appends the address it received
        the request from to whatever X-Forwarded-For the client sent: Odoo's
        proxy mode reads the last one (one proxy). A stranger who writes the
        box's address first is still the stranger."""
        self.known.checkin_remote_addr = "198.51.100.7"
        chain = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9", "X-Forwarded-Host": "localhost"}
        with patch.dict(config.options, {"proxy_mode": True}), self.assertLogs(ADDON_LOGGER, "WARNING") as logs:
            self.assert_empty_ok(self.post_log(self.body(), headers=chain))
            self.assertFalse(self.log_lines())
        self.assertIn("203.0.113.9", logs.output[0])
        # The box itself, behind the same proxy: its address is the last one.
        behind = {"X-Forwarded-For": "10.9.8.7, 198.51.100.7", "X-Forwarded-Host": "localhost"}
        with patch.dict(config.options, {"proxy_mode": True}):
            self.assert_empty_ok(self.post_log(self.body(), headers=behind))
        self.assertEqual(self.log_lines(self.known).mapped("remote_addr"), ["198.51.100.7"])

    def test_a_flood_of_refusals_logs_one_line(self):
        counter = []
        with self.assertLogs(ADDON_LOGGER, "WARNING") as logs:
            for index in range(30):
                counter.append(self.post_log(self.body(f"mac aa:bb:cc:dd:ee:{index:02x}0")).status_code)
            self.assertFalse(self.log_lines())
        self.assertEqual(set(counter), {200})
        self.assertEqual(len(logs.output), 1)

    def test_only_post(self):
        with mute_logger("odoo.http"):
            self.assertEqual(self.url_open("/iot/log").status_code, 405)


class TestBoxLogTour(BrowserCleanupMixin, BoxLogHttpMixin, IotHttpCase):
    def test_dashboard_flags_the_box_and_its_form_shows_the_line(self):
        self.check_in(identifier=MAC, name="tour-erroring")
        self.check_in(identifier="aa:bb:cc:dd:ee:02", name="tour-quiet")
        body = f"mac {MAC}<log/>\n40,... ERROR ... helpers: Unable to load file: BrokenDriver.py <log/>\n"
        self.assert_empty_ok(self.post_log(body.encode()))
        self.write_box_lines()
        try:
            self.start_tour("/odoo/action-iot_update.iot_box_action", "iot_update_box_log_tour", login="admin")
        except unittest.SkipTest as error:
            self.fail(f"Chromium is installed but the tour could not run: {error}")
