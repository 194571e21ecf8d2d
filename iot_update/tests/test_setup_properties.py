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

from odoo.addons.iot_update.models.iot_box_event import UNKNOWN_REFUSAL_QUIET_MINUTES
from odoo.addons.iot_update.tests.iot_common import PRINTER, IotHttpCase
from odoo.addons.iot_update.tools.setup_payload import MAX_BODY_BYTES, PayloadError, read_setup_payload

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
