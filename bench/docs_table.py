# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Write a benchmark's tables into ``docs/benchmarks.md`` (standard library only).

Each recorded run sits in the document between two markers::

    <!-- bench:NAME -->
    ...tables...
    <!-- /bench:NAME -->

``replace_block`` puts new text between the markers of ``NAME`` and leaves the
rest of the document as it is; writing the same text again changes nothing.
The benchmark scripts call ``write_block`` with ``--docs [NAME]``, after
printing their tables.
"""

import contextlib
import io
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


class MarkerError(ValueError):
    """The document does not hold exactly one well-ordered pair of markers for a name."""


def markers(name):
    """The opening and closing markers of ``name``."""
    if not NAME.match(name):
        raise MarkerError(f"invalid block name {name!r}: letters, digits, '_', '.' and '-' only")
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def replace_block(text, name, content):
    """``text`` with the lines between the markers of ``name`` replaced by ``content``."""
    start, end = markers(name)
    starts = [match.start() for match in re.finditer(re.escape(start), text)]
    ends = [match.start() for match in re.finditer(re.escape(end), text)]
    if not starts or not ends:
        missing = " and ".join(marker for marker, found in ((start, starts), (end, ends)) if not found)
        raise MarkerError(f"no {missing} in the document: add the pair where block {name!r} goes")
    if len(starts) > 1 or len(ends) > 1:
        raise MarkerError(f"block {name!r} is marked more than once: keep one {start} ... {end} pair")
    if ends[0] < starts[0]:
        raise MarkerError(f"{end} comes before {start}")
    body = content.strip("\n")
    inner = f"\n\n{body}\n\n" if body else "\n"
    return text[: starts[0] + len(start)] + inner + text[ends[0] :]


def write_block(name, content, path=None):
    """Replace block ``name`` of the document at ``path`` (docs/benchmarks.md by
    default); True when the file changed."""
    path = Path(path or DOCS)
    text = path.read_text(encoding="utf-8")
    new = replace_block(text, name, content)
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


def markdown_table(header, rows, right=None):
    """A Markdown table; ``right`` are the indexes of right-aligned columns
    (by default every column but the first)."""
    right = set(range(1, len(header))) if right is None else set(right)
    lines = ["| " + " | ".join(str(cell) for cell in header) + " |"]
    lines.append("|" + "|".join("---:" if index in right else "---" for index in range(len(header))) + "|")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


class _Tee(io.TextIOBase):
    def __init__(self, stream):
        self.stream = stream
        self.buffer = io.StringIO()

    def write(self, text):
        self.buffer.write(text)
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()


@contextlib.contextmanager
def capture():
    """Print as usual, and keep what was printed: ``with capture() as out: ...; out.getvalue()``."""
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        yield tee.buffer


def add_option(parser, default, describe=None):
    """The scripts' ``--docs [NAME]`` option: ``NAME`` is ``default`` when omitted
    (``describe`` says what it is in the help, when the script computes it)."""
    parser.add_argument(
        "--docs",
        nargs="?",
        const=default,
        metavar="NAME",
        help="after printing the tables, write them into docs/benchmarks.md between the markers"
        f" <!-- bench:NAME --> and <!-- /bench:NAME --> (NAME omitted: {describe or default})",
    )


def check(name, path=None, parser=None):
    """Raise ``MarkerError`` now, before a long run, when block ``name`` cannot be
    written (with ``parser``, exit with its usage and the reason instead)."""
    try:
        replace_block(Path(path or DOCS).read_text(encoding="utf-8"), name, "")
    except MarkerError as error:
        if parser is None:
            raise
        parser.error(f"--docs {name}: {error}")


def write(name, content, path=None):
    """``write_block``, saying what it did."""
    changed = write_block(name, content, path)
    print(f"{Path(path or DOCS).name}: block {name} {'written' if changed else 'unchanged'}", flush=True)
    return changed
