#!/usr/bin/env python3
# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Benchmark of POST /iot/get_handlers against a real Odoo server.

    .venv/bin/python bench/handlers_bench.py [--workers N] [--seconds 1] [--rounds 8] [--concurrency 20]

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
   (a) ``/iot/get_handlers``, (b) the baseline, (c) ``/web/webclient/version_info``.
   Each request is a new connection carrying the body urllib3 encodes for the
   genuine box, encoded once, so that the client's own work weighs little; the
   routes take turns (``--rounds`` of ``--seconds`` each) so that a slower
   moment of the machine weighs on all three. The clients keep sending for
   the whole turn; a request still running at its end counts for its part
   inside it;
4. prints requests/s and p50/p99 latencies side by side with the ratios, then
   stops the server and drops the database (``--keep-db`` keeps it). The
   server's log is in ``.dev/bench-odoo.log``.
"""

import argparse
import configparser
import http.client
import io
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_table
import requests
from urllib3.filepost import encode_multipart_formdata

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
    import odoo

    path = Path(odoo.__file__).resolve().parent.parent / "odoo-bin"
    if not path.exists():
        sys.exit(f"odoo-bin not found next to {odoo.__file__}")
    return path


def pg_connect(options, dbname):
    import psycopg2

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
        # The prefork server's gevent worker (websocket) gets a free port too.
        f"--gevent-port={free_port()}",
        "--http-interface=127.0.0.1",
        f"--workers={workers}",
        "--max-cron-threads=0",
        "--log-level=warn",
    )
    out = open(log, "a")  # closed with the process
    server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        return wait_for_server(server, url_of(command), log)
    except BaseException:
        stop_server(server)  # never leave a server behind
        raise


def url_of(command):
    port = next(arg for arg in command if arg.startswith("--http-port=")).split("=", 1)[1]
    return f"http://127.0.0.1:{port}"


def wait_for_server(server, url, log):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server stopped, see {log}")
        try:
            if requests.get(url + "/web/health", timeout=2).status_code == 200:
                return server, url
        except requests.RequestException:  # not listening yet, or loading the registry
            pass
        time.sleep(0.5)
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


def box_body(mac):
    """The multipart body and content type of a handlers request, encoded by
    urllib3 as the genuine 18.0 box encodes it (``auto=True``: at start-up)."""
    body, content_type = encode_multipart_formdata({"mac": mac, "auto": "True"})
    return body, {"Content-Type": content_type}


VERSION_INFO_BODY = b'{"jsonrpc": "2.0", "method": "call", "params": {}}'


def route_calls(macs):
    """``{label: (path, [(body, headers) per box])}`` of the measured routes.

    Bodies are encoded once, so that the time measured is the server's and
    the connection's, not the client's encoding.
    """
    handlers = [box_body(mac) for mac in macs]
    version_info = [(VERSION_INFO_BODY, {"Content-Type": "application/json"})] * len(macs)
    return {
        "(a) /iot/get_handlers": ("/iot/get_handlers", handlers),
        "(b) zip on every call": ("/iot_update_bench/get_handlers", handlers),
        "(c) version_info": ("/web/webclient/version_info", version_info),
    }


def post(host, port, path, body, headers):
    """One request on a new connection, as a box makes it (Odoo answers in
    HTTP/1.0 and closes the connection). Returns the body's length."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    if response.status != 200 or not data:
        raise RuntimeError(f"{path}: HTTP {response.status}, {len(data)} bytes")
    return len(data)


def run_load(host, port, path, bodies, seconds, concurrency):
    """Keep ``concurrency`` clients (one box each) sending requests to ``path``
    for ``seconds``, all starting together.

    Returns the ``(start, end)`` times of the requests, the measured window
    ``(start, end)`` and the size of the answers. A request still running at
    the end of the window counts for the part of it inside the window (see
    ``summarize``), so that slow routes are not favoured by the cut.
    """
    spans = []
    sizes = []
    failures = []
    lock = threading.Lock()
    window = []
    start_together = threading.Barrier(concurrency + 1)

    def client(body, headers):
        mine = []
        size = 0
        start_together.wait()
        deadline = window[1]
        try:
            while (start := time.perf_counter()) < deadline:
                size = post(host, port, path, body, headers)
                mine.append((start, time.perf_counter()))
        except (OSError, RuntimeError) as error:
            failures.append(error)
        with lock:
            spans.extend(mine)
            sizes.append(size)

    threads = [threading.Thread(target=client, args=bodies[number % len(bodies)]) for number in range(concurrency)]
    for thread in threads:
        thread.start()
    begin = time.perf_counter()
    window[:] = [begin, begin + seconds]
    start_together.wait()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} clients failed, first: {failures[0]}")
    return spans, tuple(window), max(sizes)


def work_done(spans, window):
    """Requests completed within ``window``, counting a request that crosses
    its end for the fraction of its time inside."""
    begin, end = window
    return sum((min(stop, end) - max(start, begin)) / (stop - start) for start, stop in spans if stop > start)


def summarize(latencies, work, seconds, size):
    latencies = sorted(latencies)
    return {
        "rps": work / seconds,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "bytes": size,
        "count": len(latencies),
    }


def measure(url, macs, seconds, concurrency, warmup, rounds):
    """Measure every route in each mode. The routes take turns, ``rounds``
    times ``seconds`` each, so that a slower moment of the machine weighs on
    all of them."""
    host, port = url.removeprefix("http://").split(":")
    port = int(port)
    calls = route_calls(macs)
    for path, bodies in calls.values():
        for number in range(warmup):
            post(host, port, path, *bodies[number % len(bodies)])
    modes = {"sequential": 1, f"{concurrency} boxes": concurrency}
    results = {label: {} for label in calls}
    for mode, clients in modes.items():
        totals = {label: {"latencies": [], "work": 0.0, "seconds": 0.0, "size": 0} for label in calls}
        for __ in range(rounds):
            for label, (path, bodies) in calls.items():
                spans, window, size = run_load(host, port, path, bodies, seconds, clients)
                total = totals[label]
                total["latencies"].extend(stop - start for start, stop in spans)
                total["work"] += work_done(spans, window)
                total["seconds"] += window[1] - window[0]
                total["size"] = max(total["size"], size)
        for label, total in totals.items():
            results[label][mode] = summarize(**total)
        say(f"measured {mode}")
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


def markdown(results):
    """The route table of ``print_table`` as Markdown, for docs/benchmarks.md."""
    modes = list(next(iter(results.values())))
    rows = [
        (route_cell(label), mode, f"{row['rps']:.1f}", f"{row['p50']:.1f}", f"{row['p99']:.1f}")
        for label, by_mode in results.items()
        for mode in modes
        for row in (by_mode[mode],)
    ]
    table = docs_table.markdown_table(("route", "mode", "req/s", "p50 ms", "p99 ms"), rows, right=(2, 3, 4))
    a, b, c = (results[label] for label in results)
    ratios = docs_table.markdown_table(
        ("time per request", *modes),
        [
            ("(b)/(a), target at least 3", *(f"{a[m]['rps'] / b[m]['rps']:.2f}x" for m in modes)),
            ("(a)/(c), target at most 2", *(f"{c[m]['rps'] / a[m]['rps']:.2f}x" for m in modes)),
        ],
    )
    return table + "\n" + ratios


def route_cell(label):
    """A route label with its one-word name as code: ``(a) `/iot/get_handlers` ``."""
    tag, __, name = label.partition(" ")
    return f"{tag} `{name}`" if name and " " not in name else label


def listen_overflows(path="/proc/net/netstat"):
    """Linux's count of connections refused by a full listen queue, or None."""
    try:
        with open(path) as netstat:
            lines = [line.split() for line in netstat if line.startswith("TcpExt:")]
    except OSError:
        return None
    if len(lines) < 2 or "ListenOverflows" not in lines[0]:
        return None
    return int(lines[1][lines[0].index("ListenOverflows")])


def say(message):
    print(f"[bench] {message}", flush=True)


def _exit_on_sigterm(signum, frame):
    sys.exit(143)  # runs the clean-up: server stopped, database dropped


def main(argv=None):
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=os.environ.get("IOT_UPDATE_TEST_DB", "iot_update_test") + "_bench")
    parser.add_argument(
        "--workers",
        type=int,
        default=2 * (os.cpu_count() or 1) + 1,
        help="Odoo HTTP workers, by default Odoo's sizing rule 2 x CPUs + 1 (0: the threaded server)."
        " Odoo's prefork server queues 8 connections per worker: with more boxes at once than that,"
        " some wait for the kernel's 1 s SYN retry",
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per route, mode and round")
    parser.add_argument("--concurrency", type=int, default=20, help="boxes asking at the same time")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per route first")
    parser.add_argument("--rounds", type=int, default=8, help="turns the routes take in each mode")
    parser.add_argument("--files", type=int, default=40, help="extra handler files")
    parser.add_argument("--file-size", type=int, default=20_000, help="bytes per extra handler file")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database")
    docs_table.add_option(parser, "handlers")
    args = parser.parse_args(argv)
    if args.docs:
        docs_table.check(args.docs, parser=parser)

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
        if args.workers and args.concurrency > 8 * args.workers:
            say(
                f"note: {args.concurrency} boxes at once exceed the {8 * args.workers} connections"
                f" {args.workers} workers queue: expect 1 s stalls in that mode"
            )
        overflows = listen_overflows()
        results = measure(url, macs, args.seconds, args.concurrency, args.warmup, args.rounds)
        print_table(results)
        if overflows is not None:
            print(f"\nconnections dropped by a full listen queue (1 s retry each): {listen_overflows() - overflows}")
        if args.docs:
            docs_table.write(args.docs, markdown(results))
    finally:
        if server is not None:
            stop_server(server)
        if not args.keep_db:
            drop_database(options, args.db)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
