# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The bus benchmark's client: what it counts as a box online, and how it
sorts the failed attempts of its subscribers."""

import importlib.util
import sys
from datetime import datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))  # bus_bench imports handlers_bench, as when run as a script
_spec = importlib.util.spec_from_file_location("bus_bench", BENCH_DIR / "bus_bench.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def stored_by_odoo(moment):
    """A datetime as Odoo stores it: to the second (``fields.Datetime.now()``)."""
    return moment.replace(microsecond=0)


def test_a_box_seen_in_the_first_second_of_the_burst_is_online():
    since = datetime(2026, 11, 30, 6, 0, 0, 700000)  # the burst starts 0.7 s into a second
    seen = stored_by_odoo(since + timedelta(milliseconds=200))  # handled 0.2 s later
    assert bench.online_count([(seen, False)], since) == 1


def test_online_count_leaves_out_boxes_offline_unseen_or_seen_before():
    since = datetime(2026, 11, 30, 6, 0, 0, 300000)
    rows = [
        (stored_by_odoo(since + timedelta(seconds=3)), False),  # online
        (stored_by_odoo(since + timedelta(seconds=3)), True),  # seen, statuses not refreshed yet
        (since - timedelta(minutes=30), False),  # seen before the burst
        (None, False),  # never seen
    ]
    assert bench.online_count(rows, since) == 1
