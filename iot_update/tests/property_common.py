# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""What the property-based tests of the box routes share, without hypothesis: the
requests' constants and encoders, the log and database checks, and the skip that
says the tests did not run when hypothesis is missing.

hypothesis is not one of Odoo's requirements: this module and the test modules
import without it, so that the addon and its other tests load wherever Odoo's
runner runs them; the strategies (``property_strategies``) are imported only
when hypothesis is there. Without it each property test is skipped with a reason
that starts with ``PROPERTIES_NOT_RUN``, which ``./dev test`` counts as a failure.

"Nothing written" is checked on the rows themselves: every row a request
inserts or updates carries the id of the (sub)transaction that wrote it
(``xmin``), so the count and the highest ``xmin`` of a table change with any
insert, update or delete, which ``write_date`` would not show (it is the
transaction's time, the same for every request of a test).
"""

import importlib.util
import json
import logging
from datetime import timedelta
from urllib.parse import quote_from_bytes

from odoo import fields

from odoo.addons.iot_update.tests.iot_common import BOX_LOGGER, CONTROLLER_LOGGER

#: Start of the skip reason when hypothesis is missing; ./dev counts these.
PROPERTIES_NOT_RUN = "PROPERTY TESTS NOT RUN"
HYPOTHESIS_MISSING = importlib.util.find_spec("hypothesis") is None

BUNDLE_LOGGER = "odoo.addons.iot_update.models.iot_handlers_bundle"
EVENT_LOGGER = "odoo.addons.iot_update.models.iot_box_event"
ADDON_LOGGERS = (CONTROLLER_LOGGER, BOX_LOGGER, BUNDLE_LOGGER, EVENT_LOGGER)


class PropertyCaseMixin:
    """Skips each test, saying why, when hypothesis is missing."""

    def setUp(self):
        super().setUp()
        if HYPOTHESIS_MISSING:
            self.skipTest(
                f"{PROPERTIES_NOT_RUN}: the Python package hypothesis is missing "
                "(pip install hypothesis; ./dev setup installs it in .venv)"
            )


# ---------------------------------------------------------------------------
# /iot/setup
# ---------------------------------------------------------------------------

PAIRING = "pairing-token-of-the-properties-0123456789"
KNOWN = ("aa:bb:cc:dd:ee:01", "SN-KNOWN-0002")
KNOWN_MACS = ("aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02")
#: Content types after which Odoo reads the body as a form, leaving no JSON to read.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=xyz")
SETUP_CONTENT_TYPES = (
    "application/json",
    "application/json; charset=utf-8",
    "application/json-rpc",
    "text/plain",
    "application/octet-stream",
    "image/png",
    "application/json; charset=latin-1",
    "",
    None,  # no header
    *FORM_TYPES,
)


def encode(value, how):
    """JSON text of ``value`` as bytes: ASCII with escapes (lone surrogates
    included), raw UTF-8 (lone surrogates as the bytes no UTF-8 decoder
    accepts), or UTF-16 (which JSON decoders detect)."""
    if how == "ascii":
        return json.dumps(value).encode()
    if how == "utf-8":
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(value, ensure_ascii=False).encode("utf-16", "surrogatepass")


# ---------------------------------------------------------------------------
# /iot/get_handlers
# ---------------------------------------------------------------------------

MAC_LINUX = "aa:bb:cc:dd:ee:01"
SERIAL_WINDOWS, MAC_WINDOWS = "SN-WIN-0002", "aa:bb:cc:dd:ee:02"
MAC_AUTO_OFF = "aa:bb:cc:dd:ee:03"
#: Key a request may send -> (variant of its box, automatic update on), None for no box.
BOXES = {
    MAC_LINUX: ("linux", True),
    SERIAL_WINDOWS: ("windows", True),
    MAC_WINDOWS: ("windows", True),  # found by its MAC address
    MAC_AUTO_OFF: ("linux", False),
    "aa:bb:cc:dd:ee:99": None,
    "SN-UNKNOWN-0009": None,
}
BOUNDARY = b"properties-boundary"
ENCODINGS = ("multipart", "urlencoded", "query")


def to_bytes(text):
    return text.encode("utf-8", "surrogatepass")


def multipart(parts, boundary=BOUNDARY):
    """``parts``: ``(name, value, filename or None)`` as bytes."""
    body = b""
    for name, value, filename in parts:
        disposition = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        body += b"--" + boundary + b"\r\n" + disposition + b"\r\n\r\n" + value + b"\r\n"
    return body + b"--" + boundary + b"--\r\n"


def urlencoded(parts):
    return "&".join(f"{quote_from_bytes(name)}={quote_from_bytes(value)}" for name, value, __ in parts).encode()


def bundle_etag_headers(digest):
    """``If-None-Match`` values naming ``digest``, as boxes and proxies write them."""
    return [f'"{digest}"', digest, f'W/"{digest}"', f'"0000", "{digest}"']


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


class RequestLogs(logging.Handler):
    """What is logged while a request is served.

    The addon's loggers log one warning per refusal: their records of WARNING
    and above are taken here (and not passed on, so that the test's "no
    unexpected warning" check does not see them) for the test to check; their
    INFO lines (shown by Odoo's runner, which logs at INFO) pass. Everything
    else logged at WARNING or above goes to ``others``: the properties allow none.
    """

    def __init__(self):
        super().__init__(logging.WARNING)
        self.addon = []
        self.others = []

    def filter(self, record):  # as a filter of the addon's loggers
        if record.levelno < logging.WARNING:
            return True  # logged when the log level lets it through (Odoo's runner: INFO)
        self.addon.append(record)
        return False

    def emit(self, record):  # as a handler of the root logger
        self.others.append(record)

    def __enter__(self):
        for name in ADDON_LOGGERS:
            logging.getLogger(name).addFilter(self)
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeHandler(self)
        for name in ADDON_LOGGERS:
            logging.getLogger(name).removeFilter(self)

    def levels(self):
        return {logging.getLevelName(record.levelno) for record in self.addon}


TABLE_STATE = """SELECT (SELECT count(*) FROM iot_box), (SELECT max(xmin::text::bigint) FROM iot_box),
                        (SELECT count(*) FROM iot_device), (SELECT max(xmin::text::bigint) FROM iot_device),
                        (SELECT coalesce(max(id), 0) FROM iot_box_event)"""


class TableState:
    """Rows of the boxes, their devices and their history, as one request
    found and left them."""

    def __init__(self, cr):
        cr.execute(TABLE_STATE)
        self.boxes = cr.fetchone()
        self.devices, self.last_event = self.boxes[2:4], self.boxes[4]
        self.boxes = self.boxes[:2]
        self.cr = cr

    def new_events(self):
        """``(kind, box_id, identifier, remote_addr)`` of the events recorded since."""
        self.cr.execute(
            "SELECT kind, box_id, identifier, remote_addr FROM iot_box_event WHERE id > %s ORDER BY id",
            [self.last_event],
        )
        return self.cr.fetchall()

    def recent_unknown_refusal(self, remote_addr, minutes):
        """True when an unknown box was refused for ``remote_addr`` within ``minutes``."""
        self.cr.execute(
            """SELECT 1 FROM iot_box_event WHERE kind = 'refusal' AND box_id IS NULL AND remote_addr = %s
                 AND date >= %s LIMIT 1""",
            [remote_addr, fields.Datetime.now() - timedelta(minutes=minutes)],
        )
        return bool(self.cr.fetchone())

    def unchanged(self, cr, events=True):
        """What changed since, among boxes, devices and (when ``events``) history: [] when nothing."""
        after = TableState(cr)
        changes = [
            name
            for name, before_value, after_value in (
                ("iot_box", self.boxes, after.boxes),
                ("iot_device", self.devices, after.devices),
                ("iot_box_event", self.last_event, after.last_event if events else self.last_event),
            )
            if before_value != after_value
        ]
        return changes
