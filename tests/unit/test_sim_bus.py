# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The simulator's bus websocket (``iotbox_sim/bus.py``) against a small local
RFC 6455 server that records the handshake and the frames it receives, sends
one notification, then closes the connection as Odoo's bus does after its
keep-alive timeout."""

import base64
import hashlib
import json
import socket
import struct
import threading
import time
from types import SimpleNamespace

import pytest

from iotbox_sim.bus import BusLink, keep_connected, stop_all, subscribe_message, wait_connected, websocket_url
from iotbox_sim.cli import BoxResult, Call, Report, stay_on
from iotbox_sim.fleet import plan_fleet

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455
CHANNEL = "iot_box-" + "ab" * 32


def read_exact(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_frame(conn):
    """One client frame: (opcode, unmasked payload)."""
    first, second = read_exact(conn, 2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", read_exact(conn, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", read_exact(conn, 8))[0]
    mask = read_exact(conn, 4) if second & 0x80 else b"\0\0\0\0"
    payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(read_exact(conn, length)))
    return first & 0x0F, payload


def frame(opcode, payload):
    assert len(payload) < 126
    return bytes([0x80 | opcode, len(payload)]) + payload


class BusServer:
    """Answers ``GET /web/login`` with a session cookie and ``/websocket`` with
    a websocket that receives one frame, sends one notification and closes."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.requests = []  # raw request heads, in order
        self.frames = []  # text frames received
        self.next_id = 7
        self.lock = threading.Lock()
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
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            with self.lock:
                self.requests.append(head)
            if head.startswith(b"GET /web/login"):
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nSet-Cookie: session_id=s3ss10n; Path=/; HttpOnly\r\n"
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
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
            try:
                opcode, payload = read_frame(conn)
            except ConnectionError:
                return
            if opcode != 0x1:
                return
            with self.lock:
                self.frames.append(payload.decode())
                notification_id = self.next_id
                self.next_id += 1
            notification = [{"id": notification_id, "message": {"type": "print_confirmation", "payload": {}}}]
            try:
                conn.sendall(frame(0x1, json.dumps(notification).encode()))
                time.sleep(0.1)
                conn.sendall(frame(0x8, struct.pack("!H", 1000)))  # close: "normal closure"
                time.sleep(0.1)
            except OSError:
                pass  # the box was switched off meanwhile

    def close(self):
        self.sock.close()


@pytest.fixture
def server():
    value = BusServer()
    yield value
    value.close()


def box_of(style):
    return next(box for box in plan_fleet(12, seed=3) if box.style == style)


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def headers_of(head):
    lines = head.decode().split("\r\n")
    return lines[0], {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if line)}


def test_websocket_url_as_the_box_builds_it():
    assert websocket_url("http://odoo.example.com:8069") == "ws://odoo.example.com:8069/websocket"
    assert websocket_url("https://odoo.example.com/") == "wss://odoo.example.com/websocket"


def test_subscribe_messages_bytes():
    box18, box19 = box_of("18"), box_of("19")
    assert subscribe_message(box18, CHANNEL, last=5) == (
        '{"event_name": "subscribe", "data": {"channels": ["' + CHANNEL + '"], "last": 0, '
        '"mac_address": "' + box18.mac + '"}}'
    )
    assert subscribe_message(box19, CHANNEL, last=5) == (
        '{"event_name": "subscribe", "data": {"channels": ["' + CHANNEL + '"], "last": 5, '
        '"identifier": "' + box19.identifier + '"}}'
    )


def connect_twice(server, box, db):
    """Keep ``box`` on ``server``'s bus until it has subscribed twice (the
    server closes each connection after one notification); the stopped link."""
    link = BusLink(server.url, box, CHANNEL, db=db, reconnect=0.2)
    link.start()
    try:
        assert wait_for(lambda: len(server.frames) >= 2), server.frames
    finally:
        link.stop()
        link.join(5)
    assert not link.is_alive()
    return link


def test_18_box_subscribes_without_cookie_and_reconnects(server):
    box = box_of("18")
    link = connect_twice(server, box, db="ignored")
    # No /web/login for an 18.0 box, even when the database is known.
    assert all(head.startswith(b"GET /websocket HTTP/1.1") for head in server.requests)
    __, headers = headers_of(server.requests[0])
    assert headers["user-agent"] == "OdooIoTBox/1.0"
    assert headers["upgrade"] == "websocket"
    assert "cookie" not in headers
    expected = subscribe_message(box, CHANNEL)
    assert server.frames[:2] == [expected, expected]  # "last" stays 0
    assert link.subscriptions >= 2 and link.closes >= 1
    assert link.last >= 7  # read, even if an 18.0 box does not send it back


def test_19_box_logs_in_then_sends_the_last_id_it_received(server):
    box = box_of("19")
    connect_twice(server, box, db="my db")
    assert server.requests[0].startswith(b"GET /web/login?db=my+db HTTP/1.1")
    ws_heads = [head for head in server.requests if head.startswith(b"GET /websocket")]
    __, headers = headers_of(ws_heads[0])
    assert headers["cookie"] == "session_id=s3ss10n"
    assert headers["user-agent"] == "OdooIoTBox/1.0"
    first, second = (json.loads(text)["data"] for text in server.frames[:2])
    assert first == {"channels": [CHANNEL], "last": 0, "identifier": box.identifier}
    assert second == {"channels": [CHANNEL], "last": 7, "identifier": box.identifier}


def test_19_box_without_database_connects_without_cookie(server):
    box = box_of("19")
    links = keep_connected(server.url, [(box, CHANNEL)], reconnect=5)
    try:
        assert wait_connected(links, timeout=10) == []
    finally:
        stop_all(links)
    __, headers = headers_of(server.requests[0])
    assert "cookie" not in headers


def test_no_channel_no_websocket(server):
    links = keep_connected(server.url, [(box_of("18"), ""), (box_of("19"), "")])
    assert links == []


def test_stay_on_connects_every_box_with_a_channel(server):
    fleet = plan_fleet(4, seed=3)
    channels = [CHANNEL, CHANNEL, "", CHANNEL]
    results = [
        BoxResult(box, Call("/iot/setup", 200, 0.01, "ok", True, channel), None)
        for box, channel in zip(fleet, channels, strict=True)
    ]
    args = SimpleNamespace(url=server.url, off={"sim-09-off"}, db=None, reconnect=5)
    until = threading.Event()
    lines = []

    def stop_when_connected():
        wait_for(lambda: any("connected to the bus" in line for line in lines))
        until.set()

    threading.Thread(target=stop_when_connected, daemon=True).start()
    links = stay_on(args, Report(results, [], 0.1, "18.0"), out=lines.append, until=until)
    assert [link.box.name for link in links] == [fleet[0].name, fleet[1].name, fleet[3].name]
    summary = next(line for line in lines if "connected to the bus" in line)
    assert summary == (
        "3 boxes connected to the bus and subscribed; 1 switched off (sim-09-off); "
        "1 without a channel; 0 could not connect yet (they retry)"
    )
    macs = {json.loads(text)["data"].get("mac_address") for text in server.frames}
    assert fleet[2].mac not in macs
    assert all(not link.is_alive() for link in links)
