# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""What a box needs, from its version and the server's facts.

The rules of the SPEC, section 4, as plain functions: the ``iot.box`` model
stores their result so that the dashboard filters and counts without
recomputing anything.
"""

from typing import NamedTuple

from .versions import image_key, series_key

#: Stored status keys, worst first.
STATUSES = ("offline", "image_required", "code_pending", "handlers_outdated", "up_to_date")


class Evaluation(NamedTuple):
    needs_image_upgrade: bool
    image_upgrade_available: bool
    code_update_pending: bool
    handlers_outdated: bool
    is_offline: bool

    @property
    def status(self):
        if self.is_offline:
            return "offline"
        if self.needs_image_upgrade:
            return "image_required"
        if self.code_update_pending:
            return "code_pending"
        if self.handlers_outdated:
            return "handlers_outdated"
        return "up_to_date"


def minimum_image(server_series, requirements):
    """The minimum image for ``server_series`` from ``{series: image}``.

    The row of the series itself wins; otherwise the row of the closest older
    series applies (``saas~18.4`` follows ``saas~18.1``, a future ``20.0``
    follows ``19.0`` until someone adds its row). ``""`` when no row applies.
    """
    server = series_key(server_series)
    if server is None:
        return ""
    best = None
    for series, image in requirements.items():
        key = series_key(series)
        if key is not None and key <= server and image_key(image) and (best is None or key > best[0]):
            best = (key, image)
    return best[1] if best else ""


def image_older(image, reference):
    """True when ``image`` is known and older than the known ``reference``."""
    have, want = image_key(image), image_key(reference)
    return have is not None and want is not None and have < want


def evaluate(version, *, server_series, min_image, latest_image, handlers_current, offline):
    """Flags of a box whose parsed version is ``version`` (a ``BoxVersion``).

    - ``min_image``: minimum image for the server's series ("" if none);
    - ``latest_image``: newest published image known to the server ("" if none);
    - ``handlers_current``: the box's last bundle is the current one;
    - ``offline``: the box has not called for longer than the offline delay.

    Image flags only apply to Linux boxes (a Windows virtual IoT reports 23.11
    whatever its age). The code flag applies to any box whose series is known
    and differs from the server's; an unreadable version raises no flag.
    """
    linux = version.platform == "linux"
    return Evaluation(
        needs_image_upgrade=linux and image_older(version.image, min_image),
        image_upgrade_available=linux and image_older(version.image, latest_image),
        code_update_pending=bool(
            series_key(version.series) and series_key(server_series) and version.series != server_series
        ),
        handlers_outdated=not handlers_current,
        is_offline=bool(offline),
    )
