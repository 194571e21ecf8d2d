# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The bus benchmark's client: what it counts as a box online, and how it
sorts the failed attempts of its subscribers."""

import base64
import hashlib
import importlib.util
import json
import logging
import socket
import struct
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from iotbox_sim.fleet import plan_fleet

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))  # bus_bench imports handlers_bench, as when run as a script
_spec = importlib.util.spec_from_file_location("bus_bench", BENCH_DIR / "bus_bench.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def stored_by_odoo(moment):
    """A datetime as Odoo stores it: to the second (``fields.Datetime.now()``)."""
    return moment.replace(microsecond=0)


def test_a_box_seen_in_the_first_second_of_the_burst_is_online():
    since = datetime(2026, 11, 30, 6, 0, 0, 700000)  # the burst starts 0.7 s into a second
    seen = stored_by_odoo(since + timedelta(milliseconds=200))  # handled 0.2 s later
    assert bench.online_count([(seen, False)], since) == 1


def test_online_count_leaves_out_boxes_offline_unseen_or_seen_before():
    since = datetime(2026, 11, 30, 6, 0, 0, 300000)
    rows = [
        (stored_by_odoo(since + timedelta(seconds=3)), False),  # online
        (stored_by_odoo(since + timedelta(seconds=3)), True),  # seen, statuses not refreshed yet
        (since - timedelta(minutes=30), False),  # seen before the burst
        (None, False),  # never seen
    ]
    assert bench.online_count(rows, since) == 1


GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455


class ScriptedBus:
    """A websocket endpoint answering its connections in turn as ``script`` says:
    ``"500"`` refuses the handshake as Odoo does when its pool is full, ``"1013"``
    accepts it, reads the subscription and closes with 1013 (Odoo's ``TRY_LATER``),
    ``"ack"`` accepts it, reads the subscription and sends the notification the
    benchmark waits for."""

    def __init__(self, script):
        self.script = list(script)
        self.sock = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self.serve, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self):
        while True:
            try:
                conn, __ = self.sock.accept()
            except OSError:
                return
            answer = self.script.pop(0) if self.script else "500"
            threading.Thread(target=self.handle, args=(conn, answer), daemon=True).start()

    def handle(self, conn, answer):
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            if answer == "500":
                body = b"Internal Server Error"
                conn.sendall(
                    b"HTTP/1.1 500 INTERNAL SERVER ERROR\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                    % (len(body), body)
                )
                return
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            conn.recv(4096)  # the subscription
            if answer == "1013":
                conn.sendall(bytes([0x88, 2]) + struct.pack("!H", 1013))
                time.sleep(0.2)
                return
            payload = json.dumps([{"id": 1, "message": {"type": bench.ACK_TYPE, "payload": {}}}]).encode()
            conn.sendall(bytes([0x81, len(payload)]) + payload)
            while conn.recv(4096):  # until the subscriber goes
                pass

    def close(self):
        self.sock.close()


def test_attempt_failure_sorts_websocket_clients_texts():
    assert bench.attempt_failure("Handshake status 500 INTERNAL SERVER ERROR -+-+- {} -+-+- b'' - reconnect") == (
        bench.REFUSED
    )
    assert bench.attempt_failure("Connection closed (code 1013) - reconnect") == bench.TRY_LATER
    assert bench.attempt_failure("[Errno 111] Connection refused - reconnect") == bench.OTHER


@pytest.fixture
def attempts_watched():
    """The benchmark's hold on websocket-client's logger, given back afterwards."""
    logger = logging.getLogger("websocket")
    level, propagate = logger.level, logger.propagate
    bench.watch_attempts()
    yield
    logger.removeHandler(bench.ATTEMPTS)
    logger.setLevel(level)
    logger.propagate = propagate


def test_subscriber_counts_every_failed_attempt_of_the_boxs_own_retry(monkeypatch, attempts_watched):
    monkeypatch.setattr(bench, "RECONNECT", 0.1)  # the box waits 10 s between attempts
    bus = ScriptedBus(["500", "500", "1013", "ack"])
    box = next(box for box in plan_fleet(4, seed=1) if box.style == "18")
    barrier = threading.Barrier(2)
    link = bench.Subscriber(bus.url, box, "iot_box-channel", barrier)
    link.start()
    barrier.wait()
    try:
        assert link.acked.wait(20)
    finally:
        link.stop()
        link.join(5)
        bus.close()
    # websocket-client calls on_error for the first failure only: the others come from its log
    assert len(link.errors) == 1
    assert link.failures == {bench.REFUSED: 2, bench.TRY_LATER: 1, bench.OTHER: 0}
    assert bench.outcome([link]) == {
        "first_try": 0,
        "retried": 1,
        "never": 0,
        bench.REFUSED: 2,
        bench.TRY_LATER: 1,
        bench.OTHER: 0,
    }
