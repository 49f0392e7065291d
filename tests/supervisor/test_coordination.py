"""What the supervisor learns of a coordination run: announced paths and the status.json summary."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from supervisor import Supervisor
from supervisor.coordination import announced_paths, summarize

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
