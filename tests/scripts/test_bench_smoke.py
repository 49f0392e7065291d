"""Smoke test of the benchmark scripts: each runs with tiny parameters (`--quick`), prints its
tables and verdicts, and leaves no process and no temporary state directory behind.

Nothing here looks at the numbers: timings are for docs/benchmarks.md, never for assertions.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
BENCHES = ["bench_start", "bench_queue", "bench_kill", "bench_status", "bench_output", "bench_memory", "bench_watch",
           "bench_dashboard"]


def run_script(name: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Temporary homes, logs and task-spooler folders all land under tmp_path through TMPDIR,
    # and every process started for the benchmark inherits it: that is how leftovers are found.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("MGSUP_HOME", None)
    return subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py"), "--quick", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=100, check=False)


def leftovers(tmp_path: Path) -> list[psutil.Process]:
    """Live processes started for a benchmark run under `tmp_path`."""
    mark = str(tmp_path)
    found = []
    for p in psutil.process_iter():
        try:
            if p.pid == os.getpid() or p.status() == psutil.STATUS_ZOMBIE:
                continue
            if p.environ().get("TMPDIR", "").startswith(mark) or any(mark in arg for arg in p.cmdline()):
                found.append(p)
        except psutil.Error:
            continue
    return found


def assert_clean(tmp_path: Path) -> None:
    deadline = time.monotonic() + 5
    left = leftovers(tmp_path)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = leftovers(tmp_path)
    described = []
    for p in left:
        try:
            described.append(" ".join(p.cmdline()))
            p.kill()
        except psutil.Error:
            pass
    assert not left, f"processes left behind: {described}"
    assert not [d.name for d in tmp_path.glob("mgsup-bench-*")], "temporary directories left behind"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", BENCHES)
def test_bench_script_prints_its_tables(name: str, tmp_path: Path) -> None:
    done = run_script(name, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("## "), done.stdout
    header = next(i for i, line in enumerate(lines) if line.startswith("| "))
    assert set(lines[header + 1]) <= set("|-: "), "a markdown table follows its header"
    assert lines[header + 2].startswith("| "), "the table has rows"
    # "not measured" when the baseline tool (GNU parallel) is not installed, as on a fresh machine.
    verdicts = (" met ", "NOT met", "not measured")
    assert any(line.startswith("- **") and any(v in line for v in verdicts) for line in lines), done.stdout
    assert_clean(tmp_path)


@pytest.mark.timeout(120)
def test_bench_all_writes_the_report(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    done = run_script("bench_all", tmp_path, "--only", "status,output", "--output", str(report))
    assert done.returncode == 0, done.stderr
    text = report.read_text()
    assert text.startswith("# mgsup benchmarks")
    assert "--quick" in text, "a quick run says its numbers mean nothing"
    for needle in ("| CPU |", "| kernel |", "| Python |", "| date |", "## Targets", "get_shell_status < 5 ms",
                   "## Status with", "## Big output: "):
        assert needle in text, needle
    assert "FAILED" not in text
    assert_clean(tmp_path)


def test_bench_all_rejects_an_unknown_benchmark(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    done = run_script("bench_all", tmp_path, "--only", "start,nonsense", "--output", str(report))
    assert done.returncode == 2
    assert "unknown benchmark(s): nonsense" in done.stderr
    assert not report.exists()


@pytest.mark.timeout(120)
def test_bench_all_writes_nothing_unless_asked(tmp_path: Path) -> None:
    doc = SCRIPTS.parent / "docs" / "benchmarks.md"
    before = doc.stat().st_mtime_ns
    done = run_script("bench_all", tmp_path, "--only", "status")
    assert done.returncode == 0, done.stderr
    assert "## Status with" in done.stdout, "the tables are printed"
    assert doc.stat().st_mtime_ns == before
    assert "wrote" not in done.stderr
    assert_clean(tmp_path)
