# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Which boxes a simulated fleet is made of (pure: no network, no clock).

A fleet cycles through :data:`PROFILES` (platform, image, series relative to
the server's) and, with ``style="mix"``, alternates the protocol style every
full cycle: the first ``2 * len(PROFILES)`` boxes cover every profile in both
styles. The seed only picks identities (MAC addresses, serial numbers,
commits, devices), so the same seed always gives the same boxes.
"""

import random
from typing import NamedTuple

#: Image of a box that is current (the newest image of the demo feed).
NEWEST_IMAGE = "25.07"
#: Image equal to the minimum for 18.0 (24.11): fine, but a newer one exists.
MINIMUM_IMAGE = "24.11"
#: Image older than the minimum of every series from 17.0 on.
OLD_IMAGE = "23.08"
#: What a Windows virtual IoT reports, whatever its age.
WINDOWS_IMAGE = "23.11"
STYLES = ("18", "19")


class Profile(NamedTuple):
    key: str
    platform: str  # "linux" or "windows"
    image: str
    same_series: bool  # runs the server's series, or another one


PROFILES = (
    Profile("linux-current", "linux", NEWEST_IMAGE, True),
    Profile("linux-minimum", "linux", MINIMUM_IMAGE, True),
    Profile("linux-old-image", "linux", OLD_IMAGE, True),
    Profile("linux-other-series", "linux", NEWEST_IMAGE, False),
    Profile("windows-current", "windows", WINDOWS_IMAGE, True),
    Profile("windows-other-series", "windows", WINDOWS_IMAGE, False),
)

DEVICES = (
    ("usb_printer", {"name": "Epson TM-T20III", "type": "printer", "manufacturer": "Epson", "connection": "direct"}),
    (
        "serial_scale",
        {"name": "Toledo 8217", "type": "scale", "manufacturer": "Mettler-Toledo", "connection": "serial"},
    ),
    (
        "hid_scanner",
        {"name": "Honeywell Voyager", "type": "scanner", "manufacturer": "Honeywell", "connection": "direct"},
    ),
    ("display", {"name": "Customer display", "type": "display", "manufacturer": "Odoo", "connection": "hdmi"}),
    ("payment", {"name": "Six terminal", "type": "payment", "manufacturer": "Six", "connection": "network"}),
)


class BoxSpec(NamedTuple):
    index: int
    profile: str
    style: str  # "18": MAC address as identifier; "19": serial number, MAC in "mac"
    name: str
    identifier: str
    mac: str
    ip: str
    version: str
    devices: dict

    @property
    def platform(self):
        return "windows" if self.version.startswith("W") else "linux"


def other_series(server_series):
    """A series different from the server's, older when possible."""
    return "17.0" if server_series != "17.0" else "18.0"


def box_version(profile, series, rng):
    """The version string the genuine box sends for ``profile`` on ``series``."""
    if profile.platform == "windows":
        # Windows virtual IoT: no commit, the release may end with a build date.
        return f"W{profile.image}-{series}-{rng.randrange(2024, 2026)}{rng.randrange(1, 13):02d}15"
    return f"L{profile.image}-{series}#{rng.getrandbits(28):07x}"


def plan_fleet(count, seed=0, style="mix", server_series="18.0"):
    """``count`` :class:`BoxSpec` for a server running ``server_series``."""
    if style not in ("mix", *STYLES):
        raise ValueError(f"unknown style {style!r}: use mix, 18 or 19")
    rng = random.Random(seed)  # noqa: S311 - identities of simulated boxes, not secrets
    prefix = rng.getrandbits(16)
    boxes = []
    for index in range(count):
        profile = PROFILES[index % len(PROFILES)]
        box_style = style if style != "mix" else STYLES[(index // len(PROFILES)) % len(STYLES)]
        mac = ":".join(f"{byte:02x}" for byte in (2, prefix >> 8, prefix & 0xFF, seed % 256, index >> 8, index & 0xFF))
        series = server_series if profile.same_series else other_series(server_series)
        chosen = rng.sample(DEVICES, rng.randrange(0, 4))
        devices = {
            f"{key}_{index}": {**values, "subtype": "receipt_printer" if values["type"] == "printer" else ""}
            for key, values in chosen
        }
        boxes.append(
            BoxSpec(
                index=index,
                profile=profile.key,
                style=box_style,
                name=f"sim-{index:02d}-{profile.key}",
                identifier=mac if box_style == "18" else f"SIM{prefix:04X}{seed % 65536:04X}{index:05d}",
                mac=mac,
                ip=f"10.{seed % 256}.{index // 250}.{index % 250 + 2}",
                version=box_version(profile, series, rng),
                devices=devices,
            )
        )
    return boxes


def setup_payload(box, token):
    """The body of ``POST /iot/setup``: what ``Manager.send_alldevices`` builds.

    A 19-style box also sends its MAC address in ``mac``.
    """
    iot_box = {"name": box.name, "identifier": box.identifier, "ip": box.ip, "token": token, "version": box.version}
    if box.style == "19":
        iot_box["mac"] = box.mac
    return {"params": {"iot_box": iot_box, "devices": box.devices}}


def percentile(values, percent):
    """Nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percent // 100))  # ceil without floats
    return ordered[int(rank) - 1]
