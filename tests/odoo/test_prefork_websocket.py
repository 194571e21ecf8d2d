# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""A prefork Odoo (``--workers 2``) serves the bus websocket from its gevent worker.

The server runs in a subprocess with the test database and the Python of this
test run (the one ``./dev`` runs Odoo with). A websocket client connects to the
gevent port as the 18.0 box does, subscribes to a channel, and must receive a
bus notification sent from another process; the server's log must show the
gevent worker started once, with no traceback. When gevent cannot start (the
worker dies at import and the master respawns it), nothing listens on the
gevent port and this test fails.

Not in the addon's tests (Odoo's runner): it checks the environment ``./dev setup``
prepares (gevent starting in the Python that runs Odoo), by starting a prefork server
of its own (three more Odoo processes): the project's set-up, not the addon.
"""

import json
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import websocket

import odoo
from odoo.modules.registry import Registry
from odoo.tools import config

STARTED = "Evented Service (longpolling) running on"
START_TIMEOUT = 25


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, process, log_path, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Odoo stopped (exit {process.returncode}):\n{log_path.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"nothing listens on port {port} after {timeout} s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture
def prefork_server():
    """``odoo-bin --workers 2`` on the test database; yields (gevent port, log path)."""
    odoo_bin = Path(odoo.__file__).resolve().parent.parent / "odoo-bin"
    http_port, gevent_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "odoo.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [
                    *(sys.executable, str(odoo_bin), "-c", config.rcfile, "-d", config["db_name"]),
                    *("--workers=2", "--max-cron-threads=0", "--http-interface=127.0.0.1"),
                    *(f"--http-port={http_port}", f"--gevent-port={gevent_port}", "--log-level=info"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(http_port, process, log_path)
            wait_for_port(gevent_port, process, log_path)
            yield gevent_port, log_path
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def send_notification(channel, payload):
    """A bus notification committed from this process (Odoo NOTIFYs the workers)."""
    with Registry(config["db_name"]).cursor() as cr:
        odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})["bus.bus"]._sendone(channel, "iot_update_test", payload)


def test_gevent_worker_serves_the_websocket(prefork_server):
    gevent_port, log_path = prefork_server
    channel = f"iot_update_prefork_{uuid.uuid4().hex}"
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{gevent_port}/websocket", header={"User-Agent": "OdooIoTBox/1.0"}, timeout=15
    )
    try:
        ws.send(json.dumps({"event_name": "subscribe", "data": {"channels": [channel], "last": 0}}))
        send_notification(channel, {"hello": "box"})
        messages = json.loads(ws.recv())
    finally:
        ws.close()
    assert [(m["message"]["type"], m["message"]["payload"]) for m in messages] == [
        ("iot_update_test", {"hello": "box"})
    ]
    log = log_path.read_text()
    assert log.count(STARTED) == 1, log[-3000:]  # started once: never respawned
    assert "Traceback" not in log, log[-3000:]
    assert " ERROR " not in log, log[-3000:]
