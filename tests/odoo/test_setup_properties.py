# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""POST /iot/setup under generated input (hypothesis), over real HTTP.

Whatever the body, its encoding and its content type:
- the answer is a JSON-RPC body (``jsonrpc``, ``id``, a result or an error),
  never a 5xx, never a traceback;
- a body that is not a check-in (the pure ``read_setup_payload`` says so)
  gets an error and writes nothing at all, history included;
- a check-in with a wrong token changes no box and no device; its refusal is
  recorded, by design: once per box that exists, and for an unknown box only
  when no unknown box was refused for that address in the last minutes;
- a check-in with the pairing token leaves the box with the version and the
  connected devices it sent.
"""

import json
from itertools import count

from hypothesis import given
from hypothesis import strategies as st

from odoo.addons.iot_update.models.iot_box_event import UNKNOWN_REFUSAL_QUIET_MINUTES
from odoo.addons.iot_update.tests.iot_common import PRINTER, IotHttpCase, box_payload
from odoo.addons.iot_update.tools.setup_payload import MAX_BODY_BYTES, PayloadError, read_setup_payload

from property_common import ANY_CHAR, JSON_VALUES, TEXTS, RequestLogs, TableState, hypothesis_settings

PAIRING = "pairing-token-of-the-properties-0123456789"
KNOWN = ("aa:bb:cc:dd:ee:01", "SN-KNOWN-0002")
KNOWN_MACS = ("aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02")
#: Content types after which Odoo reads the body as a form, leaving no JSON to read.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=xyz")
CONTENT_TYPES = (
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


def encode(value, how):
    """JSON text of ``value`` as bytes: ASCII with escapes (lone surrogates
    included), raw UTF-8 (lone surrogates as the bytes no UTF-8 decoder
    accepts), or UTF-16 (which JSON decoders detect)."""
    if how == "ascii":
        return json.dumps(value).encode()
    if how == "utf-8":
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(value, ensure_ascii=False).encode("utf-16", "surrogatepass")


CHECK_INS = st.tuples(ENVELOPES, st.sampled_from(["ascii", "ascii", "utf-8", "utf-16"]), st.sampled_from(CONTENT_TYPES))
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
RAW_REQUESTS = st.tuples(RAW_BODIES, st.sampled_from(CONTENT_TYPES), st.booleans())

CHECK_IN_EXAMPLES = 1400
RAW_EXAMPLES = 600


class TestSetupProperties(IotHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].set_param("iot_token", PAIRING)
        cls.setup_iot()

    def setUp(self):
        super().setUp()
        self.check_in(identifier=KNOWN[0], token=PAIRING, devices={"usb_printer": PRINTER})
        self.check_in(identifier=KNOWN[1], mac=KNOWN_MACS[1], token=PAIRING)
        self.examples = count(1)

    def send(self, body, content_type, chunked=False):
        headers = {} if content_type is None else {"Content-Type": content_type}
        if chunked:
            body = iter([body[: len(body) // 2], body[len(body) // 2 :]])
        return self.opener.post(self.base_url() + "/iot/setup", data=body, headers=headers, timeout=60)

    def expected(self, body, content_type, chunked):
        """``("refused", http status, JSON-RPC code)``, or the check-in to accept or refuse."""
        if chunked:
            return ("refused", 411, -32600)
        if len(body) > MAX_BODY_BYTES:
            return ("refused", 413, -32600)
        if content_type in FORM_TYPES:
            body = b""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return ("refused", 400, -32700)
        try:
            return read_setup_payload(data)
        except PayloadError:
            return ("refused", 400, -32600)

    def check_example(self, body, content_type, chunked=False):
        next(self.examples)
        expected = self.expected(body, content_type, chunked)
        before = TableState(self.env.cr)
        recently_refused = before.recent_unknown_refusal("127.0.0.1", UNKNOWN_REFUSAL_QUIET_MINUTES)
        with RequestLogs() as logs:
            response = self.send(body, content_type, chunked)
        self.assertLess(response.status_code, 500)
        self.assertNotIn(b"Traceback", response.content)
        self.assertEqual(response.headers["Content-Type"], "application/json; charset=utf-8")
        answer = response.json()
        self.assertEqual(answer["jsonrpc"], "2.0")
        self.assertIn("id", answer)
        self.assertEqual([], logs.others, "nothing else may log a warning or an error")
        self.assertLessEqual(logs.levels(), {"WARNING"})

        if expected[0] == "refused":
            __, status, code = expected
            self.assertEqual((response.status_code, answer["error"]["code"]), (status, code))
            self.assertEqual(before.unchanged(self.env.cr), [], "an invalid request writes nothing")
            self.assertEqual(logs.levels(), {"WARNING"})
            return
        setup = expected
        self.assertEqual(response.status_code, 200)
        self.assertNotIn("error", answer)
        self.env.invalidate_all()
        if setup.token != PAIRING:
            self.assertEqual(answer["result"], "", "no channel for a refused box")
            self.assertEqual(before.unchanged(self.env.cr, events=False), [], "a wrong token changes nothing")
            events = before.new_events()
            self.assertEqual({kind for kind, *__ in events}, {"refusal"} if events else set())
            keys = [key for key in (setup.identifier, setup.mac) if key]
            known = self.Box.with_context(active_test=False).search_count(
                ["|", ("identifier", "in", keys), ("mac", "in", keys)]
            )
            if known:
                self.assertEqual(len(events), 1)
                self.assertTrue(events[0][1], "recorded on the box")
            else:
                self.assertEqual(len(events), 0 if recently_refused else 1, "an unknown box's refusals are bounded")
            self.assertEqual(logs.levels(), {"WARNING"})
            return
        box = self.box(setup.identifier)
        self.assertEqual(len(box), 1)
        self.assertEqual(answer["result"], box._get_channel())
        self.assertEqual((box.version or "", box.active), (setup.version, True))
        self.assertEqual(set(box.device_ids.filtered("connected").mapped("identifier")), set(setup.devices))
        self.assertEqual(logs.addon, [])

    def test_check_ins(self):
        """JSON-RPC envelopes holding anything, ``iot_box`` and ``devices`` of
        any type, size and characters, in three encodings and any content type."""

        @hypothesis_settings(CHECK_IN_EXAMPLES)
        @given(CHECK_INS)
        def check(example):
            value, encoding, content_type = example
            self.check_example(encode(value, encoding), content_type)

        check()
        self.assertGreaterEqual(next(self.examples) - 1, CHECK_IN_EXAMPLES)

    def test_raw_bodies(self):
        """Bodies that are not JSON, not UTF-8, truncated, nested too deep,
        too large or sent without a length, with any content type."""

        @hypothesis_settings(RAW_EXAMPLES)
        @given(RAW_REQUESTS)
        def check(example):
            body, content_type, chunked = example
            self.check_example(body, content_type, chunked)

        check()
        self.assertGreaterEqual(next(self.examples) - 1, RAW_EXAMPLES)
