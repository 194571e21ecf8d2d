# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Checking the body of ``POST /iot/setup`` before anything touches the database.

The genuine 18.0 box sends ``{"params": {"iot_box": {...}, "devices": {...}}}``;
a 19 box adds ``mac`` to ``iot_box`` and sends a serial number as identifier.
Everything else (wrong types, missing identifier, oversized strings, too many
devices) is refused with a :class:`PayloadError` that says what is wrong.
"""

from typing import NamedTuple

from .text import clean_text

MAX_BODY_BYTES = 1024 * 1024
MAX_DEVICES = 500
LIMITS = {
    "identifier": 64,
    "mac": 64,
    "name": 255,
    "ip": 255,
    "token": 128,
    "version": 128,
}
DEVICE_FIELDS = ("name", "type", "manufacturer", "connection", "subtype")
DEVICE_LIMIT = 255


class PayloadError(ValueError):
    """The body is not a check-in the server can use; ``str()`` says why."""


class SetupRequest(NamedTuple):
    identifier: str
    mac: str
    name: str
    ip: str
    token: str
    version: str
    devices: dict  # {identifier: {name, type, manufacturer, connection, subtype}}


def _text(value, what, limit):
    return clean_text(value, what, limit, PayloadError)


def read_setup_payload(data):
    """Return the :class:`SetupRequest` in the decoded JSON body ``data``."""
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object")
    params = data.get("params")
    if not isinstance(params, dict):
        raise PayloadError("'params' must be an object")
    box = params.get("iot_box")
    if not isinstance(box, dict):
        raise PayloadError("'params.iot_box' must be an object")
    values = {key: _text(box.get(key), f"iot_box.{key}", limit) for key, limit in LIMITS.items()}
    if not values["identifier"]:
        raise PayloadError("iot_box.identifier is missing")

    devices = params.get("devices")
    if devices is None or devices == []:
        devices = {}
    if not isinstance(devices, dict):
        raise PayloadError("'params.devices' must be an object")
    if len(devices) > MAX_DEVICES:
        raise PayloadError(f"more than {MAX_DEVICES} devices")
    clean_devices = {}
    for key, device in devices.items():
        identifier = _text(key, "device identifier", DEVICE_LIMIT)
        if not identifier:
            raise PayloadError("a device has an empty identifier")
        if not isinstance(device, dict):
            raise PayloadError(f"device {identifier[:40]!r} must be an object")
        clean_devices[identifier] = {
            field: _text(device.get(field), f"device {field}", DEVICE_LIMIT) for field in DEVICE_FIELDS
        }
    return SetupRequest(devices=clean_devices, **values)
