# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""A server restart is not an outage (issue 17).

A real Odoo process (threaded, and prefork with its gevent worker) serves the
bus websocket to boxes subscribed to their own channels. Stopping it closes
every websocket: no box may be recorded disconnected for it, no event written,
and no box is offline after its restart, even once the grace has passed. A
box that closes its own connection while the server runs is recorded (the
callback is active in that server), so the check is not vacuous.
"""

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import websocket
from freezegun import freeze_time
from test_prefork_websocket import free_port, wait_for_port

import odoo
from odoo import fields
from odoo.modules.registry import Registry
from odoo.tools import config

from odoo.addons.iot_update.models.iot_box_liveness import DEFAULT_GRACE_MINUTES
from odoo.addons.iot_update.tests.iot_common import box_payload
from odoo.addons.iot_update.tools.setup_payload import read_setup_payload

BOXES = 5
PREFIX = "ee:77:00:00:00:"
WAIT = 15
#: A graceful stop of Odoo with boxes connected: a guard against a hang, not a timing (a loaded
#: machine took over 30 s once).
STOP_WAIT = 90


@contextmanager
def env():
    with Registry(config["db_name"]).cursor() as cr:
        yield odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})


@pytest.fixture
def boxes():
    macs = [f"{PREFIX}{index:02x}" for index in range(BOXES + 1)]
    channels = {}
    with env() as e:
        Box = e["iot.box"]
        for mac in macs:
            channels[mac] = Box._iot_setup(
                read_setup_payload(box_payload(Box._get_pairing_token(), identifier=mac)), "127.0.0.1"
            )
    yield channels
    with env() as e:
        e["iot.box"].with_context(active_test=False).search([("identifier", "in", macs)]).unlink()


@contextmanager
def server(workers):
    odoo_bin = Path(odoo.__file__).resolve().parent.parent / "odoo-bin"
    http_port, gevent_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "odoo.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [
                    *(sys.executable, str(odoo_bin), "-c", config.rcfile, "-d", config["db_name"]),
                    f"--workers={workers}",
                    *("--max-cron-threads=0", "--http-interface=127.0.0.1"),
                    *(f"--http-port={http_port}", f"--gevent-port={gevent_port}", "--log-level=info"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(http_port, process, log_path)
            if workers:
                wait_for_port(gevent_port, process, log_path)
            yield process, (gevent_port if workers else http_port), log_path
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def connect(port, mac, channel):
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/websocket", header={"User-Agent": "OdooIoTBox/1.0"}, timeout=WAIT
    )
    ws.send(json.dumps({"event_name": "subscribe", "data": {"channels": [channel], "last": 0, "mac_address": mac}}))
    threading.Thread(target=drain, args=(ws,), daemon=True).start()
    return ws


def drain(ws):
    """Read as the genuine box's ``run_forever`` does: pings are answered, and
    the server's close frame is answered and the socket closed (the server
    waits for that end of the connection before its thread ends)."""
    try:
        while ws.connected:
            opcode, __ = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
    except (websocket.WebSocketException, OSError):
        pass
    ws.shutdown()


def rows(macs):
    with env() as e:
        e.cr.execute(
            """SELECT identifier, bus_connection, disconnected_since, is_offline FROM iot_box
                WHERE identifier = ANY(%s) ORDER BY identifier""",
            [list(macs)],
        )
        return {row[0]: row[1:] for row in e.cr.fetchall()}


def wait_until(condition, what):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} after {WAIT} s")


def events(macs):
    with env() as e:
        return e["iot.box.event"].search_count(
            [("identifier", "in", list(macs)), ("kind", "in", ("went_offline", "back_online"))]
        )


@pytest.mark.parametrize("workers", [0, 2], ids=["threaded", "prefork"])
def test_restart_is_not_an_outage(boxes, workers):
    macs = sorted(boxes)
    control, fleet = macs[0], macs[1:]
    events_before = events(fleet)
    with server(workers) as (process, port, log_path):
        sockets = {mac: connect(port, mac, boxes[mac]) for mac in macs}
        wait_until(lambda: all(row[0] for row in rows(macs).values()), "not every box subscribed")
        # A box closing its own connection while the server runs is recorded.
        sockets.pop(control).close()
        wait_until(lambda: rows([control])[control][1], "the control box's close was not recorded")
        process.send_signal(signal.SIGTERM)
        process.wait(STOP_WAIT)
        for ws in sockets.values():
            ws.close()
        # Odoo's own shutdown may race (a websocket thread asking the closed
        # pool for a cursor): none of this addon's code may fail.
        log = log_path.read_text()
        # A traceback of this addon has one of its files in its frames (the
        # database's name, iot_update_test, is in the log lines around it).
        ours = [
            chunk
            for chunk in log.split("Traceback")[1:]
            if any("addons/iot_update/" in line for line in chunk.splitlines() if line.strip().startswith("File "))
        ]
        assert not ours, log[-3000:]
    after_stop = rows(fleet)
    assert [mac for mac, row in after_stop.items() if row[1]] == [], "the stop wrote disconnections"
    with server(workers) as (process, port, log_path):
        sockets = [connect(port, mac, boxes[mac]) for mac in fleet]
        wait_until(
            lambda: all(row[0] != after_stop[mac][0] for mac, row in rows(fleet).items()),
            "not every box came back",
        )
        process.send_signal(signal.SIGTERM)
        process.wait(STOP_WAIT)
        for ws in sockets:
            ws.close()
    with env() as e, freeze_time(fields.Datetime.now() + timedelta(minutes=DEFAULT_GRACE_MINUTES + 1)):
        e["iot.box"]._cron_refresh_update_status()
    final = rows(fleet)
    assert [mac for mac, row in final.items() if row[2]] == [], "boxes offline after a restart"
    assert events(fleet) - events_before == 0
