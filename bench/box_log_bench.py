#!/usr/bin/env python3
# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Cost of a box's log batch (POST /iot/log) beside Odoo's cheapest route.

    .venv/bin/python bench/box_log_bench.py [--boxes 20] [--requests 100] [--rounds 10] [--workers 0]

What it does, in one run (about a minute with the defaults):

1. creates a fresh database (``<IOT_UPDATE_TEST_DB>_boxlog_bench`` unless
   ``--db``) with ``iot_update``, using ``.dev/odoo.conf`` (run ``./dev setup``
   once first), and starts an Odoo server on a free 127.0.0.1 port;
2. registers ``--boxes`` boxes through ``/iot/setup`` (from 127.0.0.1, the
   address their log batches then come from);
3. one request at a time, in ``--rounds`` rounds: (d) each box's first
   batch with errors in 24 hours, one per box (their error dates forgotten
   before, outside the measure): the box starts reporting errors (its error
   date, a notification to the open dashboards a second after the write);
   then turns of ``--requests`` each: (a) a batch of 50 lines kept (45
   warnings, 5 errors: 10 entries; no query in the request, the write of
   what the server collects within the second finds the boxes, checks
   their addresses, writes the entries and keeps each box to its bound),
   (b) a batch of 50 INFO lines, below the level kept (nothing collected,
   nothing written), (c) ``/web/webclient/version_info``, a JSON-RPC route
   that reads nothing;
   batches are bodies as the genuine 18.0 ``AsyncHTTPHandler`` builds them,
   sent chunked as it sends them; the routes take turns, so that the
   machine's drift over a run weighs on each alike;
4. prints per route the mean, p50 and p99 latency and the mean's ratio to (c),
   and the CPU time the server and its PostgreSQL backends used per request,
   its ratio to (c) and the part of it the backends used: read in /proc
   around each turn, the backends listed anew each time (the server's pool
   opens one for the write while a request holds another); a turn of
   batches ends with a wait for the server's write of the batches it
   collected (two for (d), whose dashboards are told a second after), and
   the CPU those processes use idle over such a wait, measured before, is
   taken off. Then the lines and entries
   kept per box (the count bound) and the table's size; then it stops the
   server and drops the database (``--keep-db`` keeps it). Server log:
   ``.dev/bench-odoo.log``.

The box gives the server 0.5 s per batch (``_REQUEST_TIMEOUT``): the p99 of (a)
is the figure to hold against it; the ratio (a)/(c) is the route's cost beside
the cheapest request Odoo serves.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docs_table
from handlers_bench import (
    CONFIG,
    LOG,
    drop_database,
    free_port,
    odoo_command,
    pg_connect,
    read_config,
    register_boxes,
    say,
    start_server,
    stop_server,
)

#: Seconds a turn of batches waits for the server to write what it accepted
#: (it writes the entries it collected a second after the first of them).
WRITE_WAIT = 1.5
FIRST_ERROR_LABEL = "(d) (a), the box's first errors in 24 h"
VERSION_INFO_BODY = b'{"jsonrpc": "2.0", "method": "call", "params": {}}'
LINE = (
    "2026-03-01 12:00:00,123 1234 {level} ? odoo.addons.hw_drivers.iot_handlers.drivers.PrinterDriver_L: "
    "printer {n}: {text} "
)


def batch_body(mac, levelno, level, text):
    """A 50-line batch as ``AsyncHTTPHandler._flush_logs`` writes it."""
    lines = [f"mac {mac}"]
    for n in range(50):
        number = 40 if levelno >= 30 and n % 10 == 9 else levelno
        name = "ERROR" if number == 40 else level
        lines.append(f"{number},{LINE.format(level=name, n=n, text=text)}")
    return b"".join(line.encode() + b"<log/>\n" for line in lines)


def chunks(body):
    """The body as the genuine box's generator yields it, one record at a time."""
    for piece in body.split(b"<log/>\n")[:-1]:
        yield piece + b"<log/>\n"


def install(options, db, log):
    say(f"installing iot_update in a fresh database {db}")
    drop_database(options, db)
    command = odoo_command(
        options, db, options["addons_path"], "-i", "iot_update", "--without-demo=all", "--stop-after-init"
    )
    with open(log, "a") as out:
        command.append("--log-level=warn")
        if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
            sys.exit(f"install failed, see {log}")


def timed(session, url, body, headers, chunked):
    started = time.perf_counter()
    response = session.post(url, data=chunks(body) if chunked else body, headers=headers, timeout=30)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        sys.exit(f"{url} answered {response.status_code}")
    return elapsed


def process_cpu_seconds(pids):
    """CPU time (user and system) each of the processes ``pids`` used so far,
    from /proc: ``{pid: seconds}``, a process that is gone left out."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def cpu_between(before, after):
    """CPU the processes used between two readings of ``process_cpu_seconds``:
    a process that started in between (a connection the server's pool opened
    for the write of the entries while a request held the other) counts all
    it used."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def server_pids(server):
    """The Odoo server's process and its children (prefork workers)."""
    pids = [server.pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == server.pid:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def database_pids(options, db):
    """The PostgreSQL backends serving ``db`` (readable in /proc when the
    database server runs on this machine)."""
    connection = pg_connect(options, db)
    with connection.cursor() as cr:
        cr.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [db])
        pids = [row[0] for row in cr.fetchall()]
    connection.close()
    return pids


def measure(url, macs, requests_per_round, rounds, cpu_pids=dict, forget_errors=None):
    """Per route: the latencies seen by the client, and the CPU seconds each
    group of processes used per request (``cpu_pids()``: ``{group: pids}``,
    the server's and PostgreSQL's, read around each route's turn; None where
    /proc shows none of them). ``forget_errors()`` makes every box a box
    that does not report errors, before each round's turn of (d)."""
    routes = {
        "(a) /iot/log, 50 lines kept": (
            "/iot/log",
            [batch_body(mac, 30, "WARNING", "paper low") for mac in macs],
            {},
            True,
        ),
        "(b) /iot/log, 50 lines below the level": (
            "/iot/log",
            [batch_body(mac, 20, "INFO", "status polled") for mac in macs],
            {},
            True,
        ),
        "(c) /web/webclient/version_info": (
            "/web/webclient/version_info",
            [VERSION_INFO_BODY],
            {"Content-Type": "application/json"},
            False,
        ),
    }
    latencies = {label: [] for label in routes}
    cpu = {label: Counter() for label in routes}
    session = requests.Session()
    for path, bodies, headers, chunked in routes.values():  # warm-up
        for number in range(10):
            timed(session, url + path, bodies[number % len(bodies)], headers, chunked)

    def reading():
        # The processes are listed anew at each reading: the server's pool
        # opens a connection (a PostgreSQL backend) when it needs one.
        return {group: process_cpu_seconds(pids) for group, pids in cpu_pids().items()}

    def used(before, after):
        return Counter({group: cpu_between(before.get(group, {}), seconds) for group, seconds in after.items()})

    # The turns of batches end with a wait for the server's write of them:
    # what the server and the database use idle over such a wait is taken off.
    idle = Counter()
    for __ in range(2):
        before = reading()
        time.sleep(WRITE_WAIT)
        idle.update({group: seconds / 2 for group, seconds in used(before, reading()).items()})
    # Each box's first batch with errors in 24 hours also writes its error
    # date and tells the open dashboards (once a day per box): a turn of its
    # own, one batch per box, so that (a) is the batch of a box already
    # reporting errors.
    first = FIRST_ERROR_LABEL
    latencies[first], cpu[first] = [], Counter()
    for __ in range(rounds):
        if forget_errors:
            forget_errors()
            path, bodies, headers, chunked = routes["(a) /iot/log, 50 lines kept"]
            before = reading()
            latencies[first].extend(timed(session, url + path, body, headers, chunked) for body in bodies)
            # The write within the second, and the dashboards told a second after it.
            time.sleep(2 * WRITE_WAIT)
            cpu[first].update(used(before, reading()))
            cpu[first].subtract(idle)
            cpu[first].subtract(idle)
        for label, (path, bodies, headers, chunked) in routes.items():
            before = reading()
            for number in range(requests_per_round):
                latencies[label].append(timed(session, url + path, bodies[number % len(bodies)], headers, chunked))
            if path == "/iot/log":
                # The server writes what it accepted within the second after:
                # that write is part of the turn's CPU.
                time.sleep(WRITE_WAIT)
                cpu[label].subtract(idle)
            cpu[label].update(used(before, reading()))
    if any(before.values()):
        per_request = {
            label: {group: seconds / max(len(latencies[label]), 1) for group, seconds in groups.items()}
            for label, groups in cpu.items()
        }
        return latencies, per_request, sum(idle.values())
    return latencies, None, None


def forget_errors(options, db):
    """Every box of ``db`` as a box that reported no error."""
    connection = pg_connect(options, db)
    with connection.cursor() as cr:
        cr.execute("UPDATE iot_box SET last_error_date = NULL")
    connection.commit()
    connection.close()


def kept(options, db):
    """``(lines, entries, boxes, most lines per box, table bytes, per-box bound)`` of the box log."""
    connection = pg_connect(options, db)
    with connection.cursor() as cr:
        cr.execute("SELECT coalesce(sum(line_count), 0), count(*), count(DISTINCT box_id) FROM iot_box_log")
        lines, entries, boxes = cr.fetchone()
        cr.execute(
            "SELECT coalesce(max(n), 0) FROM (SELECT sum(line_count) AS n FROM iot_box_log GROUP BY box_id) per_box"
        )
        per_box = cr.fetchone()[0]
        cr.execute("SELECT pg_total_relation_size('iot_box_log')")
        size = cr.fetchone()[0]
        cr.execute("SELECT value FROM ir_config_parameter WHERE key = 'iot_update.box_log_max_lines'")
        bound = int((cr.fetchone() or ["200"])[0])
    connection.close()
    return lines, entries, boxes, per_box, size, bound


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def print_table(latencies, cpu=None):
    """The table of ``measure``'s figures; ``cpu``: per route, the CPU
    seconds per request of each group of processes (``PostgreSQL`` is shown
    apart, as the part of the total its backends used)."""
    base_label = "(c) /web/webclient/version_info"
    base = statistics.mean(latencies[base_label])
    cpu = cpu and {label: (sum(groups.values()), groups.get("PostgreSQL", 0.0)) for label, groups in cpu.items()}
    print(
        f"{'route':42} {'requests':>8} {'mean ms':>8} {'p50 ms':>7} {'p99 ms':>7} {'x (c)':>6}"
        f" {'CPU ms':>7} {'x (c)':>6} {'of it PG':>8}"
    )
    for label, values in latencies.items():
        if not values:
            continue
        mean = statistics.mean(values)
        line = (
            f"{label:42} {len(values):8d} {mean * 1000:8.2f} {percentile(values, 0.5) * 1000:7.2f} "
            f"{percentile(values, 0.99) * 1000:7.2f} {mean / base:6.2f}"
        )
        if cpu:
            total, database = cpu[label]
            line += f" {total * 1000:7.2f} {total / cpu[base_label][0]:6.2f} {database * 1000:8.2f}"
        else:
            line += f" {'-':>7} {'-':>6} {'-':>8}"
        print(line)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=os.environ.get("IOT_UPDATE_TEST_DB", "iot_update_test") + "_boxlog_bench")
    parser.add_argument("--boxes", type=int, default=20, help="boxes sending batches in turn")
    parser.add_argument("--requests", type=int, default=100, help="requests per route and round")
    parser.add_argument("--rounds", type=int, default=10, help="turns the routes take")
    parser.add_argument("--workers", type=int, default=0, help="Odoo workers (0: the threaded server)")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database")
    docs_table.add_option(parser, "box-log")
    args = parser.parse_args(argv)
    if args.docs:
        docs_table.check(args.docs, parser=parser)
    if not CONFIG.exists():
        sys.exit(f"{CONFIG} is missing: run ./dev setup first")
    options = read_config()
    LOG.parent.mkdir(exist_ok=True)
    install(options, args.db, LOG)
    server, url = start_server(options, args.db, options["addons_path"], free_port(), args.workers, LOG)
    try:
        macs = register_boxes(options, args.db, url, args.boxes)
        say(f"{len(macs)} boxes registered; {args.rounds} rounds of {args.requests} requests per route")
        latencies, cpu, idle = measure(
            url,
            macs,
            args.requests,
            args.rounds,
            lambda: {"server": server_pids(server), "PostgreSQL": database_pids(options, args.db)},
            lambda: forget_errors(options, args.db),
        )
    finally:
        stop_server(server)
    rows, entries, boxes, per_box, size, __ = kept(options, args.db)
    with docs_table.capture() as out:
        print_table(latencies, cpu)
        print(
            f"lines kept: {rows} in {entries} entries for {boxes} boxes (at most {per_box} per box); "
            f"table and indexes: {size // 1024} KiB"
        )
        if idle is not None:
            print(
                f"each turn of batches waits {WRITE_WAIT:g} s for the server's write of them; the CPU used idle "
                f"over such a wait ({idle * 1000:.0f} ms) is taken off it"
            )
    if args.docs:
        docs_table.write(args.docs, "```text\n" + out.getvalue().strip() + "\n```\n")
    if not args.keep_db:
        drop_database(options, args.db)


if __name__ == "__main__":
    main()
