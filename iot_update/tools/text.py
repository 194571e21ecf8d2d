# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Checking the text fields boxes send, on both box routes."""


def clean_text(value, what, limit, error, kind="a string"):
    """``value`` stripped, ``""`` for ``None``; raises ``error`` (an exception
    class) saying what is wrong when it is not text, is longer than ``limit``
    or holds control characters (NUL breaks PostgreSQL, newlines forge log
    lines)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise error(f"{what} must be {kind}")
    value = value.strip()
    if len(value) > limit:
        raise error(f"{what} is longer than {limit} characters")
    if not value.isprintable():
        raise error(f"{what} contains control characters")
    return value
