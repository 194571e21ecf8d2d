# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""POST /iot/log under generated input (hypothesis), over real HTTP.

Each example is a batch described by its parts (which box it names and how,
its lines, how it is damaged, how it is sent); the body is built from them as
the genuine ``_flush_logs`` builds it, and the expected outcome is worked out
from the same parts and the format (``tools/box_log.py``'s docstring), never
by the parser under test:

- every answer is 200 with an empty body: never a 5xx, never a traceback;
- a batch that is refused (damaged, unknown or archived box, another address,
  a form body) writes nothing: no log line, no box row changed;
- an accepted batch adds exactly its lines at or above WARNING, in order, as
  the box wrote them (NUL shown as U+FFFD), and flags the box when one is an
  error;
- refusals are logged at most once a minute, however many they are.
"""

import logging
import math
import time
from itertools import count, groupby
from operator import itemgetter

from odoo.addons.iot_update.tools.box_log import box_log_refusals

from .iot_common import CONTROLLER_LOGGER, IotHttpCase
from .property_common import HYPOTHESIS_MISSING, PropertyCaseMixin

if not HYPOTHESIS_MISSING:  # otherwise each test is skipped, saying so
    from hypothesis import given
    from hypothesis import strategies as st

    from .property_strategies import hypothesis_settings

EXAMPLES = 2000
MAC_OK, SERIAL_OK = "aa:bb:cc:dd:ee:01", "SN-PROP-0002"
MAC_OF_SERIAL = "aa:bb:cc:dd:ee:02"
MAC_ARCHIVED, MAC_ELSEWHERE = "aa:bb:cc:dd:ee:03", "aa:bb:cc:dd:ee:04"
#: (header kind, key) -> accepted from the test client's address.
KEYS = {
    ("mac", MAC_OK): True,
    ("identifier", SERIAL_OK): True,
    ("mac", MAC_OF_SERIAL): True,  # the 19 box's record, named by its MAC address
    ("mac", MAC_ARCHIVED): False,
    ("mac", MAC_ELSEWHERE): False,  # its check-in and bus addresses are others
    ("mac", "aa:bb:cc:dd:ee:99"): False,
    ("identifier", "SN-NOBODY"): False,
    ("identifier", MAC_OK.upper()): False,
}
SEPARATOR = "<log/>\n"
MAX_BODY = 1024 * 1024
WARNING, ERROR = 30, 40
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz")
DAMAGES = ("none", "unterminated", "no_header", "not_utf8", "unleveled_first", "oversized", "random")


def expected_text(message):
    """What the server shows of a line: as the box wrote it, NUL as U+FFFD
    (PostgreSQL keeps no NUL); the generated lines are shorter than the
    length the server truncates at."""
    return message.replace("\x00", "\ufffd")


if not HYPOTHESIS_MISSING:
    # Any text the box's formatter can write (UTF-8: no lone surrogate), the
    # separator included, but never followed by what starts a line (digits
    # and a comma): the format cannot tell those apart.
    TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
    MESSAGE = st.lists(TEXT, min_size=1, max_size=3).map(lambda parts: ("<log/>\nx".join(parts)))
    LEVELNO = st.one_of(st.sampled_from([0, 5, 10, 20, 25, 30, 35, 40, 45, 50, 60]), st.integers(0, 999_999_999))
    LINES = st.lists(st.tuples(LEVELNO, MESSAGE), max_size=60)
    BATCHES = st.tuples(
        st.sampled_from(sorted(KEYS)),
        LINES,
        st.sampled_from(DAMAGES),
        st.booleans(),  # chunked
        st.sampled_from([None, "text/plain", "application/octet-stream", *FORM_TYPES]),
        st.binary(max_size=200),  # random body, for the "random" damage
    )


def build(key, lines, damage, random_bytes):
    """The body of the batch, damaged as said: ``(bytes, refused by its form)``."""
    kind, value = key
    pieces = [f"{kind} {value}".encode()] + [f"{levelno},{message}".encode() for levelno, message in lines]
    if damage == "no_header":
        pieces = pieces[1:]
    if damage == "unleveled_first":
        pieces.insert(1, b"no level here")
    if damage == "not_utf8":
        pieces[0] += b"\xff"
    if damage == "oversized":
        pieces.append(b"40," + b"x" * MAX_BODY)
    body = b"".join(piece + SEPARATOR.encode() for piece in pieces)
    if damage == "unterminated":
        body = body[:-1]
    if damage == "random":
        body = random_bytes if not random_bytes.startswith((b"mac ", b"identifier ")) else b"!" + random_bytes
    return body, damage != "none"


class TestBoxLogProperties(PropertyCaseMixin, IotHttpCase):
    def setUp(self):
        super().setUp()
        self.check_in(identifier=MAC_OK)
        self.check_in(identifier=SERIAL_OK, mac=MAC_OF_SERIAL)
        self.check_in(identifier=MAC_ARCHIVED)
        self.check_in(identifier=MAC_ELSEWHERE)
        self.box(MAC_ARCHIVED).active = False
        self.box(MAC_ELSEWHERE).write({"checkin_remote_addr": "203.0.113.1", "bus_remote_addr": "203.0.113.2"})
        self.boxes = {key: self.box(SERIAL_OK if key == ("mac", MAC_OF_SERIAL) else key[1]) for key in KEYS}
        box_log_refusals.reset()
        self.addCleanup(box_log_refusals.reset)
        self.examples = count(1)

    def state(self):
        self.env.cr.execute(
            """SELECT (SELECT count(*) FROM iot_box_log), (SELECT coalesce(max(id), 0) FROM iot_box_log),
                      (SELECT max(xmin::text::bigint) FROM iot_box), (SELECT last_value FROM iot_box_log_id_seq)"""
        )
        return self.env.cr.fetchone()

    def check_example(self, example):
        next(self.examples)
        key, lines, damage, chunked, content_type, random_bytes = example
        body, damaged = build(key, lines, damage, random_bytes)
        refused = damaged or not KEYS[key] or content_type in FORM_TYPES
        before = self.state()
        self.env.flush_all()
        headers = {"Content-Type": content_type} if content_type else {}
        data = iter([body[: len(body) // 2], body[len(body) // 2 :]]) if chunked else body
        response = self.opener.post(self.base_url() + "/iot/log", data=data, headers=headers, timeout=60)
        self.assertEqual((response.status_code, response.content), (200, b""))
        self.write_box_lines()  # what the server does within the second
        if refused:
            self.assertEqual(self.state(), before, "a refused batch writes nothing")
            return
        box = self.boxes[key]
        kept = [(levelno, expected_text(message)) for levelno, message in lines if levelno >= WARNING]
        # One entry per run of consecutive lines at the same level number.
        runs = [(levelno, [text for __, text in run]) for levelno, run in groupby(kept, key=itemgetter(0))]
        entries = [(levelno, "\n".join(texts), len(texts)) for levelno, texts in runs]
        self.env.cr.execute(
            "SELECT levelno, message, line_count FROM iot_box_log WHERE id > %s ORDER BY id", [before[1]]
        )
        self.assertEqual([tuple(row) for row in self.env.cr.fetchall()], entries)
        self.env.cr.execute("SELECT box_id FROM iot_box_log WHERE id > %s", [before[1]])
        self.assertEqual({row[0] for row in self.env.cr.fetchall()}, {box.id} if kept else set())
        if any(levelno >= ERROR for levelno, __ in kept):
            box.invalidate_recordset()
            self.assertTrue(box.reporting_errors)

    def test_batches(self):
        """Batches from known, archived, distant and unknown boxes, with any
        lines, damaged or not, sent with a length or chunked, any content type."""
        warnings = []

        class Collect(logging.Handler):
            def emit(self, record):
                warnings.append(record)

        collector = Collect(logging.WARNING)
        controller_logger = logging.getLogger(CONTROLLER_LOGGER)
        controller_logger.addHandler(collector)
        propagate, controller_logger.propagate = controller_logger.propagate, False
        started = time.monotonic()
        try:

            @hypothesis_settings(EXAMPLES)
            @given(BATCHES)
            def check(example):
                self.check_example(example)

            check()
        finally:
            controller_logger.propagate = propagate
            controller_logger.removeHandler(collector)
        self.assertGreaterEqual(next(self.examples) - 1, EXAMPLES)
        minutes = (time.monotonic() - started) / 60
        self.assertTrue(warnings, "refusals are logged")
        self.assertLessEqual(len(warnings), math.ceil(minutes) + 1, "at most one refusal line a minute")
