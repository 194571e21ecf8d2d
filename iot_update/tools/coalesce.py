# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Changes noticed by many requests, handed on together."""

import atexit
import threading


def start_timer(delay, function):
    """Run ``function`` in a daemon thread ``delay`` seconds from now."""
    timer = threading.Timer(delay, function)
    timer.daemon = True
    timer.start()


class Coalescer:
    """Items collected per key (a database name) and handed to ``send(key,
    items)`` at most once per ``delay`` seconds: the first ``add`` of a key
    schedules the send ``delay`` later (with ``schedule(delay, function)``),
    and every ``add`` of that key until then joins it. A burst of 10,000 adds
    is one send; an add after a send schedules the next one.

    ``collect`` is what a key's items are gathered in: ``set`` (ids, each
    sent once, in no order) or ``list`` (rows, in the order added). With a
    ``limit``, the add that brings a key's ``weigh(items)`` to it sends them
    at once itself, in its own thread: what waits stays bounded whatever
    the rate.

    What is still collected when the process exits normally (a prefork
    worker recycled, a server stopped) is sent then, through ``at_exit``:
    the timer's daemon thread would not run."""

    def __init__(self, delay, send, schedule=start_timer, at_exit=atexit.register, collect=set, limit=None, weigh=len):
        self.delay = delay
        self.send = send
        self.schedule = schedule
        self.collect = collect
        self.limit = limit
        self.weigh = weigh
        self._join = set.update if collect is set else list.extend
        self._lock = threading.Lock()
        self._pending = {}
        self._weights = {}
        at_exit(self.flush_all)

    def add(self, key, items):
        full = None
        with self._lock:
            pending = self._pending.get(key)
            first = pending is None
            if first:
                pending = self._pending[key] = self.collect()
                self._weights[key] = 0
            self._join(pending, items)
            if self.limit is not None:
                self._weights[key] += self.weigh(items)
                if self._weights[key] >= self.limit:
                    full = self._take(key)
        if full:
            self.send(key, full)
        elif first:
            self.schedule(self.delay, lambda: self.flush(key))

    def take(self, key):
        """What ``key`` collected (None when nothing), no longer pending."""
        with self._lock:
            return self._take(key)

    def _take(self, key):
        self._weights.pop(key, None)
        return self._pending.pop(key, None)

    def flush(self, key):
        """Send what ``key`` collected (nothing when it has nothing)."""
        items = self.take(key)
        if items:
            self.send(key, items)

    def flush_all(self):
        """Send what every key collected."""
        with self._lock:
            keys = list(self._pending)
        for key in keys:
            self.flush(key)
