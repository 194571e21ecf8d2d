# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The generated values of the property-based tests (hypothesis): hostile values
of any kind, then the requests of each box route. Imported by the test modules
only when hypothesis is installed (see ``property_common``)."""

import json

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from odoo.addons.iot_update.tests.iot_common import PRINTER, box_payload
from odoo.addons.iot_update.tools.setup_payload import MAX_BODY_BYTES

from .property_common import (
    BOUNDARY,
    BOXES,
    ENCODINGS,
    KNOWN,
    KNOWN_MACS,
    MAC_AUTO_OFF,
    MAC_LINUX,
    PAIRING,
    SERIAL_WINDOWS,
    SETUP_CONTENT_TYPES,
    to_bytes,
)


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
# /iot/setup
# ---------------------------------------------------------------------------

# Check-ins: valid ones often enough that the accepted path is exercised too.
GOOD_TEXTS = st.sampled_from(["iotbox-1", "192.168.1.20", "L24.11-18.0#1a2b3c4", "W23.11-18.0", "", "é-box"])
FIELD_VALUES = st.one_of(GOOD_TEXTS, GOOD_TEXTS, TEXTS, JSON_VALUES)
IDENTIFIERS = st.one_of(
    st.sampled_from((*KNOWN, "aa:bb:cc:dd:ee:11", "SN-NEW-0003", "SN-NEW-0004")), TEXTS, JSON_VALUES
)
TOKENS = st.one_of(
    st.just(PAIRING),
    st.just(PAIRING),
    st.sampled_from(["wrong", "jeton-\u00e9t\u00e9", PAIRING + "\ud800", PAIRING[:-1], PAIRING.upper(), ""]),
    TEXTS,
    JSON_VALUES,
)
IOT_BOXES = st.fixed_dictionaries(
    {"identifier": IDENTIFIERS, "token": TOKENS},
    optional={
        "name": FIELD_VALUES,
        "ip": FIELD_VALUES,
        "version": FIELD_VALUES,
        "mac": st.one_of(st.sampled_from(KNOWN_MACS), TEXTS, JSON_VALUES),
        "extra": JSON_VALUES,
    },
)
DEVICE_FIELDS = st.fixed_dictionaries(
    {},
    optional={name: FIELD_VALUES for name in ("name", "type", "manufacturer", "connection", "subtype")},
)
DEVICES = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(["usb_printer", "serial_scale"]), TEXTS), DEVICE_FIELDS, max_size=4),
    st.dictionaries(TEXTS, st.one_of(DEVICE_FIELDS, JSON_VALUES), max_size=3),
    st.sampled_from([499, 500, 501]).map(lambda n: {f"device_{i}": PRINTER for i in range(n)}),
    JSON_VALUES,
)
PARAMS = st.one_of(
    st.fixed_dictionaries({"iot_box": IOT_BOXES}, optional={"devices": DEVICES}),
    st.fixed_dictionaries({"iot_box": IOT_BOXES}, optional={"devices": DEVICES}),
    st.fixed_dictionaries({}, optional={"iot_box": JSON_VALUES, "devices": JSON_VALUES}),
    JSON_VALUES,
)
ENVELOPES = st.one_of(
    st.fixed_dictionaries(
        {"params": PARAMS},
        optional={
            "jsonrpc": st.one_of(st.just("2.0"), JSON_VALUES),
            "method": st.one_of(st.just("call"), TEXTS),
            "id": st.one_of(st.integers(), TEXTS, JSON_VALUES),
        },
    ),
    JSON_VALUES,
)

CHECK_INS = st.tuples(
    ENVELOPES, st.sampled_from(["ascii", "ascii", "utf-8", "utf-16"]), st.sampled_from(SETUP_CONTENT_TYPES)
)
RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    st.text(ANY_CHAR, max_size=50).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.builds(lambda body, cut: body[:cut], st.just(json.dumps(box_payload(PAIRING)).encode()), st.integers(0, 200)),
    st.sampled_from(
        [
            b"",
            b"null",
            b"{}",
            b"[]",
            b'"\\ud800"',
            b"\xef\xbb\xbf" + json.dumps(box_payload(PAIRING, identifier="SN-BOM-0001")).encode(),
            b"[" * 100_000,
            b'{"params": {"iot_box": {"identifier": "x", "token": 1e999}}}',
            b'{"params": {"iot_box": {"identifier": "' + b"9" * 5000 + b'"}}}',
            b'{"id": ' + b"9" * 5000 + b"}",
            b'{"id": NaN, "params": Infinity}',
            b" " * (MAX_BODY_BYTES + 1),
        ]
    ),
)
RAW_REQUESTS = st.tuples(RAW_BODIES, st.sampled_from(SETUP_CONTENT_TYPES), st.booleans())


# ---------------------------------------------------------------------------
# /iot/get_handlers
# ---------------------------------------------------------------------------

# Well-formed requests -------------------------------------------------------

EXTRA_FIELDS = st.lists(
    st.tuples(st.sampled_from(["x", "pad", "db", "csrf_token", "mac_address"]), SHORT_TEXTS.map(to_bytes)), max_size=3
)
WELL_FORMED = st.fixed_dictionaries(
    {
        "style": st.sampled_from(["mac", "identifier"]),
        "key": st.sampled_from(sorted(BOXES)),
        "auto": st.sampled_from(["True", "False", "true", "FALSE"]),
        "extra": EXTRA_FIELDS,
        # Later repeats of the fields sent ("key": mac or identifier): the first value counts.
        "repeats": st.lists(st.tuples(st.sampled_from(["key", "auto"]), SHORT_TEXTS.map(to_bytes)), max_size=2),
        "encoding": st.sampled_from(ENCODINGS),
        # None: no header; an int: the current ETag in one of its forms.
        "if_none_match": st.one_of(
            st.none(),
            st.integers(0, 3),
            st.sampled_from(["*", '"0000"', "", "W/", '"' * 3]),
            st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80).map(str.lstrip),
        ),
    }
)

# Anything -------------------------------------------------------------------

NAMES = st.one_of(
    st.sampled_from([b"mac", b"identifier", b"auto", b"MAC", b"mac[]", b"", b'a"b', b"x\r\ny"]),
    st.text(ANY_CHAR, max_size=10).map(to_bytes),
)
VALUES = st.one_of(
    st.sampled_from([b"True", b"False", MAC_LINUX.encode(), SERIAL_WINDOWS.encode(), MAC_AUTO_OFF.encode()]),
    TEXTS.map(to_bytes),
    st.binary(max_size=40),
    st.sampled_from([10_000, 16_000, 17_000, 100_000]).map(lambda size: b"v" * size),
)
PARTS = st.lists(st.tuples(NAMES, VALUES, st.one_of(st.none(), st.binary(max_size=12))), max_size=6)
#: A query string stays under the 64 KiB request line of Odoo's HTTP server:
#: past it, Odoo's own request handler fails before any route is reached.
QUERY_PARTS = st.lists(st.tuples(NAMES, SHORT_TEXTS.map(to_bytes), st.none()), max_size=4)
HANDLERS_CONTENT_TYPES = st.sampled_from(
    [
        "multipart/form-data; boundary=" + BOUNDARY.decode(),
        "multipart/form-data; boundary=other",
        "multipart/form-data",
        "multipart/mixed; boundary=" + BOUNDARY.decode(),
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "application/json",
        "text/plain",
        "",
    ]
)
HOSTILE = st.fixed_dictionaries(
    {
        "parts": PARTS,
        "body": st.sampled_from(["multipart", "urlencoded", "binary"]),
        "raw": st.binary(max_size=300),
        "content_type": HANDLERS_CONTENT_TYPES,
        "query": st.one_of(st.none(), QUERY_PARTS),
        "if_none_match": st.one_of(
            st.none(),
            st.binary(max_size=60).map(lambda raw: raw.translate(None, b"\r\n\0").lstrip(b" \t")),
            st.sampled_from([b"*", b"x" * 5000]),
        ),
    }
)
