"""What the supervisor learns of a coordination run: announced paths and the status.json summary."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from supervisor import Supervisor
from supervisor import layout as lay
from supervisor.coordination import HEAD_BLOCK, Printed, announced_paths, parse_outcome, printed, summarize

STATUS = {
    "meta": {"last_updated": 1730678901.234, "session_id": "log_x", "log_dir": "/l", "question": "q",
             "start_time": 1730678800.0, "elapsed_seconds": 101.234},
    "coordination": {"phase": "enforcement", "active_agent": "agent_b", "completion_percentage": 65,
                     "is_final_presentation": False},
    "agents": {
        "agent_a": {"status": "voted", "answer_count": 1, "error": None},
        "agent_b": {"status": "error", "answer_count": 0,
                    "error": {"type": "timeout", "message": "turn took too long", "timestamp": 1.0}},
    },
    "results": {"votes": {"agent1.1": 1}, "winner": None, "final_answer_preview": None},
}


def test_announced_paths(tmp_path: Path) -> None:
    out = tmp_path / "stdout.log"
    assert announced_paths(out) == (None, None)
    out.write_text("noise\nLOG_DIR: /runs/log_1\nSTATUS: /runs/log_1/status.json\nLOG_DIR: /other\n")
    assert announced_paths(out) == ("/runs/log_1", "/runs/log_1/status.json")
    out.write_text("LOG_DIR: /runs/log_2\n")
    assert announced_paths(out) == ("/runs/log_2", "/runs/log_2/status.json")
    out.write_text("x" * (HEAD_BLOCK + 10) + "\nLOG_DIR: /runs/log_3\r\nSTATUS: /runs/log_3/s.json\n")
    assert announced_paths(out) == ("/runs/log_3", "/runs/log_3/s.json")


def test_a_line_still_being_written_is_not_read_while_running(tmp_path: Path) -> None:
    out = tmp_path / "stdout.log"
    out.write_text("LOG_DIR: /runs/lo")
    assert announced_paths(out) == (None, None)
    assert announced_paths(out, ended=True) == ("/runs/lo", "/runs/lo/status.json")


def test_parse_outcome() -> None:
    tail = "QUESTION: q\nWINNER: agent_a\nANSWER_FILE: /l/final/agent_a/answer.txt\nnoise: x\nCOMPLETED: 2 agents\n"
    assert parse_outcome(tail) == {"WINNER": "agent_a", "ANSWER_FILE": "/l/final/agent_a/answer.txt",
                                   "COMPLETED": "2 agents"}


def test_printed_is_recorded_once_the_job_has_ended(tmp_path: Path) -> None:
    out, record = tmp_path / "stdout.log", str(tmp_path / "printed.json")
    out.write_text("LOG_DIR: /l\nSTATUS: /l/status.json\nERROR: no agent answered\nCOMPLETED: 2 agents, 1.0s total\n")
    assert printed(out, ended=False, record=record) == Printed("/l", "/l/status.json")
    assert not os.path.exists(record), "nothing is recorded while the job may still print"
    found = printed(out, ended=True, record=record)
    assert found == Printed("/l", "/l/status.json", None, "no agent answered")
    assert lay.read_json(record) == {"log_dir": "/l", "status_file": "/l/status.json", "answer_file": None,
                                     "error": "no agent answered"}
    out.write_text("")
    assert printed(out, ended=True, record=record) == found, "read back from the record, not the log"


def test_printed_without_a_writable_record_reads_the_log(tmp_path: Path) -> None:
    out = tmp_path / "stdout.log"
    out.write_text("ANSWER_FILE: /l/final/a/answer.txt\n")
    record = str(tmp_path / "missing-folder" / "printed.json")
    assert printed(out, ended=True, record=record).answer_file == "/l/final/a/answer.txt"
    assert not os.path.exists(record)


def test_summarize(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    assert summarize(None, running=True) is None
    assert summarize(str(path), running=True) is None
    path.write_text("{half")
    assert summarize(str(path), running=True) is None
    path.write_text(json.dumps(STATUS))
    summary = summarize(str(path), running=True, now=time.time())
    assert summary is not None
    assert summary["phase"] == "enforcement" and summary["completion_percentage"] == 65
    assert summary["active_agent"] == "agent_b" and summary["winner"] is None
    assert summary["agents"] == {"agent_a": "voted", "agent_b": "error"}
    assert summary["errors"] == {"agent_b": STATUS["agents"]["agent_b"]["error"]}  # type: ignore[index]
    assert summary["last_updated"] == 1730678901.234
    assert summary["stalled"] is False


def test_stalled_only_while_running(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text(json.dumps({**STATUS, "meta": {"last_updated": 1000.0}}))
    old = time.time() - 120
    os.utime(path, (old, old))
    assert summarize(str(path), running=True)["stalled"] is True  # type: ignore[index]
    assert summarize(str(path), running=False)["stalled"] is False  # type: ignore[index]
    assert summarize(str(path), running=True, stall_seconds=600)["stalled"] is False  # type: ignore[index]


def test_status_carries_log_dir_and_summary(home: Supervisor, tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    log_dir.mkdir()
    (log_dir / "status.json").write_text(json.dumps(STATUS))
    sid = home.start_shell(f"echo LOG_DIR: {log_dir}; echo STATUS: {log_dir}/status.json")
    final = home.wait_shell(sid, timeout=10)
    assert final["log_dir"] == str(log_dir) and final["status_file"] == f"{log_dir}/status.json"
    assert final["coordination"]["phase"] == "enforcement"
    assert final["coordination"]["stalled"] is False
    assert final["coordination"]["answer_file"] is None and final["coordination"]["error"] is None


def test_status_of_an_ended_run_carries_its_answer_file_or_error(home: Supervisor, tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    log_dir.mkdir()
    (log_dir / "status.json").write_text(json.dumps(STATUS))
    answer = log_dir / "final" / "agent_a" / "answer.txt"
    won = home.start_shell(f"echo LOG_DIR: {log_dir}; echo STATUS: {log_dir}/status.json; echo WINNER: agent_a; "
                           f"echo ANSWER_FILE: {answer}; echo COMPLETED: 2 agents, 1.0s total")
    failed = home.start_shell(f"echo LOG_DIR: {log_dir}; echo 'ERROR: no agent produced an answer'; exit 2")
    assert home.wait_shell(won, timeout=10)["coordination"]["answer_file"] == str(answer)
    summary = home.wait_shell(failed, timeout=10)["coordination"]
    assert (summary["answer_file"], summary["error"]) == (None, "no agent produced an answer")
    assert os.path.exists(home.layout.file(won, lay.PRINTED))
