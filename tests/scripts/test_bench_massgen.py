"""scripts/bench_massgen.py: it runs, prints its row, and leaves docs/benchmarks.md alone unless asked.

(`--write` is bench_common.write_section, tested with bench_coord_limits.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
DOC = SCRIPTS.parent / "docs" / "benchmarks.md"


@pytest.mark.massgen
@pytest.mark.timeout(240)
def test_quick_run_prints_the_row_and_writes_no_doc(tmp_path: Path) -> None:
    before = DOC.read_bytes()
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_massgen.py"), "--quick"], cwd=tmp_path,
                          env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True, text=True, timeout=230)
    assert done.returncode == 0, done.stderr
    assert "| 2-agent `massgen --automation`" in done.stdout and "under mgsup p50" in done.stdout
    assert DOC.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("mgsup-bench")], "temporary folders are removed"
