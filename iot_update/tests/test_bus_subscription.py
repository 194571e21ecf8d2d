# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Which box a bus subscription proves (SPEC 3.4), with the channels the
server gives (``iot.box._channel_for``, an HMAC keyed by the database secret)."""

from odoo.addons.iot_update.tools.bus_subscription import (
    CHANNEL_LENGTH,
    CHANNEL_PREFIX,
    box_channels,
    claimed_identities,
    proven_identity,
)

from .iot_common import IotCase

MAC = "aa:bb:cc:dd:ee:ff"
SERIAL = "SN-1234"


class TestBusSubscriptionIdentity(IotCase):
    def setUp(self):
        super().setUp()
        self.channel_for = self.env["iot.box"]._channel_for

    def test_channel_length(self):
        self.assertEqual(len(self.channel_for(MAC)), CHANNEL_LENGTH)
        self.assertNotEqual(self.channel_for(MAC), self.channel_for(SERIAL))

    def test_proven_identity(self):
        channel_for = self.channel_for
        cases = [
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
        ]
        for data, expected in cases:
            with self.subTest(data=data):
                self.assertEqual(proven_identity(data, channel_for), expected)

    def test_junk_proves_nothing(self):
        channel_for = self.channel_for
        cases = [
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
        ]
        for data in cases:
            with self.subTest(data=data):
                self.assertIsNone(proven_identity(data, channel_for))

    def test_web_client_costs_no_channel_computation(self):
        def never(identity):
            raise AssertionError("computed a channel")

        self.assertIsNone(proven_identity({"channels": ["a", "b"], "last": 0}, never))
        self.assertIsNone(proven_identity({"channels": ["a"], "last": 0, "mac_address": MAC}, never))

    def test_claimed_identities_and_box_channels(self):
        channel_for = self.channel_for
        self.assertEqual(claimed_identities({"identifier": SERIAL, "mac_address": SERIAL}), [SERIAL])
        self.assertEqual(claimed_identities({"identifier": 1, "mac_address": MAC}), [MAC])
        self.assertEqual(box_channels({"channels": ["broadcast", channel_for(MAC), 3]}), [channel_for(MAC)])
