# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The image feed: the scheduled action against a real HTTP server on 127.0.0.1."""

import contextlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest.mock import patch

import requests

from odoo.exceptions import ValidationError

from odoo.addons.iot_update.models import iot_image_release
from odoo.addons.iot_update.models.iot_image_release import DEFAULT_FEED_URL

from .iot_common import IotCase

RELEASE_LOGGER = "odoo.addons.iot_update.models.iot_image_release"

A, B, C, D = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)
FEED = f"{A}  iotboxv24_11.zip\n{B}  iotboxv25_01.zip\n{B}  iotbox-latest.zip\n"
NEWER_FEED = FEED.replace(f"{B}  iotbox-latest.zip", f"{C}  iotboxv25_07.zip\n{C}  iotbox-latest.zip")


class FeedServer(ThreadingHTTPServer):
    """Serves ``body`` at any path; ``status`` and ``delay`` make it misbehave."""

    daemon_threads = True

    def __init__(self):
        self.body, self.status, self.delay, self.hits = FEED, 200, 0, 0
        super().__init__(("127.0.0.1", 0), FeedHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_port}/master/iotbox/SHA1SUMS.txt"

    def stop(self):
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class FeedHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.hits += 1
        if server.delay:
            time.sleep(server.delay)
        body = server.body.encode() if server.status == 200 else b"<html>Internal Server Error</html>"
        with contextlib.suppress(OSError):  # the client gave up (timeout test)
            self.send_response(server.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args):
        pass


class TestFeedDefaults(IotCase):
    def test_default_feed_and_cron(self):
        self.assertEqual(self.env["iot.image.release"]._get_feed_url(), DEFAULT_FEED_URL)
        self.assertEqual(DEFAULT_FEED_URL, "https://nightly.odoo.com/master/iotbox/SHA1SUMS.txt")
        cron = self.env.ref("iot_update.ir_cron_refresh_image_releases")
        self.assertEqual((cron.interval_number, cron.interval_type), (1, "days"))
        self.assertEqual(cron.user_id, self.env.ref("base.user_root"))
        self.assertEqual(cron.code.strip(), "model._cron_refresh_image_releases()")
        self.assertEqual(cron.model_id.model, "iot.image.release")


class TestImageFeed(IotCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Release = cls.env["iot.image.release"]
        cls.server = FeedServer()
        cls.addClassCleanup(cls.server.stop)

    def setUp(self):
        super().setUp()
        self.server.body, self.server.status, self.server.delay, self.server.hits = FEED, 200, 0, 0
        self.env["ir.config_parameter"].set_param("iot_update.image_feed_url", self.server.url)

    def releases(self):
        return [
            (r.image_version, r.file_name, r.sha1, r.is_latest) for r in self.Release.search([], order="image_version")
        ]

    def refresh(self):
        return self.Release._cron_refresh_image_releases()

    def test_releases_recorded_and_boxes_follow(self):
        self.check_in(identifier="aa:bb:cc:dd:ee:01", version="L24.11-18.0#1a2b3c4")
        self.check_in(identifier="aa:bb:cc:dd:ee:02", version="L25.01-18.0#1a2b3c4")
        self.check_in(identifier="aa:bb:cc:dd:ee:03", version="W23.11-18.0")
        old, current, windows = (
            self.box("aa:bb:cc:dd:ee:01"),
            self.box("aa:bb:cc:dd:ee:02"),
            self.box("aa:bb:cc:dd:ee:03"),
        )
        self.assertFalse((old | current | windows).filtered("image_upgrade_available"))

        self.assertTrue(self.refresh())
        self.assertEqual(
            self.releases(),
            [("24.11", "iotboxv24_11.zip", A, False), ("25.01", "iotboxv25_01.zip", B, True)],
        )
        self.assertEqual(self.Box._get_latest_image(), "25.01")
        self.assertTrue(old.image_upgrade_available)
        self.assertFalse(current.image_upgrade_available)
        self.assertFalse(windows.image_upgrade_available)
        first_seen = self.Release.search([("image_version", "=", "24.11")]).first_seen

        # A newer image is published: recorded, becomes the latest; the others are kept.
        self.server.body = NEWER_FEED
        self.assertTrue(self.refresh())
        self.assertEqual(
            self.releases(),
            [
                ("24.11", "iotboxv24_11.zip", A, False),
                ("25.01", "iotboxv25_01.zip", B, False),
                ("25.07", "iotboxv25_07.zip", C, True),
            ],
        )
        self.assertEqual(self.Release.search([("image_version", "=", "24.11")]).first_seen, first_seen)
        self.assertTrue(current.image_upgrade_available)
        self.assertTrue(old.image_upgrade_available)
        self.assertFalse(windows.image_upgrade_available)
        self.assertEqual(self.server.hits, 2)

    def test_latest_matching_no_image_keeps_the_previous_latest(self):
        self.refresh()
        self.server.body = f"{A}  iotboxv24_11.zip\n{C}  iotboxv25_07.zip\n{D}  iotbox-latest.zip\nrubbish\n"
        self.assertTrue(self.refresh())
        self.assertEqual(
            [(image, latest) for image, __, __, latest in self.releases()],
            [("24.11", False), ("25.01", True), ("25.07", False)],
        )
        self.assertEqual(self.Box._get_latest_image(), "25.01")

    def test_without_a_flagged_latest_the_newest_image_counts(self):
        self.assertEqual(self.Box._get_latest_image(), "")
        self.server.body = f"{A}  iotboxv24_11.zip\n{C}  iotboxv25_07.zip\n{B}  iotboxv25_01.zip\n"
        self.check_in(version="L25.01-18.0#1a2b3c4")
        self.assertTrue(self.refresh())
        self.assertFalse(self.Release.search([("is_latest", "=", True)]))
        self.assertEqual(self.Box._get_latest_image(), "25.07")
        self.assertTrue(self.box().image_upgrade_available)

    def test_changed_checksum_is_updated(self):
        self.refresh()
        self.server.body = FEED.replace(f"{A}  iotboxv24_11.zip", f"{D}  iotboxv24_11.zip")
        self.refresh()
        self.assertEqual(self.Release.search([("image_version", "=", "24.11")]).sha1, D)

    def assert_failure_keeps_data(self, message):
        """Refresh once successfully, break the feed (done by the caller), and check
        that a second refresh keeps everything and logs exactly one warning."""
        self.check_in(version="L24.11-18.0#1a2b3c4")
        box = self.box()
        before = self.releases()
        with self.assertLogs(RELEASE_LOGGER, "WARNING") as logs:
            self.assertFalse(self.refresh())
        self.assertEqual(len(logs.records), 1, logs.output)
        self.assertEqual(logs.records[0].levelname, "WARNING")
        self.assertIn(message, logs.output[0])
        self.assertIn("keeping the 2 images known", logs.output[0])
        self.assertEqual(self.releases(), before)
        self.assertEqual(self.Box._get_latest_image(), "25.01")
        self.assertTrue(box.image_upgrade_available)

    def test_http_error_keeps_data(self):
        self.refresh()
        self.server.status = 500
        self.assert_failure_keeps_data("500 Server Error")

    def test_timeout_keeps_data(self):
        self.refresh()
        self.server.delay = 1.5
        # The server answers after 1.5 s: "timed out" only if the 0.3 s timeout is what the request used.
        with (
            patch.object(type(self.Release), "_feed_timeout", 0.3),
            patch.object(iot_image_release.requests, "get", wraps=requests.get) as get,
        ):
            self.assert_failure_keeps_data("timed out")
        self.assertEqual([call.kwargs.get("timeout") for call in get.call_args_list], [0.3])

    def test_server_down_keeps_data(self):
        self.refresh()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed_port = sock.getsockname()[1]
        self.env["ir.config_parameter"].set_param("iot_update.image_feed_url", f"http://127.0.0.1:{closed_port}/x")
        self.assert_failure_keeps_data("could not be read")

    def test_feed_listing_no_image_keeps_data(self):
        self.refresh()
        for body in ("", "<html>Maintenance</html>", f"{D}  iotbox-latest.zip\n"):
            self.server.body = body
            with self.subTest(body=body):
                self.assert_failure_keeps_data("lists no image")

    def test_invalid_url_keeps_data(self):
        self.refresh()
        self.env["ir.config_parameter"].set_param("iot_update.image_feed_url", "not a url")
        self.assert_failure_keeps_data("could not be read")

    def test_empty_url_means_the_default_feed(self):
        # Emptying the field in the settings deletes the parameter: that must not
        # leave the feed without a URL, nor be undone by a module upgrade.
        Release = self.env["iot.image.release"]
        for value in (" ", False):
            with self.subTest(value=value):
                self.env["ir.config_parameter"].set_param("iot_update.image_feed_url", value)
                self.assertEqual(Release._get_feed_url(), DEFAULT_FEED_URL)

    def test_image_version_checked(self):
        with self.assertRaises(ValidationError):
            self.Release.create({"image_version": "24.13"})
