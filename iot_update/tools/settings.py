# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Reading the addon's system parameters, which administrators may mistype."""


def positive_int(value, default):
    """``value`` (a system parameter's text) as a positive integer, else ``default``."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default
