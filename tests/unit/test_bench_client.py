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


def test_run_load_keeps_every_client_sending_for_the_window(server):
    host, port = server.server_address
    bodies = [bench.box_body(mac) for mac in ("02:00:00:00:00:01", "02:00:00:00:00:02")]
    spans, window, size = bench.run_load(host, port, "/iot/get_handlers", bodies, 0.3, 3)
    begin, end = window
    assert end - begin == pytest.approx(0.3)
    assert size == len(b"zip bytes")
    assert len(spans) == len(server.received) > 3
    # Every request started within the window; only the last of each client may end after it.
    assert all(begin <= start < end and start < stop for start, stop in spans)
    assert sum(stop > end for __, stop in spans) <= 3
    macs = {form_fields(content_type, body)["mac"] for __, content_type, body in server.received}
    assert macs == {"02:00:00:00:00:01", "02:00:00:00:00:02"}


@pytest.mark.parametrize("answer", [(500, b"oops"), (200, b"")])
def test_run_load_fails_on_errors_and_empty_answers(server, answer):
    server.answer = answer
    host, port = server.server_address
    with pytest.raises(RuntimeError, match="2 clients failed"):
        bench.run_load(host, port, "/iot/get_handlers", [bench.box_body("02:00:00:00:00:01")], 0.2, 2)


def test_work_done_counts_the_part_inside_the_window():
    spans = [(0.0, 1.0), (1.0, 3.0), (9.0, 11.0), (10.0, 10.0)]
    # Whole, whole, half (crosses the end), and a zero-length span ignored.
    assert bench.work_done(spans, (0.0, 10.0)) == pytest.approx(2.5)


def test_summarize():
    row = bench.summarize([0.004, 0.001, 0.003, 0.002] * 25, 99.5, 0.5, 42)
    assert row["rps"] == pytest.approx(199)
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
    results = bench.measure(f"http://{host}:{port}", ["m"], 0.05, 2, 1, 3)
    paths = [path for path, __, __ in server.received]
    # Warm-up once per route, then the routes in turn, three rounds per mode.
    assert paths[:3] == ["/a", "/b", "/c"]
    turns = [path for number, path in enumerate(paths[3:]) if number == 0 or path != paths[3 + number - 1]]
    assert turns == ["/a", "/b", "/c"] * 6
    for label in "abc":
        assert set(results[label]) == {"sequential", "2 boxes"}
        assert all(row["rps"] > 0 and row["count"] > 0 for row in results[label].values())


def test_listen_overflows(tmp_path):
    netstat = tmp_path / "netstat"
    netstat.write_text(
        "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 17 17\nIpExt: InNoRoutes\nIpExt: 0\n"
    )
    assert bench.listen_overflows(netstat) == 17
    netstat.write_text("IpExt: InNoRoutes\nIpExt: 0\n")
    assert bench.listen_overflows(netstat) is None
    assert bench.listen_overflows(tmp_path / "missing") is None
