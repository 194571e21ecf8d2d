# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from iot_update_tools.coalesce import Coalescer


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
