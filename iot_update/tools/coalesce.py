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
    """Ids collected per key (a database name) and handed to ``send(key, ids)``
    at most once per ``delay`` seconds: the first ``add`` of a key schedules
    the send ``delay`` later (with ``schedule(delay, function)``), and every
    ``add`` of that key until then joins it. A burst of 10,000 adds is one
    send; an add after a send schedules the next one.

    What is still collected when the process exits normally (a prefork
    worker recycled, a server stopped) is sent then, through ``at_exit``:
    the timer's daemon thread would not run."""

    def __init__(self, delay, send, schedule=start_timer, at_exit=atexit.register):
        self.delay = delay
        self.send = send
        self.schedule = schedule
        self._lock = threading.Lock()
        self._pending = {}
        at_exit(self.flush_all)

    def add(self, key, ids):
        with self._lock:
            pending = self._pending.get(key)
            if pending is not None:
                pending.update(ids)
                return
            self._pending[key] = set(ids)
        self.schedule(self.delay, lambda: self.flush(key))

    def flush(self, key):
        """Send what ``key`` collected (nothing when it has nothing)."""
        with self._lock:
            ids = self._pending.pop(key, None)
        if ids:
            self.send(key, ids)

    def flush_all(self):
        """Send what every key collected."""
        with self._lock:
            keys = list(self._pending)
        for key in keys:
            self.flush(key)
