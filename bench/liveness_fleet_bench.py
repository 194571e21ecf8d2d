#!/usr/bin/env python3
# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Liveness at fleet size: a server restart, then silent drops, with N boxes
connected over real websockets to a real prefork Odoo (its gevent worker).

    .venv/bin/python bench/liveness_fleet_bench.py [--boxes 1000] [--grace MINUTES] [--docs]

What it does, in one run (about 16 minutes with the defaults, in real time):

1. creates a fresh database (``iot_update_bench_liveness`` unless ``--db``)
   with ``iot_update``, starts a prefork server (``--workers`` HTTP workers, its
   gevent worker, no cron thread, Odoo's default gevent pool of 64
   connections) on two free 127.0.0.1 ports, and registers the boxes through
   ``POST /iot/setup``;
2. connects each box to ``/websocket`` and subscribes it to its own channel
   with the genuine 18.0 box's bytes (``User-Agent: OdooIoTBox/1.0``, no
   cookie, ``mac_address``); each box answers the bus's pings and, when its
   connection ends, reconnects 10 s later, again and again, as the genuine
   box's ``run_forever(reconnect=10)``;
3. **restart**: stops the server (SIGTERM to the prefork master) and starts it
   again on the same ports; the boxes come back by themselves. Counted: rows of
   ``iot_box`` written while the server stopped (their ``xmin`` changed),
   "went offline"/"back online" events, seconds until every box is subscribed
   again, handshakes refused; then the boxes stay connected until the grace
   has passed since the restart, with the status refresh running every
   minute: boxes Offline then (target 0);
4. **silent drop**: every box stops reading its socket at once (no close
   frame, the TCP connection stays open: an unplugged box). Odoo's bus pings
   an idle connection after 45 s and drops it when no pong comes within 15 s.
   Measured: seconds from the silence until each drop is recorded and until
   each box is Offline (target: within 10 minutes), with the time and SQL
   statements of the status refresh;
5. stops the server, counts the server log's ERROR and WARNING lines and drops
   the database (``--keep-db`` keeps it).

The status refresh (scheduled action "IoT: refresh box statuses", every
minute) is run by this script every ``--refresh-every`` seconds, as Odoo's
cron runner would (one transaction, committed), so that its time and SQL
statements are counted; the server runs no cron. ``--grace`` sets the
disconnection grace (IoT settings, default 5 minutes) for a shorter run: the
promise of 10 minutes is stated for the default. Server log:
``.dev/bench-liveness-odoo.log``.
"""

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time

import requests
import websocket

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docs_table
from handlers_bench import CONFIG, drop_database, free_port, odoo_command, pg_connect, read_config, say

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG = os.path.join(ROOT, ".dev", "bench-liveness-odoo.log")
PREFIX = "ee:99:"
USER_AGENT = "OdooIoTBox/1.0"
RECONNECT = 10  # seconds, the genuine 18.0 box's run_forever(reconnect=10)


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class Server:
    """A prefork Odoo on fixed ports, started and stopped as often as asked."""

    def __init__(self, options, db, workers, log):
        self.options, self.db, self.workers, self.log = options, db, workers, log
        self.http_port, self.gevent_port = free_port(), free_port()
        self.process = None

    def start(self):
        command = odoo_command(
            self.options,
            self.db,
            self.options["addons_path"],
            f"--http-port={self.http_port}",
            f"--gevent-port={self.gevent_port}",
            "--http-interface=127.0.0.1",
            f"--workers={self.workers}",
            "--max-cron-threads=0",
            "--log-level=warn",
        )
        out = open(self.log, "a")
        self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"the server stopped, see {self.log}")
            try:
                if requests.get(f"{self.url}/web/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.kill()
        sys.exit(f"the server did not answer within 2 minutes, see {self.log}")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self):
        """SIGTERM to the prefork master, as a service manager stops it; the
        seconds until it exited."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(120)
        except subprocess.TimeoutExpired:
            self.kill()
        return time.monotonic() - started

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------------------
# The boxes
# ---------------------------------------------------------------------------


class Box(threading.Thread):
    """One box's bus connection, kept up as the genuine 18.0 box keeps it."""

    def __init__(self, mac, channel, port):
        super().__init__(daemon=True)
        self.mac, self.channel, self.port = mac, channel, port
        self.silent = threading.Event()  # unplugged: reads nothing, answers nothing, closes nothing
        self.stopped = threading.Event()
        self.ws = None
        self.handshakes = 0
        self.failed_handshakes = 0
        self.close_codes = collections.Counter()

    def run(self):
        while not self.stopped.is_set():
            try:
                ws = websocket.create_connection(
                    f"ws://127.0.0.1:{self.port}/websocket", header={"User-Agent": USER_AGENT}, timeout=30
                )
            except (OSError, websocket.WebSocketException):
                self.failed_handshakes += 1
                self.stopped.wait(RECONNECT)
                continue
            self.handshakes += 1
            self.ws = ws
            ws.settimeout(None)
            data = {"channels": [self.channel], "last": 0, "mac_address": self.mac}
            try:
                ws.send(json.dumps({"event_name": "subscribe", "data": data}))
                while True:
                    frame = ws.recv_frame()
                    if self.silent.is_set():
                        return  # the socket stays open; nothing is read or sent on it again
                    if frame.opcode == websocket.ABNF.OPCODE_PING:
                        ws.pong(frame.data)
                    elif frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                        code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else 1005
                        self.close_codes[code] += 1
                        ws.send_close()
                        break
            except (OSError, websocket.WebSocketException):
                self.close_codes["lost"] += 1
            ws.shutdown()
            self.stopped.wait(RECONNECT)

    def stop(self):
        self.stopped.set()
        if self.ws is not None:
            self.ws.shutdown()


# ---------------------------------------------------------------------------
# The database, as read by the benchmark
# ---------------------------------------------------------------------------


class Fleet:
    def __init__(self, options, db, macs):
        self.connection = pg_connect(options, db)
        self.connection.autocommit = True
        self.macs = macs

    def rows(self):
        """{identifier: (bus_connection, disconnected_since, is_offline, xmin)}"""
        with self.connection.cursor() as cr:
            cr.execute(
                """SELECT identifier, bus_connection, disconnected_since, is_offline, xmin::text
                     FROM iot_box WHERE identifier LIKE %s""",
                [PREFIX + "%"],
            )
            return {row[0]: row[1:] for row in cr.fetchall()}

    def events(self):
        with self.connection.cursor() as cr:
            cr.execute(
                """SELECT kind, count(*) FROM iot_box_event
                    WHERE identifier LIKE %s AND kind IN ('went_offline', 'back_online') GROUP BY kind""",
                [PREFIX + "%"],
            )
            return collections.Counter(dict(cr.fetchall()))

    def close(self):
        self.connection.close()


class Refresher(threading.Thread):
    """The status refresh, run every ``every`` seconds as Odoo's cron runner
    runs it (superuser, a transaction of its own, committed)."""

    def __init__(self, db, every):
        super().__init__(daemon=True)
        self.db, self.every = db, every
        self.runs = []  # (monotonic end, phase, seconds, statements, boxes turned offline)
        self.phase = "idle"
        self.stopped = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        while not self.stopped.wait(self.every):
            self.run_once()

    def run_once(self):
        import odoo
        from odoo.modules.registry import Registry

        with self.lock:
            registry = Registry(self.db)
            with registry.cursor() as cr:
                env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
                cr.execute("SELECT count(*) FROM iot_box WHERE is_offline")
                before = cr.fetchone()[0]
                count = cr.sql_log_count
                started = time.perf_counter()
                env["iot.box"]._cron_refresh_update_status()
                env.flush_all()
                seconds = time.perf_counter() - started
                statements = cr.sql_log_count - count
                cr.execute("SELECT count(*) FROM iot_box WHERE is_offline")
                turned = cr.fetchone()[0] - before
            self.runs.append((time.monotonic(), self.phase, seconds, statements, turned))


def load_odoo(db):
    import odoo
    from odoo.tools import config

    config.parse_config(["-c", str(CONFIG), "-d", db, "--log-level=warn"])
    return odoo


def set_grace(db, minutes):
    import odoo
    from odoo.modules.registry import Registry

    with Registry(db).cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        if minutes:
            env["ir.config_parameter"].set_param("iot_update.disconnect_grace_minutes", str(minutes))
        return env["iot.box"]._get_disconnect_grace_minutes()


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def install(options, db):
    say(f"installing iot_update in a fresh database {db}")
    drop_database(options, db)
    command = odoo_command(
        options, db, options["addons_path"], "-i", "iot_update", "--without-demo=all", "--stop-after-init"
    )
    command.append("--log-level=warn")
    with open(LOG, "a") as out:
        if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
            sys.exit(f"install failed, see {LOG}")


def register(options, db, url, count):
    """The boxes' check-ins, 16 at a time; ``{mac: channel}``."""
    connection = pg_connect(options, db)
    with connection.cursor() as cr:
        cr.execute("SELECT value FROM ir_config_parameter WHERE key = 'iot_token'")
        token = cr.fetchone()[0]
    connection.close()
    macs = [f"{PREFIX}{index // 65536:02x}:{index // 256 % 256:02x}:{index % 256:02x}" for index in range(count)]
    channels = {}

    def check_in(part):
        session = requests.Session()
        for mac in part:
            box = {"name": f"bench-{mac}", "identifier": mac, "ip": "10.0.0.2", "token": token}
            body = {"params": {"iot_box": {**box, "version": "L24.11-18.0#1a2b3c4"}, "devices": {}}}
            response = session.post(
                url + "/iot/setup", data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=60
            )
            response.raise_for_status()
            channels[mac] = response.json()["result"]

    threads = [threading.Thread(target=check_in, args=(macs[index::16],)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(channels) != count or not all(channels.values()):
        sys.exit("some boxes got no channel")
    return channels


def wait_until(condition, limit, step=0.5):
    """Seconds until ``condition()`` held, None when it did not within ``limit``."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > limit:
            return None
        time.sleep(step)


def handshake_totals(boxes):
    totals = collections.Counter()
    for box in boxes:
        totals["handshakes"] += box.handshakes
        totals["failed"] += box.failed_handshakes
        for code, count in box.close_codes.items():
            totals[f"close {code}"] += count
    return totals


def restart_phase(args, server, fleet, boxes, refresher, grace, results):
    say("connecting the boxes")
    for box in boxes:
        box.start()
        time.sleep(0.01)  # the fleet's connections spread over a few seconds, not measured
    connected = wait_until(lambda: all(row[0] and row[1] is None for row in fleet.rows().values()), 600)
    if connected is None:
        sys.exit("not every box subscribed within 10 minutes")
    time.sleep(3)
    before = fleet.rows()
    events_before = fleet.events()
    totals_before = handshake_totals(boxes)
    say(f"{len(boxes)} boxes subscribed; stopping the server")
    results["server stop (SIGTERM to exit), s"] = round(server.stop(), 1)
    stopped_at = time.monotonic()
    after_stop = fleet.rows()
    written = sum(1 for mac, row in after_stop.items() if row[3] != before[mac][3])
    recorded = sum(1 for row in after_stop.values() if row[1] is not None)
    results["`iot_box` rows written while the server stopped"] = written
    results["boxes recorded disconnected by the stop"] = recorded
    say("starting the server again")
    server.start()
    started_at = time.monotonic()
    back = wait_until(
        lambda: all(row[0] != before[mac][0] and row[1] is None for mac, row in fleet.rows().items()), 600
    )
    if back is None:
        results["seconds until every box is back, from the new server's start"] = "not within 10 min"
    else:
        results["seconds until every box is back, from the new server's start"] = round(back, 1)
        results["seconds until every box is back, from the stop"] = round(back + started_at - stopped_at, 1)
    totals = handshake_totals(boxes) - totals_before
    results["box handshakes from the stop until all back: accepted / refused (server down) / closed 1013"] = (
        f"{totals['handshakes']:,} / {totals['failed']:,} / {totals['close 1013']:,}"
    )
    # The boxes are on: the refresh runs every minute until the grace has
    # passed since the stop; none may be offline, no event may be written.
    say(f"boxes connected until the grace ({grace} min) has passed since the restart")
    refresher.phase = "restart"
    time.sleep(max(0, stopped_at + grace * 60 + args.refresh_every + 5 - time.monotonic()))
    events = fleet.events() - events_before
    results["'went offline' / 'back online' events of the restart"] = (
        f"{events['went_offline']} / {events['back_online']}"
    )
    rows = fleet.rows()
    results[f"boxes Offline {grace} min + 1 refresh after the restart"] = sum(1 for row in rows.values() if row[2])
    refreshes = [run for run in refresher.runs if run[1] == "restart"]
    results["status refreshes run meanwhile"] = len(refreshes)


def silent_phase(args, server, fleet, boxes, refresher, grace, results):
    say("every box goes silent (no close frame, TCP connection left open)")
    events_before = fleet.events()
    refresher.phase = "silent"
    silent_at = time.monotonic()
    for box in boxes:
        box.silent.set()
    dropped, offline = {}, {}
    limit = silent_at + grace * 60 + 12 * 60
    while time.monotonic() < limit and len(offline) < len(boxes):
        now = time.monotonic() - silent_at
        for mac, row in fleet.rows().items():
            if row[1] is not None and mac not in dropped:
                dropped[mac] = now
            if row[2] and mac not in offline:
                offline[mac] = now
        time.sleep(1)
    results["drops recorded (close callback), s after the silence: first / last"] = (
        f"{min(dropped.values()):.0f} / {max(dropped.values()):.0f} ({len(dropped)} boxes)" if dropped else "none"
    )
    results["boxes Offline"] = len(offline)
    results["seconds until every box is Offline, after the silence"] = (
        round(max(offline.values())) if len(offline) == len(boxes) else "not all"
    )
    events = fleet.events() - events_before
    results["'went offline' events"] = events["went_offline"]
    idle = [run for run in refresher.runs if run[1] in ("idle", "restart") or (run[1] == "silent" and not run[4])]
    if idle:
        results["status refresh, no grace ended: ms (max) / statements (max)"] = (
            f"{max(run[2] for run in idle) * 1000:.1f} / {max(run[3] for run in idle)}"
        )
    for run in refresher.runs:
        if run[1] == "silent" and run[4]:
            results[f"status refresh turning {run[4]:,} boxes Offline: ms / statements"] = (
                f"{run[2] * 1000:.0f} / {run[3]} ({run[3] / run[4]:.3f} per box)"
            )


def server_log_problems(offset):
    """``"<errors> / <warnings>"`` of the server log from ``offset``; the first few on stderr."""
    with open(LOG, errors="replace") as log:
        log.seek(offset)
        lines = log.read().splitlines()
    errors = [line for line in lines if " ERROR " in line or " CRITICAL " in line]
    warnings = [line for line in lines if " WARNING " in line]
    for line in (errors + warnings)[:5]:
        print(f"server log: {line[:300]}", file=sys.stderr)
    return f"{len(errors)} / {len(warnings)}"


def report(args, grace, results, load_before):
    """The table, measured values beside their targets."""
    targets = {
        "`iot_box` rows written while the server stopped": 0,
        "boxes recorded disconnected by the stop": 0,
        "'went offline' / 'back online' events of the restart": "0 / 0",
        f"boxes Offline {grace} min + 1 refresh after the restart": 0,
        "boxes Offline": f"{args.boxes:,}",
        "seconds until every box is Offline, after the silence": "≤ 600",
        "'went offline' events": f"{args.boxes:,} (one per box)",
        "status refresh, no grace ended: ms (max) / statements (max)": "nothing per idle box",
        "ERROR / WARNING lines in the server log": "0 / 0",
    }
    load_after = os.getloadavg()
    print(
        f"{args.boxes:,} boxes, prefork --workers {args.workers} and its gevent worker (pool 64),"
        f" grace {grace} min, refresh every {args.refresh_every} s, {os.cpu_count()} CPUs,"
        f" load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n"
    )
    print(
        docs_table.markdown_table(
            ("measure", "value", "target"),
            [(name, value, targets.get(name, "-")) for name, value in results.items()],
        )
    )


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boxes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="HTTP workers (the gevent worker comes with them)")
    parser.add_argument("--grace", type=int, help="disconnection grace in minutes (default: the setting's, 5)")
    parser.add_argument("--refresh-every", type=int, default=60, help="seconds between status refreshes")
    parser.add_argument("--db", default="iot_update_bench_liveness")
    parser.add_argument("--keep-db", action="store_true")
    docs_table.add_option(parser, "liveness-fleet")
    args = parser.parse_args()
    if args.docs:
        docs_table.check(args.docs, parser=parser)
    return args


def main():
    args = parse_args()
    options = read_config()
    os.makedirs(os.path.dirname(LOG), exist_ok=True)
    install(options, args.db)
    load_odoo(args.db)
    grace = set_grace(args.db, args.grace)
    server = Server(options, args.db, args.workers, LOG)
    log_start = os.path.getsize(LOG)
    server.start()
    results = {}
    boxes = []
    fleet = refresher = None
    load_before = os.getloadavg()
    try:
        say(f"registering {args.boxes} boxes")
        channels = register(options, args.db, server.url, args.boxes)
        fleet = Fleet(options, args.db, sorted(channels))
        boxes = [Box(mac, channels[mac], server.gevent_port) for mac in sorted(channels)]
        refresher = Refresher(args.db, args.refresh_every)
        refresher.run_once()  # the registry loaded once, before the clock matters
        refresher.runs.clear()
        refresher.start()
        restart_phase(args, server, fleet, boxes, refresher, grace, results)
        silent_phase(args, server, fleet, boxes, refresher, grace, results)
    finally:
        if refresher:
            refresher.stopped.set()
        if server.process and server.process.poll() is None:
            server.stop()
        for box in boxes:
            box.stop()
        server.kill()
        if fleet:
            fleet.close()
    results["ERROR / WARNING lines in the server log"] = server_log_problems(log_start)
    with docs_table.capture() as out:
        report(args, grace, results, load_before)
    if args.docs:
        docs_table.write(args.docs, out.getvalue().strip() + "\n")
    if not args.keep_db:
        drop_database(options, args.db)


if __name__ == "__main__":
    main()
