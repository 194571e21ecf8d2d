# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""What a bus subscription proves about a box (SPEC 3.4).

A box subscribes to the bus websocket with the channel its check-in answered
and its identity: ``mac_address`` (18.0 boxes) or ``identifier`` (19 boxes).
Anyone may open the websocket and claim an identity: only the channel the box
was given, which is derived from the identity with the database's secret,
proves it. Nothing here raises, whatever the data: web clients and strangers
send what they like.
"""

import hmac

#: Channels given to boxes start with this; the rest is a hex HMAC-SHA256.
CHANNEL_PREFIX = "iot_box-"
CHANNEL_LENGTH = len(CHANNEL_PREFIX) + 64
#: Keys of the subscription data a box puts its identity in: 19, 18.0.
IDENTITY_KEYS = ("identifier", "mac_address")
#: Longest identity a box can have (the check-in's limit).
MAX_IDENTITY = 64


def claimed_identities(data):
    """The identities ``data`` claims, in the order of ``IDENTITY_KEYS``."""
    if not isinstance(data, dict):
        return []
    identities = []
    for key in IDENTITY_KEYS:
        value = data.get(key)
        if isinstance(value, str) and 0 < len(value) <= MAX_IDENTITY and value not in identities:
            identities.append(value)
    return identities


def box_channels(data):
    """The channels of ``data`` that may be a box's (right prefix, length and alphabet)."""
    channels = data.get("channels") if isinstance(data, dict) else None
    if not isinstance(channels, list):
        return []
    return [
        channel
        for channel in channels
        if isinstance(channel, str)
        and len(channel) == CHANNEL_LENGTH
        and channel.isascii()  # compare_digest compares ASCII text only
        and channel.startswith(CHANNEL_PREFIX)
    ]


def proven_identity(data, channel_for):
    """The identity ``data`` proves, or None.

    ``channel_for(identity)`` is the channel the box of that identity was
    given. The identity is proven when ``data`` subscribes to that channel.
    Web clients' subscriptions, which carry no identity, cost nothing here.
    """
    identities = claimed_identities(data)
    if not identities:
        return None
    channels = box_channels(data)
    if not channels:
        return None
    for identity in identities:
        expected = channel_for(identity)
        # Every channel is compared, in constant time: no early exit tells
        # a stranger how close a guess was.
        if sum(hmac.compare_digest(channel, expected) for channel in channels):
            return identity
    return None
