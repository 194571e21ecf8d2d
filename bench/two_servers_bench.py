#!/usr/bin/env python3
# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The fleet benchmark through nginx over two prefork Odoo servers, beside one server.

    .venv/bin/python bench/two_servers_bench.py [--boxes 10000] [--restart-boxes 2000] [--workers 2]

For each set-up, on a fresh database (``iu_two_bench``) with ``iot_update``:

- ``one``: one prefork server (``--workers``), the boxes straight to its port;
- ``two``: two prefork servers (``--workers`` each, ``--proxy-mode``) on the same
  database, nginx in front (deploy/nginx-iot_update.conf, round robin).

Then, as bench/fleet_bench.py does: ``--boxes`` boxes check in and download their
handlers, ``--concurrency`` at a time (the fleet built); then ``--restart-boxes``
boxes restart spread evenly over ``--restart-seconds`` (check-in, then download).
Reported: requests per second in total and per server (per server from nginx's
access log, which names the upstream of each request), latencies, errors, and the
downloads slower than the genuine box's 8-second timeout.
"""

import argparse
import importlib.util
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from iotbox_sim.fleet import plan_fleet  # noqa: E402 - after the path


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fb = load("fleet_bench", ROOT / "bench" / "fleet_bench.py")
nginx_proxy = load("nginx_proxy", ROOT / "deploy" / "nginx_proxy.py")
hb = fb.hb
docs_table = load("docs_table", ROOT / "bench" / "docs_table.py")


def say(message):
    print(f"[two] {message}", flush=True)


def start_servers(options, db, count, workers):
    """``count`` prefork servers on free ports; returns ``[(process, http port, gevent port)]``."""
    servers = []
    for __ in range(count):
        http, gevent = hb.free_port(), hb.free_port()
        command = hb.odoo_command(
            options,
            db,
            options["addons_path"],
            f"--http-port={http}",
            f"--gevent-port={gevent}",
            "--http-interface=127.0.0.1",
            f"--workers={workers}",
            "--max-cron-threads=0",
            "--proxy-mode",
            "--log-level=warn",
        )
        out = open(fb.LOG, "a")
        servers.append((fb.subprocess.Popen(command, stdout=out, stderr=fb.subprocess.STDOUT), http, gevent))
    for process, http, __ in servers:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"a server did not start, see {fb.LOG}")
            try:
                if fb.requests.get(f"http://127.0.0.1:{http}/web/health", timeout=10).status_code == 200:
                    break
            except fb.requests.RequestException:
                time.sleep(0.5)
    return servers


def per_server(access_log):
    """``{upstream: requests}`` of the nginx access log."""
    return Counter(re.findall(r"upstream=(\S+)", access_log.read_text()))


def measure(args, options, count):
    fb.install(options, args.db, options["addons_path"])
    servers = start_servers(options, args.db, count, args.workers)
    proxy = None
    try:
        if count > 1:
            proxy = nginx_proxy.Nginx(hb.free_port(), [(http, gevent) for __, http, gevent in servers]).start()
            url = proxy.url
        else:
            url = f"http://127.0.0.1:{servers[0][1]}"
        admin = fb.Admin(f"http://127.0.0.1:{servers[0][1]}", args.db)
        token = admin.call("ir.config_parameter", "get_param", "iot_token")
        series = admin.rpc(fb.VERSION_INFO, {})["server_serie"]
        boxes = [fb.Box(spec, token) for spec in plan_fleet(args.boxes, seed=7, style="18", server_series=series)]
        say(f"{count} server(s): building the fleet of {args.boxes} boxes through {url}")
        build, build_seconds = fb.build_fleet(url, boxes, args.concurrency)
        build_counts = per_server(proxy.prefix / "access.log") if proxy else Counter({url: 2 * args.boxes})
        say(f"  built in {build_seconds:.0f} s")
        say(f"{count} server(s): restart of {args.restart_boxes} boxes over {args.restart_seconds:.0f} s")
        restart, restart_seconds, late = fb.restart(url, boxes[: args.restart_boxes], args.restart_seconds)
        status = Counter(re.findall(r'" (\d{3}) ', (proxy.prefix / "access.log").read_text())) if proxy else None
        return {
            "servers": count,
            "build": (build, build_seconds, build_counts),
            "restart": (restart, restart_seconds, late),
            "status": status,
        }
    finally:
        if proxy is not None:
            proxy.stop()
        for process, __, __ in servers:
            hb.stop_server(process)


def report(args, results):
    print(
        f"\n{args.boxes} boxes, restart of {args.restart_boxes} boxes over {args.restart_seconds:.0f} s, "
        f"--workers {args.workers} per server, {os.cpu_count()} CPUs\n"
    )
    rows = []
    for result in results:
        build, build_seconds, counts = result["build"]
        restart, restart_seconds, late = result["restart"]
        requests_ = 2 * args.boxes
        rps = requests_ / build_seconds
        shares = sorted(counts.values(), reverse=True)
        per = " / ".join(f"{share / build_seconds:.0f}" for share in shares)
        rows.append(
            [
                result["servers"],
                f"{rps:.0f}",
                per,
                f"{build.row(fb.SETUP)['p50']:.0f} / {build.row(fb.SETUP)['p99']:.0f}",
                f"{build.row(fb.HANDLERS)['p50']:.0f} / {build.row(fb.HANDLERS)['p99']:.0f}",
                len(build.errors),
                f"{2 * args.restart_boxes / restart_seconds:.0f}",
                f"{restart.row(fb.HANDLERS)['p50']:.0f} / {restart.row(fb.HANDLERS)['p99']:.0f}",
                len(restart.errors),
                late,
                dict(result["status"]) if result["status"] else "-",
            ]
        )
    fb.table(
        [
            "servers",
            "fleet build req/s",
            "req/s per server",
            "check-in p50/p99 ms",
            "download p50/p99 ms",
            "errors",
            "restart req/s",
            "restart download p50/p99 ms",
            "restart errors",
            "downloads > 8 s",
            "HTTP statuses (nginx)",
        ],
        rows,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="iu_two_bench", help="database (dropped and created for each set-up)")
    parser.add_argument("--boxes", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="HTTP workers of each server")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--restart-boxes", type=int, default=2000)
    parser.add_argument("--restart-seconds", type=float, default=60.0)
    docs_table.add_option(parser, "two-servers")
    args = parser.parse_args(argv)
    if args.docs:
        docs_table.check(args.docs, parser=parser)
    if not nginx_proxy.nginx_binary():
        sys.exit("nginx is not installed (./dev setup installs it as root)")
    options = hb.read_config()
    fb.LOG.parent.mkdir(exist_ok=True)
    fb.LOG.write_text("")
    try:
        results = [measure(args, options, 1), measure(args, options, 2)]
    finally:
        hb.drop_database(options, args.db)
    with docs_table.capture() as out:
        report(args, results)
    if args.docs:
        docs_table.write(args.docs, out.getvalue().strip() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
