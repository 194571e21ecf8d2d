# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The simulated fleet's mix (iotbox_sim.fleet: pure functions)."""

import json

import pytest

from iotbox_sim.cli import parse_args
from iotbox_sim.fleet import PROFILES, other_series, percentile, plan_fleet, setup_payload

from iot_update_tools.status import evaluate, minimum_image
from iot_update_tools.versions import parse_version

TABLE = {"16.0": "22.11", "17.0": "24.01", "18.0": "24.11", "saas~18.1": "25.07", "19.0": "25.07"}


def test_mix_covers_every_profile_in_both_styles():
    fleet = plan_fleet(2 * len(PROFILES), seed=3)
    assert {(box.profile, box.style) for box in fleet} == {
        (profile.key, style) for profile in PROFILES for style in ("18", "19")
    }


@pytest.mark.parametrize("style", ["18", "19"])
def test_single_style(style):
    assert {box.style for box in plan_fleet(20, style=style)} == {style}


def test_unknown_style_refused():
    with pytest.raises(ValueError):
        plan_fleet(3, style="17")


def test_same_seed_same_boxes_other_seed_other_identities():
    assert plan_fleet(20, seed=7) == plan_fleet(20, seed=7)
    first, second = plan_fleet(20, seed=7), plan_fleet(20, seed=8)
    assert not {box.identifier for box in first} & {box.identifier for box in second}
    assert [box.profile for box in first] == [box.profile for box in second]


def test_identities_unique_and_well_formed():
    fleet = plan_fleet(300, seed=1)
    assert len({box.identifier for box in fleet}) == 300
    assert len({box.mac for box in fleet}) == 300
    assert len({box.name for box in fleet}) == 300
    for box in fleet:
        assert len(box.mac.split(":")) == 6
        if box.style == "18":
            assert box.identifier == box.mac
        else:
            assert box.identifier.startswith("SIM") and ":" not in box.identifier
        assert box.profile in box.name


@pytest.mark.parametrize("server_series", ["18.0", "17.0", "saas~18.4"])
def test_versions_read_back_as_their_profile(server_series):
    min_image = minimum_image(server_series, TABLE)
    for box in plan_fleet(12, seed=5, server_series=server_series):
        parsed = parse_version(box.version)
        profile = next(profile for profile in PROFILES if profile.key == box.profile)
        assert parsed.platform == profile.platform == box.platform
        assert parsed.image == profile.image
        expected_series = server_series if profile.same_series else other_series(server_series)
        assert parsed.series == expected_series
        if profile.platform == "linux":
            assert len(parsed.commit) == 7
        flags = evaluate(
            parsed,
            server_series=server_series,
            min_image=min_image,
            latest_image="25.07",
            handlers_current=True,
            offline=False,
        )
        assert flags.code_update_pending == (not profile.same_series)


def test_18_0_fleet_has_every_image_status():
    """Against an 18.0 server and the demo feed (latest 25.07), the profiles give
    every status an image or code can give."""
    statuses = {}
    for box in plan_fleet(6, server_series="18.0"):
        flags = evaluate(
            parse_version(box.version),
            server_series="18.0",
            min_image="24.11",
            latest_image="25.07",
            handlers_current=True,
            offline=False,
        )
        statuses[box.profile] = (flags.status, flags.image_upgrade_available)
    assert statuses == {
        "linux-current": ("up_to_date", False),
        "linux-minimum": ("up_to_date", True),
        "linux-old-image": ("image_required", True),
        "linux-other-series": ("code_pending", False),
        "windows-current": ("up_to_date", False),
        "windows-other-series": ("code_pending", False),
    }


def test_other_series():
    assert other_series("18.0") == "17.0"
    assert other_series("17.0") == "18.0"


def test_setup_payload_is_the_genuine_body():
    box18, box19 = plan_fleet(2 * len(PROFILES), seed=2)[0], plan_fleet(2 * len(PROFILES), seed=2)[len(PROFILES)]
    payload = setup_payload(box18, "tok")
    assert list(payload) == ["params"]
    assert list(payload["params"]) == ["iot_box", "devices"]
    assert list(payload["params"]["iot_box"]) == ["name", "identifier", "ip", "token", "version"]
    assert payload["params"]["iot_box"]["token"] == "tok"
    assert "mac" not in payload["params"]["iot_box"]
    assert setup_payload(box19, "tok")["params"]["iot_box"]["mac"] == box19.mac
    for device in payload["params"]["devices"].values():
        assert list(device) == ["name", "type", "manufacturer", "connection", "subtype"]
    json.dumps(payload)


def test_devices_vary():
    counts = {len(box.devices) for box in plan_fleet(30, seed=4)}
    assert len(counts) > 1


@pytest.mark.parametrize(
    "values, percent, expected",
    [
        ([], 50, 0),
        ([5], 99, 5),
        ([1, 2, 3, 4], 50, 2),
        (list(range(1, 101)), 95, 95),
        (list(range(1, 101)), 99, 99),
        ([3, 1, 2], 100, 3),
        (list(range(1, 11)), 1, 1),
    ],
)
def test_percentile(values, percent, expected):
    assert percentile(values, percent) == expected


def test_cli_options():
    args = parse_args(["--token", "t", "--boxes", "5", "--style", "19", "--repeat", "3", "--state-file", "s.json"])
    assert (args.token, args.boxes, args.style, args.repeat, args.state_file, args.handlers) == (
        "t",
        5,
        "19",
        3,
        "s.json",
        True,
    )
    with pytest.raises(SystemExit):
        parse_args(["--token", "t", "--boxes", "0"])
