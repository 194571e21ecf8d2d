# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The fleet benchmark's client: the boxes' requests, the restart schedule and
what it reads in the server's log, against a local HTTP server."""

import ast
import importlib.util
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fleet_bench.py"
_spec = importlib.util.spec_from_file_location("fleet_bench", BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.received.append((time.perf_counter(), self.path, self.headers["Content-Type"], body))
        answer = b'{"jsonrpc": "2.0", "id": null, "result": ""}' if self.path == bench.SETUP else b"zip bytes"
        self.send_response(200)
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
    httpd.lock = threading.Lock()
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def fleet(count):
    return [bench.Box(spec, "pairing-token") for spec in bench.plan_fleet(count, seed=7, style="18")]


def test_restart_spreads_the_boxes_and_each_checks_in_before_its_download(server):
    host, port = server.server_address
    boxes = fleet(10)
    stack_size = threading.stack_size()
    timings, elapsed, late = bench.restart(f"http://{host}:{port}", boxes, 0.5)
    # The boxes' small thread stacks are not left to the process's later threads
    # (e.g. an Odoo server's request threads in the same test run).
    assert threading.stack_size() == stack_size
    assert late == 0
    assert timings.errors == []
    assert [timings.row(route)["n"] for route in (bench.SETUP, bench.HANDLERS)] == [10, 10]
    assert elapsed >= 0.45
    received = sorted(server.received)
    setups = [json.loads(body)["params"]["iot_box"] for __, path, __, body in received if path == bench.SETUP]
    assert sorted(box["identifier"] for box in setups) == sorted(box.spec.identifier for box in boxes)
    assert {box["token"] for box in setups} == {"pairing-token"}
    for box in boxes:
        paths = [path for __, path, __, body in received if box.spec.mac.encode() in body]
        assert paths == [bench.SETUP, bench.HANDLERS]
    # Spread over the half second: the last box does not start before 0.45 s after the first.
    starts = [moment for moment, path, __, __ in received if path == bench.SETUP]
    assert starts[-1] - starts[0] >= 0.4


def test_log_facts_count_recorded_changes_processes_and_errors():
    text = "\n".join(
        [
            "2026-11-30 03:43:00,100 101 INFO db odoo.addons.iot_update.models.iot_handlers_bundle: "
            "IoT handlers bundle all abc noticed (current): handlers flag or status changed on 10 boxes",
            "2026-11-30 03:43:00,200 101 INFO db odoo.addons.iot_update.models.iot_handlers_bundle: "
            "IoT handlers bundle linux def noticed (current): handlers flag or status changed on 7 boxes",
            "2026-11-30 03:43:01,300 102 INFO db odoo.addons.iot_update.models.iot_handlers_bundle: "
            "IoT handlers bundle windows ghi noticed (current): handlers flag or status changed on 3 boxes",
            "2026-11-30 03:43:02,400 103 ERROR db odoo.sql_db: bad query: could not serialize access",
            "2026-11-30 03:43:02,500 103 WARNING db odoo.http: something else",
        ]
    )
    facts = bench.log_facts(text)
    assert (facts["changes"], facts["processes"], facts["errors"]) == (3, 2, 1)
    assert "could not serialize access" in facts["error_lines"][0]


def test_the_change_line_is_the_one_the_addon_logs():
    """The addon's log format, read from its source (no Odoo needed), makes a
    line the benchmark counts: a reworded log line must not make it count 0."""
    source = (Path(__file__).parents[2] / "iot_update" / "models" / "iot_handlers_bundle.py").read_text()
    [fmt] = [
        node.value.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and [target.id for target in node.targets] == ["NOTICED_LOG"]
    ]
    line = fmt % ("linux", "0" * 64, "held", 12)
    assert bench.CHANGE_LINE.search(line).group(1) == "linux"
