"""scripts/bench_massgen.py: it runs, prints its row, and touches docs/benchmarks.md only when asked."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
DOC = SCRIPTS.parent / "docs" / "benchmarks.md"


def _bench() -> Any:
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location("bench_massgen", SCRIPTS / "bench_massgen.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


def test_write_section_replaces_only_its_own_section(tmp_path: Path) -> None:
    bench = _bench()
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# b\n\n## Kill\n\nk\n\n## Reproducing\n\nr\n")
    bench.write_section(doc, f"## {bench.TITLE}\n\nfirst\n")
    assert doc.read_text() == f"# b\n\n## Kill\n\nk\n\n## {bench.TITLE}\n\nfirst\n\n## Reproducing\n\nr\n"
    bench.write_section(doc, f"## {bench.TITLE}\n\nsecond\n")
    assert doc.read_text() == f"# b\n\n## Kill\n\nk\n\n## {bench.TITLE}\n\nsecond\n\n## Reproducing\n\nr\n"


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
