# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import pytest

from iot_update_tools.bus_subscription import (
    CHANNEL_LENGTH,
    CHANNEL_PREFIX,
    box_channels,
    claimed_identities,
    proven_identity,
)

MAC = "aa:bb:cc:dd:ee:ff"
SERIAL = "SN-1234"


def channel_for(identity):
    """A stand-in for the server's HMAC: one fixed channel per identity."""
    return CHANNEL_PREFIX + format(sum(map(ord, identity)), "064x")


def test_channel_length():
    assert len(channel_for(MAC)) == CHANNEL_LENGTH


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"channels": [channel_for(MAC)], "last": 0, "mac_address": MAC}, MAC),  # 18.0 box
        ({"channels": [channel_for(SERIAL)], "last": 7, "identifier": SERIAL}, SERIAL),  # 19 box
        ({"channels": ["broadcast", channel_for(MAC)], "mac_address": MAC}, MAC),
        # Both keys: whichever the channel proves.
        ({"channels": [channel_for(MAC)], "identifier": SERIAL, "mac_address": MAC}, MAC),
        ({"channels": [channel_for(SERIAL)], "mac_address": MAC}, None),  # another box's channel
        ({"channels": [CHANNEL_PREFIX + "0" * 64], "mac_address": MAC}, None),  # a guess
        ({"channels": [], "mac_address": MAC}, None),  # a MAC without the channel
        ({"channels": [channel_for(MAC)], "last": 0}, None),  # the channel without identity
        ({"channels": ["odoo-presence-res.partner_3"], "last": 0}, None),  # a web client
    ],
)
def test_proven_identity(data, expected):
    assert proven_identity(data, channel_for) == expected


@pytest.mark.parametrize(
    "data",
    [
        None,
        "subscribe",
        7,
        [channel_for(MAC), MAC],
        {},
        {"channels": channel_for(MAC), "mac_address": MAC},
        {"channels": {channel_for(MAC): 1}, "mac_address": MAC},
        {"channels": [None, 1, [channel_for(MAC)]], "mac_address": MAC},
        {"channels": [channel_for(MAC)], "mac_address": [MAC]},
        {"channels": [channel_for(MAC)], "mac_address": ""},
        {"channels": [channel_for(MAC)], "mac_address": MAC + "0" * 64},
        {"channels": [CHANNEL_PREFIX + "\ud800" * 64], "mac_address": MAC},
        {"channels": [CHANNEL_PREFIX + "é" * 64], "mac_address": MAC},
        {"channels": [channel_for(MAC) + "0"], "mac_address": MAC},
    ],
)
def test_junk_proves_nothing(data):
    assert proven_identity(data, channel_for) is None


def test_web_client_costs_no_channel_computation():
    def never(identity):
        raise AssertionError("computed a channel")

    assert proven_identity({"channels": ["a", "b"], "last": 0}, never) is None
    assert proven_identity({"channels": ["a"], "last": 0, "mac_address": MAC}, never) is None


def test_claimed_identities_and_box_channels():
    assert claimed_identities({"identifier": SERIAL, "mac_address": SERIAL}) == [SERIAL]
    assert claimed_identities({"identifier": 1, "mac_address": MAC}) == [MAC]
    assert box_channels({"channels": ["broadcast", channel_for(MAC), 3]}) == [channel_for(MAC)]
