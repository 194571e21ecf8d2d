# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import pytest

from iot_update_tools.settings import positive_int


@pytest.mark.parametrize(
    "value, expected",
    [("24", 24), (" 3 ", 3), ("1", 1), ("0", 90), ("-5", 90), ("", 90), (None, 90), ("two", 90), ("1.5", 90)],
)
def test_positive_int(value, expected):
    assert positive_int(value, 90) == expected
