# Copyright 2026 iot_update contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""``bench/docs_table.py``: how the benchmarks write their tables into
docs/benchmarks.md between ``<!-- bench:NAME -->`` markers."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))  # the scripts import docs_table from beside them

import docs_table  # noqa: E402 - after the path


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DOC = """# Benchmarks

Before.

<!-- bench:speed -->

| old | table |
|---|---:|
| a | 1 |

<!-- /bench:speed -->

Between.

<!-- bench:other -->
kept
<!-- /bench:other -->

After.
"""

TABLE = "| new | table |\n|---|---:|\n| b | 2 |\n"


def test_replaces_only_the_named_block():
    new = docs_table.replace_block(DOC, "speed", TABLE)
    assert "| old | table |" not in new
    assert "<!-- bench:speed -->\n\n| new | table |\n|---|---:|\n| b | 2 |\n\n<!-- /bench:speed -->" in new
    before, __, rest = DOC.partition("<!-- bench:speed -->")
    assert new.startswith(before)
    assert new.endswith(rest.partition("<!-- /bench:speed -->")[2])
    assert "<!-- bench:other -->\nkept\n<!-- /bench:other -->" in new


def test_replacing_is_idempotent():
    once = docs_table.replace_block(DOC, "speed", TABLE)
    assert docs_table.replace_block(once, "speed", TABLE) == once
    # surrounding blank lines of the content do not pile up
    assert docs_table.replace_block(once, "speed", "\n\n" + TABLE + "\n\n") == once


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# nothing here\n", "no <!-- bench:speed --> and <!-- /bench:speed -->"),
        ("<!-- bench:speed -->\n| a |\n", "no <!-- /bench:speed -->"),
        ("| a |\n<!-- /bench:speed -->\n", "no <!-- bench:speed -->"),
        ("<!-- /bench:speed -->\n<!-- bench:speed -->\n", "comes before"),
        (DOC + DOC, "marked more than once"),
    ],
)
def test_missing_or_broken_markers_raise_a_clear_error(text, message):
    with pytest.raises(docs_table.MarkerError, match="speed") as error:
        docs_table.replace_block(text, "speed", TABLE)
    assert message in str(error.value)


def test_a_name_is_not_a_prefix_of_another():
    text = "<!-- bench:speed-2 -->\nx\n<!-- /bench:speed-2 -->\n"
    with pytest.raises(docs_table.MarkerError, match="no <!-- bench:speed -->"):
        docs_table.replace_block(text, "speed", TABLE)


def test_invalid_names_are_refused():
    with pytest.raises(docs_table.MarkerError, match="invalid block name"):
        docs_table.replace_block(DOC, "spe ed -->", TABLE)


def test_write_block_changes_the_file_once(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(DOC, encoding="utf-8")
    assert docs_table.write_block("speed", TABLE, path) is True
    written = path.read_text(encoding="utf-8")
    assert "| b | 2 |" in written
    assert docs_table.write_block("speed", TABLE, path) is False
    assert path.read_text(encoding="utf-8") == written


def test_write_block_leaves_the_file_alone_on_error(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(DOC, encoding="utf-8")
    with pytest.raises(docs_table.MarkerError):
        docs_table.write_block("missing", TABLE, path)
    with pytest.raises(docs_table.MarkerError):
        docs_table.check("missing", path)
    assert path.read_text(encoding="utf-8") == DOC


def test_capture_prints_and_keeps(capsys):
    with docs_table.capture() as printed:
        print("| a |")
    assert printed.getvalue() == "| a |\n"
    assert capsys.readouterr().out == "| a |\n"


def test_markdown_table():
    assert docs_table.markdown_table(("route", "req/s"), [("x", "1.0")]) == (
        "| route | req/s |\n|---|---:|\n| x | 1.0 |\n"
    )


def test_the_docs_hold_the_default_block_of_every_benchmark():
    """``--docs`` without a name writes the block named after the benchmark."""
    for name in ("handlers", "fleet", "history"):
        docs_table.check(name)
    for script in sorted(BENCH_DIR.glob("*_bench.py")):
        assert "docs_table.add_option(parser" in script.read_text(), script.name


def test_the_bus_runs_of_the_docs_write_their_own_blocks(capsys):
    """Each bus run recorded in the docs writes, with ``--docs``, the block
    that holds it (named after its options)."""
    pytest.importorskip("websocket")
    bus = load("bus_bench")
    runs = {
        "bus-200-pool-32": "--boxes 200 --rounds 1 --db-maxconn-gevent 32",
        "bus-200-pool-100": "--boxes 200 --rounds 1 --db-maxconn-gevent 100",
        "bus-200-pool-256": "--boxes 200 --rounds 1 --db-maxconn-gevent 256",
        "bus-200-pool-256-rounds-2": "--boxes 200 --rounds 2 --db-maxconn-gevent 256",
        "bus-1000-pool-1100": "--boxes 1000 --rounds 1 --db-maxconn-gevent 1100",
        "bus-1000-pool-64": "--boxes 1000 --rounds 1 --db-maxconn-gevent 64",
    }
    for name, options in runs.items():
        assert bus.parse_args([*options.split(), "--docs"]).docs == name  # checked: the block exists
    assert bus.parse_args(["--docs", "bus-1000-pool-64"]).docs == "bus-1000-pool-64"
    assert bus.parse_args([]).docs is None
    with pytest.raises(SystemExit):
        bus.parse_args(["--docs"])  # the default options: no such block yet, said before the run
    assert "--docs bus-1000-pool-32-rounds-2: no <!-- bench:bus-1000-pool-32-rounds-2 -->" in capsys.readouterr().err


def test_handlers_bench_writes_its_tables(tmp_path):
    handlers = load("handlers_bench")
    row = {"rps": 100.0, "p50": 5.0, "p99": 9.0}
    results = {
        "(a) /iot/get_handlers": {"sequential": dict(row, rps=200.0), "20 boxes": dict(row, rps=400.0)},
        "(b) zip on every call": {"sequential": dict(row, rps=40.0), "20 boxes": dict(row, rps=80.0)},
        "(c) version_info": {"sequential": dict(row, rps=300.0), "20 boxes": dict(row, rps=600.0)},
    }
    text = handlers.markdown(results)
    assert "| (a) `/iot/get_handlers` | sequential | 200.0 | 5.0 | 9.0 |" in text
    assert "| (c) `version_info` | 20 boxes | 600.0 | 5.0 | 9.0 |" in text
    assert "| (b)/(a), target at least 3 | 5.00x | 5.00x |" in text
    assert "| (a)/(c), target at most 2 | 1.50x | 1.50x |" in text
    path = tmp_path / "benchmarks.md"
    path.write_text("<!-- bench:handlers -->\n<!-- /bench:handlers -->\n", encoding="utf-8")
    docs_table.write("handlers", text, path)
    assert path.read_text(encoding="utf-8") == f"<!-- bench:handlers -->\n\n{text}\n<!-- /bench:handlers -->\n"


def test_bus_bench_writes_its_table():
    pytest.importorskip("websocket")
    bus = load("bus_bench")
    row = {
        "subs_per_s": 82.2,
        "all_handled": 12.2,
        "p50": 11437.0,
        "p99": 12133.0,
        "all_online": None,
        "first_try": 1000,
        "retried": 0,
        "never": 0,
        bus.REFUSED: 0,
        bus.TRY_LATER: 0,
        bus.OTHER: 0,
        "db_connections": 913,
        "writes_per_sub": 1.0,
    }
    text = bus.markdown({"web clients (floor)": [row, row], "boxes, restart": [dict(row, all_online=6.083)]}, 1100)
    lines = text.splitlines()
    assert lines[0].startswith("| pool | round | burst | subs/s |")
    first = "1,100 | 1 | web clients (floor) | 82.2 | 12.2 | 11,437 | 12,133 | -"
    assert lines[2] == f"| {first} | 1,000 | 0 | 0 | 0 | 0 | 0 | 913 | 1.00 |"
    assert lines[3].startswith("| 1,100 | 1 | boxes, restart | 82.2 | 12.2 | 11,437 | 12,133 | 6.08 |")
    assert lines[4].startswith("| 1,100 | 2 | web clients (floor) |")


def test_history_bench_writes_what_it_printed_without_the_plans(tmp_path, monkeypatch, capsys):
    history = load("history_bench")
    path = tmp_path / "benchmarks.md"
    path.write_text("Before.\n\n<!-- bench:history -->\nold\n<!-- /bench:history -->\n\nAfter.\n", encoding="utf-8")
    monkeypatch.setattr(docs_table, "DOCS", path)
    args = history.parse_args(["--boxes", "20", "--rounds", "1", "--docs"])
    assert args.docs == "history"
    disk = {"rows": 100, "heap": 15_200, "indexes": [("iot_box_event_pkey", 2_200)], "other": 0, "total": 17_400}
    rounds = [
        {
            "cron": 0.5,
            "commit": 0.001,
            "rows": 100,
            "expected": 100,
            "retention": 90,
            "by_id": 0.15,
            "by_date": 0.02,
            "statements": 209,
            "table_statements": 51,
            "left": 0,
            "plans": [("DELETE FROM iot_box_event ...", ["Index Scan Backward using iot_box_event__date_index"])],
        }
    ]
    timings = {"load": [0.5, 1.0, 1.2], "total": 96, "boxes": 10, "fill": 50, "vacuum": 3, "vacuum_after": 0.2}
    history.report_all(args, disk, rounds, timings)
    printed = capsys.readouterr().out
    written = path.read_text(encoding="utf-8")
    block = written.split("<!-- bench:history -->\n\n")[1].split("\n\n<!-- /bench:history -->")[0]
    assert written.startswith("Before.\n\n") and written.endswith("\n\nAfter.\n")
    assert "| on disk, 100 rows | size | bytes per row |" in block
    assert "| 91 days, retention 90 | 100 | 501 (1) | 150 | 20 | 3.3x | 209 (51) | yes |" in block
    assert "Index Scan Backward" in printed
    assert "Index Scan Backward" not in block
    assert block in printed
