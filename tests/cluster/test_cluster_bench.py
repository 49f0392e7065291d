"""The cluster benchmark runs (tiny parameters, against the test cluster) and writes no document unasked.

(`--write` is bench_common.write_section, tested with bench_coord_limits.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import RayCluster

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.timeout(300)]
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
DOC = SCRIPTS.parent / "docs" / "benchmarks.md"


def test_quick_run_prints_its_tables(ray_cluster: RayCluster, tmp_path: Path) -> None:
    before = DOC.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MGSUP_")} | {"TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_cluster.py"), "--quick", "--cluster",
                           ray_cluster.address], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "## On a Ray cluster" in done.stdout
    assert done.stdout.count("| local mgsup (limit 10) |") == 3
    assert done.stdout.count(f"| Ray cluster: {ray_cluster.address}, 1 CPU per job |") == 3
    assert DOC.read_bytes() == before
