# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""What the property-based tests of the box routes share: hypothesis settings,
strategies of hostile values, the log and database checks.

"Nothing written" is checked on the rows themselves: every row a request
inserts or updates carries the id of the (sub)transaction that wrote it
(``xmin``), so the count and the highest ``xmin`` of a table change with any
insert, update or delete, which ``write_date`` would not show (it is the
transaction's time, the same for every request of a test).
"""

import logging
from datetime import timedelta

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from odoo import fields

from odoo.addons.iot_update.tests.iot_common import BOX_LOGGER, CONTROLLER_LOGGER

BUNDLE_LOGGER = "odoo.addons.iot_update.models.iot_handlers_bundle"
EVENT_LOGGER = "odoo.addons.iot_update.models.iot_box_event"
ADDON_LOGGERS = (CONTROLLER_LOGGER, BOX_LOGGER, BUNDLE_LOGGER, EVENT_LOGGER)


def hypothesis_settings(examples):
    """The same examples at every run, no time limit per example (a request
    takes what the machine gives it), no example database on disk."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
        print_blob=False,
    )


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------

#: Any code point: control characters and lone surrogates included.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
SPECIAL_TEXTS = [
    "",
    " ",
    "\x00",
    "\t",
    "\n",
    "\r\nX-Forged: 1",
    "\x1b[31m",
    "\x7f",
    "\ud800",
    "\udfff",
    "\ud83d\ude00",  # a surrogate pair written as two code points: JSON joins them
    "\u00e9t\u00e9",
    "\u202eevil",
    "\ufeff",
    "\u00a0",
    "\uffff",
    "\U0001f600",
    "%s%s%(x)s",
    "'; DROP TABLE iot_box; --",
    "<script>alert(1)</script>",
    "../../../etc/passwd",
    "None",
    "True",
    "null",
]
#: Strings around and far over the limits (64, 128, 255 characters, 1 MiB bodies).
LONG_TEXTS = st.builds(
    lambda unit, count: unit * count,
    st.sampled_from(["x", "\u00e9", "\U0001f600", "\ud800", "a\x00"]),
    st.sampled_from([63, 64, 65, 127, 128, 129, 254, 255, 256, 4096, 300_000]),
)
SHORT_TEXTS = st.one_of(st.text(ANY_CHAR, max_size=12), st.sampled_from(SPECIAL_TEXTS))
TEXTS = st.one_of(SHORT_TEXTS, LONG_TEXTS)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXTS)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(ANY_CHAR, max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


class RequestLogs(logging.Handler):
    """What is logged while a request is served.

    The addon's loggers log one warning per refusal: their records are taken
    here (and not passed on, so that the test's "no unexpected warning" check
    does not see them) for the test to check. Everything else logged at
    WARNING or above goes to ``others``: the properties allow none.
    """

    def __init__(self):
        super().__init__(logging.WARNING)
        self.addon = []
        self.others = []

    def filter(self, record):  # as a filter of the addon's loggers
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
