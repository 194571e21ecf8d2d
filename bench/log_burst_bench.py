#!/usr/bin/env python3
# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The boxes' log burst after a fleet restart, beside Odoo's cheapest route
under the same load.

    .venv/bin/python bench/log_burst_bench.py [--boxes 2000] [--batches 3] [--seconds 60] [--workers 2]

What it does, in one run (a few minutes with the defaults):

1. creates a fresh database (``<IOT_UPDATE_TEST_DB>_logburst_bench`` unless
   ``--db``) with ``iot_update``, starts a prefork Odoo server (``--workers``
   HTTP workers) on a free 127.0.0.1 port, and registers ``--boxes`` boxes
   through ``/iot/setup`` (from 127.0.0.1, the address their batches then
   come from);
2. phase (c), the baseline: ``--boxes`` x ``--batches`` requests of
   ``/web/webclient/version_info`` (a JSON-RPC route that reads nothing),
   each sent at its own time spread evenly over ``--seconds`` (an open loop:
   a slow answer does not delay the next request), up to 128 at once;
3. phase (a): the same schedule, each request a 50-line batch of a box's log
   (45 warnings, 5 errors: every line kept at the default level), as the
   genuine 18.0 ``AsyncHTTPHandler`` builds and sends it (chunked), each box
   sending ``--batches`` of them within the window: what a fleet sends in the
   first minute after all its boxes restarted;
4. prints, per phase, the requests, errors, answers slower than the box's
   0.5 s timeout (the box gives up and drops the batch, SPEC 3.6), p50 and
   p99 latency; then the rows and bytes kept per box, and what a day of such
   restarts keeps per box under the per-box bound; then stops the server and
   drops the database (``--keep-db`` keeps it). Server log: ``.dev/bench-odoo.log``.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docs_table
from box_log_bench import VERSION_INFO_BODY, WRITE_WAIT, batch_body, chunks, install, kept, percentile
from handlers_bench import (
    CONFIG,
    LOG,
    drop_database,
    free_port,
    read_config,
    register_boxes,
    say,
    start_server,
    stop_server,
)

#: The genuine box's timeout for a batch (``_REQUEST_TIMEOUT``, SPEC 3.6).
BOX_TIMEOUT = 0.5
CONCURRENCY = 128


def burst(url, path, bodies, headers, chunked, seconds):
    """Send ``bodies`` to ``path``, each at its time of an even spread over
    ``seconds``; ``[(latency, status)]`` (status 0: no answer)."""
    local = threading.local()
    start = time.perf_counter() + 0.5
    step = seconds / len(bodies)
    results = [None] * len(bodies)

    def send(number):
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        delay = start + number * step - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        body = bodies[number]
        began = time.perf_counter()
        try:
            response = session.post(url + path, data=chunks(body) if chunked else body, headers=headers, timeout=30)
            status = response.status_code
        except requests.RequestException:
            status = 0
        results[number] = (time.perf_counter() - began, status)

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        list(pool.map(send, range(len(bodies))))
    return results


def summary(label, results):
    latencies = [latency for latency, __ in results]
    return [
        label,
        f"{len(results):,}",
        f"{sum(1 for __, status in results if status != 200)}",
        f"{sum(1 for latency in latencies if latency > BOX_TIMEOUT)}",
        f"{percentile(latencies, 0.5) * 1000:.0f}",
        f"{percentile(latencies, 0.99) * 1000:.0f}",
        f"{statistics.mean(latencies) * 1000:.0f}",
    ]


def report(args, baseline, batches, stats):
    rows, entries, boxes, per_box, size, bound = stats
    per_box_bytes = size / max(boxes, 1)
    with docs_table.capture() as out:
        print(
            f"{args.boxes:,} boxes, {args.batches} batches of 50 lines each within {args.seconds:g} s "
            f"({args.boxes * args.batches / args.seconds:.0f} requests/s), prefork --workers {args.workers}, "
            f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n"
        )
        print(
            docs_table.markdown_table(
                ["route", "requests", "errors", "over 0.5 s", "p50 ms", "p99 ms", "mean ms"],
                [
                    summary("(c) /web/webclient/version_info", baseline),
                    summary("(a) /iot/log, 50 lines kept", batches),
                ],
                right=(1, 2, 3, 4, 5, 6),
            )
        )
        print(
            f"\nKept: {rows:,} lines in {entries:,} entries for {boxes:,} boxes "
            f"({rows / max(boxes, 1):.0f} lines per box, at most {per_box}); "
            f"table and indexes {size / 2**20:.1f} MiB, {per_box_bytes / 1024:.1f} KiB per box. "
            f"A day of such restarts keeps at most {bound} lines per box (the bound), "
            f"about {per_box_bytes / max(rows / max(boxes, 1), 1) * bound / 1024:.0f} KiB per box at this line size."
        )
    if args.docs:
        docs_table.write(args.docs, out.getvalue())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    test_db = os.environ.get("IOT_UPDATE_TEST_DB", "iot_update_test")
    parser.add_argument("--db", default=test_db + "_logburst_bench")
    parser.add_argument("--boxes", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=3, help="batches of 50 lines per box")
    parser.add_argument("--seconds", type=float, default=60.0, help="the window they are sent in")
    parser.add_argument("--workers", type=int, default=2, help="Odoo HTTP workers (prefork)")
    parser.add_argument("--keep-db", action="store_true")
    docs_table.add_option(parser, "log-burst")
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
        say(f"registering {args.boxes:,} boxes")
        macs = register_boxes(options, args.db, url, args.boxes)
        count = args.boxes * args.batches
        # Warm both routes in every worker first (a worker's first request loads the registry).
        warm = requests.Session()
        for __ in range(20 * max(1, args.workers)):
            warm.post(
                url + "/web/webclient/version_info",
                data=VERSION_INFO_BODY,
                headers={"Content-Type": "application/json"},
            )
            warm.post(url + "/iot/log", data=chunks(batch_body(macs[0], 20, "INFO", "warming up")))
        say(f"(c) {count:,} requests of /web/webclient/version_info over {args.seconds:g} s")
        baseline = burst(
            url,
            "/web/webclient/version_info",
            [VERSION_INFO_BODY] * count,
            {"Content-Type": "application/json"},
            False,
            args.seconds,
        )
        say(f"(a) {count:,} batches of 50 lines ({args.batches} per box) over {args.seconds:g} s")
        # Box after box, then again: each box's batches are a third of the window apart.
        bodies = [
            batch_body(mac, 30, "WARNING", f"start {round_number}")
            for round_number in range(args.batches)
            for mac in macs
        ]
        batches = burst(url, "/iot/log", bodies, {}, True, args.seconds)
        # Each worker writes what it accepted within the second after.
        time.sleep(WRITE_WAIT)
    finally:
        stop_server(server)
    report(args, baseline, batches, kept(options, args.db))
    if not args.keep_db:
        drop_database(options, args.db)


if __name__ == "__main__":
    main()
