# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""A driver that fails to load on a simulated box (``--broken-driver``):
the batch it posts to ``/iot/log`` is byte for byte the one the genuine 18.0
box builds (its ``load_iot_handlers`` logging the failure through its
``AsyncHTTPHandler``), and its next check-in lacks the driver's devices.

The genuine box code is loaded from the Odoo tree when there is one, as the
addon's ``test_box_log_http.py`` does: each file as a lone module, the box's
threads not started, the handler's queue flushed by the test."""

import importlib.util
import io
import json
import logging
import sys
import threading
import time
import types
import warnings
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import patch

import pytest
import requests

from iotbox_sim.boxlog import DEFAULT_ERROR, HELPERS_LOGGER, BrokenDriver, load_error_lines
from iotbox_sim.cli import HANDLERS, LOG, SETUP, Report, main, post_log, run, start_box, stay_on
from iotbox_sim.fleet import plan_fleet

DRIVER = "ShelfLabelDriver.py"
#: 2026-03-02 10:11:12.345 UTC: the time both the genuine box and the simulator log at.
FIXED = 1772446272.345


def bundle_zip(*entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for entry in entries:
            bundle.writestr(entry, "x = 1\n")
    return buffer.getvalue()


class Recorder(ThreadingHTTPServer):
    """Records the POSTs (chunked bodies decoded); answers the check-ins with
    no channel and the handlers route with ``self.bundle``."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RecorderHandler)
        self.requests = []
        self.bundle = b""
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_port}"


class RecorderHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            chunk = self.rfile.read(size)
            self.rfile.readline()
            if not size:
                return body
            body += chunk

    def do_POST(self):
        body = self.read_body()
        with self.server.lock:
            self.server.requests.append((self.path, dict(self.headers), body))
        payload = b""
        if self.path == SETUP:
            payload = json.dumps({"jsonrpc": "2.0", "id": None, "result": ""}).encode()
        elif self.path == HANDLERS:
            payload = self.server.bundle
        elif self.path == "/web/webclient/version_info":
            payload = json.dumps({"result": {"server_serie": "18.0"}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def recorder():
    value = Recorder()
    yield value
    value.shutdown()
    value.server_close()


@pytest.fixture
def server(recorder):
    recorder.requests.clear()
    recorder.bundle = b""
    return recorder


@pytest.fixture
def session():
    with requests.Session() as value:
        yield value


FLEET = plan_fleet(12, seed=1)
#: 18.0-style Linux box with a printer and a scale; a Windows one.
BOX = FLEET[3]._replace(
    devices={
        "usb_printer_3": {"name": "Epson", "type": "printer", "manufacturer": "Epson", "connection": "direct"},
        "serial_scale_3": {"name": "Toledo", "type": "scale", "manufacturer": "Toledo", "connection": "serial"},
    }
)
WINDOWS_BOX = FLEET[4]


# ----------------------------------------------------------------------
# Against the genuine 18.0 box code
# ----------------------------------------------------------------------


def genuine_hw_drivers():
    """The 18.0 ``hw_drivers`` folder of the importable Odoo (skip without one)."""
    odoo = pytest.importorskip("odoo")
    folder = Path(odoo.__file__).resolve().parent.parent / "addons" / "hw_drivers"
    if not (folder / "server_logger.py").is_file() or not (folder / "tools" / "helpers.py").is_file():
        pytest.skip(f"no 18.0 hw_drivers (the genuine box code) in {folder.parent}")
    return folder


def load_lone_module(name, path, modules=None):
    """``path`` loaded as the module ``name`` without registering it (its
    package is not imported: that would start the box's threads)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # helpers.py imports netifaces (a box-only library) at module level, only
    # for get_ip / get_mac_address, which the test replaces.
    stand_ins = {} if importlib.util.find_spec("netifaces") else {"netifaces": types.ModuleType("netifaces")}
    with patch.dict(sys.modules, {**stand_ins, **(modules or {})}), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # helpers.py imports the deprecated crypt
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def genuine_box(tmp_path):
    """``(helpers, handler)``: the genuine 18.0 ``helpers`` (with its box
    logger's name, its handlers in ``tmp_path``) and an ``AsyncHTTPHandler``
    of the genuine ``server_logger`` with its formatter and filter, attached
    to that logger and whose queue the test flushes."""
    folder = genuine_hw_drivers()
    netsvc = pytest.importorskip("odoo.netsvc")
    # The box's records are Odoo's (with perf_info), as on the box.
    previous_factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(netsvc.LogRecord)
    helpers = load_lone_module(HELPERS_LOGGER, folder / "tools" / "helpers.py")
    helpers.file_path = lambda path: str(tmp_path / "odoo" / "addons" / path)
    helpers.get_mac_address = lambda: BOX.mac
    package = types.ModuleType("odoo.addons.hw_drivers.tools")
    package.helpers = helpers
    root = logging.getLogger()
    before = list(root.handlers)
    with (
        patch.object(helpers, "get_odoo_server_url", lambda: None),
        patch.object(helpers, "get_conf", lambda *args, **kwargs: None),
    ):
        try:
            logger_module = load_lone_module(
                "iotbox_sim_tests_genuine_server_logger",
                folder / "server_logger.py",
                {"odoo.addons.hw_drivers.tools": package, "odoo.addons.hw_drivers.tools.helpers": helpers},
            )
        finally:
            for added in set(root.handlers) - set(before):  # the box's own handler: never here
                root.removeHandler(added)
    handler = logger_module.AsyncHTTPHandler(None, False)  # no flush thread
    handler.setFormatter(logger_module._server_log_sender_handler.formatter)
    handler.addFilter(logger_module._server_log_sender_handler_filter)
    handler._active = True
    box_logger = logging.getLogger(HELPERS_LOGGER)
    box_logger.addHandler(handler)
    # The box's error lines go to its handler, not to this run's log.
    propagate, box_logger.propagate = box_logger.propagate, False
    try:
        yield helpers, handler
    finally:
        box_logger.propagate = propagate
        box_logger.removeHandler(handler)
        logging.setLogRecordFactory(previous_factory)


def at_fixed_time():
    """Records created at FIXED (the box and the simulator log at the same instant)."""
    return patch.multiple(time, time=lambda: FIXED, time_ns=lambda: int(FIXED * 1e9))


def test_batch_is_the_genuine_18_box_batch(genuine_box, tmp_path, server, session):
    helpers, handler = genuine_box
    drivers = tmp_path / "odoo" / "addons" / "hw_drivers" / "iot_handlers" / "drivers"
    drivers.mkdir(parents=True)
    (drivers.parent / "interfaces").mkdir()
    # A driver importing a library the image lacks: DEFAULT_ERROR is its error.
    (drivers / DRIVER).write_text("import missing_sdk\n")
    with at_fixed_time():
        helpers.load_iot_handlers()
    assert handler._log_queue.qsize() == 2
    # The box's sender flushes in its own thread (no database: "?").
    handler._odoo_server_url = server.url
    flush = threading.Thread(target=handler._flush_logs, args=(requests.Session(),))
    flush.start()
    flush.join(30)
    [(path, headers, genuine)] = server.requests
    assert path == LOG
    assert headers["Transfer-Encoding"] == "chunked"

    server.requests.clear()
    with at_fixed_time():
        lines = load_error_lines(DRIVER, DEFAULT_ERROR)
    call = post_log(session, server.url, BOX, lines)
    assert (call.endpoint, call.status, call.ok) == (LOG, 200, True)
    [(path, headers, body)] = server.requests
    assert path == LOG
    assert headers["Transfer-Encoding"] == "chunked"
    assert body == genuine
    # What SPEC 3.6 says of it, read back from the genuine bytes.
    first, unable, error, end = genuine.split(b"<log/>\n")
    assert (first, end) == (f"mac {BOX.mac}".encode(), b"")
    assert unable.startswith(b"40,") and unable.endswith(
        f" ERROR ? {HELPERS_LOGGER}: Unable to load file: {DRIVER}  ".encode()
    )
    assert error.endswith(f"An error encountered : {DEFAULT_ERROR}  ".encode())


# ----------------------------------------------------------------------
# The box that breaks
# ----------------------------------------------------------------------


def test_broken_box_logs_and_checks_in_without_the_drivers_devices(server, session):
    server.bundle = bundle_zip(f"drivers/{DRIVER}", "interfaces/SerialInterface.py")
    broken = BrokenDriver(DRIVER, frozenset({BOX.name}), frozenset({"scale"}))
    result, __ = start_box(session, server.url, BOX, "tok", broken=broken)
    assert [path for path, *__ in server.requests] == [SETUP, HANDLERS, LOG, SETUP]
    first, second = (json.loads(body)["params"] for path, __, body in server.requests if path == SETUP)
    assert first["devices"] == BOX.devices
    assert second == {**first, "devices": {"usb_printer_3": BOX.devices["usb_printer_3"]}}
    log_body = server.requests[2][2]
    assert log_body.startswith(f"mac {BOX.mac}<log/>\n40,".encode())
    assert log_body.count(b"<log/>\n") == 3
    assert (result.log.outcome, result.recheck.outcome) == (
        "sent 2 lines",
        "answered 200 (channel ''), without serial_scale_3",
    )
    assert all(call.ok for call in result.calls)


@pytest.mark.parametrize(
    "box, entry, driver",
    [
        (BOX, "drivers/OtherDriver.py", DRIVER),  # the bundle lacks the file
        (FLEET[0], f"drivers/{DRIVER}", DRIVER),  # another box
        (BOX, f"other/{DRIVER}", DRIVER),  # not a handler folder
        (BOX, "drivers/ShelfLabelDriver_W.py", "ShelfLabelDriver_W.py"),  # a Linux box does not load it
    ],
)
def test_box_that_does_not_break(server, session, box, entry, driver):
    server.bundle = bundle_zip(entry)
    broken = BrokenDriver(driver, frozenset({BOX.name}), frozenset({"scale"}))
    result, __ = start_box(session, server.url, box, "tok", broken=broken)
    assert [path for path, *__ in server.requests] == [SETUP, HANDLERS]
    assert (result.log, result.recheck) == (None, None)


def test_windows_box_breaks_on_a_file_it_loads(server, session):
    server.bundle = bundle_zip("drivers/ShelfLabelDriver_W.py")
    broken = BrokenDriver("ShelfLabelDriver_W.py", frozenset({WINDOWS_BOX.name}), frozenset({"scale"}))
    result, __ = start_box(session, server.url, WINDOWS_BOX, "tok", broken=broken)
    assert [path for path, *__ in server.requests] == [SETUP, HANDLERS, LOG, SETUP]
    assert result.recheck.outcome.endswith("without no device")


def test_refused_box_does_not_break(server, session):
    server.bundle = b""  # 200 with an empty body: the refusal of an 18.0 box
    broken = BrokenDriver(DRIVER, frozenset({BOX.name}), frozenset({"scale"}))
    start_box(session, server.url, BOX, "tok", broken=broken)
    assert [path for path, *__ in server.requests] == [SETUP, HANDLERS]


def test_command_line_breaks_the_named_box(server):
    server.bundle = bundle_zip(f"drivers/{DRIVER}")
    lines = []
    argv = ["--url", server.url, "--token", "tok", "--boxes", "4", "--seed", "1", "--concurrency", "1"]
    code = main([*argv, "--broken-driver", DRIVER, "--broken-boxes", "sim-00-linux-current"], out=lines.append)
    assert code == 0
    assert [path for path, *__ in server.requests].count(LOG) == 1
    broken = next(line for line in lines if line.startswith("sim-00-linux-current"))
    assert "a driver failed to load: /iot/log sent 2 lines; check-in again: answered 200" in broken
    assert not any("failed to load" in line for line in lines if not line.startswith("sim-00"))


def test_command_line_without_broken_boxes_breaks_nothing(server):
    server.bundle = bundle_zip(f"drivers/{DRIVER}")
    argv = ["--url", server.url, "--token", "tok", "--boxes", "4", "--seed", "1"]
    assert main([*argv, "--broken-driver", DRIVER], out=lambda line: None) == 0
    assert LOG not in [path for path, *__ in server.requests]


def test_only_18_style_boxes_of_the_fleet_break(server):
    lines = []
    argv = ["--url", server.url, "--token", "tok", "--boxes", "8", "--seed", "1", "--broken-driver", DRIVER]
    # Box 6 is 19-style (the styles alternate every six boxes).
    assert main([*argv, "--broken-boxes", "sim-06-linux-current"], out=lines.append) == 2
    assert lines == ["iotbox-sim: error: --broken-boxes: only 18.0-style boxes break (not sim-06-linux-current)"]
    with pytest.raises(ValueError, match="no such box in the fleet: sim-99"):
        run(server.url, "tok", boxes=8, seed=1, broken=BrokenDriver(DRIVER, frozenset({"sim-99"}), frozenset()))
    assert server.requests == [] or {path for path, *__ in server.requests} == {"/web/webclient/version_info"}


def test_broken_boxes_need_a_driver(capsys):
    with pytest.raises(SystemExit):
        main(["--token", "tok", "--broken-boxes", "sim-00-linux-current"])
    assert "--broken-boxes needs --broken-driver" in capsys.readouterr().err


# ----------------------------------------------------------------------
# Restarts
# ----------------------------------------------------------------------


def test_boxes_restart_one_after_the_other(server):
    server.bundle = bundle_zip(f"drivers/{DRIVER}")
    fleet = plan_fleet(3, seed=1)
    broken = BrokenDriver(DRIVER, frozenset({fleet[0].name}), frozenset({"scale"}))
    report = run(server.url, "tok", boxes=3, seed=1, broken=broken)
    server.requests.clear()
    args = SimpleNamespace(
        url=server.url, token="tok", off=set(), db=None, reconnect=5, handlers=True, broken=broken,
        state_file=None, restart_every=0.3,
    )  # fmt: skip
    until = threading.Event()
    lines = []

    def stop_after_two_rounds():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sum(line.startswith("restart: ") for line in lines) < 6:
            time.sleep(0.05)
        until.set()

    threading.Thread(target=stop_after_two_rounds, daemon=True).start()
    stay_on(args, report, out=lines.append, until=until)
    restarts = [line for line in lines if line.startswith("restart: ")]
    assert [line.split()[1] for line in restarts[:6]] == [box.name for box in fleet] * 2
    assert all(("failed to load" in line) == (fleet[0].name in line) for line in restarts)
    paths = [path for path, *__ in server.requests]
    assert paths[:4] == [SETUP, HANDLERS, LOG, SETUP]  # the broken box first


def test_no_restarts_by_default(server):
    report = Report([], [], 0.1, "18.0")
    args = SimpleNamespace(url=server.url, token="tok", off=set(), db=None, reconnect=5)
    until = threading.Event()
    until.set()
    stay_on(args, report, out=lambda line: None, until=until)
    assert server.requests == []
