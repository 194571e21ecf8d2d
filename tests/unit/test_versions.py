# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import pytest

from iot_update_tools.versions import image_key, parse_version, series_key

CASES = [
    # raw, platform, image, series, commit, build
    ("L24.11-18.0#1a2b3c4", "linux", "24.11", "18.0", "1a2b3c4", ""),
    ("L24.11", "linux", "24.11", "", "", ""),
    ("L25.07-saas~18.4#abc1234", "linux", "25.07", "saas~18.4", "abc1234", ""),
    ("W23.11-18.0", "windows", "23.11", "18.0", "", ""),
    ("W23.11-18.0-20241105", "windows", "23.11", "18.0", "", "20241105"),
    ("T25.01-19.0#0123abc", "test", "25.01", "19.0", "0123abc", ""),
    ("L24.11-18.0+e#1A2B3C4", "linux", "24.11", "18.0", "1a2b3c4", ""),
    ("  L24.11-18.0#1a2b3c4\n", "linux", "24.11", "18.0", "1a2b3c4", ""),
    ("", "unknown", "", "", "", ""),
    (None, "unknown", "", "", "", ""),
    (1811, "unknown", "", "", "", ""),
    ("garbage", "unknown", "", "", "", ""),
    ("L24.13-18.0", "unknown", "", "", "", ""),  # month 13 is no image
    ("X24.11-18.0", "unknown", "", "", "", ""),
    ("L24.11-18.0#zzz", "unknown", "", "", "", ""),
    ("L24.11-" + "1" * 5000, "unknown", "", "", "", ""),
]


@pytest.mark.parametrize("raw, platform, image, series, commit, build", CASES)
def test_parse_version(raw, platform, image, series, commit, build):
    parsed = parse_version(raw)
    assert (parsed.platform, parsed.image, parsed.series, parsed.commit, parsed.build) == (
        platform,
        image,
        series,
        commit,
        build,
    )
    assert parsed.known == (platform != "unknown")


def test_unreadable_version_is_kept_raw_and_bounded():
    assert parse_version("garbage").raw == "garbage"
    assert len(parse_version("x" * 100_000).raw) == 128


@pytest.mark.parametrize("value", [object(), b"L24.11", ["L24.11"], {"v": 1}, float("nan"), "\x00L24.11"])
def test_parse_version_never_raises(value):
    assert parse_version(value).platform == "unknown"


def test_series_order():
    ordered = ["16.0", "17.0", "18.0", "saas~18.1", "saas~18.4", "19.0"]
    assert sorted(ordered, key=series_key) == ordered
    assert series_key("18") is None
    assert series_key("saas-18.2") is None


def test_image_order():
    assert image_key("24.01") < image_key("24.11") < image_key("25.07")
    assert image_key("24.1") is None
    assert image_key("24.00") is None
