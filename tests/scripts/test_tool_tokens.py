"""Smoke test of scripts/tool_tokens.py: it runs a session over MCP, prints its table and writes no doc."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
DOC = SCRIPTS.parent / "docs" / "tools.md"


@pytest.mark.timeout(120)
def test_tool_tokens_prints_its_table_and_writes_nothing(tmp_path: Path) -> None:
    before = DOC.read_text()
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("MGSUP_HOME", None)
    result = subprocess.run([sys.executable, str(SCRIPTS / "tool_tokens.py"), "--ended", "3"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=100, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Tokens counted with: ")
    assert "| **the session (start, 5 polls, output, kill)** |" in result.stdout
    assert "| list_shells (4 shells on record) |" in result.stdout
    assert DOC.read_text() == before
    # Every process it started (server, jobs, monitors) carried TMPDIR=tmp_path and is gone.
    mark = str(tmp_path)
    left = [p for p in psutil.process_iter() if _environ(p).get("TMPDIR", "").startswith(mark)]
    assert left == []


def _environ(process: psutil.Process) -> dict[str, str]:
    try:
        return process.environ() if process.status() != psutil.STATUS_ZOMBIE else {}
    except psutil.Error:
        return {}
