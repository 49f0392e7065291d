"""Smoke test of scripts/bench_coord_limits.py: it runs with tiny sizes, prints its table, writes the
report only when asked, and leaves no process or temporary folder behind. The numbers are not read."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from test_bench_smoke import SCRIPTS, assert_clean, run_script

pytestmark = pytest.mark.timeout(120)


def test_prints_its_table_and_writes_only_when_asked(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    report.write_text("# mgsup benchmarks\n\n## Targets\n\n| target | verdict | measured |\n|---|---|---|\n"
                      "| mgcoord peak RSS < 200 MB under the gzip and big-output scenarios | met | old |\n\n"
                      "## Reproducing\n\nrun it\n")
    done = run_script("bench_coord_limits", tmp_path, "-o", str(report))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("## mgcoord under hostile agents and endpoints")
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| scenario | what | exit |") and len(rows) == 1 + 7
    assert "mgcoord peak RSS < 200 MB" in done.stdout
    assert "| old |" in report.read_text(), "without --write the report is left alone"
    assert_clean(tmp_path)

    written = run_script("bench_coord_limits", tmp_path, "-o", str(report), "--write")
    assert written.returncode == 0, written.stderr
    text = report.read_text()
    assert text.index("## Targets") < text.index("## mgcoord under hostile") < text.index("## Reproducing")
    assert "| old |" not in text
    assert_clean(tmp_path)


def test_writing_again_replaces_the_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(SCRIPTS))
    bench = importlib.import_module("bench_coord_limits")
    common = importlib.import_module("bench_common")
    report = tmp_path / "report.md"
    report.write_text("# mgsup benchmarks\n\n## Targets\n\n| target | verdict | measured |\n|---|---|---|\n"
                      "| start | met | 1 ms |\n\n## Other\n\ntext\n")
    for number in (1, 2):
        verdict = common.Verdict("peak RSS < 200 MB", number == 2, f"run {number}")
        result = common.Result("coord_limits", bench.TITLE, verdicts=[verdict], notes=[f"run {number}"])
        bench.write_section(report, result)
    text = report.read_text()
    assert text.count(bench.TITLE) == 1 and "\nrun 2\n" in text and "run 1" not in text
    assert "| start | met | 1 ms |\n| peak RSS < 200 MB | met | run 2 |\n\n## Other\n\ntext\n" in text
