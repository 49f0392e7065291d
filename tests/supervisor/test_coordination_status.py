"""A shell's status as a coordination run: announced paths, the summary, and paths a job may make up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor import Supervisor
from supervisor import layout as lay

STATUS = {
    "meta": {"last_updated": 1730678901.234},
    "coordination": {"phase": "enforcement", "active_agent": "agent_b", "completion_percentage": 65},
    "agents": {"agent_a": {"status": "voted", "error": None}},
    "results": {"votes": {"agent1.1": 1}, "winner": None, "final_answer_preview": None},
}


def test_status_carries_log_dir_and_summary(home: Supervisor, tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    log_dir.mkdir()
    (log_dir / "status.json").write_text(json.dumps(STATUS))
    sid = home.start_shell(f"echo LOG_DIR: {log_dir}; echo STATUS: {log_dir}/status.json")
    final = home.wait_shell(sid, timeout=10)
    assert final["log_dir"] == str(log_dir) and final["status_file"] == f"{log_dir}/status.json"
    summary = final["coordination"]
    assert summary["agents"] == {"agent_a": "voted"} and summary["stalled"] is False
    assert (summary["answer_file"], summary["error"]) == (None, None)
    # It ended by itself, exit 0, with no answer: the run is not a success.
    assert (summary["outcome"], summary["phase"]) == ("no_answer", "error")


def test_status_of_an_ended_run_carries_its_answer_file_or_error(home: Supervisor, tmp_path: Path) -> None:
    log_dir = tmp_path / "run"
    log_dir.mkdir()
    (log_dir / "status.json").write_text(json.dumps(STATUS))
    answer = log_dir / "final" / "agent_a" / "answer.txt"
    won = home.start_shell(f"echo LOG_DIR: {log_dir}; echo STATUS: {log_dir}/status.json; echo WINNER: agent_a; "
                           f"echo ANSWER_FILE: {answer}; echo COMPLETED: 2 agents, 1.0s total")
    failed = home.start_shell(f"echo LOG_DIR: {log_dir}; echo 'ERROR: no agent produced an answer'; exit 2")
    summary = home.wait_shell(won, timeout=10)["coordination"]
    assert (summary["answer_file"], summary["outcome"]) == (str(answer), "answered")
    summary = home.wait_shell(failed, timeout=10)["coordination"]
    assert (summary["answer_file"], summary["error"], summary["outcome"]) == (
        None, "no agent produced an answer", "error")
    assert not os.path.exists(home.layout.file(won, lay.PRINTED)), "reads write nothing"



def test_a_coordination_runs_monitor_keeps_what_it_printed_and_reads_write_nothing(home: Supervisor,
                                                                                     tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
    run = home.start_coordination(demo, "What is 17 * 23?", cwd=tmp_path)
    final = home.wait_shell(run, timeout=60)
    record = home.layout.file(run, lay.PRINTED)
    kept = lay.read_json(record)
    assert kept["answer_file"] == final["coordination"]["answer_file"] is not None
    assert kept["log_dir"] == final["log_dir"]
    before = os.stat(record).st_mtime_ns
    home.list_shells()
    home.get_shell_status(run)
    assert os.stat(record).st_mtime_ns == before

def test_a_massgen_restart_is_followed_to_its_newest_attempt(home: Supervisor, tmp_path: Path) -> None:
    log_dir = tmp_path / "log_1"
    first = log_dir / "turn_1" / "attempt_1" / "status.json"
    second = log_dir / "turn_1" / "attempt_2" / "status.json"
    for path, phase in ((first, "initial_answer"), (second, "enforcement")):
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({**STATUS, "coordination": {"phase": phase}}))
    sid = home.start_shell(f"echo LOG_DIR: {log_dir}; echo STATUS: {first}")
    final = home.wait_shell(sid, timeout=10)
    assert final["status_file"] == str(second)


@pytest.mark.timeout(60)
def test_a_printed_status_path_never_hangs_nor_exhausts_a_reader(home: Supervisor, tmp_path: Path) -> None:
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    huge = tmp_path / "huge"
    with open(huge, "wb") as f:
        f.truncate(1 << 30)
    shells = [home.start_shell(f'echo "STATUS: {path}"; sleep 30') for path in (fifo, "/dev/zero", huge, tmp_path)]
    ended = home.start_shell(f'echo "STATUS: {fifo}"')
    home.wait_shell(ended, timeout=10)
    listed = {s["shell_id"]: s for s in home.list_shells()}
    assert all(listed[sid]["status"] == "running" and listed[sid]["coordination"] is None for sid in shells)
    assert listed[ended]["status_file"] == str(fifo)
    env = {**os.environ, "MGSUP_HOME": str(home.home)}
    for verb in (["list"], ["status"], ["status", shells[0]], ["kill", shells[0]], ["clean"]):
        done = subprocess.run([sys.executable, "-m", "supervisor", *verb], env=env, capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 0, (verb, done.stderr)
