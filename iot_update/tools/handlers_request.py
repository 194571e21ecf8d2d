# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Reading a ``POST /iot/get_handlers`` request before anything touches the database.

The genuine 18.0 box posts the form fields ``mac`` and ``auto`` (``str()`` of a
Python boolean); a 19 box posts ``identifier`` instead of ``mac`` and sends back
the ``ETag`` it holds in ``If-None-Match``, without its quotes.
"""

from typing import NamedTuple

from .text import clean_text

FIELD_LIMIT = 64
#: Longest ``If-None-Match`` header looked at; a longer one matches nothing.
ETAG_HEADER_LIMIT = 1024
#: Largest request body accepted (the genuine box sends a few hundred bytes).
MAX_BODY_BYTES = 16 * 1024

_BOOLEANS = {"true": True, "false": False}


class HandlersRequestError(ValueError):
    """The request is not a handlers request; ``str()`` says why."""


class HandlersRequest(NamedTuple):
    identifier: str  # what identifies the box: its identifier, or its MAC for an 18.0 box
    mac: str  # MAC address when sent
    auto: bool  # True: automatic download at start-up; False: "Load handlers" button
    mac_style: bool  # 18.0-style request: a refusal must be an empty 200

    @property
    def box_key(self):
        return self.identifier or self.mac


def _field(params, name):
    return clean_text(params.get(name), f"'{name}'", FIELD_LIMIT, HandlersRequestError, kind="a text field")


def read_handlers_request(params):
    """Return the :class:`HandlersRequest` in the form fields ``params`` (a dict)."""
    identifier = _field(params, "identifier")
    mac = _field(params, "mac")
    auto = _field(params, "auto")
    if not identifier and not mac:
        raise HandlersRequestError("'mac' or 'identifier' is missing")
    if auto.lower() not in _BOOLEANS:
        raise HandlersRequestError("'auto' must be True or False")
    return HandlersRequest(identifier, mac, _BOOLEANS[auto.lower()], mac_style=not identifier)


def etag_matches(header, digest):
    """True when the ``If-None-Match`` header ``header`` names ``digest``.

    Accepts the quoted form (``"abc"``), the bare form the genuine 19 box sends
    (``abc``), weak tags (``W/"abc"``) and lists. Not ``*``: "not modified" is
    recorded as the box holding the current bundle, so only a box that names
    the bundle may claim it.
    """
    if not header or not digest or len(header) > ETAG_HEADER_LIMIT:
        return False
    for raw in header.split(","):
        tag = raw.strip()
        if tag[:2] in ("W/", "w/"):
            tag = tag[2:]
        if tag.strip('"') == digest:
            return True
    return False
