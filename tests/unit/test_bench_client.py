# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The benchmark's client: the body it sends, how it loads a server and what
it reports, against a local HTTP server."""

import importlib.util
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "handlers_bench.py"
_spec = importlib.util.spec_from_file_location("handlers_bench", BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, self.headers["Content-Type"], body))
        status, answer = self.server.answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.received = []
    httpd.answer = (200, b"zip bytes")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def form_fields(content_type, body):
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    return {part.get_param("name", header="content-disposition"): part.get_content() for part in message.iter_parts()}


def test_box_body_is_the_genuine_box_form():
    body, headers = bench.box_body("02:00:00:00:00:07")
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert form_fields(headers["Content-Type"], body) == {"mac": "02:00:00:00:00:07", "auto": "True"}


def test_routes_measured():
    calls = bench.route_calls(["02:00:00:00:00:01", "02:00:00:00:00:02"])
    assert [path for path, __ in calls.values()] == [
        "/iot/get_handlers",
        "/iot_update_bench/get_handlers",
        "/web/webclient/version_info",
    ]
    handlers_bodies = calls["(a) /iot/get_handlers"][1]
    assert handlers_bodies == calls["(b) zip on every call"][1]
    assert [form_fields(h["Content-Type"], b)["mac"] for b, h in handlers_bodies] == [
        "02:00:00:00:00:01",
        "02:00:00:00:00:02",
    ]


def test_run_load_sends_every_request_from_every_client(server):
    host, port = server.server_address
    bodies = [bench.box_body(mac) for mac in ("02:00:00:00:00:01", "02:00:00:00:00:02")]
    latencies, elapsed, size = bench.run_load(host, port, "/iot/get_handlers", bodies, 12, 3)
    assert len(latencies) == 12
    assert all(0 < latency <= elapsed for latency in latencies)
    assert size == len(b"zip bytes")
    macs = [form_fields(content_type, body)["mac"] for __, content_type, body in server.received]
    assert sorted(macs) == ["02:00:00:00:00:01"] * 8 + ["02:00:00:00:00:02"] * 4


@pytest.mark.parametrize("answer", [(500, b"oops"), (200, b"")])
def test_run_load_fails_on_errors_and_empty_answers(server, answer):
    server.answer = answer
    host, port = server.server_address
    with pytest.raises(RuntimeError, match="clients failed"):
        bench.run_load(host, port, "/iot/get_handlers", [bench.box_body("02:00:00:00:00:01")], 4, 2)


def test_summarize():
    row = bench.summarize([0.004, 0.001, 0.003, 0.002] * 25, 0.5, 42)
    assert row["rps"] == 200
    assert row["p50"] == pytest.approx(2.5)
    assert row["p99"] == pytest.approx(4)
    assert (row["bytes"], row["count"]) == (42, 100)


def test_measure_alternates_routes_in_rounds(server, monkeypatch):
    host, port = server.server_address
    monkeypatch.setattr(
        bench,
        "route_calls",
        lambda macs: {label: (f"/{label}", [(b"x", {"Content-Type": "text/plain"})]) for label in "abc"},
    )
    results = bench.measure(f"http://{host}:{port}", ["m"], 6, 2, 1, 3)
    paths = [path for path, __, __ in server.received]
    # Warm-up once per route, then each mode's rounds in turn: a a b b c c, three times.
    assert paths[:3] == ["/a", "/b", "/c"]
    assert paths[3:21] == ["/a", "/a", "/b", "/b", "/c", "/c"] * 3
    assert len(paths) == 3 + 18 + 18
    assert {mode: row["count"] for mode, row in results["a"].items()} == {"sequential": 6, "2 boxes": 6}


def test_listen_overflows(tmp_path):
    netstat = tmp_path / "netstat"
    netstat.write_text(
        "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 17 17\nIpExt: InNoRoutes\nIpExt: 0\n"
    )
    assert bench.listen_overflows(netstat) == 17
    netstat.write_text("IpExt: InNoRoutes\nIpExt: 0\n")
    assert bench.listen_overflows(netstat) is None
    assert bench.listen_overflows(tmp_path / "missing") is None
