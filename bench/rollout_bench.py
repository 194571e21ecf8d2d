#!/usr/bin/env python3
# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Benchmark of a roll-out at fleet size: planning it, opening a wave,
evaluating the boxes and halting, beside "Release to all" of the same fleet.

    .venv/bin/python bench/rollout_bench.py [--boxes 10000] [--rounds 3]

What it does, in one run:

1. creates a fresh database (``iu_rollout_bench`` unless ``--db``) with
   ``iot_update``, using ``.dev/odoo.conf`` (run ``./dev setup`` once
   first), and opens it in this process;
2. creates ``--boxes`` Linux boxes of the simulator's fleet (18.0 style) with
   their devices (one to three each), all holding the current bundle, 20 of
   them canaries, and a held bundle of their platform, whose roll-out has
   the waves ``50,100`` (the first wave of the other boxes is half the fleet);
3. measures, ``--rounds`` times each, in a transaction rolled back after
   each round (so every round starts from the same state):

   - baseline: "Release to all" of the held bundle, which flags the whole
     fleet in one UPDATE (what releasing cost before roll-outs);
   - planning the roll-out (a line per box in one INSERT, the canary wave open);
   - opening the first wave (half the fleet) by "Advance now";
   - the scheduled evaluation with nothing new (every box of the wave pending);
   - the evaluation after every box of the wave took the bundle (its
     download recorded as the handlers route records it);
   - the evaluation once settled, 1 % of those boxes short of a device:
     the halt, its evidence, the failed boxes back on the previous bundle;

   each with the SQL statements it sent (``cr.sql_log_count``);
4. prints the table, then drops the database (``--keep-db`` keeps it).

The box routes are untouched by all this: they read one stored boolean per
box (``rollout_due``), as they read the canary flag before; the handlers
benchmark (``bench/handlers_bench.py``) measures them.
"""

import argparse
import hashlib
import importlib.util
import os
import statistics
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
_spec = importlib.util.spec_from_file_location("history_bench", Path(__file__).resolve().parent / "history_bench.py")
history = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(history)

LOG = ROOT / ".dev" / "rollout-bench-odoo.log"
HELD = hashlib.sha256(b"iot_update roll-out benchmark: the held bundle").hexdigest()
CANARIES = 20
#: Share of the wave's boxes that come back short of a device in the last step.
FAILING = 0.01


def say(message):
    print(f"[rollout] {message}", flush=True)


def utcnow():
    return datetime.now(timezone.utc).replace(tzinfo=None)


def create_fleet(registry, count):
    """``count`` Linux boxes with their devices, holding the current bundle;
    the first ``CANARIES`` are canaries. Returns the current digest."""
    specs = [spec for spec in plan_fleet(count * 2, style="18") if spec.version.startswith("L")][:count]
    now = utcnow()
    with history.environment(registry) as env:
        current = env["iot.handlers.bundle"].search([("variant", "=", "linux"), ("state", "=", "current")])
        boxes = env["iot.box"].create(
            [
                {
                    "name": spec.name,
                    "identifier": spec.identifier,
                    "mac": spec.mac,
                    "ip": spec.ip,
                    "version": spec.version,
                    "last_contact": now,
                    "handlers_digest": current.digest,
                    "handlers_date": now,
                    "canary": number < CANARIES,
                }
                for number, spec in enumerate(specs)
            ]
        )
        env["iot.device"].create(
            [
                {"box_id": box.id, "identifier": key, "name": device["name"], "type": device["type"]}
                for box, spec in zip(boxes, specs, strict=True)
                for key, device in spec.devices.items()
            ]
        )
        env["ir.config_parameter"].set_param("iot_update.rollout_waves", "50,100")
        env["ir.config_parameter"].set_param("iot_update.hold_bundles", "True")
        env.cr.commit()
        return current.digest


@contextmanager
def measured(env, timings, name):
    """Time the block and count its statements, flush included."""
    env.flush_all()
    statements = env.cr.sql_log_count
    started = time.perf_counter()
    yield
    env.flush_all()
    timings.setdefault(name, []).append((time.perf_counter() - started, env.cr.sql_log_count - statements))


def held_bundle(env, current_digest):
    """A held bundle of the Linux boxes, as ``_take_bundle`` records one, without its plan."""
    Bundle = env["iot.handlers.bundle"]
    current = Bundle.search([("variant", "=", "linux"), ("digest", "=", current_digest)])
    return Bundle.create(
        [
            {
                "variant": "linux",
                "digest": HELD,
                "state": "held",
                "previous_id": current.id,
                "file_count": current.file_count,
                "size": current.size,
            }
        ]
    )


def one_round(registry, current_digest, timings):
    from freezegun import freeze_time

    from odoo.tools import SQL

    with history.environment(registry) as env:
        Bundle = env["iot.handlers.bundle"]
        bundle = held_bundle(env, current_digest)
        Bundle._apply_rollout("linux")
        env.flush_all()
        env.cr.execute("SAVEPOINT baseline")
        with measured(env, timings, "release"):
            bundle.action_release()
        env.cr.execute("ROLLBACK TO SAVEPOINT baseline")
        env.invalidate_all()

        with measured(env, timings, "plan"):
            bundle._rollout_start()
            Bundle._apply_rollout("linux")
        with measured(env, timings, "open"):
            wave = bundle._rollout_open_next(manual=True)
        timings.setdefault("wave_boxes", []).append(len(wave.line_ids))
        with measured(env, timings, "evaluate_idle"):
            bundle._rollout_evaluate()

        # Every box of the wave takes the bundle: what the handlers route writes.
        now = utcnow()
        env.cr.execute(
            SQL(
                """WITH wave AS (SELECT box_id FROM iot_rollout_line WHERE wave_id = %(wave)s)
                   , boxes AS (UPDATE iot_box b SET handlers_digest = %(digest)s, handlers_date = %(now)s
                                 FROM wave WHERE b.id = wave.box_id RETURNING b.id, b.company_id, b.identifier)
                   INSERT INTO iot_box_event (kind, date, box_id, company_id, identifier, bundle_digest, detail)
                   SELECT 'delivery', %(now)s, id, company_id, identifier, %(digest)s, 'automatic' FROM boxes""",
                wave=wave.id,
                digest=HELD,
                now=now,
            )
        )
        env.invalidate_all()
        with measured(env, timings, "evaluate_taken"):
            bundle._rollout_evaluate()

        # 1 % of them come back short of a device (its driver broke): one device each.
        env.cr.execute(
            SQL(
                """UPDATE iot_device SET connected = false
                    WHERE id IN (SELECT min(d.id) FROM iot_device d
                                  WHERE d.box_id IN (SELECT box_id FROM iot_rollout_line WHERE wave_id = %(wave)s
                                                      ORDER BY box_id LIMIT %(failing)s)
                                  GROUP BY d.box_id)""",
                wave=wave.id,
                failing=max(1, int(len(wave.line_ids) * FAILING)),
            )
        )
        env.invalidate_all()
        with measured(env, timings, "evaluate_halt"), freeze_time(now + timedelta(minutes=10)):
            bundle._rollout_evaluate()
        if bundle.rollout_state != "halted":
            env.cr.execute("SELECT state, count(*) FROM iot_rollout_line GROUP BY state")
            sys.exit(f"the roll-out did not halt: {bundle.rollout_state}, lines {env.cr.fetchall()}")
        timings.setdefault("failed", []).append(len(bundle.rollout_failed_line_ids))
        env.cr.rollback()


def report(args, timings):
    def row(name, what, boxes):
        runs = timings[name]
        seconds = statistics.median(run[0] for run in runs)
        statements = max(run[1] for run in runs)
        return [what, f"{boxes:,}", f"{statements}", f"{seconds * 1000:,.0f}"]

    wave = timings["wave_boxes"][0]
    failed = timings["failed"][0]
    rows = [
        row("release", "baseline: Release to all (flags the whole fleet)", args.boxes),
        row("plan", "plan the roll-out (a line per box, canary wave open)", args.boxes),
        row("open", "open the first wave (Advance now)", wave),
        row("evaluate_idle", "evaluate: nothing new (wave pending)", wave),
        row("evaluate_taken", "evaluate: every box of the wave took it", wave),
        row("evaluate_halt", f"evaluate: {failed} short of a device, halt and revert", wave),
    ]
    print(
        f"\nRoll-out of a held bundle, {args.boxes:,} Linux boxes ({CANARIES} canaries), waves 50 %, 100 %; "
        f"median of {args.rounds} rounds, statements: the most of any round\n"
    )
    print(docs_table.markdown_table(["step", "boxes", "statements", "ms"], rows, right=(1, 2, 3)))
    print(
        f"\nMachine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; PostgreSQL on 127.0.0.1. "
        "The box routes are not involved (bench/handlers_bench.py measures them)."
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="iu_rollout_bench", help="database (dropped and created)")
    parser.add_argument("--boxes", type=int, default=10_000, help="Linux boxes of the fleet")
    parser.add_argument("--rounds", type=int, default=3, help="rounds measured (each rolled back)")
    parser.add_argument("--keep-db", action="store_true")
    docs_table.add_option(parser, "rollout")
    args = parser.parse_args(argv)
    if args.docs:
        docs_table.check(args.docs, parser=parser)
    if args.boxes <= CANARIES or args.rounds < 1:
        parser.error(f"--boxes must be above {CANARIES}, --rounds at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    options = hb.read_config()
    LOG.parent.mkdir(exist_ok=True)
    history.LOG = LOG
    LOG.write_text("")
    try:
        history.install(options, args.db)
        registry = history.open_registry(args.db)
        say(f"creating {args.boxes:,} boxes and their devices")
        current = create_fleet(registry, args.boxes)
        timings = {}
        for number in range(args.rounds):
            say(f"round {number + 1} of {args.rounds}")
            one_round(registry, current, timings)
        with docs_table.capture() as printed:
            report(args, timings)
        if args.docs:
            docs_table.write(args.docs, printed.getvalue())
    finally:
        if not args.keep_db:
            import odoo

            odoo.sql_db.close_db(args.db)
            hb.drop_database(options, args.db)


if __name__ == "__main__":
    main()
