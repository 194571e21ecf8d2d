#!/usr/bin/env python3
# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Benchmark of a fleet of IoT boxes against a real prefork Odoo server.

    .venv/bin/python bench/fleet_bench.py [--boxes 10000] [--workers 4] [--restart-boxes 2000]

What it does, in one run:

1. creates a fresh database (``iu_fleet_bench`` unless ``--db``) with
   ``iot_update``, generates in a temporary folder a tiny addon shipping one
   handler file (not installed yet), and starts Odoo with ``--workers`` HTTP
   workers on a free 127.0.0.1 port, no cron thread (the benchmark runs the
   scheduled actions itself, to time them);
2. builds the fleet through the real routes: each of ``--boxes`` boxes checks
   in (``/iot/setup``) then downloads its handlers (``/iot/get_handlers``), as
   the genuine 18.0 box does at start, ``--concurrency`` boxes at a time;
3. times, logged in as admin through JSON-RPC as the web client calls them,
   the dashboard's queries: the column counts (``web_read_group`` by status),
   the first page of cards of each column (``web_search_read``), and each
   filter's counts; each beside ``/web/webclient/version_info``, Odoo's
   cheapest route, timed in the same loop;
4. a bundle change: installs the tiny addon as an administrator does
   (Apps > Install), then measures the time until the dashboard counts every
   box as handlers outdated, the latency of the first box requests after it,
   how many times a fleet was flagged (from the server's log) and the errors
   logged; then uninstalls it, and measures the same;
5. a feed refresh, a settings change (offline delay) and the status cron;
6. a restart of ``--restart-boxes`` boxes spread evenly over one minute (each
   box: check-in, then handlers download): requests per second, p50/p99 per
   route, and how many downloads took longer than the genuine box's 8-second
   timeout.

The server's log is in ``.dev/fleet-bench-odoo.log``; the database is
dropped at the end unless ``--keep-db``.
"""

import argparse
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from iotbox_sim.fleet import percentile, plan_fleet, setup_payload  # noqa: E402 - after the path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_table  # noqa: E402 - beside this script

_spec = importlib.util.spec_from_file_location("handlers_bench", Path(__file__).resolve().parent / "handlers_bench.py")
hb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hb)

LOG = ROOT / ".dev" / "fleet-bench-odoo.log"
FIXTURE = "iot_update_bench_fleet"
ADMIN = ("admin", "admin")  # set by Odoo's base data
BOX_TIMEOUT = 8.0  # seconds: the genuine 18.0 box's handlers download timeout
SETUP, HANDLERS, VERSION_INFO = "/iot/setup", "/iot/get_handlers", "/web/webclient/version_info"
SETUP_HEADERS = {"Content-type": "application/json", "Accept": "text/plain"}
STATUSES = ("offline", "image_required", "code_pending", "handlers_outdated", "up_to_date")
FILTERS = {
    "needs image upgrade": [("needs_image_upgrade", "=", True)],
    "image upgrade available": [("image_upgrade_available", "=", True)],
    "code update pending": [("code_update_pending", "=", True)],
    "handlers outdated": [("handlers_outdated", "=", True)],
    "offline": [("is_offline", "=", True)],
    "up to date": [("update_status", "=", "up_to_date")],
    "automatic drivers update off": [("drivers_auto_update", "=", False)],
}
#: Fields a card of the dashboard reads (the kanban view's).
CARD_SPEC = {
    name: {}
    for name in (
        "platform",
        "drivers_auto_update",
        "name",
        "identifier",
        "image_version",
        "code_version",
        "last_contact",
        "update_advice",
        "status_color",
        "update_status",
    )
}
CARD_SPEC["company_id"] = {"fields": {"display_name": {}}}
#: iot_update.models.iot_handlers_bundle.NOTICED_LOG, as logged.
CHANGE_LINE = re.compile(r"IoT handlers bundle (\w+) \w+ noticed \(")


def say(message):
    print(f"[fleet] {message}", flush=True)


# ---------------------------------------------------------------------------
# Fixture addon, database, server
# ---------------------------------------------------------------------------


def make_fixture(base):
    """A tiny addon shipping one handler file, for every platform."""
    module = base / FIXTURE
    (module / "iot_handlers" / "drivers").mkdir(parents=True)
    (module / "__init__.py").write_text("")
    manifest = {
        "name": "IoT Box Updates: fleet benchmark fixture",
        "version": "18.0.1.0.0",
        "category": "Hidden",
        "license": "LGPL-3",
        "author": "iot_update contributors",
        "depends": ["iot_update"],
        "installable": True,
    }
    (module / "__manifest__.py").write_text(repr(manifest) + "\n")
    (module / "iot_handlers" / "drivers" / "BenchFleetDriver.py").write_bytes(
        hb.handler_source(__import__("random").Random(11), "BenchFleetDriver", 4000)
    )
    return module


def install(options, db, addons_path):
    say(f"installing iot_update in a fresh database {db}")
    hb.drop_database(options, db)
    command = hb.odoo_command(
        options, db, addons_path, "-i", "iot_update", "--without-demo=all", "--stop-after-init", "--log-level=warn"
    )
    with open(LOG, "a") as out:
        if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
            sys.exit(f"install failed, see {LOG}")


def start_server(options, db, addons_path, port, workers):
    command = hb.odoo_command(
        options,
        db,
        addons_path,
        f"--http-port={port}",
        "--http-interface=127.0.0.1",
        f"--workers={workers}",
        "--max-cron-threads=0",
        "--log-level=warn",
        # The lines that say when a bundle change was recorded, and by which process.
        "--log-handler=odoo.addons.iot_update.models.iot_handlers_bundle:INFO",
    )
    out = open(LOG, "a")  # closed with the process
    server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server stopped, see {LOG}")
        try:
            if requests.get(url + "/web/health", timeout=10).status_code == 200:
                return server, url
        except requests.RequestException:  # not listening yet, or a worker still starting
            pass
        time.sleep(0.5)
    server.terminate()
    sys.exit(f"the server did not answer within 2 minutes, see {LOG}")


class Feed:
    """A checksum list on 127.0.0.1, as Odoo's nightly server publishes it."""

    BODY = (
        b"1111111111111111111111111111111111111111  iotboxv24_11.zip\n"
        b"2222222222222222222222222222222222222222  iotboxv25_07.zip\n"
        b"2222222222222222222222222222222222222222  iotbox-latest.zip\n"
    )

    def __init__(self):
        body = self.BODY

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/SHA1SUMS.txt"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------


class Admin:
    """JSON-RPC as the web client makes it, logged in as admin."""

    def __init__(self, url, db):
        self.url = url
        self.session = requests.Session()
        self.call_id = 0
        self.rpc("/web/session/authenticate", {"db": db, "login": ADMIN[0], "password": ADMIN[1]})

    def rpc(self, path, params):
        self.call_id += 1
        body = {"jsonrpc": "2.0", "method": "call", "id": self.call_id, "params": params}
        answer = self.session.post(self.url + path, json=body, timeout=300).json()
        if "error" in answer:
            raise RuntimeError(f"{path}: {answer['error'].get('data', {}).get('message') or answer['error']}")
        return answer["result"]

    def call(self, model, method, *args, **kwargs):
        kwargs.setdefault("context", {"lang": "en_US", "tz": "UTC"})
        params = {"model": model, "method": method, "args": list(args), "kwargs": kwargs}
        return self.rpc(f"/web/dataset/call_kw/{model}/{method}", params)

    def ref(self, xmlid):
        module, name = xmlid.split(".")
        rows = self.call("ir.model.data", "search_read", [("module", "=", module), ("name", "=", name)], ["res_id"])
        return rows[0]["res_id"]

    def columns(self, domain=()):
        """The dashboard's column counts: ``{status: count}``."""
        groups = self.call(
            "iot.box",
            "web_read_group",
            list(domain),
            ["update_status"],
            ["update_status"],
            limit=80,
            offset=0,
            orderby="",
            lazy=True,
        )["groups"]
        return {group["update_status"]: group["update_status_count"] for group in groups}

    def cards(self, status):
        return self.call(
            "iot.box",
            "web_search_read",
            [("update_status", "=", status)],
            CARD_SPEC,
            limit=40,
            offset=0,
            order="",
            count_limit=10001,
        )

    def outdated(self):
        return self.call("iot.box", "search_count", [("handlers_outdated", "=", True)])


def version_info(url):
    return requests.post(url + VERSION_INFO, json={"jsonrpc": "2.0", "method": "call", "params": {}}, timeout=60)


class Box:
    """One box's two requests, encoded once as the genuine 18.0 box encodes them."""

    def __init__(self, spec, token):
        self.spec = spec
        self.setup_body = json.dumps(setup_payload(spec, token)).encode("utf8")
        self.handlers_body = hb.box_body(spec.mac)

    def check_in(self, host, port):
        return hb.post(host, port, SETUP, self.setup_body, SETUP_HEADERS)

    def download(self, host, port):
        return hb.post(host, port, HANDLERS, *self.handlers_body)


class Timings:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_route = {}
        self.errors = []

    def add(self, route, seconds):
        with self.lock:
            self.by_route.setdefault(route, []).append(seconds)

    def row(self, route):
        values = self.by_route.get(route, [])
        return {
            "n": len(values),
            "p50": percentile(values, 50) * 1000,
            "p99": percentile(values, 99) * 1000,
            "max": max(values, default=0) * 1000,
        }


def start_box(box, host, port, timings, started=None):
    """Check-in, then handlers download. Returns the download's seconds."""
    begin = started if started is not None else time.perf_counter()
    try:
        box.check_in(host, port)
        middle = time.perf_counter()
        timings.add(SETUP, middle - begin)
        box.download(host, port)
        download = time.perf_counter() - middle
        timings.add(HANDLERS, download)
        return download
    except (OSError, RuntimeError) as error:
        timings.errors.append(error)
        return None


def split(url):
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


# ---------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------


def build_fleet(url, boxes, concurrency):
    host, port = split(url)
    timings = Timings()
    begin = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda box: start_box(box, host, port, timings), boxes))
    elapsed = time.perf_counter() - begin
    if timings.errors:
        raise RuntimeError(f"{len(timings.errors)} boxes failed to start, first: {timings.errors[0]}")
    return timings, elapsed


def floor(url, concurrency, seconds=5.0):
    """``version_info`` with ``concurrency`` clients for ``seconds``: requests/s and latencies."""
    host, port = split(url)
    body = (hb.VERSION_INFO_BODY, {"Content-Type": "application/json"})
    spans, window, __ = hb.run_load(host, port, VERSION_INFO, [body], seconds, concurrency)
    latencies = sorted(stop - start for start, stop in spans)
    return {
        "rps": hb.work_done(spans, window) / seconds,
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "n": len(latencies),
    }


def timed(func, *args, **kwargs):
    begin = time.perf_counter()
    result = func(*args, **kwargs)
    return (time.perf_counter() - begin) * 1000, result


def dashboard(admin, url, repeat):
    """``[(query, median ms, max ms, version_info median ms)]``."""
    queries = [("column counts (web_read_group by status)", admin.columns)]
    for status in STATUSES:
        queries.append((f"first cards: {status} (web_search_read)", lambda status=status: admin.cards(status)))
    for name, domain in FILTERS.items():
        queries.append((f"filter counts: {name}", lambda domain=domain: admin.columns(domain)))
    rows = []
    for name, query in queries:
        query()  # warm
        times, floors = [], []
        for __ in range(repeat):
            times.append(timed(query)[0])
            floors.append(timed(version_info, url)[0])
        rows.append((name, statistics.median(times), max(times), statistics.median(floors)))
    return rows


def log_size():
    return LOG.stat().st_size


def log_since(offset):
    with open(LOG, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def log_facts(text):
    changes = [line for line in text.splitlines() if CHANGE_LINE.search(line)]
    processes = {line.split()[2] for line in changes if len(line.split()) > 2}
    errors = [line for line in text.splitlines() if re.search(r"\d \d+ (ERROR|CRITICAL) ", line)]
    return {"changes": len(changes), "processes": len(processes), "errors": len(errors), "error_lines": errors[:3]}


def bundle_change(admin, url, action, expected_outdated, first_requests, probes=4):
    """Install or uninstall the fixture addon as an administrator does; then
    poll the dashboard until it counts ``expected_outdated`` outdated boxes,
    and time the first box requests after it (``first_requests`` download at
    once, beside ``probes`` requests of ``version_info``)."""
    host, port = split(url)
    offset = log_size()
    module = admin.call("ir.module.module", "search", [("name", "=", FIXTURE)])
    begin = time.perf_counter()
    admin.call("ir.module.module", f"button_immediate_{action}", module)
    returned = time.perf_counter()
    polls = 0
    while True:
        polls += 1
        outdated = admin.outdated()
        if outdated == expected_outdated or time.perf_counter() - returned > 120:
            break
        time.sleep(0.2)
    right = time.perf_counter()
    # The first boxes asking after the change, each on a new connection, and
    # Odoo's cheapest route at the same moment: both wait for the workers that
    # load the new registry.
    calls = [(box.download, host, port) for box in first_requests] + [(version_info, url)] * probes
    with ThreadPoolExecutor(len(calls)) as pool:
        durations = list(pool.map(lambda call: timed(*call)[0], calls))
    downloads, floors = durations[: len(first_requests)], durations[len(first_requests) :]
    facts = log_facts(log_since(offset))
    return {
        "action": action,
        "action_seconds": returned - begin,
        "right_after": right - returned,
        "polls": polls,
        "outdated": outdated,
        "expected": expected_outdated,
        "first_p50": statistics.median(downloads),
        "first_max": max(downloads),
        "first_n": len(downloads),
        "floor_max": max(floors),
        **facts,
    }


def fleet_operations(admin, url, feed_url):
    rows = []
    admin.call("ir.config_parameter", "set_param", "iot_update.image_feed_url", feed_url)
    cron = admin.ref("iot_update.ir_cron_refresh_image_releases")
    rows.append(
        ("feed refresh (scheduled action, run now)", timed(admin.call, "ir.cron", "method_direct_trigger", [cron])[0])
    )
    values = {"offline_delay_hours": 48, "image_feed_url": feed_url, "event_retention_days": 90}
    rows.append(
        ("settings: offline delay 24 h -> 48 h", timed(admin.call, "iot.update.settings", "create", [values])[0])
    )
    cron = admin.ref("iot_update.ir_cron_refresh_update_status")
    rows.append(
        ("status cron (scheduled action, run now)", timed(admin.call, "ir.cron", "method_direct_trigger", [cron])[0])
    )
    cron = admin.ref("iot_update.ir_cron_sync_handlers_digests")
    rows.append(("bundle cron, nothing changed", timed(admin.call, "ir.cron", "method_direct_trigger", [cron])[0]))
    floors = [timed(version_info, url)[0] for __ in range(5)]
    return rows, statistics.median(floors)


def restart(url, boxes, seconds):
    """Every box of ``boxes`` starts at its moment, spread evenly over
    ``seconds``: check-in, then handlers download."""
    host, port = split(url)
    timings = Timings()
    downloads = []
    threads = []
    # Small stacks for thousands of box threads; restored after, as the setting is
    # process-wide (a server thread of the same process would get it too).
    previous_stack_size = threading.stack_size(256 * 1024)
    begin = time.perf_counter()
    step = seconds / max(len(boxes), 1)

    def run(box, at):
        downloads.append(start_box(box, host, port, timings, started=at))

    try:
        for number, box in enumerate(boxes):
            at = begin + number * step
            delay = at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            thread = threading.Thread(target=run, args=(box, at), daemon=True)
            thread.start()
            threads.append(thread)
    finally:
        threading.stack_size(previous_stack_size)
    for thread in threads:
        thread.join(600)
    elapsed = time.perf_counter() - begin
    late = sum(1 for download in downloads if download is not None and download > BOX_TIMEOUT)
    return timings, elapsed, late


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def table(header, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    print("| " + " | ".join(str(cell).ljust(width) for cell, width in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) + " |")
    print()


def report(args, results):
    """Print the results as Markdown tables."""
    floor_row = results["floor"]
    print()
    say(f"{args.boxes} boxes, {args.workers} workers, {os.cpu_count()} CPUs; run in {results['seconds']:.0f} s")
    print()
    print(
        f"Floor: {VERSION_INFO} with {args.concurrency} clients: {floor_row['rps']:.0f} req/s,"
        f" p50 {floor_row['p50']:.1f} ms, p99 {floor_row['p99']:.1f} ms"
    )
    print()
    build, build_seconds = results["build"]
    rows = []
    done = 0
    for route in (SETUP, HANDLERS):
        row = build.row(route)
        done += row["n"]
        rows.append((route, row["n"], f"{row['p50']:.1f}", f"{row['p99']:.1f}"))
    rows.append(("both", done, f"{done / build_seconds:.0f} req/s", f"in {build_seconds:.0f} s"))
    table((f"fleet's first start, {args.concurrency} boxes at a time", "requests", "p50 ms", "p99 ms"), rows)

    table(
        ("dashboard query (admin, JSON-RPC)", "median ms", "max ms", "version_info median ms"),
        [(name, f"{median:.1f}", f"{worst:.1f}", f"{base:.1f}") for name, median, worst, base in results["dashboard"]],
    )

    rows = []
    for change in results["changes"]:
        rows.append(
            (
                change["action"],
                f"{change['action_seconds']:.1f} s",
                f"+{change['right_after']:.1f} s ({change['outdated']}/{change['expected']}, {change['polls']} polls)",
                f"{change['first_p50']:.0f} / {change['first_max']:.0f} ms (n={change['first_n']})",
                f"{change['floor_max']:.0f} ms",
                f"{change['changes']} by {change['processes']} process(es)",
                change["errors"],
            )
        )
    table(
        (
            "bundle change",
            "admin's call",
            "dashboard right",
            "first downloads p50 / max",
            "version_info max",
            "variants recorded",
            "errors",
        ),
        rows,
    )

    operations, operations_floor = results["operations"]
    table(
        ("fleet operation", "ms", "version_info median ms"),
        [(name, f"{ms:.0f}", f"{operations_floor:.1f}") for name, ms in operations],
    )

    timings, seconds, late, count, dropped = results["restart"]
    rows = []
    done = 0
    for route in (SETUP, HANDLERS):
        row = timings.row(route)
        done += row["n"]
        rows.append((route, row["n"], f"{row['p50']:.1f}", f"{row['p99']:.1f}", f"{row['max']:.0f}"))
    table((f"restart, {count} boxes over {args.restart_seconds:.0f} s", "requests", "p50 ms", "p99 ms", "max ms"), rows)
    print(
        f"Restart served in {seconds:.1f} s, {done / seconds:.0f} req/s; downloads over {BOX_TIMEOUT:.0f} s: {late};"
        f" failed boxes: {len(timings.errors)}"
        + ("" if dropped is None else f"; connections dropped by a full listen queue: {dropped}")
    )
    kinds = {}
    for error in timings.errors:
        kinds[type(error).__name__] = kinds.get(type(error).__name__, 0) + 1
    if kinds:
        print("Failures: " + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())))
    log = results["log"]
    print(f"Errors in the server's log over the whole run: {log['errors']}")
    for line in log["error_lines"]:
        print("   ", line)


def run(args, url, feed):
    """Every phase, against the server at ``url``; returns the results."""
    admin = Admin(url, args.db)
    token = admin.call("ir.config_parameter", "get_param", "iot_token")
    series = admin.rpc(VERSION_INFO, {})["server_serie"]
    boxes = [Box(spec, token) for spec in plan_fleet(args.boxes, seed=7, style="18", server_series=series)]

    floor_row = floor(url, args.concurrency)
    say(f"version_info, {args.concurrency} clients: {floor_row['rps']:.0f} req/s")
    say(f"building the fleet: {args.boxes} boxes check in and download, {args.concurrency} at a time")
    build, build_seconds = build_fleet(url, boxes, args.concurrency)
    say(f"  built in {build_seconds:.0f} s")
    columns = admin.columns()
    say("  columns: " + ", ".join(f"{status} {columns.get(status, 0)}" for status in STATUSES))

    say("dashboard queries")
    dash = dashboard(admin, url, args.repeat)

    say("bundle change: install, then uninstall, of an addon shipping one handler file")
    admin.call("ir.module.module", "update_list")
    # After the install, every box holds an old bundle; after the uninstall,
    # the boxes that asked after the install hold a bundle that is gone.
    first = boxes[: args.first_requests]
    install_change = bundle_change(admin, url, "install", args.boxes, first)
    uninstall_change = bundle_change(admin, url, "uninstall", len(first), first[len(first) // 2 :])

    say("feed refresh, settings change, status cron")
    operations, operations_floor = fleet_operations(admin, url, feed.url)

    restart_boxes = boxes[: args.restart_boxes]
    say(f"restart: {len(restart_boxes)} boxes over {args.restart_seconds:.0f} s")
    overflows = hb.listen_overflows()
    restart_timings, restart_seconds, late = restart(url, restart_boxes, args.restart_seconds)
    dropped = None if overflows is None else hb.listen_overflows() - overflows
    total_log = log_facts(LOG.read_text(errors="replace"))

    return {
        "floor": floor_row,
        "build": (build, build_seconds),
        "dashboard": dash,
        "changes": (install_change, uninstall_change),
        "operations": (operations, operations_floor),
        "restart": (restart_timings, restart_seconds, late, len(restart_boxes), dropped),
        "log": total_log,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="iu_fleet_bench", help="database (dropped and created)")
    parser.add_argument("--boxes", type=int, default=10_000, help="boxes of the fleet")
    parser.add_argument("--workers", type=int, default=4, help="Odoo HTTP workers")
    parser.add_argument("--concurrency", type=int, default=16, help="boxes starting at once while the fleet is built")
    parser.add_argument("--restart-boxes", type=int, default=2000, help="boxes restarting within --restart-seconds")
    parser.add_argument("--restart-seconds", type=float, default=60.0)
    parser.add_argument("--first-requests", type=int, default=20, help="boxes asking right after a bundle change")
    parser.add_argument("--repeat", type=int, default=5, help="times each dashboard query is timed")
    parser.add_argument("--keep-db", action="store_true")
    docs_table.add_option(parser, "fleet")
    args = parser.parse_args(argv)
    if args.docs:
        docs_table.check(args.docs, parser=parser)

    options = hb.read_config()
    base = Path(tempfile.mkdtemp(prefix="iot_update_fleet_"))
    LOG.parent.mkdir(exist_ok=True)
    LOG.write_text("")
    server = feed = None
    started = time.perf_counter()
    try:
        make_fixture(base)
        addons_path = f"{options['addons_path']},{base}"
        install(options, args.db, addons_path)
        server, url = start_server(options, args.db, addons_path, hb.free_port(), args.workers)
        say(f"server on {url} with --workers={args.workers}, {os.cpu_count()} CPUs")
        feed = Feed()
        results = run(args, url, feed)
        results["seconds"] = time.perf_counter() - started
        with docs_table.capture() as printed:
            report(args, results)
        if args.docs:
            docs_table.write(args.docs, printed.getvalue())
    finally:
        if feed is not None:
            feed.close()
        if server is not None:
            hb.stop_server(server)
        if not args.keep_db:
            hb.drop_database(options, args.db)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
