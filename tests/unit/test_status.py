# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import pytest

from iot_update_tools.status import STATUSES, Evaluation, evaluate, image_older, minimum_image
from iot_update_tools.versions import parse_version

TABLE = {"16.0": "22.11", "17.0": "24.01", "18.0": "24.11", "saas~18.1": "25.07", "19.0": "25.07"}


@pytest.mark.parametrize(
    "series, expected",
    [
        ("18.0", "24.11"),
        ("saas~18.1", "25.07"),
        ("saas~18.4", "25.07"),  # no row of its own: follows saas~18.1
        ("17.0", "24.01"),
        ("20.0", "25.07"),  # future series: follows 19.0 until a row is added
        ("15.0", ""),  # older than every row
        ("nonsense", ""),
    ],
)
def test_minimum_image(series, expected):
    assert minimum_image(series, TABLE) == expected


def test_minimum_image_ignores_broken_rows():
    assert minimum_image("18.0", {"18.0": "bad", "17.0": "24.01"}) == "24.01"


def flags(raw, server="18.0", latest="", handlers_current=True, offline=False):
    return evaluate(
        parse_version(raw),
        server_series=server,
        min_image=minimum_image(server, TABLE),
        latest_image=latest,
        handlers_current=handlers_current,
        offline=offline,
    )


# raw version, server series, latest image, (needs image, image available, code pending), status
RULES = [
    ("L24.01-18.0#abc1234", "18.0", "", (True, False, False), "image_required"),
    ("L24.11-18.0#abc1234", "18.0", "", (False, False, False), "up_to_date"),
    ("L25.07-18.0#abc1234", "18.0", "", (False, False, False), "up_to_date"),
    ("L24.11-18.0#abc1234", "18.0", "25.07", (False, True, False), "up_to_date"),
    ("L25.07-18.0#abc1234", "18.0", "25.07", (False, False, False), "up_to_date"),
    ("L24.11-18.0#abc1234", "saas~18.4", "", (True, False, True), "image_required"),
    ("L25.07-18.0#abc1234", "saas~18.4", "", (False, False, True), "code_pending"),
    ("L25.07-saas~18.4#abc1234", "saas~18.4", "", (False, False, False), "up_to_date"),
    ("L25.07-saas~18.2#abc1234", "saas~18.4", "", (False, False, True), "code_pending"),
    ("L24.11-17.0#abc1234", "18.0", "", (False, False, True), "code_pending"),
    ("L24.11", "18.0", "", (False, False, False), "up_to_date"),  # short form: series unknown
    ("L22.11", "18.0", "25.07", (True, True, False), "image_required"),
    # Windows reports 23.11 whatever its age: never an image flag.
    ("W23.11-18.0", "18.0", "25.07", (False, False, False), "up_to_date"),
    ("W23.11-18.0-20241105", "saas~18.4", "25.07", (False, False, True), "code_pending"),
    ("W23.11-17.0", "18.0", "", (False, False, True), "code_pending"),
    ("T25.01-18.0#0123abc", "18.0", "25.07", (False, False, False), "up_to_date"),
    ("garbage", "18.0", "25.07", (False, False, False), "up_to_date"),
    (None, "saas~18.4", "25.07", (False, False, False), "up_to_date"),
]


@pytest.mark.parametrize("raw, server, latest, expected, status", RULES)
def test_status_rules(raw, server, latest, expected, status):
    result = flags(raw, server=server, latest=latest)
    assert (result.needs_image_upgrade, result.image_upgrade_available, result.code_update_pending) == expected
    assert result.status == status


def test_status_order_is_worst_first():
    assert flags("L24.01-17.0#abc1234", handlers_current=False, offline=True).status == "offline"
    assert flags("L24.01-17.0#abc1234", handlers_current=False).status == "image_required"
    assert flags("L24.11-17.0#abc1234", handlers_current=False).status == "code_pending"
    assert flags("L24.11-18.0#abc1234", handlers_current=False).status == "handlers_outdated"
    assert STATUSES == ("offline", "image_required", "code_pending", "handlers_outdated", "up_to_date")


def test_evaluation_keys_match_stored_fields():
    assert Evaluation._fields == (
        "needs_image_upgrade",
        "image_upgrade_available",
        "code_update_pending",
        "handlers_outdated",
        "is_offline",
    )


def test_image_older_needs_both_sides():
    assert image_older("24.01", "24.11")
    assert not image_older("", "24.11")
    assert not image_older("24.01", "")
