"""Coordination runs under the supervisor: tree kill of agents, LOG_DIR/STATUS discovery, stall detection,
and a status.json summary that never raises."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from supervisor import InvalidRequest, Supervisor, start_shell, wait_shell
from supervisor.automation.summary import summarize

SLEEPY_AGENT = """
import subprocess, sys, time
# A grandchild in its own session: the kill must reach it too.
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", sys.argv[1]], start_new_session=True)
time.sleep(120)
"""

# Prints the automation lines, then writes status.json: every `period` seconds, or once when period is 0.
STATUS_WRITER = """
import json, os, sys, time
log_dir, period = sys.argv[1], float(sys.argv[2])
os.makedirs(log_dir, exist_ok=True)
status = os.path.join(log_dir, "status.json")
print("LOG_DIR: " + log_dir)
print("STATUS: " + status, flush=True)
for n in range(100000):
    doc = {"meta": {"last_updated": time.time()},
           "coordination": {"phase": "initial_answer", "active_agent": "a", "completion_percentage": 10},
           "agents": {"a": {"status": "streaming", "error": None,
                            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}},
                      "b": {"status": "error", "error": {"type": "error", "message": "boom", "timestamp": 1.0}}},
           "results": {"votes": {"agent1.1": 1}, "winner": None, "final_answer_preview": None}}
    with open(status + ".tmp", "w") as f:
        json.dump(doc, f)
    os.replace(status + ".tmp", status)
    if period == 0:
        break
    time.sleep(period)
time.sleep(120)
"""


def _marked(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(p.info["cmdline"] or []):
            found.append(p)
    return found


def _status_job(tmp_path: Path, period: float) -> list[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "status_writer.py"
    script.write_text(STATUS_WRITER)
    return [sys.executable, str(script), str(tmp_path / "logs" / "run1"), str(period)]


# -- killing a coordination run -------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_killing_a_coordination_shell_kills_its_agents(home: Supervisor, tmp_path: Path,
                                                       wait_for: Callable[..., Any]) -> None:
    marker = f"agent-marker-{os.getpid()}-{tmp_path.name}"
    agent = tmp_path / "sleepy_agent.py"
    agent.write_text(SLEEPY_AGENT)
    config = tmp_path / "slow.yaml"
    config.write_text(yaml.safe_dump({
        "agents": [{"id": f"agent_{n}", "backend": {"type": "command",
                                                   "command": [sys.executable, str(agent), marker]}}
                   for n in ("a", "b")],
        "timeout_settings": {"agent_timeout_seconds": 100, "orchestrator_timeout_seconds": 110},
    }))
    shell_id = home.start_coordination(config, "Take your time", cwd=tmp_path)
    # Two agents, each with a grandchild in its own session.
    wait_for(lambda: len(_marked(marker)) >= 4, timeout=20, what="agents and their grandchildren")
    status = wait_for(lambda: (s := home.get_shell_status(shell_id))["coordination"] and s, what="status.json")
    assert status["status"] == "running"
    assert set(status["coordination"]["agents"]) == {"agent_a", "agent_b"}

    answer = home.kill_shell(shell_id, grace=3)

    assert answer == {"shell_id": shell_id, "status": "killed", "signal": "SIGTERM"}
    assert _marked(marker) == []
    final = home.get_shell_status(shell_id)
    assert final["status"] in ("killed", "failed")  # mgcoord may finish its SIGTERM exit (code 4) first
    assert final["coordination"]["stalled"] is False


# -- any job that prints the automation lines -----------------------------------------------------

@pytest.mark.timeout(30)
def test_plain_command_with_automation_lines_gets_coordination_status(home: Supervisor, tmp_path: Path,
                                                                      wait_for: Callable[..., Any]) -> None:
    shell_id = home.start_shell(_status_job(tmp_path, 0.2), cwd=tmp_path)
    log_dir = tmp_path / "logs" / "run1"

    status = wait_for(lambda: (s := home.get_shell_status(shell_id))["coordination"] and s, what="summary")

    assert status["log_dir"] == str(log_dir)
    assert status["status_file"] == str(log_dir / "status.json")
    summary = status["coordination"]
    assert summary["phase"] == "initial_answer"
    assert summary["completion_percentage"] == 10
    assert summary["agents"] == {"a": "streaming", "b": "error"}
    assert summary["errors"] == {"b": {"type": "error", "message": "boom", "timestamp": 1.0}}
    assert summary["tokens"] == {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}
    assert summary["votes"] == {"agent1.1": 1}
    assert summary["stalled"] is False
    home.kill_shell(shell_id, grace=1)


# -- stall detection ------------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_a_run_whose_status_file_stops_changing_is_stalled(sup_factory: Callable[..., Supervisor], tmp_path: Path,
                                                           wait_for: Callable[..., Any]) -> None:
    sup = sup_factory(stall_seconds=0.5)
    quiet = sup.start_shell(_status_job(tmp_path / "quiet", 0), cwd=tmp_path)
    busy = sup.start_shell(_status_job(tmp_path / "busy", 0.1), cwd=tmp_path)

    # Watching, with no file changing, still sees the stall (the periodic re-read).
    for status in sup.watch(quiet, timeout=10):
        if status["coordination"] and status["coordination"]["stalled"]:
            break
    else:
        pytest.fail("watch ended without reporting the stall")

    assert sup.get_shell_status(quiet)["status"] == "running"
    assert sup.get_shell_status(busy)["coordination"]["stalled"] is False
    # The threshold belongs to the Supervisor: with the default (60 s) the same run is not stalled.
    assert sup_factory().get_shell_status(quiet)["coordination"]["stalled"] is False
    for shell_id in (quiet, busy):
        sup.kill_shell(shell_id, grace=1)
    assert sup.get_shell_status(quiet)["coordination"]["stalled"] is False  # only a running job stalls


@pytest.mark.timeout(30)
def test_wait_shell_kills_a_stalled_run(sup_factory: Callable[..., Supervisor], tmp_path: Path) -> None:
    sup = sup_factory(stall_seconds=0.5)
    shell_id = sup.start_shell(_status_job(tmp_path, 0), cwd=tmp_path)

    final = sup.wait_shell(shell_id, timeout=15, kill_on_stall=True)

    assert final["status"] == "killed"
    assert "stalled" in final["message"] and "0.5 s" in final["message"]
    assert sup.get_shell_status(shell_id)["status"] == "killed"


@pytest.mark.timeout(30)
def test_module_level_wait_shell_kills_a_stalled_run(home: Supervisor, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGSUP_STALL_SECONDS", "0.5")
    shell_id = start_shell(_status_job(tmp_path, 0), cwd=tmp_path)

    final = wait_shell(shell_id, timeout=15, kill_on_stall=True)

    assert final["status"] == "killed" and "stalled" in final["message"]


@pytest.mark.timeout(30)
def test_kill_on_stall_leaves_a_healthy_run_alone(sup_factory: Callable[..., Supervisor], tmp_path: Path) -> None:
    sup = sup_factory(stall_seconds=1.0)
    shell_id = sup.start_shell(_status_job(tmp_path, 0.1), cwd=tmp_path)

    with pytest.raises(TimeoutError):
        sup.wait_shell(shell_id, timeout=2.5, kill_on_stall=True)

    assert sup.get_shell_status(shell_id)["status"] == "running"
    sup.kill_shell(shell_id, grace=1)


def test_stall_threshold_comes_from_argument_then_environment(home: Supervisor,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MGSUP_STALL_SECONDS", raising=False)
    assert Supervisor(home.home).stall_seconds == 60
    monkeypatch.setenv("MGSUP_STALL_SECONDS", "2.5")
    assert Supervisor(home.home).stall_seconds == 2.5
    assert Supervisor(home.home, stall_seconds=7).stall_seconds == 7


@pytest.mark.parametrize("raw", ["soon", "0", "-3", "nan"])
def test_a_bad_stall_threshold_in_the_environment_is_refused(home: Supervisor, monkeypatch: pytest.MonkeyPatch,
                                                             raw: str) -> None:
    monkeypatch.setenv("MGSUP_STALL_SECONDS", raw)
    with pytest.raises(InvalidRequest, match=f"MGSUP_STALL_SECONDS must be a number of seconds > 0, got '{raw}'"):
        Supervisor(home.home)


@pytest.mark.parametrize("value", [0, -1, "60", True])
def test_a_bad_stall_threshold_argument_is_refused(home: Supervisor, value: Any) -> None:
    with pytest.raises(InvalidRequest, match="stall_seconds must be"):
        Supervisor(home.home, stall_seconds=value)


# -- the summary never raises ---------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b'{"coordination": {"phase": "enf', b"[1, 2]", b"\xff\xfe", b"null",
                                     b'{"coordination": 3, "agents": [1], "results": "x", "meta": null}',
                                     b'{"agents": {"a": null, "b": {"error": null, "usage": {"prompt_tokens": "x"}}}}'])
def test_summary_of_a_damaged_status_file_does_not_raise(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "status.json"
    path.write_bytes(content)

    summary = summarize(str(path), shell_status="running", stall_seconds=60, now=time.time())

    if summary is not None:
        assert summary["tokens"] is None
        assert summary["stalled"] is False
        assert isinstance(summary["agents"], dict) and isinstance(summary["votes"], dict)


def test_summary_of_a_missing_status_file_is_none(tmp_path: Path) -> None:
    assert summarize(str(tmp_path / "nowhere.json"), shell_status="running", now=time.time()) is None
    assert summarize(None, shell_status="running", now=time.time()) is None


def test_summary_sums_agent_usage_when_the_run_reports_no_total(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"agents": {
        "a": {"status": "answered", "usage": {"prompt_tokens": 1, "completion_tokens": 2}},
        "b": {"status": "voted", "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 31}},
        "c": {"status": "voted", "usage": None}}}))

    summary = summarize(str(path), shell_status="stopped", now=time.time())

    assert summary is not None
    assert summary["tokens"] == {"input_tokens": 11, "output_tokens": 22, "total_tokens": 34}


def test_summary_of_a_file_replaced_while_read_is_always_whole(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"coordination": {"completion_percentage": 0}}))
    stop = threading.Event()

    def replace_forever() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            tmp = tmp_path / "status.json.tmp"
            tmp.write_text(json.dumps({"coordination": {"completion_percentage": n}, "pad": "x" * 20000}))
            os.replace(tmp, path)

    writer = threading.Thread(target=replace_forever)
    writer.start()
    try:
        seen = [summarize(str(path), shell_status="running", now=time.time()) for _ in range(300)]
    finally:
        stop.set()
        writer.join()
    assert all(s is not None and isinstance(s["completion_percentage"], int) for s in seen)


def test_stalled_follows_the_file_age_and_the_threshold(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text("{}")
    written = path.stat().st_mtime

    def stalled(age: float, running: bool = True) -> bool:
        summary = summarize(str(path), shell_status="running" if running else "stopped", stall_seconds=10,
                            now=written + age)
        assert summary is not None
        return bool(summary["stalled"])

    assert stalled(9.5) is False
    assert stalled(10.5) is True
    assert stalled(10.5, running=False) is False
