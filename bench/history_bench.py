#!/usr/bin/env python3
# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Benchmark of the box history (``iot.box.event``) at fleet size.

    .venv/bin/python bench/history_bench.py [--boxes 10000] [--per-day 5] [--days 90] [--rounds 3]

What it does, in one run:

1. creates a fresh database (``iu_history_bench`` unless ``--db``) with
   ``iot_update``, using the connection settings of ``.dev/odoo.conf`` (run
   ``./dev setup`` once first), and opens it in this process;
2. creates ``--boxes`` boxes (the simulator's fleet, 18.0 style) through the
   ORM, then fills their history for ``--days`` + ``--rounds`` days at
   ``--per-day`` rows per box and per day, one bulk INSERT per day, oldest
   first, as the rows would have been appended. The rows are what
   ``_record`` writes: per box and per day a check-in at start (no device
   yet), the handlers delivery that follows it, the check-in of the devices
   found, then one check-in per device change (see docs/benchmarks.md, "History at
   fleet size");
3. measures the table and its indexes on disk (after ``VACUUM ANALYZE``, as
   autovacuum leaves a table), per row and for ``--days`` days of history;
4. runs ``--rounds`` daily purges, each removing the oldest day's rows: the
   scheduled action "IoT: purge old box history" run as the cron runner runs
   it (``ir.cron._callback`` as the cron's user, then a commit), timed beside,
   on the same rows, a plain ``DELETE`` by primary key and a ``DELETE ...
   WHERE date < limit``, both rolled back. The statements the purge sends on
   the history table are recorded and shown with their ``EXPLAIN``;
5. prints the tables, then drops the database (``--keep-db`` keeps it).

The installer's log is in ``.dev/history-bench-odoo.log``.
"""

import argparse
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from iotbox_sim.fleet import plan_fleet  # noqa: E402 - after the path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_table  # noqa: E402 - beside this script

_spec = importlib.util.spec_from_file_location("handlers_bench", Path(__file__).resolve().parent / "handlers_bench.py")
hb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hb)

LOG = ROOT / ".dev" / "history-bench-odoo.log"
TABLE = "iot_box_event"
RETENTION_PARAM = "iot_update.event_retention_days"
PURGE_CRON = "iot_update.ir_cron_purge_events"
#: Rows of a day are dated from this long after the day's start to its end, so
#: that the clock moving on while the benchmark runs never shifts a row from
#: one day to the next (the run must stay shorter than this).
DAY_MARGIN = timedelta(hours=1)
DIGEST = hashlib.sha256(b"iot_update history benchmark bundle").hexdigest()


def say(message):
    print(f"[history] {message}", flush=True)


def install(options, db):
    say(f"installing iot_update in a fresh database {db}")
    hb.drop_database(options, db)
    command = hb.odoo_command(
        options,
        db,
        options["addons_path"],
        "-i",
        "iot_update",
        "--without-demo=all",
        "--stop-after-init",
        "--log-level=warn",
    )
    with open(LOG, "a") as out:
        if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
            sys.exit(f"install failed, see {LOG}")


def open_registry(db):
    import odoo
    from odoo.tools import config

    config.parse_config(["-c", str(hb.CONFIG), "-d", db, "--log-level=warn"])
    return odoo.modules.registry.Registry(db)


@contextmanager
def environment(registry):
    """A superuser environment on a new cursor (closed, not committed, at the end)."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        yield api.Environment(cr, SUPERUSER_ID, {})
        cr.rollback()


# ---------------------------------------------------------------------------
# Fleet and history
# ---------------------------------------------------------------------------


def create_boxes(registry, count):
    """``count`` boxes, as their first check-in and delivery leave them."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    specs = plan_fleet(count, style="18")
    with environment(registry) as env:
        env["iot.box"].create(
            [
                {
                    "name": spec.name,
                    "identifier": spec.identifier,
                    "mac": spec.mac,
                    "ip": spec.ip,
                    "version": spec.version,
                    "last_contact": now,
                    "handlers_digest": DIGEST,
                    "handlers_date": now,
                }
                for spec in specs
            ]
        )
        env.cr.commit()
    return {spec.identifier: len(spec.devices) for spec in specs}


FILL_DAY = f"""
INSERT INTO {TABLE} (kind, date, box_id, company_id, identifier, version, bundle_digest, detail, remote_addr)
SELECT CASE WHEN slot = 1 THEN 'delivery' ELSE 'checkin' END,
       %(start)s + (box.rank * %(per_day)s + slot) * %(step)s * interval '1 second',
       box.id, box.company_id, box.identifier, box.version,
       CASE WHEN slot = 1 THEN %(digest)s END,
       CASE WHEN slot = 1 THEN 'automatic'
            ELSE 'ip ' || box.ip || ', ' || CASE WHEN slot = 0 THEN 0 ELSE box.devices END || ' devices' END,
       box.ip
  FROM bench_box box CROSS JOIN generate_series(0, %(per_day)s - 1) AS slot
 ORDER BY 2
"""


def fill_history(registry, devices, per_day, days, now):
    """``days`` days of history before ``now``, oldest first, one INSERT a day.

    Per box and per day: slot 0, the check-in at start (before any driver is
    loaded, no device); slot 1, the handlers delivery that follows it
    (``automatic``, with the bundle's digest); slot 2, the check-in of the
    devices found; further slots, the check-ins of device changes.
    """
    with environment(registry) as env:
        cr = env.cr
        cr.execute(
            "CREATE TEMP TABLE bench_box AS "
            "SELECT id, company_id, identifier, version, ip, 0 AS devices, "
            "       row_number() OVER (ORDER BY id) - 1 AS rank FROM iot_box"
        )
        cr.execute(
            "UPDATE bench_box SET devices = counts.devices FROM unnest(%s, %s) AS counts(identifier, devices) "
            "WHERE counts.identifier = bench_box.identifier",
            [list(devices), list(devices.values())],
        )
        step = (timedelta(days=1) - DAY_MARGIN).total_seconds() / (len(devices) * per_day)
        for age in reversed(range(days)):
            start = now - timedelta(days=age + 1) + DAY_MARGIN
            cr.execute(FILL_DAY, {"start": start, "per_day": per_day, "step": step, "digest": DIGEST})
            cr.commit()
            if age % 10 == 0:
                say(f"  {days - age} of {days} days filled")
        cr.execute("DROP TABLE bench_box")
        cr.commit()


def disk_usage(registry):
    """Sizes in bytes of the table, of each of its indexes and in total, and its rows."""
    with environment(registry) as env:
        cr = env.cr
        cr.execute(f"SELECT count(*) FROM {TABLE}")
        rows = cr.fetchone()[0]
        cr.execute(
            "SELECT pg_relation_size(%s), pg_total_relation_size(%s), "
            "       pg_total_relation_size(%s) - pg_relation_size(%s) - pg_indexes_size(%s)",
            [TABLE] * 5,
        )
        heap, total, other = cr.fetchone()
        cr.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
            "WHERE indrelid = %s::regclass ORDER BY 2 DESC",
            [TABLE],
        )
        indexes = cr.fetchall()
    return {"rows": rows, "heap": heap, "total": total, "other": other, "indexes": indexes}


def vacuum(registry, analyze=True):
    with registry.cursor() as cr:
        cr._cnx.autocommit = True  # VACUUM runs outside a transaction
        started = time.perf_counter()
        cr.execute(f"VACUUM {'ANALYZE ' if analyze else ''}{TABLE}")
        elapsed = time.perf_counter() - started
        cr._cnx.autocommit = False
    return elapsed


# ---------------------------------------------------------------------------
# The purge
# ---------------------------------------------------------------------------


@contextmanager
def recorded_statements():
    """The statements sent by any cursor of this process meanwhile, as (code, params)."""
    from odoo.sql_db import Cursor
    from odoo.tools import SQL

    statements = []
    execute = Cursor.execute

    def recording(cr, query, params=None, log_exceptions=True):
        if isinstance(query, SQL):
            statements.append((query.code, query.params))
        else:
            statements.append((query, params))
        return execute(cr, query, params, log_exceptions)

    Cursor.execute = recording
    try:
        yield statements
    finally:
        Cursor.execute = execute


TOUCHES_TABLE = re.compile(rf'\b(FROM|UPDATE|INTO)\s+"?{TABLE}"?(\s|$)', re.IGNORECASE)


def explain(registry, statements):
    """EXPLAIN of each kind of statement on the history table (first of each kind)."""
    plans, seen = [], set()
    with environment(registry) as env:
        for code, params in statements:
            head = re.sub(r"\s+", " ", code.strip())
            if " IN " in head:
                head = head.split(" IN ")[0] + " IN (...)"
            if not TOUCHES_TABLE.search(code) or head in seen:
                continue
            seen.add(head)
            env.cr.execute("EXPLAIN " + code, params)
            plans.append((head, [row[0] for row in env.cr.fetchall()]))
    return plans


def purge_round(registry, retention, expected):
    """One daily purge of the rows older than ``retention`` days, with its baselines."""
    with environment(registry) as env:
        env["ir.config_parameter"].set_param(RETENTION_PARAM, str(retention))
        env.cr.commit()
        limit = env["iot.box.event"]._get_retention_days()
        assert limit == retention, (limit, retention)
        cutoff = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=retention)
        env.cr.execute(f"SELECT id FROM {TABLE} WHERE date < %s", [cutoff])
        ids = [row[0] for row in env.cr.fetchall()]
    result = {"retention": retention, "rows": len(ids), "expected": expected}

    # Baselines: the same rows deleted by one plain statement, rolled back.
    for key, statement, params in (
        ("by_id", f"DELETE FROM {TABLE} WHERE id = ANY(%s)", [ids]),
        ("by_date", f"DELETE FROM {TABLE} WHERE date < %s", [cutoff]),
    ):
        with environment(registry) as env:
            started = time.perf_counter()
            env.cr.execute(statement, params)
            result[key] = time.perf_counter() - started
            result[f"{key}_rows"] = env.cr.rowcount

    # The scheduled action, as ir.cron's runner runs a job (_run_job): its
    # progress recorded and committed, then the server action as the cron's
    # user, then the commit, in a transaction of its own.
    from odoo import api

    with environment(registry) as env:
        cron = env.ref(PURGE_CRON)
        job = (cron.id, cron.user_id.id, cron.lastcall, cron.cron_name, cron.ir_actions_server_id.id)
    cron_id, user_id, lastcall, cron_name, action_id = job
    with registry.cursor() as cr:
        env = api.Environment(cr, user_id, {"lastcall": lastcall, "cron_id": cron_id})
        cron, __ = env["ir.cron"].browse(cron_id)._add_progress(timed_out_counter=0)
        cr.commit()
        with recorded_statements() as statements:
            started = time.perf_counter()
            cron._callback(cron_name, action_id)
            result["cron"] = time.perf_counter() - started
        # Plans while the rows are still there for every other transaction (untimed).
        result["plans"] = explain(registry, statements)
        started = time.perf_counter()
        cr.commit()
        result["commit"] = time.perf_counter() - started
    result["statements"] = len(statements)
    result["table_statements"] = sum(1 for code, __ in statements if TOUCHES_TABLE.search(code))
    with environment(registry) as env:
        env.cr.execute(f"SELECT count(*) FROM {TABLE} WHERE id = ANY(%s)", [ids])
        result["left"] = env.cr.fetchone()[0]
    return result


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def size(number):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(number) < 1024 or unit == "TiB":
            return f"{number:,.0f} {unit}" if unit == "B" else f"{number:,.1f} {unit}"
        number /= 1024
    return None


def table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if n == 0 else "---:" for n in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    print()


def report(args, disk, rounds, timings):
    per_day = args.boxes * args.per_day
    rows = disk["rows"]
    print()
    print(
        f"History at fleet size: {args.boxes:,} boxes x {args.per_day} rows per box per day = {per_day:,} rows "
        f"a day; {args.days + args.rounds} days filled ({rows:,} rows), retention {args.days} days."
    )
    load = ", ".join(f"{value:.1f}" for value in timings["load"])
    print(f"{os.cpu_count()} CPUs; load average at start, after filling, at the end: {load}.")
    print(
        f"Run in {timings['total']:.0f} s: {timings['boxes']:.0f} s creating the boxes, "
        f"{timings['fill']:.0f} s filling the history, VACUUM ANALYZE {timings['vacuum']:.1f} s."
    )
    print()
    retention_rows = per_day * args.days
    lines = [("table (heap)", size(disk["heap"]), f"{disk['heap'] / rows:.0f}")]
    lines += [(f"index `{name}`", size(bytes_), f"{bytes_ / rows:.0f}") for name, bytes_ in disk["indexes"]]
    if disk["other"]:
        lines.append(("TOAST, free space and visibility maps", size(disk["other"]), f"{disk['other'] / rows:.0f}"))
    lines.append(
        ("**total** (`pg_total_relation_size`)", f"**{size(disk['total'])}**", f"**{disk['total'] / rows:.0f}**")
    )
    lines.append(
        (
            f"**{args.days} days at {per_day:,} rows a day** ({retention_rows:,} rows)",
            f"**{size(disk['total'] / rows * retention_rows)}**",
            "",
        )
    )
    table([f"on disk, {rows:,} rows", "size", "bytes per row"], lines)

    lines = []
    for result in rounds:
        total = result["cron"] + result["commit"]
        count = f"{result['rows']:,}" + (
            "" if result["rows"] == result["expected"] else f" (expected {result['expected']:,})"
        )
        lines.append(
            (
                f"{result['retention'] + 1} days, retention {result['retention']}",
                count,
                f"{total * 1000:,.0f} ({result['commit'] * 1000:,.0f})",
                f"{result['by_id'] * 1000:,.0f}",
                f"{result['by_date'] * 1000:,.0f}",
                f"{total / result['by_id']:.1f}x",
                f"{result['statements']} ({result['table_statements']})",
                "yes" if result["left"] == 0 else f"no: {result['left']:,} left",
            )
        )
    table(
        [
            "daily purge of the oldest day",
            "rows",
            "cron ms (commit)",
            "plain DELETE by id ms",
            "DELETE WHERE date < limit ms",
            "cron / by id",
            "statements (on the history)",
            "all removed",
        ],
        lines,
    )
    print(f"VACUUM of the table after the purges (autovacuum's work): {timings['vacuum_after']:.1f} s")
    print()


def print_plans(rounds):
    print("The purge's statements on the history table, with their plans (first round, first of each kind):")
    for head, plan in rounds[0]["plans"]:
        print(f"  {head}")
        for line in plan:
            print(f"      {line if len(line) <= 120 else line[:117] + '...'}")
    print()


def report_all(args, disk, rounds, timings):
    """The tables (into docs/benchmarks.md too with ``--docs``), then the purge's plans."""
    with docs_table.capture() as printed:
        report(args, disk, rounds, timings)
    print_plans(rounds)
    if args.docs:
        docs_table.write(args.docs, printed.getvalue())


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="iu_history_bench", help="database (dropped and created)")
    parser.add_argument("--boxes", type=int, default=10_000, help="boxes of the fleet")
    parser.add_argument("--per-day", type=int, default=5, help="history rows per box and per day")
    parser.add_argument("--days", type=int, default=90, help="retention in days (iot_update.event_retention_days)")
    parser.add_argument("--rounds", type=int, default=3, help="daily purges measured (one extra day filled each)")
    parser.add_argument("--keep-db", action="store_true")
    docs_table.add_option(parser, "history")
    args = parser.parse_args(argv)
    if args.docs:
        docs_table.check(args.docs, parser=parser)
    if args.per_day < 2 or args.boxes < 1 or args.days < 1 or args.rounds < 1:
        parser.error("--per-day must be at least 2 (a check-in and a delivery); --boxes, --days, --rounds at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)

    options = hb.read_config()
    LOG.parent.mkdir(exist_ok=True)
    LOG.write_text("")
    timings = {"load": [os.getloadavg()[0]]}
    started = time.perf_counter()
    try:
        install(options, args.db)
        registry = open_registry(args.db)
        say(f"creating {args.boxes:,} boxes")
        clock = time.perf_counter()
        devices = create_boxes(registry, args.boxes)
        timings["boxes"] = time.perf_counter() - clock
        days = args.days + args.rounds
        say(f"filling {days} days of history, {args.boxes * args.per_day:,} rows a day")
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        clock = time.perf_counter()
        fill_history(registry, devices, args.per_day, days, now)
        timings["fill"] = time.perf_counter() - clock
        timings["vacuum"] = vacuum(registry)
        timings["load"].append(os.getloadavg()[0])
        disk = disk_usage(registry)
        rounds = []
        for number in range(args.rounds):
            retention = args.days + args.rounds - 1 - number
            say(f"purge {number + 1} of {args.rounds}: rows older than {retention} days")
            rounds.append(purge_round(registry, retention, args.boxes * args.per_day))
        if datetime.now(timezone.utc).replace(tzinfo=None) - now > DAY_MARGIN:
            say(f"the run took longer than {DAY_MARGIN}: rows may have moved from one day to the next")
        timings["vacuum_after"] = vacuum(registry, analyze=False)
        timings["load"].append(os.getloadavg()[0])
        timings["total"] = time.perf_counter() - started
        report_all(args, disk, rounds, timings)
    finally:
        import odoo

        odoo.sql_db.close_all()
        if not args.keep_db:
            hb.drop_database(options, args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
