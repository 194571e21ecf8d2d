# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Liveness at fleet size: a server restart, then silent drops, with many boxes
connected over real websockets to a real prefork Odoo (its gevent worker).

1. Restart: N boxes subscribed to their own channels; the server is stopped
   (SIGTERM) and started again, the boxes reconnect at once. Printed: rows the
   stop wrote (boxes recorded disconnected), seconds until every box is
   subscribed again, "went offline"/"back online" events written, and boxes
   offline after the refresh with time moved past the grace (targets: 0, -, 0, 0).
2. Silent drop: the N boxes reconnect and then stop answering (no close frame,
   their TCP connections stay open): Odoo's bus pings an idle connection after
   45 s and drops it when no pong comes within 15 s. Printed: seconds until
   every drop is recorded, and with the grace moved past, until all are
   Offline, with the SQL statements of that refresh per box.

Run on the test database (./dev setup), which it leaves as it found it:

    .venv/bin/python bench/liveness_fleet_bench.py --boxes 1000 --docs
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import websocket
from freezegun import freeze_time

import odoo
from odoo import fields
from odoo.modules.registry import Registry
from odoo.tools import config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docs_table

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "ee:99:"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def env():
    with Registry(config["db_name"]).cursor() as cr:
        yield odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})


@contextmanager
def server(workers, log_path):
    odoo_bin = Path(odoo.__file__).resolve().parent.parent / "odoo-bin"
    http_port, gevent_port = free_port(), free_port()
    with log_path.open("a") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, str(odoo_bin), "-c", config.rcfile, "-d", config["db_name"]),
                f"--workers={workers}",
                *("--max-cron-threads=0", "--http-interface=127.0.0.1", "--db_maxconn_gevent=64"),
                *(f"--http-port={http_port}", f"--gevent-port={gevent_port}", "--log-level=warn"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", gevent_port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"Odoo did not start: see {log_path}") from None
                time.sleep(0.2)
        yield process, gevent_port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def connect(port, mac, channel, answer=True):
    """A box's websocket, subscribed as the genuine 18.0 box subscribes. With
    ``answer``, a thread reads it as the box's run_forever does (answering pings)."""
    for attempt in range(20):
        try:
            ws = websocket.create_connection(
                f"ws://127.0.0.1:{port}/websocket", header={"User-Agent": "OdooIoTBox/1.0"}, timeout=30
            )
            break
        except (OSError, websocket.WebSocketException):
            time.sleep(0.2 * (attempt + 1))
    else:
        raise SystemExit(f"box {mac} could not connect")
    ws.send(json.dumps({"event_name": "subscribe", "data": {"channels": [channel], "last": 0, "mac_address": mac}}))
    if answer:
        threading.Thread(target=drain, args=(ws,), daemon=True).start()
    return ws


def drain(ws):
    try:
        while ws.connected:
            ws.recv()
    except (websocket.WebSocketException, OSError):
        return


def connect_all(port, channels, answer=True):
    sockets, lock = {}, threading.Lock()
    macs = sorted(channels)

    def worker(part):
        for mac in part:
            ws = connect(port, mac, channels[mac], answer)
            with lock:
                sockets[mac] = ws

    threads = [threading.Thread(target=worker, args=(macs[index::16],)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sockets


def rows(macs):
    with env() as e:
        e.cr.execute(
            "SELECT identifier, bus_connection, disconnected_since, is_offline FROM iot_box WHERE identifier = ANY(%s)",
            [list(macs)],
        )
        return {row[0]: row[1:] for row in e.cr.fetchall()}


def events(macs):
    with env() as e:
        e.cr.execute(
            """SELECT count(*) FROM iot_box_event
                WHERE identifier = ANY(%s) AND kind IN ('went_offline', 'back_online')""",
            [list(macs)],
        )
        return e.cr.fetchone()[0]


def wait_until(condition, limit):
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if condition():
            return time.monotonic() - start
        time.sleep(0.5)
    return None


def refresh_past_grace(minutes):
    """The refresh as the scheduler runs it, with time moved past the grace;
    returns its SQL statements."""
    with env() as e:
        grace = e["iot.box"]._get_disconnect_grace_minutes()
        with freeze_time(fields.Datetime.now() + timedelta(minutes=grace + minutes)):
            before = e.cr.sql_log_count
            e["iot.box"]._cron_refresh_update_status()
            statements = e.cr.sql_log_count - before
    return statements


def measure(args, macs, channels):
    """The restart, then the silent drops; the figures by name."""
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "odoo.log"
        try:
            events_before = events(macs)
            with server(args.workers, log_path) as (process, port):
                sockets = connect_all(port, channels)
                wait_until(lambda: all(row[0] for row in rows(macs).values()), 120)
                process.send_signal(signal.SIGTERM)
                process.wait(60)
                for ws in sockets.values():
                    ws.close()
            after_stop = rows(macs)
            results["rows the stop wrote"] = sum(1 for row in after_stop.values() if row[1])
            with server(args.workers, log_path) as (process, port):
                start = time.monotonic()
                sockets = connect_all(port, channels)
                back = wait_until(lambda: all(row[0] != after_stop[mac][0] for mac, row in rows(macs).items()), 300)
                results["seconds until all back"] = None if back is None else round(time.monotonic() - start, 1)
                # The boxes are on: with time moved past the grace, none is offline.
                refresh_past_grace(1)
                results["events of the restart"] = events(macs) - events_before
                results["offline after the restart"] = sum(1 for row in rows(macs).values() if row[2])
                for ws in sockets.values():
                    ws.close()
                time.sleep(5)
                # Silent drops: connections that never answer the bus's pings.
                sockets = connect_all(port, channels, answer=False)
                wait_until(lambda: all(row[1] is None for row in rows(macs).values()), 120)
                start = time.monotonic()
                dropped = wait_until(lambda: all(row[1] for row in rows(macs).values()), 300)
                results["seconds until all drops recorded"] = None if dropped is None else round(dropped, 1)
                with env() as e:
                    grace = e["iot.box"]._get_disconnect_grace_minutes()
                if dropped is not None:
                    # The promise: the drop, the grace, then the refresh that runs every minute.
                    results["minutes until Offline, at the latest"] = round((dropped + grace * 60 + 60) / 60, 1)
                statements = refresh_past_grace(1)
                results["offline after the grace"] = sum(1 for row in rows(macs).values() if row[2])
                results["refresh statements per box"] = round(statements / args.boxes, 3)
                # An unplugged box never says goodbye: its socket just goes (no close frame).
                for ws in sockets.values():
                    ws.shutdown()
                process.send_signal(signal.SIGTERM)
                process.wait(60)
            errors = [line for line in log_path.read_text().splitlines() if " ERROR " in line]
            results["ERROR lines in the server log"] = len(errors)
            for line in errors[:5]:
                print(f"server log: {line}", file=sys.stderr)
        finally:
            with env() as e:
                e.cr.execute("DELETE FROM iot_box WHERE identifier LIKE %s", [PREFIX + "%"])
                e.cr.execute("DELETE FROM iot_box_event WHERE identifier LIKE %s", [PREFIX + "%"])
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boxes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="HTTP workers (the gevent worker comes with them)")
    parser.add_argument("-c", "--config", default=str(ROOT / ".dev" / "odoo.conf"))
    parser.add_argument("-d", "--db", default=os.environ.get("IOT_UPDATE_TEST_DB", "iot_update_test"))
    docs_table.add_option(parser, "liveness-fleet")
    args = parser.parse_args()
    if args.docs:
        docs_table.check(args.docs, parser=parser)
    config.parse_config(["-c", args.config, "-d", args.db, "--log-level=warn"])
    macs = [f"{PREFIX}{index // 65536:02x}:{index // 256 % 256:02x}:{index % 256:02x}" for index in range(args.boxes)]
    with env() as e:
        Box = e["iot.box"]
        e.cr.execute("DELETE FROM iot_box WHERE identifier LIKE %s", [PREFIX + "%"])
        from odoo.addons.iot_update.tools.setup_payload import read_setup_payload

        token = Box._get_pairing_token()

        def payload(mac):
            """The check-in of a genuine 18.0 box (SPEC 3.1)."""
            box = {"name": f"bench-{mac}", "identifier": mac, "ip": "10.0.0.2", "token": token}
            return {"params": {"iot_box": {**box, "version": "L24.11-18.0#1a2b3c4"}, "devices": {}}}

        channels = {mac: Box._iot_setup(read_setup_payload(payload(mac)), "127.0.0.1") for mac in macs}
    results = measure(args, macs, channels)
    targets = {
        "rows the stop wrote": 0,
        "events of the restart": 0,
        "offline after the restart": 0,
        "offline after the grace": args.boxes,
        "ERROR lines in the server log": 0,
        "minutes until Offline, at the latest": "≤ 10",
    }
    with docs_table.capture() as out:
        print(f"{args.boxes} boxes, prefork --workers {args.workers}, {os.cpu_count()} CPUs\n")
        print(
            docs_table.markdown_table(
                ("measure", "value", "target"),
                [(name, value, targets.get(name, "-")) for name, value in results.items()],
            )
        )
    if args.docs:
        docs_table.write(args.docs, out.getvalue().strip() + "\n")


if __name__ == "__main__":
    main()
