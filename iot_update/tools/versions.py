# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Reading the version strings IoT boxes send, and ordering versions.

A Linux box sends ``L<image>-<odoo release>#<short commit>`` (``L24.11-18.0#1a2b3c4``),
sometimes only ``L<image>``; a Windows virtual IoT sends ``W23.11-<odoo release>``
whose release may end with a build date (``W23.11-18.0-20241105``); later
software sends ``T...`` from test machines. Parsing never fails: what cannot be
read is kept raw and reported as ``unknown``.
"""

import re
from typing import NamedTuple

PLATFORMS = {"L": "linux", "W": "windows", "T": "test"}

#: Longest version string that is parsed at all; longer ones are garbage.
MAX_VERSION_LENGTH = 128

_VERSION_RE = re.compile(
    r"""
    ^(?P<platform>[LWT])
    (?P<image>\d{2}\.\d{2})
    (?:-(?P<release>
        (?P<series>(?:saas~)?\d{1,3}\.\d{1,2})   # 18.0, saas~18.4
        [0-9A-Za-z.+~]*?                         # alpha/beta/+e suffixes
        (?:-(?P<build>\d{8}))?                   # Windows build date
    ))?
    (?:\#(?P<commit>[0-9a-fA-F]{4,40}))?
    $""",
    re.VERBOSE,
)
_SERIES_RE = re.compile(r"^(?P<saas>saas~)?(?P<major>\d{1,3})\.(?P<minor>\d{1,2})$")
_IMAGE_RE = re.compile(r"^(?P<year>\d{2})\.(?P<month>\d{2})$")


class BoxVersion(NamedTuple):
    """What a box's version string says. Empty strings stand for "not said"."""

    raw: str
    platform: str  # linux, windows, test or unknown
    image: str  # "24.11" or ""
    series: str  # "18.0", "saas~18.4" or ""
    commit: str  # short commit hash or ""
    build: str  # Windows build date "20241105" or ""

    @property
    def known(self):
        return self.platform != "unknown"


def parse_version(raw):
    """Return the :class:`BoxVersion` of ``raw``; never raises.

    ``raw`` may be anything a box (or an attacker) sends: ``None``, a number,
    an empty string, garbage or a very long string.
    """
    text = raw.strip() if isinstance(raw, str) else ""
    match = _VERSION_RE.match(text) if len(text) <= MAX_VERSION_LENGTH else None
    if not match or not image_key(match["image"]):
        return BoxVersion(text[:MAX_VERSION_LENGTH], "unknown", "", "", "", "")
    return BoxVersion(
        raw=text,
        platform=PLATFORMS[match["platform"]],
        image=match["image"],
        series=match["series"] or "",
        commit=(match["commit"] or "").lower(),
        build=match["build"] or "",
    )


def image_key(image):
    """Sort key of an image version ``YY.MM``; ``None`` when it is not one."""
    match = _IMAGE_RE.match(image or "")
    if not match:
        return None
    month = int(match["month"])
    if not 1 <= month <= 12:
        return None
    return (int(match["year"]), month)


def series_key(series):
    """Sort key of an Odoo series: ``18.0`` < ``saas~18.1`` < ``saas~18.4`` < ``19.0``.

    ``None`` when ``series`` is not a series.
    """
    match = _SERIES_RE.match(series or "")
    if not match:
        return None
    return (int(match["major"]), int(match["minor"]))


def is_image(image):
    return image_key(image) is not None


def is_series(series):
    return series_key(series) is not None
