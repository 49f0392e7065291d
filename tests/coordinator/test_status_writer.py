"""status.json building, writing, finalising and summarising."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from coordinator.backends.base import Usage
from coordinator.protocol.state import AgentSpec, CoordinationState
from coordinator.status import StatusWriter, preview
from supervisor.automation.schema import StatusDocument
from supervisor.automation.summary import summarize

pytestmark = pytest.mark.timeout(10)


def _writer(tmp_path: Path, state: CoordinationState, heartbeat: float = 1.0) -> StatusWriter:
    usage = {"a": Usage(10, 5, 15), "b": None}
    return StatusWriter(
        tmp_path / "status.json",
        state,
        session_id="log_x",
        instance_id="0badcafe",
        start_time=100.0,
        usage=lambda: usage,
        clock=lambda: 110.5,
        heartbeat=heartbeat,
    )


def _state() -> CoordinationState:
    return CoordinationState([AgentSpec("a"), AgentSpec("b")], question="q?", clock=lambda: 105.0)


def test_preview() -> None:
    assert preview("a\nb") == "a b"
    assert preview("x" * 200) == "x" * 200
    assert preview("x" * 201) == "x" * 200 + "..."


def test_write_matches_the_schema(tmp_path: Path) -> None:
    state = _state()
    state.record_answer("a", "answer")
    state.record_vote("b", "agent1", "because\nit is right")
    writer = _writer(tmp_path, state)
    writer.write()
    data = json.loads(writer.path.read_text())
    StatusDocument.model_validate(data)
    assert "exit_code" not in data["meta"]
    assert data["meta"]["elapsed_seconds"] == 10.5
    assert data["meta"]["log_dir"] == str(tmp_path)
    assert data["agents"]["b"]["vote_cast"] == {
        "voted_for_agent": "a",
        "voted_for_label": "agent1.1",
        "reason_preview": "because it is right",
    }
    assert data["agents"]["a"]["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert data["results"] == {
        "votes": {"agent1.1": 1},
        "winner": None,
        "final_answer_preview": None,
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    assert data["coordination"]["completion_percentage"] < 100
    assert list(tmp_path.iterdir()) == [writer.path]  # no temporary files left


def test_finalize_is_the_last_write(tmp_path: Path) -> None:
    state = _state()
    state.record_answer("a", "answer")
    writer = _writer(tmp_path, state)
    state.begin_presentation("a")
    state.end_presentation()
    writer.finalize("completed", 0, final_answer="the\nfinal answer")
    data = json.loads(writer.path.read_text())
    assert data["meta"]["exit_code"] == 0
    assert data["coordination"] == {
        "phase": "completed",
        "active_agent": "a",
        "completion_percentage": 100,
        "is_final_presentation": False,
    }
    assert data["results"]["final_answer_preview"] == "the final answer"
    assert data["results"]["winner"] == "a"
    before = writer.path.read_text()
    writer.write()
    assert writer.path.read_text() == before


def test_heartbeat_rewrites_while_running(tmp_path: Path) -> None:
    writer = _writer(tmp_path, _state(), heartbeat=0.02)

    async def scenario() -> int:
        writer.start_heartbeat()
        writes = 0
        last = None
        for _ in range(200):
            await asyncio.sleep(0.005)
            if writer.path.exists():
                stat = writer.path.stat().st_ino
                if stat != last:
                    writes += 1
                    last = stat
            if writes >= 3:
                break
        await writer.stop_heartbeat()
        return writes

    assert asyncio.run(scenario()) >= 3


def test_heartbeat_outlives_a_failed_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from coordinator import status

    writer = _writer(tmp_path, _state(), heartbeat=0.01)
    real_write = status.atomic_write_text
    attempts: list[int] = []

    def flaky_disk(path: Path, text: str, **options: Any) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError(28, "No space left on device")
        real_write(path, text, **options)

    monkeypatch.setattr(status, "atomic_write_text", flaky_disk)

    async def scenario() -> None:
        writer.start_heartbeat()
        for _ in range(500):
            await asyncio.sleep(0.005)
            if writer.path.exists():
                break
        await writer.stop_heartbeat()  # must not raise the failed write's error

    asyncio.run(scenario())
    assert len(attempts) >= 2 and writer.path.exists()


def test_the_supervisor_reads_what_the_writer_wrote(tmp_path: Path) -> None:
    state = _state()
    state.record_answer("a", "x")
    for message in ("bad", "bad", "worse"):
        state.record_failure("b", message)
    writer = _writer(tmp_path, state)
    writer.write()
    summary = summarize(str(writer.path), shell_status="running", now=111.0)
    assert summary is not None
    assert summary["phase"] == "enforcement"  # the only agent left has answered
    assert summary["agents"] == {"a": "answered", "b": "error"}
    assert summary["errors"]["b"]["message"] == "worse"
    assert summary["last_updated"] == 110.5
    assert summary["tokens"] == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    writer.finalize("error", 2, final_answer=None, reason="no agent produced an answer")
    ended = summarize(str(writer.path), shell_status="failed", now=111.0)
    assert ended is not None and (ended["phase"], ended["outcome"]) == ("error", "error")
