# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""How the box log benchmark counts the CPU of the server and its PostgreSQL
backends."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))  # the script imports docs_table and handlers_bench from beside it
_spec = importlib.util.spec_from_file_location("box_log_bench", BENCH_DIR / "box_log_bench.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_a_backend_opened_between_two_readings_counts_all_it_used():
    before = {101: 1.0, 102: 2.0}
    after = {101: 1.5, 102: 2.25, 103: 0.5}
    assert bench.cpu_between(before, after) == 0.5 + 0.25 + 0.5


def test_cpu_is_read_per_process_and_a_gone_process_is_left_out():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its /proc entry is gone, as a backend that exited
    alive = os.getpid()
    seconds = bench.process_cpu_seconds([alive, gone.pid])
    assert list(seconds) == [alive]
    assert seconds[alive] > 0


def test_the_table_shows_the_part_of_the_cpu_postgresql_used(capsys):
    latencies = {"(a) /iot/log, 50 lines kept": [0.004, 0.004], "(c) /web/webclient/version_info": [0.002, 0.002]}
    cpu = {
        "(a) /iot/log, 50 lines kept": {"server": 0.003, "PostgreSQL": 0.001},
        "(c) /web/webclient/version_info": {"server": 0.0015, "PostgreSQL": 0.0005},
    }
    bench.print_table(latencies, cpu)
    header, kept, cheapest = capsys.readouterr().out.splitlines()
    assert header.split()[-3:] == ["of", "it", "PG"]
    assert kept.split()[-3:] == ["4.00", "2.00", "1.00"]
    assert cheapest.split()[-3:] == ["2.00", "1.00", "0.50"]
