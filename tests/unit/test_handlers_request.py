# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import pytest

from iot_update_tools.handlers_request import (
    FIELD_LIMIT,
    HandlersRequest,
    HandlersRequestError,
    etag_matches,
    read_handlers_request,
)

MAC = "aa:bb:cc:dd:ee:01"


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"mac": MAC, "auto": "True"}, HandlersRequest("", MAC, True, True)),
        ({"mac": MAC, "auto": "False"}, HandlersRequest("", MAC, False, True)),
        ({"identifier": "SN123", "auto": "True"}, HandlersRequest("SN123", "", True, False)),
        ({"identifier": "SN123", "mac": MAC, "auto": "false"}, HandlersRequest("SN123", MAC, False, False)),
        ({"mac": f" {MAC} ", "auto": " True "}, HandlersRequest("", MAC, True, True)),
    ],
)
def test_read_handlers_request(params, expected):
    assert read_handlers_request(params) == expected


def test_box_key():
    assert read_handlers_request({"mac": MAC, "auto": "True"}).box_key == MAC
    assert read_handlers_request({"identifier": "SN", "mac": MAC, "auto": "True"}).box_key == "SN"


@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "'mac' or 'identifier' is missing"),
        ({"auto": "True"}, "'mac' or 'identifier' is missing"),
        ({"mac": "", "auto": "True"}, "'mac' or 'identifier' is missing"),
        ({"mac": MAC}, "'auto' must be True or False"),
        ({"mac": MAC, "auto": "yes"}, "'auto' must be True or False"),
        ({"mac": MAC, "auto": "1"}, "'auto' must be True or False"),
        ({"mac": "x" * (FIELD_LIMIT + 1), "auto": "True"}, "'mac' is longer than"),
        ({"identifier": "x" * 10_000, "auto": "True"}, "'identifier' is longer than"),
        ({"mac": ["a", "b"], "auto": "True"}, "'mac' must be a text field"),
        ({"mac": MAC, "auto": object()}, "'auto' must be a text field"),
        ({"mac": "aa\x00bb", "auto": "True"}, "'mac' contains control characters"),
    ],
)
def test_bad_requests(params, message):
    with pytest.raises(HandlersRequestError, match=message):
        read_handlers_request(params)


DIGEST = "ab" * 32


@pytest.mark.parametrize(
    "header, matches",
    [
        (f'"{DIGEST}"', True),
        (DIGEST, True),
        (f' W/"{DIGEST}" ', True),
        (f'"other", "{DIGEST}"', True),
        ("*", False),  # would let anyone mark a box as holding the current bundle
        ('"other"', False),
        (DIGEST[:-1], False),
        ("", False),
        (None, False),
        (f'"{DIGEST}", ' + "x" * 2000, False),
    ],
)
def test_etag_matches(header, matches):
    assert etag_matches(header, DIGEST) is matches


def test_etag_never_matches_an_empty_digest():
    assert etag_matches('""', "") is False
