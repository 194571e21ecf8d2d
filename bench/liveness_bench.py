#!/usr/bin/env python3
# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Cost of the status refresh (run every minute) at fleet size.

    .venv/bin/python bench/liveness_bench.py [--db DB] [--boxes 10000] [--ended 100]

In one transaction of an existing database with ``iot_update`` installed
(``$IOT_UPDATE_TEST_DB`` unless ``--db``), rolled back at the end: inserts
``--boxes`` connected, online boxes (set-based), runs the refresh cron with no
grace ended (the idle fleet: what it costs every minute), then with
``--ended`` boxes whose bus connection ended past the grace. Prints time and
SQL statements of each run, and the "went offline" events written.
"""

import argparse
import os
import sys
import time
from datetime import timedelta

import odoo
from odoo import SUPERUSER_ID, api, fields
from odoo.modules.registry import Registry
from odoo.tools import config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docs_table


def run_cron(env):
    env.invalidate_all()
    count = env.cr.sql_log_count
    start = time.perf_counter()
    env["iot.box"]._cron_refresh_update_status()
    env.flush_all()
    return time.perf_counter() - start, env.cr.sql_log_count - count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=os.environ.get("IOT_UPDATE_TEST_DB"))
    parser.add_argument("--boxes", type=int, default=10000)
    parser.add_argument("--ended", type=int, default=100)
    parser.add_argument("-c", "--config", default=".dev/odoo.conf")
    docs_table.add_option(parser, "liveness")
    args = parser.parse_args()
    if args.docs:
        docs_table.check(args.docs, parser=parser)
    config.parse_config(["-c", args.config])
    odoo.tools.config["db_name"] = args.db
    registry = Registry(args.db)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        now = fields.Datetime.now()
        env["iot.box"]._cron_refresh_update_status()  # the series parameter, once
        cr.execute(
            """INSERT INTO iot_box (name, identifier, active, platform, update_status, is_offline,
                                    last_contact, last_seen_bus, last_seen, bus_connection)
               SELECT 'bench-' || n, 'bench:' || n, true, 'linux', 'up_to_date', false,
                      %(seen)s, %(seen)s, %(seen)s, 'k'
                 FROM generate_series(1, %(boxes)s) n""",
            {"seen": now - timedelta(minutes=30), "boxes": args.boxes},
        )
        cr.execute("ANALYZE iot_box")
        idle = [run_cron(env) for __ in range(3)]
        cr.execute(
            """UPDATE iot_box SET disconnected_since = %s
                WHERE id IN (SELECT id FROM iot_box WHERE identifier LIKE 'bench:%%' LIMIT %s)""",
            [now - timedelta(minutes=10), args.ended],
        )
        ended = run_cron(env)
        cr.execute("SELECT count(*) FROM iot_box_event WHERE kind = 'went_offline' AND identifier LIKE 'bench:%'")
        events = cr.fetchone()[0]
        cr.rollback()
    best = min(idle)
    with docs_table.capture() as out:
        report(args, best, ended, events)
    if args.docs:
        docs_table.write(args.docs, "```text\n" + out.getvalue().strip() + "\n```\n")


def report(args, best, ended, events):
    print(f"{args.boxes} idle connected boxes: refresh {best[0] * 1000:.1f} ms, {best[1]} statements")
    print(
        f"{args.ended} of them past the grace: refresh {ended[0] * 1000:.1f} ms, {ended[1]} statements, "
        f"{events} 'went offline' events"
    )


if __name__ == "__main__":
    main()
