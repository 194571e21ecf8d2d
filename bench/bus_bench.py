#!/usr/bin/env python3
# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Benchmark of the boxes' bus subscriptions against a prefork Odoo and its gevent worker.

    .venv/bin/python bench/bus_bench.py [--boxes 1000] [--rounds 2] [--workers 2]
        [--db-maxconn-gevent 32] [--db-host HOST] [--db-port PORT]

What it does, in one run:

1. creates a fresh database (``<IOT_UPDATE_TEST_DB>_bus_bench`` unless ``--db``)
   with ``iot_update``, using the settings of ``.dev/odoo.conf`` (its
   PostgreSQL server unless ``--db-host``/``--db-port``: a server whose
   ``max_connections`` is above ``--db-maxconn-gevent``);
2. starts Odoo in prefork mode (``--workers``, a free ``--http-port`` and
   ``--gevent-port``, ``--db_maxconn_gevent``), and registers ``--boxes``
   simulated boxes (18.0 and 19 styles, half each) through ``/iot/setup`` on
   the HTTP port, keeping the channel each one is answered;
3. then, ``--rounds`` times, three bursts in turn, each of ``--boxes``
   websockets opened on the gevent port at the same moment, as after a server
   restart, each sending one subscription:

   - **web clients** (the floor): Odoo's own subscription, a plain channel
     without any box identity (``{"channels": [...], "last": 0}``);
   - **boxes, restart**: the boxes' own subscriptions (``iotbox_sim.bus``, the
     genuine boxes' bytes), every box last seen on the bus 30 minutes ago
     (past the write throttle: one write each) and online;
   - **boxes, back online**: the same, every box silent for 5 hours and shown
     offline: each subscription also recomputes the box's statuses and records
     a "back online" event.

   Each subscriber finds one notification waiting on its channel (inserted just
   before), which Odoo sends once the subscription is handled: its arrival is
   the client's proof that the subscription was done. A failed attempt is
   retried 10 s later, as the genuine box does. The run prints, per burst:
   subscriptions per second (all handled / time from the burst's start),
   p50/p99 time to the notification, time until the database shows every box
   seen on the bus and online; the subscribers through on their first
   attempt, through after the box's own retry, and never through at
   ``--timeout``; the failed attempts by kind: handshakes refused (Odoo's
   HTTP 500 when the gevent worker's pool is full), connections closed with
   1013 "try later" before the subscription was handled (no cursor for it),
   anything else; the most connections Odoo held to the database at once
   during the burst; and database writes per subscription (``n_tup_ins +
   n_tup_upd + n_tup_del`` of ``pg_stat_user_tables``, all tables, read after
   PostgreSQL flushed its statistics);
4. stops the server and drops the database (``--keep-db`` keeps it). The
   server's log is in ``.dev/bench-bus-odoo.log``.

19-style boxes connect without the ``/web/login`` cookie (``db`` unknown): that
page is the HTTP workers' work behind a proxy, not the subscription's.
"""

import argparse
import json
import logging
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
import xmlrpc.client
from pathlib import Path

import docs_table
import requests
from handlers_bench import CONFIG, drop_database, free_port, odoo_bin, pg_connect, read_config, stop_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from iotbox_sim.bus import RECONNECT, BusLink  # noqa: E402
from iotbox_sim.cli import run as run_simulator  # noqa: E402

LOG = ROOT / ".dev" / "bench-bus-odoo.log"
ACK_TYPE = "iot_update_bench_ack"
WRITES_SQL = "SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
ACK_REFRESH = 30  # s, below the 50 s during which Odoo's bus replays a notification
STATS_FLUSH = 11  # s: PostgreSQL 15 backends flush their statistics when idle for 10 s


def say(message):
    print(f"[bench] {message}", flush=True)


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------


def odoo_command(options, db, *args):
    """odoo-bin with ``.dev/odoo.conf``, and its PostgreSQL server as ``options`` say
    (``--db-host``/``--db-port`` of the benchmark override the file's)."""
    server = [f"--db_host={options['db_host']}", f"--db_port={options['db_port']}"]
    return [sys.executable, str(odoo_bin()), "-c", str(CONFIG), *server, "-d", db, *args]


def install(options, db):
    say(f"installing iot_update in a fresh database {db}")
    command = odoo_command(
        options, db, "-i", "iot_update", "--without-demo=all", "--stop-after-init", "--log-level=warn"
    )
    with LOG.open("a") as out:
        if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
            sys.exit(f"install failed, see {LOG}")


def start_server(options, db, workers, db_maxconn_gevent):
    http_port, gevent_port = free_port(), free_port()
    command = odoo_command(
        options,
        db,
        f"--http-port={http_port}",
        f"--gevent-port={gevent_port}",
        "--http-interface=127.0.0.1",
        f"--workers={workers}",
        "--max-cron-threads=0",
        f"--db_maxconn_gevent={db_maxconn_gevent}",
        "--log-level=warn",
    )
    out = LOG.open("a")  # closed with the process
    server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        url, gevent_url = wait_for_server(server, http_port, gevent_port)
    except BaseException:
        stop_server(server)  # never leave a server behind
        raise
    return server, url, gevent_url


def wait_for_server(server, http_port, gevent_port):
    url, gevent_url = f"http://127.0.0.1:{http_port}", f"http://127.0.0.1:{gevent_port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server stopped, see {LOG}")
        try:
            if requests.get(url + "/web/health", timeout=2).status_code == 200:
                # The gevent worker loads the registry on its first request.
                requests.get(gevent_url + "/web/health", timeout=60).raise_for_status()
                return url, gevent_url
        except requests.RequestException:  # not listening yet, or loading the registry
            pass
        time.sleep(0.5)
    sys.exit(f"the server did not answer within 2 minutes, see {LOG}")


# ---------------------------------------------------------------------------
# Subscribers
# ---------------------------------------------------------------------------


#: What a failed connection attempt was, from websocket-client's text of it.
REFUSED, TRY_LATER, OTHER = "refused", "try later", "other"


def attempt_failure(message):
    """The kind of a failed attempt, from websocket-client's ``"<error> - reconnect"``:
    the handshake answered with an error status (Odoo's 500 when the gevent worker's
    pool is full), the connection closed by the server with code 1013 after the
    handshake (Odoo's ``TRY_LATER``: no cursor for the subscription), or anything else."""
    if message.startswith("Handshake status "):
        return REFUSED
    if message.startswith("Connection closed (code 1013)"):
        return TRY_LATER
    return OTHER


class FailedAttempts(logging.Handler):
    """Failed connection attempts of the subscribers, from websocket-client's log.

    With ``run_forever(reconnect=...)``, as the genuine box runs it, only the
    first failure reaches the app's ``on_error``; every one, first or retried,
    is logged (``"<error> - reconnect"``, level INFO) from the subscriber's own
    thread, which names the subscriber, and so is each new attempt
    (``"reconnect() - retrying in ..."``). A connection closed by the server
    may log two failures (the close frame, then the reset socket): one attempt
    counts once.
    """

    def __init__(self):
        super().__init__(logging.INFO)
        self.links = {}  # thread ident -> Subscriber

    def emit(self, record):
        link = self.links.get(record.thread)
        message = record.getMessage()
        if link is None:
            return
        if message.startswith("reconnect() - retrying"):
            link.next_attempt()
        elif message.endswith(" - reconnect"):
            link.failed(attempt_failure(message))


ATTEMPTS = FailedAttempts()


def watch_attempts():
    logger = logging.getLogger("websocket")
    logger.setLevel(logging.INFO)
    if ATTEMPTS not in logger.handlers:
        logger.addHandler(ATTEMPTS)
    logger.propagate = False  # nothing on the console


class Subscriber(BusLink):
    """A box's link (its own bytes and its 10 s retry) that starts on a barrier,
    notes when the notification waiting on its channel arrives, and counts its
    failed attempts before it (:class:`FailedAttempts`)."""

    def __init__(self, url, box, channel, barrier):
        super().__init__(url, box, channel, reconnect=RECONNECT)
        self.barrier = barrier
        self.started_at = None
        self.acked_at = None
        self.acked = threading.Event()
        self.failures = {REFUSED: 0, TRY_LATER: 0, OTHER: 0}
        self._attempt_failed = False

    def run(self):
        ATTEMPTS.links[threading.get_ident()] = self
        try:
            self.barrier.wait()
            self.started_at = time.perf_counter()
            super().run()
        finally:
            ATTEMPTS.links.pop(threading.get_ident(), None)

    def _app(self):
        self.next_attempt()  # the first attempt of run_forever logs no "retrying"
        return super()._app()

    def next_attempt(self):
        self._attempt_failed = False

    def failed(self, kind):
        if self._attempt_failed:
            return  # the same attempt, failing again
        self._attempt_failed = True
        if not self.acked.is_set() and not self._stopping.is_set():
            self.failures[kind] += 1

    def on_error(self, ws, error):
        super().on_error(ws, error)
        if ws is None:  # run_forever itself raised (BusLink.run): no "- reconnect" line
            self.failed(OTHER)

    def on_message(self, ws, message):
        super().on_message(ws, message)
        if not self.acked.is_set() and any(
            isinstance(n, dict) and n.get("message", {}).get("type") == ACK_TYPE for n in self.messages
        ):
            self.acked_at = time.perf_counter()
            self.acked.set()


class WebClient(Subscriber):
    """Odoo's web client's subscription: a channel, ``last``, no box identity
    (retried after the same delay, for the comparison)."""

    def subscription(self):
        return json.dumps({"event_name": "subscribe", "data": {"channels": [self.channel], "last": 0}})


class ConnectionPeak(threading.Thread):
    """The most connections Odoo's processes held to ``db`` at once while it runs.

    Odoo's pools keep a connection open once made (until 10 minutes idle) and
    make a new one only when all they have are borrowed: the peak is what the
    busiest moment needed, up to the pools' sizes (``db_maxconn_gevent`` for
    the gevent worker, plus a few for the HTTP workers).
    """

    SQL = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name LIKE 'odoo-%%'"

    def __init__(self, options, db):
        super().__init__(daemon=True)
        self.connection = pg_connect(options, "postgres")
        self.connection.autocommit = True
        self.db = db
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self):
        with self.connection.cursor() as cr:
            while True:
                cr.execute(self.SQL, [self.db])
                self.peak = max(self.peak, cr.fetchone()[0])
                if self._stop_event.wait(0.05):
                    break

    def stop(self):
        self._stop_event.set()
        self.join(5)
        self.connection.close()
        return self.peak


def outcome(links):
    """A burst's subscribers by outcome, and their failed attempts by kind."""
    done = [link for link in links if link.acked.is_set()]
    return {
        "first_try": sum(1 for link in done if not any(link.failures.values())),
        "retried": sum(1 for link in done if any(link.failures.values())),
        "never": len(links) - len(done),
        **{kind: sum(link.failures[kind] for link in links) for kind in (REFUSED, TRY_LATER, OTHER)},
    }


def add_acks(connection, db, channels):
    """One notification waiting on each channel (sent to a subscriber with ``last`` 0).
    Returns the rows written (deleted and inserted)."""
    message = json.dumps({"type": ACK_TYPE, "payload": {}}, separators=(",", ":"))
    with connection.cursor() as cr:
        cr.execute("DELETE FROM bus_bus WHERE message = %s", [message])  # the previous ones
        written = cr.rowcount
        cr.execute(
            "INSERT INTO bus_bus (channel, message, create_date, write_date) "
            "SELECT c, %s, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC' FROM unnest(%s) AS c",
            [message, [json.dumps([db, channel], separators=(",", ":")) for channel in channels]],
        )
        written += cr.rowcount
    connection.commit()
    return written


def set_boxes(connection, url, db, seen_hours_ago):
    """Every box last seen ``seen_hours_ago`` (check-in and bus), statuses refreshed."""
    with connection.cursor() as cr:
        cr.execute(
            "UPDATE iot_box SET last_contact = now() AT TIME ZONE 'UTC' - make_interval(secs => %s), "
            "last_seen_bus = now() AT TIME ZONE 'UTC' - make_interval(secs => %s), "
            "last_seen = now() AT TIME ZONE 'UTC' - make_interval(secs => %s)",
            [seen_hours_ago * 3600 + 600, seen_hours_ago * 3600, seen_hours_ago * 3600],
        )
    connection.commit()
    common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common")
    uid = common.authenticate(db, "admin", "admin", {})
    models = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object")
    cron = models.execute_kw(
        db,
        uid,
        "admin",
        "ir.model.data",
        "search_read",
        [[("module", "=", "iot_update"), ("name", "=", "ir_cron_refresh_update_status")]],
        {"fields": ["res_id"]},
    )[0]["res_id"]
    models.execute_kw(db, uid, "admin", "ir.cron", "method_direct_trigger", [[cron]])
    with connection.cursor() as cr:
        cr.execute("SELECT count(*) FILTER (WHERE is_offline), count(*) FROM iot_box")
        offline, total = cr.fetchone()
    connection.commit()
    return offline, total


def max_connections(options):
    connection = pg_connect(options, "postgres")
    try:
        with connection.cursor() as cr:
            cr.execute("SHOW max_connections")
            return int(cr.fetchone()[0])
    finally:
        connection.close()


def writes(connection):
    with connection.cursor() as cr:
        cr.execute("SELECT pg_stat_clear_snapshot()")
        cr.execute(WRITES_SQL)
        value = cr.fetchone()[0]
    connection.commit()
    return int(value)


def online_count(rows, since):
    """Boxes seen on the bus from ``since`` on and not offline, among ``rows`` of
    ``(last_seen_bus, is_offline)``.

    Odoo stores a datetime to the second (``fields.Datetime.now()`` drops the
    microseconds): a box seen during the second ``since`` falls in has a
    ``last_seen_bus`` a little before ``since`` itself, so the comparison is
    made on whole seconds.
    """
    since = since.replace(microsecond=0)
    return sum(1 for seen, offline in rows if seen is not None and seen >= since and not offline)


def online_since(connection, since):
    with connection.cursor() as cr:
        cr.execute("SELECT last_seen_bus, is_offline FROM iot_box")
        rows = cr.fetchall()
    connection.commit()
    return online_count(rows, since)


def burst(connection, options, db, gevent_url, pairs, kind, timeout):
    """Open every subscriber at once; returns the burst's figures."""
    add_acks(connection, db, [channel for __, channel in pairs])
    time.sleep(STATS_FLUSH)
    before = writes(connection)
    with connection.cursor() as cr:
        cr.execute("SELECT now() AT TIME ZONE 'UTC'")
        since = cr.fetchone()[0]
    connection.commit()
    peak = ConnectionPeak(options, db)
    peak.start()
    barrier = threading.Barrier(len(pairs) + 1)
    cls = WebClient if kind == "web" else Subscriber
    links = [cls(gevent_url, box, channel, barrier) for box, channel in pairs]
    for link in links:
        link.start()
    barrier.wait()
    started = time.perf_counter()
    deadline = started + timeout
    all_online = None
    ack_writes = 0  # the benchmark's own, not counted
    refresh_at = started + ACK_REFRESH
    while time.perf_counter() < deadline and not all(link.acked.is_set() for link in links):
        time.sleep(0.1)
        if time.perf_counter() >= refresh_at:
            # Odoo sends a subscriber with ``last`` 0 the notifications of the last
            # 50 s only: subscribers still retrying get theirs again.
            pending = [link.channel for link in links if not link.acked.is_set()]
            ack_writes += add_acks(connection, db, pending)
            refresh_at += ACK_REFRESH
    acked = [link for link in links if link.acked.is_set()]
    handled = time.perf_counter() - started if len(acked) == len(links) else None
    if kind != "web":
        while time.perf_counter() < deadline:
            if online_since(connection, since) >= len(pairs):
                all_online = time.perf_counter() - started
                break
            time.sleep(0.05)
    counts = outcome(links)
    for link in links:
        link.stop()
    for link in links:
        link.join(5)
    db_connections = peak.stop()
    time.sleep(STATS_FLUSH)
    written = writes(connection) - before - ack_writes
    latencies = sorted(link.acked_at - started for link in acked)
    return {
        "subs_per_s": len(acked) / handled if handled else len(acked) / timeout,
        "all_handled": handled,
        "p50": statistics.median(latencies) * 1000 if latencies else None,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000 if latencies else None,
        "all_online": all_online,
        **counts,
        "db_connections": db_connections,
        "writes_per_sub": written / len(pairs),
    }


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def print_table(results):
    print()
    header = (
        f"{'burst':<22} {'round':>5} {'subs/s':>8} {'all done s':>10} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'online s':>9} {'1st try':>7} {'retried':>7} {'never':>5} {'refused':>7} {'1013':>5} {'other':>5}"
        f" {'db conns':>8} {'writes/sub':>10}"
    )
    print(header)
    print("-" * len(header))
    for label, rows in results.items():
        for number, row in enumerate(rows, 1):
            print(
                f"{label:<22} {number:>5} {row['subs_per_s']:>8.1f} {fmt(row['all_handled'], '10.2f')}"
                f" {fmt(row['p50'], '8.0f')} {fmt(row['p99'], '8.0f')} {fmt(row['all_online'], '9.2f')}"
                f" {row['first_try']:>7} {row['retried']:>7} {row['never']:>5} {row[REFUSED]:>7}"
                f" {row[TRY_LATER]:>5} {row[OTHER]:>5} {row['db_connections']:>8} {row['writes_per_sub']:>10.2f}"
            )
    print(
        "\n1st try / retried / never: subscribers through on their first attempt, through after"
        " the box's own retry (10 s), not through at the timeout."
        "\nrefused / 1013 / other: failed attempts, handshakes answered with an error status,"
        " connections the server closed with 1013 (try later) before the subscription was"
        " handled, anything else. db conns: the most connections Odoo held to the database at once."
    )


def markdown(results, pool):
    """The table of ``print_table`` as Markdown, for docs/benchmarks.md; ``pool``
    is the gevent worker's ``db_maxconn_gevent``."""
    rows = []
    for label, runs in results.items():
        for number, row in enumerate(runs, 1):
            rows.append(
                (
                    f"{pool:,}",
                    number,
                    label,
                    f"{row['subs_per_s']:.1f}",
                    seconds(row["all_handled"]),
                    fmt(row["p50"], ",.0f"),
                    fmt(row["p99"], ",.0f"),
                    seconds(row["all_online"]),
                    f"{row['first_try']:,}",
                    f"{row['retried']:,}",
                    f"{row['never']:,}",
                    f"{row[REFUSED]:,}",
                    f"{row[TRY_LATER]:,}",
                    f"{row[OTHER]:,}",
                    f"{row['db_connections']:,}",
                    f"{row['writes_per_sub']:.2f}",
                )
            )
    rows.sort(key=lambda row: row[1])  # round by round, as they ran
    header = (
        "pool",
        "round",
        "burst",
        "subs/s",
        "all done s",
        "p50 ms",
        "p99 ms",
        "online s",
        "1st try",
        "retried",
        "never",
        "refused",
        "1013",
        "other",
        "db conns",
        "writes/sub",
    )
    return docs_table.markdown_table(header, rows, right=set(range(len(header))) - {2})


def seconds(value):
    """Three significant digits, as the tables of docs/benchmarks.md give seconds."""
    return "-" if value is None else f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


def fmt(value, pattern):
    return "-" if value is None else format(value, pattern)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=os.environ.get("IOT_UPDATE_TEST_DB", "iot_update_test") + "_bus_bench")
    parser.add_argument("--boxes", type=int, default=1000, help="boxes (and web clients) per burst")
    parser.add_argument("--rounds", type=int, default=2, help="times the three bursts take turns")
    parser.add_argument("--workers", type=int, default=2, help="Odoo HTTP workers (the gevent worker comes with them)")
    parser.add_argument(
        "--db-maxconn-gevent",
        type=int,
        default=32,
        help="PostgreSQL connections of the gevent worker (Odoo's default is db_maxconn, 64)",
    )
    parser.add_argument("--db-host", help="PostgreSQL server's host (default: .dev/odoo.conf's)")
    parser.add_argument("--db-port", type=int, help="PostgreSQL server's port (default: .dev/odoo.conf's)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a burst may take")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database")
    docs_table.add_option(parser, "", "bus-BOXES-pool-POOL, with -rounds-N when --rounds is above 1")
    args = parser.parse_args(argv)
    if args.docs is not None:
        args.docs = args.docs or block_name(args)
        docs_table.check(args.docs, parser=parser)
    return args


def block_name(args):
    """The block of docs/benchmarks.md a run writes by default: named after its options."""
    return f"bus-{args.boxes}-pool-{args.db_maxconn_gevent}" + (f"-rounds-{args.rounds}" if args.rounds > 1 else "")


def register_boxes(connection, url, count):
    """``count`` boxes checked in through ``/iot/setup``: their ``(box, channel)``."""
    with connection.cursor() as cr:
        cr.execute("SELECT value FROM ir_config_parameter WHERE key = 'iot_token'")
        token = cr.fetchone()[0]
    connection.commit()
    say(f"registering {count} boxes through /iot/setup")
    report = run_simulator(url, token, boxes=count, seed=9, handlers=False, concurrency=4)
    boxes = [(result.box, result.setup.channel) for result in report.results]
    if not report.ok or not all(channel for __, channel in boxes):
        sys.exit("some check-ins failed or answered no channel")
    return boxes


def run_rounds(connection, options, args, url, gevent_url, boxes):
    web = [(box, f"iot_update_bench_web_{box.index}") for box, __ in boxes]
    results = {"web clients (floor)": [], "boxes, restart": [], "boxes, back online": []}
    for number in range(args.rounds):
        say(f"round {number + 1}/{args.rounds}: web clients")
        results["web clients (floor)"].append(burst(connection, options, args.db, gevent_url, web, "web", args.timeout))
        set_boxes(connection, url, args.db, 0.5)
        say(f"round {number + 1}/{args.rounds}: boxes, restart (all online, seen on the bus 30 min ago)")
        results["boxes, restart"].append(burst(connection, options, args.db, gevent_url, boxes, "box", args.timeout))
        offline, total = set_boxes(connection, url, args.db, 5)
        say(f"round {number + 1}/{args.rounds}: boxes, back online ({offline}/{total} offline before)")
        results["boxes, back online"].append(
            burst(connection, options, args.db, gevent_url, boxes, "box", args.timeout)
        )
    return results


def print_server_log():
    with LOG.open() as log:
        lines = log.readlines()
    noisy = [line.rstrip() for line in lines if " ERROR " in line or " WARNING " in line]
    pool_full = sum("The Connection Pool Is Full" in line for line in lines)
    print(
        f"\nserver log: {len(noisy)} warnings/errors, {pool_full} lines 'The Connection Pool Is Full'"
        + (f"; first: {noisy[0]}" if noisy else "")
    )


def _exit_on_sigterm(signum, frame):
    sys.exit(143)  # runs the clean-up: server stopped, database dropped


def main(argv=None):
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(argv)

    # Client and server (started from here, so inheriting it) each hold one socket per
    # subscriber; the gevent worker also up to one PostgreSQL connection per subscriber.
    limit = raise_fd_limit(3 * args.boxes + 512)
    threading.stack_size(512 * 1024)
    options = read_config()
    if args.db_host:
        options["db_host"] = args.db_host
    if args.db_port:
        options["db_port"] = str(args.db_port)
    watch_attempts()
    LOG.parent.mkdir(exist_ok=True)
    LOG.write_text("")
    server = None
    connection = None
    try:
        drop_database(options, args.db)
        install(options, args.db)
        server, url, gevent_url = start_server(options, args.db, args.workers, args.db_maxconn_gevent)
        say(
            f"server on {url}, gevent worker on {gevent_url}, --workers={args.workers},"
            f" --db_maxconn_gevent={args.db_maxconn_gevent}; PostgreSQL on {options['db_host']}:{options['db_port']}"
            f" (max_connections {max_connections(options)}); open files limit {limit}"
        )
        connection = pg_connect(options, args.db)
        boxes = register_boxes(connection, url, args.boxes)
        results = run_rounds(connection, options, args, url, gevent_url, boxes)
        print_table(results)
        print_server_log()
        if args.docs:
            docs_table.write(args.docs, markdown(results, args.db_maxconn_gevent))
    finally:
        if connection is not None:
            connection.close()
        if server is not None:
            stop_server(server)
        if not args.keep_db:
            drop_database(options, args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
