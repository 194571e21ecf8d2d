# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import logging

import requests

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools.feed import MAX_FEED_BYTES, parse_checksums
from ..tools.versions import is_image

_logger = logging.getLogger(__name__)

FEED_URL_PARAM = "iot_update.image_feed_url"
#: The checksum list the box software itself reads, used when the parameter is empty.
DEFAULT_FEED_URL = "https://nightly.odoo.com/master/iotbox/SHA1SUMS.txt"


class IotImageRelease(models.Model):
    """A published IoT box image, as listed by the image feed.

    The feed (system parameter ``iot_update.image_feed_url``) is the checksum
    list the box software reads on Odoo's nightly server. A daily scheduled
    action records the images it lists and which one is the latest; boxes
    whose image is older than the latest get "image upgrade available".
    """

    _name = "iot.image.release"
    _description = "IoT Image Release"
    _order = "image_version desc"

    #: Seconds to wait for the feed server, to connect and then for each read.
    _feed_timeout = 10

    image_version = fields.Char(required=True, help="Image version, YY.MM.")
    file_name = fields.Char()
    sha1 = fields.Char(string="SHA-1")
    is_latest = fields.Boolean(string="Latest", readonly=True)
    first_seen = fields.Datetime(default=fields.Datetime.now, readonly=True)

    _sql_constraints = [
        ("image_version_unique", "unique(image_version)", "Each image version is listed once."),
    ]

    @api.constrains("image_version")
    def _check_image_version(self):
        for release in self:
            if not is_image(release.image_version):
                raise ValidationError(
                    self.env._("%(image)s is not an image version such as 24.11.", image=release.image_version)
                )

    # ------------------------------------------------------------------
    # Image feed
    # ------------------------------------------------------------------

    @api.model
    def _get_feed_url(self):
        """The feed's URL: the system parameter, or Odoo's own list when it is empty.
        (To stop reading the feed, deactivate its scheduled action.)"""
        return (self.env["ir.config_parameter"].sudo().get_param(FEED_URL_PARAM) or "").strip() or DEFAULT_FEED_URL

    @api.model
    def _cron_refresh_image_releases(self):
        """Read the image feed, record the images it lists, then refresh the boxes.

        Whatever goes wrong with the feed (unreachable, HTTP error, timeout, a
        body that lists no image) keeps what was known, logs one warning and
        returns False: the scheduled action itself never fails.
        """
        url = self._get_feed_url()
        try:
            body = self._fetch_feed(url)
        except requests.RequestException as error:
            _logger.warning(
                "IoT image feed %s could not be read, keeping the %s images known: %s",
                url,
                self.sudo().search_count([]),
                error,
            )
            return False
        feed = parse_checksums(body)
        if not feed:
            _logger.warning(
                "IoT image feed %s lists no image (%s lines skipped), keeping the %s images known",
                url,
                feed.skipped,
                self.sudo().search_count([]),
            )
            return False
        self.sudo()._record_feed(feed)
        return True

    @api.model
    def _fetch_feed(self, url):
        """The body at ``url`` (at most ``MAX_FEED_BYTES``); raises a
        ``requests.RequestException`` on network and HTTP errors."""
        with requests.get(url, timeout=self._feed_timeout, stream=True) as response:
            response.raise_for_status()
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) >= MAX_FEED_BYTES:
                    break
        return bytes(body[:MAX_FEED_BYTES])

    @api.model
    def _record_feed(self, feed):
        """Record the releases of ``feed`` (a ``tools.feed.Feed``) and its latest.

        Images no longer listed are kept. When the feed names no latest that
        matches one of its images (the list is being rebuilt, or its latest is
        not published under a name), the previous latest stays flagged: an
        administrator would rather keep a known answer than lose it.
        """
        known = {release.image_version: release for release in self.search([])}
        to_create = []
        for item in feed.releases:
            release = known.get(item.image)
            if release is None:
                to_create.append({"image_version": item.image, "file_name": item.file_name, "sha1": item.sha1})
            elif (release.file_name, release.sha1) != (item.file_name, item.sha1):
                release.write({"file_name": item.file_name, "sha1": item.sha1})
        created = self.create(to_create)
        if created:
            _logger.info("IoT image feed: new images %s", ", ".join(created.mapped("image_version")))
        if feed.latest:
            latest = self.search([("image_version", "=", feed.latest)])
            (self.search([("is_latest", "=", True)]) - latest).write({"is_latest": False})
            if not latest.is_latest:
                latest.is_latest = True
        else:
            _logger.info("IoT image feed names no latest image that it lists: the previous latest is kept")
        self.env["iot.box"]._refresh_all_update_status()
