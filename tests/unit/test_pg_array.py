# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The array literals the box log's write sends (PostgreSQL reads them back
in iot_update/tests/test_box_log.py::test_array_literals_read_back_by_postgresql)."""

from datetime import datetime

from iot_update_tools.pg_array import array_literal


def test_every_element_is_quoted_and_none_is_null():
    # PostgreSQL's array input syntax: double quotes around an element,
    # a backslash before a double quote or a backslash inside them.
    assert array_literal(["a", None, 'say "hi"', "back\\slash"]) == '{"a",NULL,"say \\"hi\\"","back\\\\slash"}'


def test_numbers_and_dates_are_written_as_postgresql_reads_them():
    assert array_literal([1, 2**40]) == '{"1","1099511627776"}'
    assert array_literal([datetime(2026, 12, 4, 7, 30), datetime(2026, 12, 4, 7, 30, 1, 250)]) == (
        '{"2026-12-04 07:30:00","2026-12-04 07:30:01.000250"}'
    )


def test_empty():
    assert array_literal([]) == "{}"
