# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Odoo extracts the terms to translate from the addon's Python files with
Babel's Python extractor (``odoo.tools.translate``), which evaluates the
arguments of each translated call: a file it refuses loses all its terms, and
the export logs an ERROR."""

import io
from pathlib import Path

import pytest
from babel.messages.extract import extract_python

ADDON = Path(__file__).resolve().parents[2] / "iot_update"
#: The keywords Odoo gives the extractor (``_`` covers ``self.env._``).
KEYWORDS = ["_", "_lt"]


@pytest.mark.parametrize("path", sorted(ADDON.rglob("*.py")), ids=lambda path: str(path.relative_to(ADDON)))
def test_babel_extracts_the_terms_of_every_python_file(path):
    with path.open("rb") as source:
        list(extract_python(source, KEYWORDS, [], {}))


def test_a_refused_file_is_caught():
    """What the extractor refuses: an f-string among a translated call's arguments."""
    source = io.BytesIO(b'x = self.env._("%(hours)s hours", hours=f"{hours:g}")\n')
    with pytest.raises(NameError):
        list(extract_python(source, KEYWORDS, [], {}))
