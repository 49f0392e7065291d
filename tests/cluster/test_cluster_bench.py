"""The cluster benchmark runs (tiny parameters, against the test cluster) and keeps its section of the report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import RayCluster

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.timeout(300)]
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_quick_run_prints_its_tables(ray_cluster: RayCluster, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MGSUP_")} | {"TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_cluster.py"), "--quick", "--cluster",
                           ray_cluster.address], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "## On a Ray cluster" in done.stdout
    assert done.stdout.count("| local mgsup (limit 10) |") == 3
    assert done.stdout.count(f"| Ray cluster: {ray_cluster.address}, 1 CPU per job |") == 3


def test_the_section_is_replaced_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import bench_cluster

    section = f"{bench_cluster.START}\n## On a Ray cluster\nnumbers\n{bench_cluster.END}\n"
    report = "# mgsup benchmarks\n\n## Start latency\nx\n\n## Reproducing\ny\n"
    written = bench_cluster.with_section(report, section)
    assert written.index("numbers") < written.index("## Reproducing")
    assert bench_cluster.section_of(written) == section
    newer = section.replace("numbers", "new numbers")
    assert bench_cluster.with_section(written, newer).count("numbers") == 1
    # bench_all rewrites the report from scratch and puts the kept section back.
    assert bench_cluster.section_of(bench_cluster.with_section(report, bench_cluster.section_of(written) or "")) \
        == section
