#!/usr/bin/env python3
# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Benchmark of POST /iot/get_handlers against a real Odoo server.

    .venv/bin/python bench/handlers_bench.py [--workers 2] [--requests 200] [--concurrency 20]

What it does, in one run:

1. generates, in a temporary folder, an addon ``iot_update_bench_handlers``: a
   copy of ``bench/iot_update_bench_handlers`` (a baseline route that zips the
   handler folders on every call) plus ~40 handler files of ~20 KB each in its
   ``iot_handlers`` folder;
2. creates a fresh database (``<IOT_UPDATE_TEST_DB>_bench`` unless ``--db``) with
   ``iot_update`` and that addon, using the connection settings of
   ``.dev/odoo.conf`` (run ``./dev setup`` once first);
3. starts an Odoo server on a free 127.0.0.1 port, registers boxes through
   ``/iot/setup`` as the genuine box does, and measures, sequentially and with
   ``--concurrency`` boxes at once:
   (a) ``/iot/get_handlers``, (b) the baseline, (c) ``/web/webclient/version_info``;
4. prints requests/s and p50/p99 latencies side by side with the ratios, then
   stops the server and drops the database (``--keep-db`` keeps it). The
   server's log is in ``.dev/bench-odoo.log``.
"""

import argparse
import configparser
import io
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import psycopg2
import requests

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_MODULE = Path(__file__).resolve().parent / "iot_update_bench_handlers"
CONFIG = ROOT / ".dev" / "odoo.conf"
LOG = ROOT / ".dev" / "bench-odoo.log"
MAC_PREFIX = "02:00:00:00:"


# ---------------------------------------------------------------------------
# Fixture
# ---------------------------------------------------------------------------

WORDS = (
    "device printer serial scale usb display payment terminal connection status value "
    "data buffer command response timeout retry port baud driver interface manager event "
    "read write open close send receive parse format encode decode check supported"
).split()


def handler_source(rng, name, size):
    """Python-like text of about ``size`` bytes, different for every file."""
    lines = [
        "# Handler generated for the iot_update benchmark.",
        "import logging",
        "",
        "_logger = logging.getLogger(__name__)",
        "",
        f"class {name}:",
    ]
    length = sum(len(line) + 1 for line in lines)
    while length < size:
        verb, noun, other = rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS)
        block = [
            f"    def _{verb}_{noun}_{rng.randrange(10000)}(self, {other}, timeout={rng.randrange(1, 60)}):",
            f'        """{verb.capitalize()} the {noun} of the {other}."""',
            f"        value = self._{other}.get({noun!r}, {rng.randrange(1000)})",
            f"        if value > {rng.randrange(100)}:",
            f'            _logger.info("{noun} %s {verb}", value)',
            f"        return self._{noun}_{verb}(value, {other})",
            "",
        ]
        lines.extend(block)
        length += sum(len(line) + 1 for line in block)
    return ("\n".join(lines) + "\n").encode()


def make_fixture(base, files, size):
    """Copy the fixture addon into ``base`` and give it ``files`` handler files."""
    module = base / FIXTURE_MODULE.name
    shutil.copytree(FIXTURE_MODULE, module, ignore=shutil.ignore_patterns("__pycache__"))
    rng = random.Random(18)
    total = 0
    for number in range(files):
        kind = "drivers" if number % 4 else "interfaces"
        suffix = ("", "_L", "_W")[number % 3]
        name = f"Bench{kind[:-1].capitalize()}{number:02d}"
        folder = module / "iot_handlers" / kind
        folder.mkdir(parents=True, exist_ok=True)
        data = handler_source(rng, name, size)
        (folder / f"{name}{suffix}.py").write_bytes(data)
        total += len(data)
    return module, total


# ---------------------------------------------------------------------------
# Odoo server
# ---------------------------------------------------------------------------


def read_config():
    if not CONFIG.exists():
        sys.exit(f"{CONFIG} is missing: run ./dev setup first")
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    return parser["options"]


def odoo_bin():
    import odoo  # noqa: PLC0415 - only to find odoo-bin next to the package

    path = Path(odoo.__file__).resolve().parent.parent / "odoo-bin"
    if not path.exists():
        sys.exit(f"odoo-bin not found next to {odoo.__file__}")
    return path


def pg_connect(options, dbname):
    password = options.get("db_password")
    return psycopg2.connect(
        host=options.get("db_host"),
        port=options.get("db_port"),
        user=options.get("db_user"),
        password=None if password in (None, "False", "") else password,
        dbname=dbname,
    )


def drop_database(options, db):
    connection = pg_connect(options, "postgres")
    connection.autocommit = True
    with connection.cursor() as cr:
        cr.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    connection.close()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def odoo_command(options, db, addons_path, *args):
    return [
        sys.executable,
        str(odoo_bin()),
        "-c",
        str(CONFIG),
        # -d without --db-filter: the server serves this database only and does
        # not list the cluster's databases for each request without session.
        "-d",
        db,
        f"--addons-path={addons_path}",
        *args,
    ]


def install(options, db, addons_path, log):
    say(f"installing iot_update and {FIXTURE_MODULE.name} in a fresh database {db}")
    drop_database(options, db)
    command = odoo_command(
        options,
        db,
        addons_path,
        "-i",
        f"iot_update,{FIXTURE_MODULE.name}",
        "--without-demo=all",
        "--stop-after-init",
        "--log-level=warn",
    )
    with open(log, "a") as out:
        if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
            sys.exit(f"install failed, see {log}")


def start_server(options, db, addons_path, port, workers, log):
    command = odoo_command(
        options,
        db,
        addons_path,
        f"--http-port={port}",
        "--http-interface=127.0.0.1",
        f"--workers={workers}",
        "--max-cron-threads=0",
        "--log-level=warn",
    )
    out = open(log, "a")  # closed with the process
    server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server stopped, see {log}")
        try:
            if requests.get(url + "/web/health", timeout=2).status_code == 200:
                return server, url
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    server.terminate()
    sys.exit(f"the server did not answer within 2 minutes, see {log}")


def stop_server(server):
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# ---------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------


def register_boxes(options, db, url, count):
    connection = pg_connect(options, db)
    with connection.cursor() as cr:
        cr.execute("SELECT value FROM ir_config_parameter WHERE key = 'iot_token'")
        token = cr.fetchone()[0]
    connection.close()
    macs = [f"{MAC_PREFIX}{number // 256:02x}:{number % 256:02x}" for number in range(count)]
    for number, mac in enumerate(macs):
        body = {
            "params": {
                "iot_box": {
                    "name": f"bench-{number:02d}",
                    "identifier": mac,
                    "ip": f"10.0.0.{number + 1}",
                    "token": token,
                    "version": "L24.11-18.0#1a2b3c4",
                },
                "devices": {},
            }
        }
        response = requests.post(
            url + "/iot/setup", data=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        response.raise_for_status()
    return macs


def route_calls(url):
    """``{label: (callable(session, mac) -> response)}`` of the measured routes."""

    def handlers(path):
        def call(session, mac):
            return session.post(url + path, files={"mac": (None, mac), "auto": (None, "True")}, timeout=60)

        return call

    def version_info(session, mac):
        return session.post(
            url + "/web/webclient/version_info",
            data=b'{"jsonrpc": "2.0", "method": "call", "params": {}}',
            headers={"Content-Type": "application/json"},
            timeout=60,
        )

    return {
        "(a) /iot/get_handlers": handlers("/iot/get_handlers"),
        "(b) zip on every call": handlers("/iot_update_bench/get_handlers"),
        "(c) version_info": version_info,
    }


def check(response):
    if response.status_code != 200 or not response.content:
        raise RuntimeError(f"{response.request.url}: HTTP {response.status_code}, {len(response.content)} bytes")
    return len(response.content)


def run_load(call, macs, total, concurrency):
    """Send ``total`` requests from ``concurrency`` clients (one box each)."""
    latencies = []
    sizes = []
    lock = threading.Lock()
    per_client = max(1, total // concurrency)

    def client(mac):
        session = requests.Session()
        mine = []
        for __ in range(per_client):
            start = time.perf_counter()
            size = check(call(session, mac))
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)
            sizes.append(size)

    threads = [threading.Thread(target=client, args=(macs[number % len(macs)],)) for number in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if len(latencies) != per_client * concurrency:
        raise RuntimeError("some requests failed")
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "bytes": max(sizes),
        "count": len(latencies),
    }


def measure(url, macs, requests_count, concurrency, warmup):
    results = {}
    for label, call in route_calls(url).items():
        session = requests.Session()
        for number in range(warmup):
            check(call(session, macs[number % len(macs)]))
        results[label] = {
            "sequential": run_load(call, macs, requests_count, 1),
            f"{concurrency} boxes": run_load(call, macs, requests_count, concurrency),
        }
        say(f"measured {label}")
    return results


def print_table(results):
    modes = list(next(iter(results.values())))
    header = f"{'route':<24} {'mode':<11} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'bytes':>9} {'n':>5}"
    print()
    print(header)
    print("-" * len(header))
    for label, by_mode in results.items():
        for mode in modes:
            row = by_mode[mode]
            print(
                f"{label:<24} {mode:<11} {row['rps']:>8.1f} {row['p50']:>8.2f} {row['p99']:>8.2f}"
                f" {row['bytes']:>9} {row['count']:>5}"
            )
    a, b, c = (results[label] for label in results)
    print()
    print(f"{'ratio':<44} " + " ".join(f"{mode:>11}" for mode in modes))
    ratios = [
        ("(b) / (a) time per request (target >= 3)", lambda m: a[m]["rps"] / b[m]["rps"]),
        ("(a) / (c) time per request (target <= 2)", lambda m: c[m]["rps"] / a[m]["rps"]),
        ("(b) / (a) p50 latency", lambda m: b[m]["p50"] / a[m]["p50"]),
        ("(a) / (c) p50 latency", lambda m: a[m]["p50"] / c[m]["p50"]),
    ]
    for name, ratio in ratios:
        print(f"{name:<44} " + " ".join(f"{ratio(mode):>10.2f}x" for mode in modes))


def say(message):
    print(f"[bench] {message}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=os.environ.get("IOT_UPDATE_TEST_DB", "iot_update_test") + "_bench")
    parser.add_argument("--workers", type=int, default=2, help="Odoo HTTP workers (0: threaded server)")
    parser.add_argument("--requests", type=int, default=400, help="requests per route and mode")
    parser.add_argument("--concurrency", type=int, default=20, help="boxes asking at the same time")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per route first")
    parser.add_argument("--files", type=int, default=40, help="extra handler files")
    parser.add_argument("--file-size", type=int, default=20_000, help="bytes per extra handler file")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database")
    args = parser.parse_args(argv)

    options = read_config()
    base = Path(tempfile.mkdtemp(prefix="iot_update_bench_"))
    log = LOG
    log.write_text("")
    server = None
    try:
        module, total = make_fixture(base, args.files, args.file_size)
        say(f"fixture: {args.files} handler files, {total / 1024:.0f} KiB, in {module}")
        addons_path = f"{options['addons_path']},{base}"
        install(options, args.db, addons_path, log)
        server, url = start_server(options, args.db, addons_path, free_port(), args.workers, log)
        say(f"server on {url} with --workers={args.workers}")
        macs = register_boxes(options, args.db, url, args.concurrency)
        bundle = requests.post(url + "/iot/get_handlers", files={"mac": (None, macs[0]), "auto": (None, "True")})
        with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
            entries = len(archive.namelist())
        say(f"bundle for a Linux box: {entries} files, {len(bundle.content) / 1024:.0f} KiB zipped")
        results = measure(url, macs, args.requests, args.concurrency, args.warmup)
        print_table(results)
    finally:
        if server is not None:
            stop_server(server)
        if not args.keep_db:
            drop_database(options, args.db)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
