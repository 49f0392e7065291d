"""The coordination summary: both status.json schemas, outcomes, stalls, and files a job may name."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from supervisor.automation.locate import current_status_file
from supervisor.automation.printed import Printed
from supervisor.automation.schema import (
    AgentErrorInfo,
    AgentInfo,
    StatusCoordination,
    StatusDocument,
    StatusMeta,
    StatusResults,
    UsageInfo,
    VoteCast,
)
from supervisor.automation.summary import decide_outcome, summarize

MASSGEN = Path(__file__).resolve().parents[1] / "data" / "massgen-0.1.97"
NOW = 1_900_000_000.0


def _mgcoord_document(phase: str = "enforcement", winner: str | None = None) -> StatusDocument:
    usage = UsageInfo(prompt_tokens=10, completion_tokens=5, total_tokens=15)
    return StatusDocument(
        meta=StatusMeta(last_updated=1730678901.234, session_id="log_x", log_dir="/l", question="q",
                        start_time=1730678800.0, elapsed_seconds=101.234, instance_id="0badcafe"),
        coordination=StatusCoordination(phase=phase, active_agent="agent_b",  # type: ignore[arg-type]
                                        completion_percentage=65, is_final_presentation=False),
        agents={
            "agent_a": AgentInfo(status="voted", answer_count=1, latest_answer_label="agent1.1",
                                 vote_cast=VoteCast(voted_for_agent="agent_a", voted_for_label="agent1.1",
                                                    reason_preview="ok"),
                                 times_restarted=0, last_activity=1.0, error=None, usage=usage),
            "agent_b": AgentInfo(status="error", answer_count=0, latest_answer_label=None, vote_cast=None,
                                 times_restarted=1, last_activity=None,
                                 error=AgentErrorInfo(type="timeout", message="turn took too long", timestamp=1.0)),
        },
        results=StatusResults(votes={"agent1.1": 1}, winner=winner, final_answer_preview=None, usage=usage),
    )


def _write(path: Path, document: StatusDocument | dict[str, Any] | Path, *, age: float = 0.0) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(document, Path):
        shutil.copyfile(document, path)
    else:
        path.write_text(document.to_json() if isinstance(document, StatusDocument) else json.dumps(document))
    when = time.time() - age
    os.utime(path, (when, when))
    return str(path)


def test_mgcoord_schema_as_written_is_read_back(tmp_path: Path) -> None:
    path = _write(tmp_path / "status.json", _mgcoord_document())
    summary = summarize(path, shell_status="running", now=time.time())
    assert summary is not None
    assert (summary["phase"], summary["completion_percentage"], summary["active_agent"]) == ("enforcement", 65,
                                                                                              "agent_b")
    assert summary["agents"] == {"agent_a": "voted", "agent_b": "error"}
    assert summary["errors"] == {"agent_b": {"type": "timeout", "message": "turn took too long", "timestamp": 1.0}}
    assert summary["votes"] == {"agent1.1": 1} and summary["winner"] is None
    assert summary["tokens"] == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    assert summary["cost_usd"] is None and summary["last_updated"] == 1730678901.234
    assert (summary["stalled"], summary["outcome"]) == (False, "running")


def test_mgcoord_final_phase_and_outcome(tmp_path: Path) -> None:
    path = _write(tmp_path / "status.json", _mgcoord_document("completed", winner="agent_a"))
    answered = summarize(path, shell_status="stopped", now=NOW, printed=Printed(answer_file="/l/final/a/answer.txt"))
    assert answered is not None
    assert (answered["phase"], answered["outcome"], answered["completion_percentage"]) == ("completed", "answered", 100)
    assert answered["active_agent"] is None and answered["answer_file"] == "/l/final/a/answer.txt"
    path = _write(tmp_path / "status.json", _mgcoord_document("error"))
    failed = summarize(path, shell_status="failed", now=NOW, printed=Printed(error="no agent produced an answer"))
    assert failed is not None and (failed["phase"], failed["outcome"], failed["error"]) == (
        "error", "error", "no agent produced an answer")


@pytest.mark.parametrize(("recorded", "phase", "agents"), [
    ("status-waiting.json", "initial_answer", {"agent_a": "waiting", "agent_b": "waiting"}),
    ("status-enforcement.json", "enforcement", {"agent_a": "answered", "agent_b": "voted"}),
    ("status-presenting.json", "presentation", {"agent_a": "voted", "agent_b": "voted"}),
])
def test_massgen_while_running(tmp_path: Path, recorded: str, phase: str, agents: dict[str, str]) -> None:
    path = _write(tmp_path / "turn_1" / "attempt_1" / "status.json", MASSGEN / recorded)
    summary = summarize(path, shell_status="running", now=time.time())
    assert summary is not None
    assert (summary["phase"], summary["agents"], summary["outcome"]) == (phase, agents, "running")
    assert summary["cost_usd"] == 0.0 and summary["tokens"] is not None


def test_massgen_completed_run(tmp_path: Path) -> None:
    path = _write(tmp_path / "status.json", MASSGEN / "status-completed.json")
    summary = summarize(path, shell_status="stopped", now=NOW,
                        printed=Printed(answer_file="/runs/.massgen/turn_1/final/agent_a/answer.txt"))
    assert summary is not None
    assert (summary["phase"], summary["outcome"], summary["winner"]) == ("completed", "answered", "agent_a")
    assert summary["tokens"] == {"input_tokens": 600, "output_tokens": 150, "total_tokens": 750}
    assert summary["votes"] == {"agent1.1": 2} and summary["final_answer_preview"] == "The answer is 391."
    assert summary["completion_percentage"] == 100 and summary["stalled"] is False


def test_massgen_exit_0_without_an_answer_is_no_answer(tmp_path: Path) -> None:
    path = _write(tmp_path / "status.json", MASSGEN / "status-all-failed.json")
    summary = summarize(path, shell_status="stopped", now=NOW, printed=Printed(error="no successful agents"))
    assert summary is not None
    assert (summary["phase"], summary["outcome"], summary["winner"]) == ("error", "no_answer", None)
    assert summary["completion_percentage"] == 0 and summary["agents"] == {"agent_a": "waiting", "agent_b": "waiting"}


def test_massgen_killed_while_presenting_did_not_complete(tmp_path: Path) -> None:
    # MassGen says finish_reason "completed" before its presentation has ended.
    path = _write(tmp_path / "status.json", MASSGEN / "status-presenting.json")
    killed = summarize(path, shell_status="killed", now=NOW)
    timed_out = summarize(path, shell_status="killed", timed_out=True, now=NOW)
    assert killed is not None and (killed["phase"], killed["outcome"]) == ("interrupted", "interrupted")
    assert timed_out is not None and (timed_out["phase"], timed_out["outcome"]) == ("timeout", "timeout")


@pytest.mark.parametrize(("shell", "timed_out", "final", "answered", "expected"), [
    ("queued", False, None, False, "running"),
    ("running", False, "completed", True, "running"),
    ("stopped", False, "completed", True, "answered"),
    ("stopped", False, None, True, "answered"),
    ("stopped", False, None, False, "no_answer"),
    ("stopped", False, "completed", False, "no_answer"),
    ("failed", False, "timeout", True, "timeout"),
    ("failed", False, "error", False, "error"),
    ("failed", False, None, False, "error"),
    ("failed", False, "interrupted", False, "interrupted"),
    ("killed", False, "completed", False, "interrupted"),
    ("killed", True, None, False, "timeout"),
    ("lost", False, None, False, "error"),
])
def test_decide_outcome(shell: str, timed_out: bool, final: str | None, answered: bool, expected: str) -> None:
    assert decide_outcome(shell, timed_out=timed_out, final_phase=final, answered=answered) == expected


def test_an_ended_coordination_run_without_status_file_still_has_an_outcome(tmp_path: Path) -> None:
    missing = str(tmp_path / "status.json")
    assert summarize(missing, shell_status="running", now=NOW, coordination_run=True) is None
    assert summarize(None, shell_status="stopped", now=NOW) is None, "a plain shell has no summary"
    ended = summarize(None, shell_status="failed", now=NOW, coordination_run=True,
                      printed=Printed(error="Configuration error: bad"))
    assert ended is not None and (ended["outcome"], ended["phase"], ended["error"]) == (
        "error", "error", "Configuration error: bad")


def test_the_newest_attempt_is_followed(tmp_path: Path) -> None:
    first = _write(tmp_path / "log" / "turn_1" / "attempt_1" / "status.json", MASSGEN / "status-waiting.json")
    assert current_status_file(first) == first
    (tmp_path / "log" / "turn_1" / "attempt_2").mkdir()
    assert current_status_file(first) == first, "an attempt counts once its status.json exists"
    second = _write(tmp_path / "log" / "turn_1" / "attempt_2" / "status.json", MASSGEN / "status-enforcement.json")
    (tmp_path / "log" / "turn_1" / "attempt_x").mkdir()
    assert current_status_file(first) == second
    assert current_status_file(str(tmp_path / "status.json")) == str(tmp_path / "status.json")


def test_stalled_only_when_nothing_of_the_run_moves(tmp_path: Path) -> None:
    status = _write(tmp_path / "log" / "status.json", _mgcoord_document(), age=120)
    beside = tmp_path / "log" / "massgen.log"
    stdout = tmp_path / "stdout.log"
    for path in (beside, stdout):
        path.write_text("x")
        os.utime(path, (time.time() - 120, time.time() - 120))
    now = time.time()
    assert summarize(status, shell_status="running", now=now, activity=[str(stdout)])["stalled"] is True  # type: ignore[index]
    assert summarize(status, shell_status="running", now=now, stall_seconds=600)["stalled"] is False  # type: ignore[index]
    assert summarize(status, shell_status="stopped", now=now)["stalled"] is False  # type: ignore[index]
    stdout.write_text("still printing")
    assert summarize(status, shell_status="running", now=now, activity=[str(stdout)])["stalled"] is False  # type: ignore[index]
    beside.write_text("still logging")
    assert summarize(status, shell_status="running", now=now)["stalled"] is False  # type: ignore[index]


def test_a_presenting_massgen_run_is_never_stalled(tmp_path: Path) -> None:
    # MassGen writes nothing to status.json while its winner presents.
    presenting = _write(tmp_path / "log" / "status.json", MASSGEN / "status-presenting.json", age=600)
    voting = _write(tmp_path / "other" / "status.json", MASSGEN / "status-enforcement.json", age=600)
    assert summarize(presenting, shell_status="running", now=time.time())["stalled"] is False  # type: ignore[index]
    assert summarize(voting, shell_status="running", now=time.time())["stalled"] is True  # type: ignore[index]


@pytest.mark.timeout(10)
def test_files_a_job_may_name_cost_a_reader_nothing(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GB that costs no disk
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    not_finite = tmp_path / "nan.json"
    not_finite.write_text('{"meta": {"last_updated": NaN}, "coordination": {"phase": "enforcement"}}')
    for path in (fifo, "/dev/zero", huge, tmp_path, nested, tmp_path / "missing", "bad\0path"):
        assert summarize(str(path), shell_status="running", now=time.time()) is None, path
    assert math.isfinite(summarize(str(not_finite), shell_status="running", now=time.time())["last_updated"])  # type: ignore[index]
    assert current_status_file(str(fifo)) == str(fifo)
    named = "/x\0y/turn_1/attempt_1/status.json"
    assert current_status_file(named) == named
