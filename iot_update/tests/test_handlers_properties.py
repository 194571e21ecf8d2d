# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""POST /iot/get_handlers under generated input (hypothesis), over real HTTP.

Requests are built byte by byte (multipart, URL-encoded, or in the query
string), so that anything can be sent: repeated fields, files, names and
values that are not UTF-8, huge values, any ``If-None-Match``.

For every request: no 5xx, no traceback; a 400 or 413 writes nothing at all;
a refusal changes no box and no device; every 200 with a body is the bundle
whose SHA-256 is its ``ETag``, recorded once on the box it was sent to; a 304
names that bundle, and answers only a box asking on its own (``auto``). For
well-formed requests (a known or unknown box, ``auto`` ``True`` or ``False``,
other fields around and later repeats of them), the
answer is exactly the one the protocol gives.
"""

import hashlib
from functools import partial
from itertools import count

from odoo.addons.iot_update.tests.handlers_common import (
    LINUX_HANDLERS,
    LINUX_VERSION,
    WINDOWS_HANDLERS,
    WINDOWS_VERSION,
    HandlersFolderMixin,
    unzip,
)
from odoo.addons.iot_update.tests.iot_common import IotHttpCase

from .property_common import (
    BOUNDARY,
    BOXES,
    HYPOTHESIS_MISSING,
    MAC_AUTO_OFF,
    MAC_LINUX,
    MAC_WINDOWS,
    SERIAL_WINDOWS,
    PropertyCaseMixin,
    RequestLogs,
    TableState,
    bundle_etag_headers,
    multipart,
    urlencoded,
)

if not HYPOTHESIS_MISSING:  # otherwise each test is skipped, saying so
    from hypothesis import given

    from .property_strategies import HOSTILE, WELL_FORMED, hypothesis_settings

WELL_FORMED_EXAMPLES = 1200
HOSTILE_EXAMPLES = 800


class TestHandlersProperties(PropertyCaseMixin, HandlersFolderMixin, IotHttpCase):
    def setUp(self):
        super().setUp()
        self.setup_handlers_folder()
        self.check_in(identifier=MAC_LINUX, version=LINUX_VERSION)
        self.check_in(identifier=SERIAL_WINDOWS, mac=MAC_WINDOWS, version=WINDOWS_VERSION)
        self.check_in(identifier=MAC_AUTO_OFF, version=LINUX_VERSION)
        self.box(MAC_AUTO_OFF).drivers_auto_update = False
        # What each platform's box must receive: the test folder's files for it (SPEC 3.2),
        # not what the code under test builds.
        self.expected_files = {"linux": LINUX_HANDLERS, "windows": WINDOWS_HANDLERS}
        self.digests = {}
        for key in (MAC_LINUX, SERIAL_WINDOWS):
            response = self.send(
                urlencoded([(b"mac", key.encode(), None), (b"auto", b"False", None)]),
                "application/x-www-form-urlencoded",
            )
            variant = BOXES[key][0]
            self.assertEqual(unzip(response.content), self.expected_files[variant])
            self.digests[variant] = hashlib.sha256(response.content).hexdigest()
        self.examples = count(1)

    def send(self, body, content_type, query=b"", if_none_match=None):
        headers = {"Content-Type": content_type}
        if if_none_match is not None:
            headers["If-None-Match"] = if_none_match
        url = self.base_url() + "/iot/get_handlers" + ("?" + query.decode() if query else "")
        return self.opener.post(url, data=body, headers=headers, timeout=60)

    def check_request(self, send):
        """Send with ``send()``; check what holds for any request; return the
        response and the events it recorded."""
        next(self.examples)
        before = TableState(self.env.cr)
        with RequestLogs() as logs:
            response = send()
        self.assertIn(response.status_code, (200, 304, 400, 401, 413))
        self.assertNotIn(b"Traceback", response.content)
        self.assertEqual([], logs.others, "nothing else may log a warning or an error")
        self.assertLessEqual(logs.levels(), {"WARNING"})
        events = before.new_events()
        status, body = response.status_code, response.content
        if status in (400, 413):
            self.assertEqual(before.unchanged(self.env.cr), [], "an invalid request writes nothing")
            if status == 400:  # 413 is Odoo's page for a body over the route's limit
                self.assertLessEqual(body.count(b"\n"), 1, "empty, or one line that says why")
                self.assertEqual(logs.levels(), {"WARNING"})
        elif status in (200, 401) and not body:
            self.assertEqual(before.unchanged(self.env.cr, events=False), [], "a refusal changes no box")
            self.assertLessEqual(len(events), 1)
            self.assertEqual({kind for kind, *__ in events}, {"refusal"} if events else set())
        else:
            self.assertEqual(len(events), 1)
            kind, box_id, *__ = events[0]
            box = self.Box.browse(box_id)
            box.invalidate_recordset()
            variant = BOXES[box.identifier][0]
            self.assertEqual(response.headers["ETag"], f'"{self.digests[variant]}"')
            self.assertEqual(box.handlers_digest, self.digests[variant])
            if status == 304:
                self.assertEqual((kind, body), ("not_modified", b""))
            else:
                self.assertEqual(kind, "delivery")
                self.assertEqual(response.headers["ETag"], f'"{hashlib.sha256(body).hexdigest()}"')
                self.assertEqual(unzip(body), self.expected_files[variant])
        return response, events

    def test_well_formed_requests(self):
        @hypothesis_settings(WELL_FORMED_EXAMPLES)
        @given(WELL_FORMED)
        def check(request):
            key, auto = request["key"], request["auto"].lower() == "true"
            parts = [(request["style"].encode(), key.encode(), None), (b"auto", request["auto"].encode(), None)]
            parts += [(name.encode(), value, None) for name, value in request["extra"]]
            parts += [
                ((request["style"] if name == "key" else name).encode(), value, None)
                for name, value in request["repeats"]
            ]
            if_none_match = request["if_none_match"]
            box = BOXES[key]
            if isinstance(if_none_match, int):
                if_none_match = bundle_etag_headers(self.digests[box[0] if box else "linux"])[if_none_match]
            if request["encoding"] == "multipart":
                body, content_type, query = multipart(parts), f"multipart/form-data; boundary={BOUNDARY.decode()}", b""
            elif request["encoding"] == "urlencoded":
                body, content_type, query = urlencoded(parts), "application/x-www-form-urlencoded", b""
            else:
                body, content_type, query = b"", "text/plain", urlencoded(parts)
            response, __ = self.check_request(partial(self.send, body, content_type, query, if_none_match))

            if box is None or (auto and not box[1]):
                refusal = 200 if request["style"] == "mac" else 401
                self.assertEqual((response.status_code, response.content), (refusal, b""))
                return
            digest = self.digests[box[0]]
            if auto and if_none_match is not None and digest in if_none_match:
                # Not modified only when the box asks on its own: "Load handlers" always loads (SPEC 3.2).
                self.assertEqual(response.status_code, 304)
            else:
                self.assertEqual(response.status_code, 200)
                self.assertEqual(unzip(response.content), self.expected_files[box[0]])

        check()
        self.assertGreaterEqual(next(self.examples) - 1, WELL_FORMED_EXAMPLES)

    def test_anything(self):
        @hypothesis_settings(HOSTILE_EXAMPLES)
        @given(HOSTILE)
        def check(request):
            if request["body"] == "multipart":
                body = multipart(request["parts"])
            elif request["body"] == "urlencoded":
                body = urlencoded(request["parts"])
            else:
                body = request["raw"]
            query = urlencoded(request["query"]) if request["query"] is not None else b""
            self.check_request(partial(self.send, body, request["content_type"], query, request["if_none_match"]))

        check()
        self.assertGreaterEqual(next(self.examples) - 1, HOSTILE_EXAMPLES)
