# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Reading the body of ``POST /iot/log`` (the box's own log) before anything
touches the database.

The genuine box (18.0 ``hw_drivers/server_logger.py``, 19
``iot_drivers/server_logger.py``, ``AsyncHTTPHandler._flush_logs``) sends,
UTF-8 encoded, each record followed by ``<log/>\\n``:

- first ``mac <MAC address>`` (18.0) or ``identifier <serial number>`` (19);
- then, per log line, ``<levelno>,<formatted line>`` (at most 50, plus one
  warning when its queue is saturating).

Nothing escapes the separator: a formatted line holding ``<log/>\\n`` reaches
the server in two pieces. A piece that does not start with a level number is
read as the continuation of the line before it, so that such a line is kept
whole. Anything else (no header, a first line without a level, text that is
not UTF-8, a body that does not end with the separator, too many lines) is not
a box's batch: :class:`BoxLogError` says why.
"""

import re
import threading
import time
from typing import NamedTuple

SEPARATOR = b"<log/>\n"
#: A genuine batch holds at most 51 lines of a few KB each (a traceback).
MAX_BODY_BYTES = 1024 * 1024
MAX_LINES = 100
MAX_KEY_CHARS = 64
#: Longer lines are kept up to this many characters, then marked.
MAX_MESSAGE_CHARS = 16_000
TRUNCATED = " [truncated]"
#: The box's level number: Python's are 0-50; anything up to 9 digits is read.
ENTRY = re.compile(rb"([0-9]{1,9}),", re.ASCII)
HEADER = re.compile(rb"(mac|identifier) (.+)", re.ASCII | re.DOTALL)

LEVELS = ("debug", "info", "warning", "error", "critical")
LEVEL_NUMBERS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


class BoxLogError(ValueError):
    """The body is not a batch of a box's log lines; ``str()`` says why."""


class BoxLogBatch(NamedTuple):
    key_kind: str  # "mac" (18.0) or "identifier" (19)
    key: str
    lines: list  # [(levelno, message)] in the box's order


def level_of(levelno):
    """The level name (``LEVELS``) of a Python level number: the highest
    standard level at or below it (``debug`` below 20)."""
    for name in reversed(LEVELS):
        if levelno >= LEVEL_NUMBERS[name]:
            return name
    return "debug"


def clean_message(text):
    """``text`` as PostgreSQL can keep it (no NUL), at most ``MAX_MESSAGE_CHARS`` long."""
    text = text.replace("\x00", "\ufffd")
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - len(TRUNCATED)] + TRUNCATED
    return text


def read_log_batch(body):
    """The :class:`BoxLogBatch` ``body`` (bytes) holds."""
    if len(body) > MAX_BODY_BYTES:
        raise BoxLogError(f"body larger than {MAX_BODY_BYTES} bytes")
    pieces = body.split(SEPARATOR)
    if len(pieces) < 2 or pieces[-1]:
        raise BoxLogError("the body does not end with <log/>")
    header = HEADER.fullmatch(pieces[0])
    if not header:
        raise BoxLogError("the body does not start with 'mac' or 'identifier'")
    try:
        key = header.group(2).decode("utf-8")
    except UnicodeDecodeError:
        raise BoxLogError("the box's identifier is not UTF-8") from None
    if len(key) > MAX_KEY_CHARS or not key.isprintable() or key != key.strip():
        raise BoxLogError("the box's identifier is not one")
    entries = []  # [levelno, [raw pieces]]
    for piece in pieces[1:-1]:
        entry = ENTRY.match(piece)
        if entry:
            entries.append([int(entry.group(1)), [piece[entry.end() :]]])
        elif entries:
            entries[-1][1].append(piece)  # the rest of a line holding the separator
        else:
            raise BoxLogError("the first line after the header has no level")
        if len(entries) > MAX_LINES:
            raise BoxLogError(f"more than {MAX_LINES} lines")
    try:
        lines = [(levelno, clean_message(SEPARATOR.join(parts).decode("utf-8"))) for levelno, parts in entries]
    except UnicodeDecodeError:
        raise BoxLogError("a line is not UTF-8") from None
    return BoxLogBatch(header.group(1).decode(), key, lines)


class RefusalNotice:
    """At most one log line per ``interval`` seconds about refused batches,
    however many come (a stranger may send thousands): the first refusal is
    logged at once, the next ones are counted and reported with the next line
    due. ``clock`` is ``time.monotonic``-like."""

    def __init__(self, interval, clock):
        self.interval = interval
        self.clock = clock
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.next_time = None
        self.suppressed = 0

    def note(self, logger, reason, key, remote_addr):
        """Count a refusal; log it when a line is due. True when logged."""
        with self.lock:
            now = self.clock()
            if self.next_time is not None and now < self.next_time:
                self.suppressed += 1
                return False
            suppressed, self.suppressed = self.suppressed, 0
            self.next_time = now + self.interval
        logger.warning(
            "IoT box log batch from %s refused (%s, box %.64r); %s other batches refused since the last such line",
            remote_addr,
            reason,
            key,
            suppressed,
        )
        return True


#: Refused log batches: one warning line a minute at most, whatever their
#: number (those the route refuses unread and those the write refuses).
box_log_refusals = RefusalNotice(60, time.monotonic)
