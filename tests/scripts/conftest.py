"""Fixtures of the batch scripts' tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor import Supervisor, lifecycle


@pytest.fixture
def no_shell_left(home: Supervisor) -> Iterator[None]:
    """Every run a test started must have ended by its end (an ended shell has no process left)."""
    yield
    left = [s["shell_id"] for s in home.list_shells() if s["status"] in lifecycle.LIVE]
    for shell_id in left:
        home.kill_shell(shell_id, grace=1)
    assert not left, f"shells still running: {left}"


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """A file that holds the scripted agents given its path while it exists (`fakes.command_agent`)."""
    path = tmp_path / "gate"
    path.touch()
    yield path
    path.unlink(missing_ok=True)
