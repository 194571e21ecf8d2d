# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import subprocess
import sys
import textwrap
from pathlib import Path

from iot_update_tools.coalesce import Coalescer

COALESCE = Path(__file__).resolve().parents[2] / "iot_update" / "tools" / "coalesce.py"


class Recorder:
    """A scheduler that runs nothing until told: time is moved by hand."""

    def __init__(self):
        self.scheduled = []

    def __call__(self, delay, function):
        self.scheduled.append((delay, function))

    def run_due(self):
        due, self.scheduled = self.scheduled, []
        for __, function in due:
            function()


def test_a_burst_is_one_send_per_delay():
    sent = []
    clock = Recorder()
    coalescer = Coalescer(1.0, lambda key, ids: sent.append((key, sorted(ids))), clock)
    for box_id in range(10_000):
        coalescer.add("db", [box_id])
    coalescer.add("db", [5])
    assert [delay for delay, __ in clock.scheduled] == [1.0]
    assert sent == []
    clock.run_due()
    assert sent == [("db", list(range(10_000)))]


def test_databases_apart_and_the_next_change_sends_again():
    sent = []
    clock = Recorder()
    coalescer = Coalescer(0.5, lambda key, ids: sent.append((key, sorted(ids))), clock)
    coalescer.add("one", [1])
    coalescer.add("two", [2, 3])
    assert len(clock.scheduled) == 2
    clock.run_due()
    assert sorted(sent) == [("one", [1]), ("two", [2, 3])]
    coalescer.add("one", [4])
    assert len(clock.scheduled) == 1, "an add after a send schedules the next one"
    clock.run_due()
    assert sent[-1] == ("one", [4])


def test_a_flush_with_nothing_sends_nothing():
    sent = []
    coalescer = Coalescer(1.0, lambda key, ids: sent.append(ids), Recorder())
    coalescer.flush("db")
    assert sent == []


def test_what_is_collected_at_exit_is_sent_once():
    sent = []
    clock = Recorder()
    exits = []
    coalescer = Coalescer(1.0, lambda key, ids: sent.append((key, sorted(ids))), clock, exits.append)
    coalescer.add("one", [1, 2])
    coalescer.add("two", [3])
    assert len(exits) == 1 and sent == []
    exits[0]()
    assert sorted(sent) == [("one", [1, 2]), ("two", [3])]
    clock.run_due()
    assert len(sent) == 2, "the timers find nothing left"


def test_a_process_exiting_within_the_delay_still_sends():
    # A real process, its real timer an hour away: the exit sends.
    script = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("coalesce", {str(COALESCE)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        coalescer = module.Coalescer(3600, lambda key, ids: print(key, sorted(ids), flush=True))
        coalescer.add("db", [2, 1])
        sys.exit(0)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "db [1, 2]\n", "")


def test_rows_are_handed_on_in_the_order_added():
    sent = []
    clock = Recorder()
    batcher = Coalescer(1.0, lambda key, rows: sent.append((key, rows)), clock, lambda f: None, collect=list)
    batcher.add("db", [(3, "c"), (1, "a")])
    batcher.add("db", [(2, "b"), (1, "a")])
    assert len(clock.scheduled) == 1 and sent == []
    clock.run_due()
    assert sent == [("db", [(3, "c"), (1, "a"), (2, "b"), (1, "a")])], "rows are neither sorted nor merged"


def test_the_add_that_reaches_the_limit_hands_on_at_once():
    sent = []
    clock = Recorder()
    batcher = Coalescer(
        1.0,
        lambda key, rows: sent.append(rows),
        clock,
        lambda f: None,
        collect=list,
        limit=10,
        weigh=lambda rows: sum(len(text) for text in rows),
    )
    batcher.add("db", ["abcd"])
    batcher.add("db", ["efg"])
    assert sent == []
    batcher.add("db", ["hij"])  # 10 characters: the limit
    assert sent == [["abcd", "efg", "hij"]], "handed on by the add itself, without waiting for the timer"
    batcher.add("db", ["k"])
    clock.run_due()
    assert sent[1:] == [["k"]], "the timers then hand on what came after, once"
    batcher.add("db", ["x" * 25])
    assert sent[2:] == [["x" * 25]], "one add over the limit is handed on at once"
    assert clock.scheduled == [], "and schedules nothing"


def test_take_empties_a_key():
    batcher = Coalescer(1.0, lambda key, rows: None, Recorder(), lambda f: None, collect=list)
    batcher.add("db", [1, 2])
    assert batcher.take("db") == [1, 2]
    assert batcher.take("db") is None
