# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import pytest

from iot_update_tools.feed import Feed, ImageRelease, image_of_file, parse_checksums

A = "a" * 40
B = "b" * 40
C = "c" * 40
D = "d" * 40

# The shape of Odoo's list: sha1sum output, two spaces, newest copied to iotbox-latest.zip.
REAL = f"""{A}  iotboxv24_11.zip
{B}  iotboxv25_01.zip
{C}  iotboxv25_07.zip
{C}  iotbox-latest.zip
"""

CASES = [
    # id, body, releases (image, file, sha1), latest, skipped
    (
        "real format",
        REAL,
        [("24.11", "iotboxv24_11.zip", A), ("25.01", "iotboxv25_01.zip", B), ("25.07", "iotboxv25_07.zip", C)],
        "25.07",
        0,
    ),
    ("bytes body", REAL.encode(), [("24.11", None, A), ("25.01", None, B), ("25.07", None, C)], "25.07", 0),
    (
        "CRLF line ends",
        REAL.replace("\n", "\r\n"),
        [("24.11", None, A), ("25.01", None, B), ("25.07", None, C)],
        "25.07",
        0,
    ),
    (
        "BOM and blank lines",
        "\ufeff\n\n" + REAL + "\n\n",
        [("24.11", None, A), ("25.01", None, B), ("25.07", None, C)],
        "25.07",
        0,
    ),
    ("latest listed first", f"{C}  iotbox-latest.zip\n{C}  iotboxv25_07.zip\n", [("25.07", None, C)], "25.07", 0),
    ("binary-mode marker", f"{A} *iotboxv24_11.zip\n{A} *iotbox-latest.zip\n", [("24.11", None, A)], "24.11", 0),
    ("uppercase hex", f"{A.upper()}  iotboxv24_11.zip\n", [("24.11", None, A)], "", 0),
    (
        "unsorted names",
        f"{C}  iotboxv25_07.zip\n{A}  iotboxv24_11.zip\n",
        [("24.11", None, A), ("25.07", None, C)],
        "",
        0,
    ),
    (
        "unknown names",
        f"{A}  iotboxv24_11.zip\n{B}  iotbox-latest.img\n{C}  SHA1SUMS.txt\n"
        f"{D}  iotboxv24_13.zip\n{D}  iotboxv2411.zip\n",
        [("24.11", None, A)],
        "",
        4,
    ),
    (
        "malformed lines",
        f"{A}  iotboxv24_11.zip\nnot a checksum\n{A[:39]}  iotboxv25_01.zip\n{B}iotboxv25_01.zip\n"
        f"{B}  two names.zip\n{'g' * 40}  iotboxv25_07.zip\n<html>\n",
        [("24.11", None, A)],
        "",
        6,
    ),
    (
        "duplicates keep the first line",
        f"{A}  iotboxv24_11.zip\n{B}  iotboxv24_11.zip\n{A}  iotboxv24_11.zip\n"
        f"{A}  iotbox-latest.zip\n{B}  iotbox-latest.zip\n",
        [("24.11", None, A)],
        "24.11",
        3,
    ),
    ("latest matching no named image", f"{A}  iotboxv24_11.zip\n{D}  iotbox-latest.zip\n", [("24.11", None, A)], "", 0),
    ("latest alone", f"{D}  iotbox-latest.zip\n", [], "", 0),
    (
        "two images share the latest SHA-1",
        f"{A}  iotboxv25_07.zip\n{A}  iotboxv25_01.zip\n{A}  iotbox-latest.zip\n",
        [("25.01", None, A), ("25.07", None, A)],
        "25.07",
        0,
    ),
    ("empty body", "", [], "", 0),
    ("empty bytes", b"", [], "", 0),
    ("whitespace only", " \n\r\n\t\n", [], "", 0),
    ("not UTF-8", b"\xff\xfe\x00garbage\n" + f"{A}  iotboxv24_11.zip\n".encode(), [("24.11", None, A)], "", 1),
    ("an HTML error page", "<html><body>502 Bad Gateway</body></html>", [], "", 1),
    ("not text at all", None, [], "", 0),
]


@pytest.mark.parametrize("body, releases, latest, skipped", [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_parse_checksums(body, releases, latest, skipped):
    feed = parse_checksums(body)
    assert [(r.image, r.sha1) for r in feed.releases] == [(image, sha1) for image, __, sha1 in releases]
    for release, (__, file_name, __sha1) in zip(feed.releases, releases, strict=True):
        assert release.file_name == (file_name or f"iotboxv{release.image.replace('.', '_')}.zip")
    assert feed.latest == latest
    assert feed.skipped == skipped
    assert bool(feed) == bool(releases)


def test_feed_values():
    assert parse_checksums(REAL) == Feed(
        (
            ImageRelease("24.11", "iotboxv24_11.zip", A),
            ImageRelease("25.01", "iotboxv25_01.zip", B),
            ImageRelease("25.07", "iotboxv25_07.zip", C),
        ),
        "25.07",
        0,
    )


def test_oversized_body_is_cut():
    body = (f"{A}  iotboxv24_11.zip\n" + "x" * (2 * 1024 * 1024)).encode()
    feed = parse_checksums(body)
    assert [r.image for r in feed.releases] == ["24.11"]
    assert feed.skipped == 1


@pytest.mark.parametrize(
    "name, image",
    [
        ("iotboxv24_11.zip", "24.11"),
        ("iotboxv20_01.zip", "20.01"),
        ("iotboxv24_00.zip", ""),
        ("iotboxv24_13.zip", ""),
        ("iotbox-latest.zip", ""),
        ("iotboxv24_11.zip.sig", ""),
        ("xiotboxv24_11.zip", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_image_of_file(name, image):
    assert image_of_file(name) == image
