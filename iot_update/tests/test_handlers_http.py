# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""POST /iot/get_handlers over real HTTP."""

import hashlib
from unittest.mock import patch

from odoo.tests import warmup

from odoo.addons.iot_update.models.iot_handlers_bundle import IotHandlersBundle, bundle_cache

from .handlers_common import (
    HANDLERS,
    LINUX_HANDLERS,
    LINUX_VERSION,
    MAC,
    WINDOWS_HANDLERS,
    WINDOWS_VERSION,
    HandlersFolderMixin,
    unzip,
)
from .iot_common import CONTROLLER_LOGGER, IotHttpCase, box_payload

BUNDLE_LOGGER = "odoo.addons.iot_update.models.iot_handlers_bundle"


class Counter:
    """Wraps a callable and counts its calls."""

    def __init__(self, func):
        self.func = func
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.func(*args, **kwargs)


class TestGetHandlersHttp(HandlersFolderMixin, IotHttpCase):
    def setUp(self):
        super().setUp()
        self.setup_handlers_folder()
        self.check_in(identifier=MAC, version=LINUX_VERSION)

    def post_handlers(self, headers=None, **fields):
        """POST the form as the genuine box does (multipart, no session)."""
        return self.opener.post(
            self.base_url() + "/iot/get_handlers",
            files={name: (None, value) for name, value in fields.items()},
            headers=headers,
            timeout=30,
        )

    def events(self, kind, box=None):
        domain = [("kind", "=", kind)]
        if box is not None:
            domain.append(("box_id", "=", box.id))
        return self.env["iot.box.event"].search(domain)

    # ------------------------------------------------------------------
    # 18.0 boxes (mac)
    # ------------------------------------------------------------------

    def test_box_18_gets_its_handlers(self):
        response = self.post_handlers(mac=MAC, auto="True")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "application/zip")
        digest = hashlib.sha256(response.content).hexdigest()
        self.assertEqual(response.headers["ETag"], f'"{digest}"')
        self.assertEqual(unzip(response.content), LINUX_HANDLERS)
        self.assertNotIn("Set-Cookie", response.headers)
        box = self.box(MAC)
        self.assertEqual(box.handlers_digest, digest)
        self.assertTrue(box.handlers_date)
        self.assertFalse(box.handlers_outdated)
        event = self.events("delivery", box)
        self.assertEqual(len(event), 1)
        self.assertEqual(
            (event.bundle_digest, event.version, event.identifier, event.detail, event.remote_addr),
            (digest, LINUX_VERSION, MAC, "automatic", "127.0.0.1"),
        )

    def test_auto_update_off(self):
        box = self.box(MAC)
        box.drivers_auto_update = False
        with self.assertNoLogs(BUNDLE_LOGGER, "WARNING"):
            refused = self.post_handlers(mac=MAC, auto="True")
        self.assertEqual((refused.status_code, refused.content), (200, b""))
        self.assertNotIn("ETag", refused.headers)
        box.invalidate_recordset()
        self.assertFalse(box.handlers_digest)
        refusal = self.events("refusal", box)
        self.assertEqual(refusal.detail, "automatic drivers update is off")
        # The homepage's "Load handlers" button always gets the bundle.
        on_demand = self.post_handlers(mac=MAC, auto="False")
        self.assertEqual(on_demand.status_code, 200)
        self.assertEqual(unzip(on_demand.content), LINUX_HANDLERS)
        box.invalidate_recordset()
        self.assertEqual(box.handlers_digest, hashlib.sha256(on_demand.content).hexdigest())
        self.assertEqual(self.events("delivery", box).detail, "on demand")

    def test_unknown_mac_gets_empty_200(self):
        events_before = self.env["iot.box.event"].search_count([])
        with self.assertLogs(BUNDLE_LOGGER, "WARNING") as logs:
            response = self.post_handlers(mac="aa:bb:cc:dd:ee:99", auto="True")
            again = self.post_handlers(mac="aa:bb:cc:dd:ee:99", auto="False")
        self.assertIn("unknown box", logs.output[0])
        for answer in (response, again):
            self.assertEqual((answer.status_code, answer.content), (200, b""))
        refusal = self.events("refusal").filtered(lambda event: event.identifier == "aa:bb:cc:dd:ee:99")
        # Recorded once: a flood of unknown boxes does not fill the history.
        self.assertEqual(len(refusal), 1)
        self.assertFalse(refusal.box_id)
        self.assertEqual(refusal.detail, "unknown box")
        self.assertEqual(self.env["iot.box.event"].search_count([]), events_before + 1)

    # ------------------------------------------------------------------
    # 19-style boxes (identifier, ETag)
    # ------------------------------------------------------------------

    def test_identifier_style(self):
        with self.assertLogs(BUNDLE_LOGGER, "WARNING"):
            unknown = self.post_handlers(identifier="SN-UNKNOWN", auto="True")
        self.assertEqual((unknown.status_code, unknown.content), (401, b""))
        self.check_in(identifier="SN-0001", mac="aa:bb:cc:dd:ee:02", version=WINDOWS_VERSION)
        known = self.post_handlers(identifier="SN-0001", auto="True")
        self.assertEqual(known.status_code, 200)
        self.assertEqual(unzip(known.content), WINDOWS_HANDLERS)
        self.box("SN-0001").drivers_auto_update = False
        refused = self.post_handlers(identifier="SN-0001", auto="True")
        self.assertEqual((refused.status_code, refused.content), (401, b""))
        self.assertEqual(self.post_handlers(identifier="SN-0001", auto="False").status_code, 200)

    def test_if_none_match(self):
        first = self.post_handlers(mac=MAC, auto="True")
        etag = first.headers["ETag"]
        bare = etag.strip('"')
        box = self.box(MAC)
        for header in (etag, bare, f"W/{etag}"):
            with self.subTest(header=header):
                response = self.post_handlers(headers={"If-None-Match": header}, identifier=MAC, auto="True")
                self.assertEqual(response.status_code, 304)
                self.assertEqual(response.content, b"")
                self.assertEqual(response.headers["ETag"], etag)
        self.assertEqual(len(self.events("not_modified", box)), 3)
        self.assertEqual(self.events("not_modified", box)[0].bundle_digest, bare)
        stale = self.post_handlers(headers={"If-None-Match": '"0000"'}, identifier=MAC, auto="True")
        self.assertEqual((stale.status_code, stale.content), (200, first.content))
        self.assertEqual(len(self.events("delivery", box)), 2)

    def test_not_modified_records_what_the_box_holds(self):
        """A box that proves it holds the current bundle (e.g. after a database
        restore) is recorded as holding it."""
        etag = self.post_handlers(mac=MAC, auto="True").headers["ETag"]
        box = self.box(MAC)
        box.write({"handlers_digest": False, "handlers_date": False})
        self.assertTrue(box.handlers_outdated)
        response = self.post_handlers(headers={"If-None-Match": etag}, identifier=MAC, auto="True")
        self.assertEqual(response.status_code, 304)
        box.invalidate_recordset()
        self.assertEqual(box.handlers_digest, etag.strip('"'))
        self.assertFalse(box.handlers_outdated)

    # ------------------------------------------------------------------
    # Content
    # ------------------------------------------------------------------

    def test_platform_filtering(self):
        cases = [
            ("aa:bb:cc:dd:ee:11", LINUX_VERSION, LINUX_HANDLERS),
            ("aa:bb:cc:dd:ee:12", "L24.11", LINUX_HANDLERS),
            ("aa:bb:cc:dd:ee:13", WINDOWS_VERSION, WINDOWS_HANDLERS),
            ("aa:bb:cc:dd:ee:14", "T25.01-19.0#0123abc", HANDLERS),
            ("aa:bb:cc:dd:ee:15", "garbage", HANDLERS),
            ("aa:bb:cc:dd:ee:16", "", HANDLERS),
        ]
        for mac, version, expected in cases:
            with self.subTest(version=version):
                self.check_in(identifier=mac, version=version)
                response = self.post_handlers(mac=mac, auto="True")
                self.assertEqual(unzip(response.content), expected)

    def test_unsafe_files_never_sent(self):
        names = set(unzip(self.post_handlers(mac=MAC, auto="False").content))
        self.assertEqual(names, set(LINUX_HANDLERS))

    def test_same_content_same_bytes(self):
        first = self.post_handlers(mac=MAC, auto="True").content
        bundle_cache.clear()
        # Rewritten with the same content: new mtimes, same bytes served.
        self.write_handlers(HANDLERS)
        second = self.post_handlers(mac=MAC, auto="True").content
        self.assertEqual(first, second)

    def test_changed_handler_changes_etag_and_flips_boxes(self):
        self.check_in(identifier="aa:bb:cc:dd:ee:02", version=LINUX_VERSION)
        self.check_in(identifier="aa:bb:cc:dd:ee:03", version=WINDOWS_VERSION)
        linux_etag = self.post_handlers(mac=MAC, auto="True").headers["ETag"]
        self.post_handlers(mac="aa:bb:cc:dd:ee:02", auto="True")
        windows_etag = self.post_handlers(mac="aa:bb:cc:dd:ee:03", auto="True").headers["ETag"]
        boxes = self.box(MAC) | self.box("aa:bb:cc:dd:ee:02") | self.box("aa:bb:cc:dd:ee:03")
        self.assertEqual(boxes.mapped("handlers_outdated"), [False, False, False])

        self.write_handlers({"drivers/PrinterDriver_L.py": b"# linux printer driver, fixed\n"})
        cron = self.env.ref("iot_update.ir_cron_sync_handlers_digests")
        triggers = self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)])
        with patch.object(bundle_cache, "recheck_seconds", 0):
            response = self.post_handlers(mac=MAC, auto="True")
            # The change is recorded once per process: a second request does not trigger again.
            self.post_handlers(mac=MAC, auto="False")
        self.assertNotEqual(response.headers["ETag"], linux_etag)
        self.assertEqual(unzip(response.content)["drivers/PrinterDriver_L.py"], b"# linux printer driver, fixed\n")
        boxes.invalidate_recordset()
        first, second, windows = boxes
        # The box that asked holds the new bundle, and its status says so,
        # although the recorded digest is still the old one.
        self.assertEqual(first.handlers_digest, response.headers["ETag"].strip('"'))
        self.assertEqual((first.handlers_outdated, first.update_status), (False, "up_to_date"))
        # The request left the rest of the fleet to the cron, triggered once.
        self.assertFalse(second.handlers_outdated)
        new_triggers = self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)]) - triggers
        self.assertEqual(len(new_triggers), 1)
        self.bundle_service()._cron_sync_digests()
        boxes.invalidate_recordset()
        self.assertFalse(first.handlers_outdated)
        self.assertTrue(second.handlers_outdated, "the other Linux box holds the old bundle")
        self.assertEqual(second.update_status, "handlers_outdated")
        self.assertFalse(windows.handlers_outdated, "a Linux-only change leaves the Windows bundle as it was")
        same = self.post_handlers(mac="aa:bb:cc:dd:ee:03", auto="True")
        self.assertEqual(same.headers["ETag"], windows_etag)

    def test_standard_drivers_are_included(self):
        """Without the test folder, the bundle holds hw_drivers' handlers, read
        from its module path although it is not installed."""
        bundle_cache.clear()
        with patch.object(IotHandlersBundle, "_handler_roots", self.real_handler_roots):
            response = self.post_handlers(mac=MAC, auto="False")
        files = unzip(response.content)
        self.assertIn("drivers/PrinterDriver_L.py", files)
        self.assertIn("interfaces/USBInterface_L.py", files)
        self.assertNotIn("drivers/PrinterDriver_W.py", files)

    # ------------------------------------------------------------------
    # Cost of a request
    # ------------------------------------------------------------------

    def test_cached_request_walks_nothing(self):
        self.post_handlers(mac=MAC, auto="True")
        scanner, builder = Counter(bundle_cache._scanner), Counter(bundle_cache._builder)
        with (
            patch.object(bundle_cache, "_scanner", scanner),
            patch.object(bundle_cache, "_builder", builder),
            patch("os.scandir") as scandir,
        ):
            for __ in range(3):
                self.assertEqual(self.post_handlers(mac=MAC, auto="True").status_code, 200)
            self.assertEqual((scanner.calls, builder.calls, scandir.call_count), (0, 0, 0))
        # Past the re-check delay: one cheap scan, nothing rebuilt.
        with (
            patch.object(bundle_cache, "_scanner", scanner),
            patch.object(bundle_cache, "_builder", builder),
            patch.object(bundle_cache, "recheck_seconds", 0),
        ):
            self.assertEqual(self.post_handlers(mac=MAC, auto="True").status_code, 200)
        self.assertEqual((scanner.calls, builder.calls), (1, 0))

    def synchronous_commit(self):
        self.env.cr.execute("SHOW synchronous_commit")
        return self.env.cr.fetchone()[0]

    def test_handlers_answers_do_not_wait_for_the_disk(self):
        # Requests run in the test's transaction: what they SET LOCAL stays visible here.
        self.env.cr.execute("SET LOCAL synchronous_commit TO on")
        box = self.box(MAC)
        # Rejected unread: nothing written, nothing changed.
        with self.assertLogs(CONTROLLER_LOGGER, "WARNING"):
            self.assertEqual(self.post_handlers(mac="x" * 65, auto="True").status_code, 400)
        self.assertEqual(self.synchronous_commit(), "on")
        # A check-in admits and updates boxes: it waits for the disk.
        self.post_setup(box_payload(self.token, identifier=MAC))
        self.assertEqual(self.synchronous_commit(), "on")
        self.assertEqual(self.post_handlers(mac=MAC, auto="True").status_code, 200)
        self.assertEqual(self.synchronous_commit(), "off")
        self.assertTrue(box.handlers_digest)

    @warmup
    def test_query_count_over_http(self):
        self.post_handlers(mac=MAC, auto="True")
        # Odoo's public user, SET LOCAL, find the box, record the event, date the delivery.
        with self.assertQueryCount(default=5):
            response = self.post_handlers(mac=MAC, auto="True")
        self.assertEqual(response.status_code, 200)
        with self.assertQueryCount(default=4):
            response = self.post_handlers(headers={"If-None-Match": response.headers["ETag"]}, mac=MAC, auto="True")
        self.assertEqual(response.status_code, 304)

    # ------------------------------------------------------------------
    # Hostile requests
    # ------------------------------------------------------------------

    def test_bad_requests(self):
        box = self.box(MAC)
        events_before = self.env["iot.box.event"].search_count([])
        cases = [
            ({"auto": "True"}, b"Invalid request: 'mac' or 'identifier' is missing\n"),
            ({"mac": MAC}, b""),
            ({"mac": MAC, "auto": "maybe"}, b""),
            ({"mac": "x" * 100, "auto": "True"}, b""),
            (
                {"identifier": "x" * 100, "auto": "True"},
                b"Invalid request: 'identifier' is longer than 64 characters\n",
            ),
        ]
        for fields, body in cases:
            with self.subTest(fields=fields), self.assertLogs(CONTROLLER_LOGGER, "WARNING"):
                response = self.post_handlers(**fields)
                self.assertEqual((response.status_code, response.content), (400, body))
        with self.assertLogs(CONTROLLER_LOGGER, "WARNING") as logs:
            uploaded = self.opener.post(
                self.base_url() + "/iot/get_handlers",
                files={"mac": ("mac.txt", MAC.encode()), "auto": (None, "True")},
                timeout=30,
            )
        self.assertEqual((uploaded.status_code, uploaded.content), (400, b""))
        self.assertIn("'mac' must be a text field", logs.output[0])
        huge = self.opener.post(
            self.base_url() + "/iot/get_handlers", data={"mac": MAC, "auto": "True", "pad": "x" * 100_000}, timeout=30
        )
        self.assertEqual(huge.status_code, 413)
        self.assertNotIn(b"Traceback", huge.content)
        self.assertEqual(self.url_open("/iot/get_handlers").status_code, 405)
        box.invalidate_recordset()
        self.assertFalse(box.handlers_digest)
        self.assertEqual(self.env["iot.box.event"].search_count([]), events_before)
