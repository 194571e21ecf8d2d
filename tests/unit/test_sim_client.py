# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""What the simulator sends and how it reads the answers, against a local
HTTP server that records the requests and answers what each test sets."""

import io
import json
import socket
import threading
import zipfile
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
import requests

from iotbox_sim.cli import HANDLERS, SETUP, check_in, get_handlers, main, run
from iotbox_sim.fleet import PROFILES, plan_fleet, setup_payload


def make_zip():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("drivers/printer_L.py", "x = 1\n")
        bundle.writestr("interfaces/usb.py", "y = 2\n")
    return buffer.getvalue()


ZIP = make_zip()


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RecorderHandler)
        self.requests = []
        self.answers = {}  # path -> (status, headers, body)
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_port}"


class RecorderHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.requests.append((self.path, dict(self.headers), body))
        default = (200, {}, json.dumps({"jsonrpc": "2.0", "id": None, "result": ""}).encode())
        if self.path == "/web/webclient/version_info":
            default = (200, {}, json.dumps({"result": {"server_serie": "saas~18.4"}}).encode())
        status, headers, payload = self.server.answers.get(self.path, default)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
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
    recorder.answers.clear()
    return recorder


@pytest.fixture
def session():
    with requests.Session() as value:
        yield value


BOX18, BOX19 = plan_fleet(2 * len(PROFILES), seed=9)[0], plan_fleet(2 * len(PROFILES), seed=9)[len(PROFILES)]


def form(headers, body):
    """The form fields of a recorded request, multipart or urlencoded."""
    content_type = headers["Content-Type"]
    if not content_type.startswith("multipart/form-data"):
        return dict(parse_qsl(body.decode()))
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    return {part.get_param("name", header="content-disposition"): part.get_content() for part in message.iter_parts()}


def test_check_in_sends_the_genuine_bytes(server, session):
    call = check_in(session, server.url, BOX18, "tok")
    assert (call.endpoint, call.status, call.ok, call.outcome) == (SETUP, 200, True, "answered 200 (channel '')")
    path, headers, body = server.requests[0]
    assert path == "/iot/setup"
    assert body == json.dumps(setup_payload(BOX18, "tok")).encode("utf8")
    assert headers["Content-type"] == "application/json"
    assert headers["Accept"] == "text/plain"


@pytest.mark.parametrize(
    "status, body, outcome",
    [
        (
            400,
            b'{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"}}',
            "error 400: Invalid request",
        ),
        (500, b"<html>boom</html>", "error 500"),
        (200, b"not json", "error 200"),
    ],
)
def test_check_in_errors(server, session, status, body, outcome):
    server.answers["/iot/setup"] = (status, {}, body)
    call = check_in(session, server.url, BOX18, "tok")
    assert (call.status, call.ok, call.outcome) == (status, False, outcome)


def test_18_box_asks_handlers_with_multipart_mac(server, session):
    server.answers[HANDLERS] = (200, {"ETag": '"abc"'}, ZIP)
    call, etag = get_handlers(session, server.url, BOX18, etag="ignored")
    assert (call.status, call.ok, call.outcome) == (200, True, f"downloaded 2 files ({len(ZIP)} bytes)")
    assert etag == "ignored"  # an 18.0 box keeps no ETag
    path, headers, body = server.requests[0]
    assert path == HANDLERS
    assert headers["Content-Type"].startswith("multipart/form-data")
    assert form(headers, body) == {"mac": BOX18.mac, "auto": "True"}
    assert "If-None-Match" not in headers


def test_19_box_asks_handlers_with_identifier_and_keeps_the_bare_etag(server, session):
    server.answers[HANDLERS] = (200, {"ETag": '"abc123"'}, ZIP)
    call, etag = get_handlers(session, server.url, BOX19)
    assert (call.status, etag) == (200, "abc123")
    __, headers, body = server.requests[0]
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(headers, body) == {"identifier": BOX19.identifier, "auto": "True"}
    assert "If-None-Match" not in headers

    server.answers[HANDLERS] = (304, {}, b"")
    call, etag = get_handlers(session, server.url, BOX19, etag)
    assert (call.status, call.ok, call.outcome, etag) == (304, True, "not modified (304)", "abc123")
    assert server.requests[1][1]["If-None-Match"] == "abc123"


@pytest.mark.parametrize(
    "box, status, body, outcome, ok",
    [
        (BOX18, 200, b"", "refused (200, empty body)", True),
        (BOX19, 401, b"", "refused (401)", True),
        (BOX18, 401, b"", "error 401", False),
        (BOX18, 404, b"<html>Not Found</html>", "no handlers route on the server (404)", False),
        (BOX19, 500, b"", "error 500", False),
        (BOX18, 200, b"PK not a zip", "error: the body is not a zip", False),
    ],
)
def test_handlers_outcomes(server, session, box, status, body, outcome, ok):
    server.answers[HANDLERS] = (status, {}, body)
    call, etag = get_handlers(session, server.url, box, "kept")
    assert (call.status, call.outcome, call.ok, etag) == (status, outcome, ok, "kept")


def test_unreachable_server(session):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    call = check_in(session, f"http://127.0.0.1:{port}", BOX18, "tok")
    assert (call.status, call.ok, call.outcome) == (0, False, "unreachable (ConnectionError)")


def test_run_asks_the_series_and_keeps_etags_between_runs(server, tmp_path):
    server.answers[HANDLERS] = (200, {"ETag": '"v1"'}, ZIP)
    state = tmp_path / "state.json"
    report = run(server.url, "tok", boxes=12, seed=9, concurrency=3, state_file=state)
    assert report.server_series == "saas~18.4"
    assert report.ok
    assert [result.box for result in report.results] == plan_fleet(12, seed=9, server_series="saas~18.4")
    nineteen = {box.identifier for box in plan_fleet(12, seed=9) if box.style == "19"}
    assert json.loads(state.read_text())["etags"] == dict.fromkeys(nineteen, "v1")

    server.requests.clear()
    run(server.url, "tok", boxes=12, seed=9, state_file=state)
    sent = {
        form(headers, body).get("identifier"): headers.get("If-None-Match")
        for path, headers, body in server.requests
        if path == HANDLERS
    }
    assert {key: value for key, value in sent.items() if key} == dict.fromkeys(nineteen, "v1")
    assert sent[None] is None  # 18.0-style boxes send no If-None-Match


def test_main_prints_boxes_and_load_statistics(server):
    lines = []
    code = main(
        ["--url", server.url, "--token", "tok", "--boxes", "3", "--repeat", "2", "--series", "18.0"], lines.append
    )
    assert code == 1  # the recorder answers JSON to /iot/get_handlers: not a zip
    assert len(lines) == 3 + 4
    assert lines[0].startswith("sim-00-linux-current")
    assert "answered 200" in lines[0]
    assert lines[3] == "3 boxes (server series 18.0), 0 failed check-ins"
    assert lines[4].startswith("12 requests in ")
    assert lines[5].split()[:5] == ["/iot/setup", "6", "requests", "0", "errors"]
    assert lines[6].split()[:5] == ["/iot/get_handlers", "6", "requests", "6", "errors"]
    assert all(word in lines[5] for word in ("req/s", "p50", "p95", "p99"))
    assert not any(path == "/web/webclient/version_info" for path, __, __ in server.requests)


def test_main_check_in_only(server):
    lines = []
    assert main(["--url", server.url, "--token", "tok", "--boxes", "2", "--no-handlers"], lines.append) == 0
    assert {path for path, __, __ in server.requests} == {"/iot/setup", "/web/webclient/version_info"}
    assert lines[-1] == "2 boxes (server series saas~18.4), 0 failed check-ins"


def test_check_in_keeps_the_channel_answered(server, session):
    server.answers["/iot/setup"] = (200, {}, json.dumps({"jsonrpc": "2.0", "id": None, "result": "chan-1"}).encode())
    assert check_in(session, server.url, BOX18, "tok").channel == "chan-1"
    server.answers["/iot/setup"] = (200, {}, json.dumps({"jsonrpc": "2.0", "id": None, "result": None}).encode())
    assert check_in(session, server.url, BOX18, "tok").channel == ""


def test_boxes_that_are_off_do_nothing(server):
    lines = []
    argv = ["--url", server.url, "--token", "tok", "--boxes", "3", "--no-handlers", "--series", "18.0"]
    assert main([*argv, "--off", "sim-01-linux-minimum, sim-07-nothing"], lines.append) == 0
    names = sorted(json.loads(body)["params"]["iot_box"]["name"] for __, __, body in server.requests)
    assert names == ["sim-00-linux-current", "sim-02-linux-old-image"]
    assert lines[-1] == "2 boxes (server series 18.0), 0 failed check-ins"
