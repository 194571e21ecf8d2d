# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Reading the checksum list of published IoT box images.

Odoo's nightly server lists its images in a ``sha1sum`` output::

    0123...cdef  iotboxv24_11.zip
    4567...89ab  iotboxv25_07.zip
    4567...89ab  iotbox-latest.zip

``iotboxvYY_MM.zip`` names image ``YY.MM``; ``iotbox-latest.zip`` is a copy of
the newest one, recognised by its SHA-1 (this is how the box software itself
finds the newest image). The list is read leniently: other file names,
malformed lines and repeated names are skipped, a ``latest`` whose SHA-1
matches no named image gives no latest, and nothing here ever raises.
"""

import re
from typing import NamedTuple

from .versions import image_key

LATEST_FILE = "iotbox-latest.zip"
_LINE_RE = re.compile(r"^(?P<sha1>[0-9a-fA-F]{40}) [ *](?P<name>\S+)$")
_IMAGE_FILE_RE = re.compile(r"^iotboxv(?P<year>\d{2})_(?P<month>\d{2})\.zip$")
#: Longest list read: the real one is a few dozen lines.
MAX_FEED_BYTES = 1024 * 1024


class ImageRelease(NamedTuple):
    image: str  # YY.MM
    file_name: str
    sha1: str  # lowercase hex


class Feed(NamedTuple):
    releases: tuple  # ImageRelease, oldest first, one per image
    latest: str  # image version marked latest, or "" when the list names none that matches
    skipped: int  # lines that were not read (malformed, unknown name, repeated)

    def __bool__(self):
        return bool(self.releases)


def image_of_file(name):
    """``"24.11"`` for ``iotboxv24_11.zip``; ``""`` for any other name."""
    match = _IMAGE_FILE_RE.match(name or "")
    if not match:
        return ""
    image = f"{match['year']}.{match['month']}"
    return image if image_key(image) else ""


def parse_checksums(body):
    """The :class:`Feed` in ``body`` (``bytes`` or ``str``), read leniently.

    A name listed twice keeps its first line. When several images share the
    SHA-1 of ``iotbox-latest.zip`` the newest of them is the latest.
    """
    if isinstance(body, bytes):
        body = body[:MAX_FEED_BYTES].decode("utf-8", errors="replace")
    elif not isinstance(body, str):
        return Feed((), "", 0)
    releases = {}
    latest_sha1 = None
    skipped = 0
    for raw_line in body.lstrip("\ufeff").splitlines():
        line = raw_line.strip()
        if not line:
            continue
        match = _LINE_RE.match(line)
        if not match:
            skipped += 1
            continue
        sha1, name = match["sha1"].lower(), match["name"]
        if name == LATEST_FILE:
            if latest_sha1 is None:
                latest_sha1 = sha1
            else:
                skipped += 1
            continue
        image = image_of_file(name)
        if not image or image in releases:
            skipped += 1
            continue
        releases[image] = ImageRelease(image, name, sha1)
    ordered = tuple(sorted(releases.values(), key=lambda release: image_key(release.image)))
    matching = [release.image for release in ordered if release.sha1 == latest_sha1]
    return Feed(ordered, matching[-1] if matching else "", skipped)
