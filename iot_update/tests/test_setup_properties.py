# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""POST /iot/setup under generated input (hypothesis), over real HTTP.

Whatever the body, its encoding and its content type:
- the answer is a JSON-RPC body (``jsonrpc``, ``id``, a result or an error),
  never a 5xx, never a traceback;
- a body that is not a check-in (the oracle ``spec_check_in`` below, written from
  SPEC 3.1 and not from the parser under test, says so)
  gets an error and writes nothing at all, history included;
- a check-in with a wrong token changes no box and no device; its refusal is
  recorded, by design: once per box that exists, and for an unknown box only
  when no unknown box was refused for that address in the last minutes;
- a check-in with the pairing token leaves the box with the version and the
  connected devices it sent.
"""

import json
import unicodedata
from itertools import count
from types import SimpleNamespace

from odoo.addons.iot_update.models.iot_box_event import UNKNOWN_REFUSAL_QUIET_MINUTES
from odoo.addons.iot_update.tests.iot_common import PRINTER, IotHttpCase

from .property_common import (
    FORM_TYPES,
    HYPOTHESIS_MISSING,
    KNOWN,
    KNOWN_MACS,
    PAIRING,
    PropertyCaseMixin,
    RequestLogs,
    TableState,
    encode,
)

if not HYPOTHESIS_MISSING:  # otherwise each test is skipped, saying so
    from hypothesis import given

    from .property_strategies import CHECK_INS, RAW_REQUESTS, hypothesis_settings

CHECK_IN_EXAMPLES = 1400
RAW_EXAMPLES = 600


# The contract's limits (SPEC 3.1 and the addon's documented bounds), restated here.
BODY_LIMIT = 1024 * 1024
BOX_FIELDS = {"identifier": 64, "mac": 64, "name": 255, "ip": 255, "token": 128, "version": 128}
DEVICE_KEYS = ("name", "type", "manufacturer", "connection", "subtype")
DEVICE_TEXT, DEVICES_AT_MOST = 255, 500


class NotACheckIn(Exception):
    pass


def spec_text(value, limit):
    """A text field: absent/null is empty; otherwise a string, trimmed, at most
    ``limit`` characters, with no control, format or separator character but the space."""
    if value is None:
        return ""
    if type(value) is not str:
        raise NotACheckIn
    value = value.strip()
    if len(value) > limit:
        raise NotACheckIn
    for char in value:
        category = unicodedata.category(char)
        if char != " " and (category[0] == "C" or category in ("Zs", "Zl", "Zp")):
            raise NotACheckIn
    return value


def spec_check_in(data):
    """The check-in SPEC 3.1 reads in a decoded body, or raises NotACheckIn."""
    params = data.get("params") if type(data) is dict else None
    box = params.get("iot_box") if type(params) is dict else None
    if type(box) is not dict:
        raise NotACheckIn
    values = {key: spec_text(box.get(key), limit) for key, limit in BOX_FIELDS.items()}
    if not values["identifier"]:
        raise NotACheckIn
    devices = params.get("devices")
    devices = {} if devices is None or devices == [] else devices
    if type(devices) is not dict or len(devices) > DEVICES_AT_MOST:
        raise NotACheckIn
    read = {}
    for raw_key, device in devices.items():
        key = spec_text(raw_key, DEVICE_TEXT)
        if not key or type(device) is not dict:
            raise NotACheckIn
        read[key] = {field: spec_text(device.get(field), DEVICE_TEXT) for field in DEVICE_KEYS}
    return SimpleNamespace(devices=read, **values)


class TestSetupProperties(PropertyCaseMixin, IotHttpCase):
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
        if len(body) > BODY_LIMIT:
            return ("refused", 413, -32600)
        if content_type in FORM_TYPES:
            body = b""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return ("refused", 400, -32700)
        try:
            return spec_check_in(data)
        except NotACheckIn:
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

        if isinstance(expected, tuple):  # ("refused", status, code)
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
