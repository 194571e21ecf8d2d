# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The README and docs/: the README's test command is what CI runs, every
docs file is listed in the README, and every relative link and picture
leads somewhere that exists."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"!?\[(?:[^\]`]|`[^`]*`)*\]\(([^)\s]+)\)")


def section(text, title):
    """The body of the ``## title`` section of a Markdown text."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"no section '## {title}'"
    return match.group(1)


def slug(heading):
    """GitHub's anchor for a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {slug(match.group(1)) for match in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def test_slug_is_github_s():
    assert slug("Is the box on? (liveness)") == "is-the-box-on-liveness"
    assert slug("`setup --get-odoo` end to end") == "setup---get-odoo-end-to-end"
    assert slug("Benchmark of the boxes' bus subscriptions") == "benchmark-of-the-boxes-bus-subscriptions"


def test_the_readme_test_command_is_what_ci_runs():
    block = re.search(r"```sh\n(.*?)```", section(README.read_text(encoding="utf-8"), "Test"), re.S)
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("exec ")]
    assert commands == ["./dev test"]
    assert ci == ["exec ./dev test"]


def test_the_readme_lists_every_docs_file():
    listed = section(README.read_text(encoding="utf-8"), "Documentation")
    for path in DOCS:
        assert f"](docs/{path.name})" in listed, f"docs/{path.name} is not in the README's Documentation list"


def test_the_readme_stays_short():
    """What a newcomer needs first; the rest is in docs/."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 220
    for title in re.findall(r"^## (.+)$", text, re.M):
        assert len(section(text, title).splitlines()) <= 60, f"README section '{title}' is over a screen"


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda path: path.relative_to(ROOT).as_posix())
def test_relative_links_and_pictures_lead_somewhere(path):
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        file, __, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{path.name}: {target} leads to no file"
        if anchor:
            assert anchor in anchors(linked), f"{path.name}: {target} leads to no heading"


def test_the_pictures_are_shown():
    assert "](dashboard.png)" in (ROOT / "docs" / "dashboard.md").read_text(encoding="utf-8")
    assert "](driver_bundle.png)" in (ROOT / "docs" / "bundles.md").read_text(encoding="utf-8")
    assert "](docs/dashboard.png)" in README.read_text(encoding="utf-8")
