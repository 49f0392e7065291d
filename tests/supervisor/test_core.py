"""Supervisor behaviour across processes and races: readers during starts, kills during exits, clean."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor import InvalidRequest, Supervisor


@pytest.mark.timeout(60)
def test_readers_never_see_a_starting_shell_as_lost(home: Supervisor) -> None:
    script = textwrap.dedent("""
        from supervisor import Supervisor
        sup = Supervisor(max_concurrent=4)
        for _ in range(30):
            sup.start_shell("true", queue=True)
    """)
    starter = subprocess.Popen([sys.executable, "-c", script])
    seen: list[tuple[str, str, str | None]] = []
    while starter.poll() is None:
        seen += [(s["shell_id"], s["status"], s["message"]) for s in home.list_shells()]
    assert starter.wait() == 0
    lost = [entry for entry in seen if entry[1] == "lost"]
    assert not lost, lost[:3]
    for shell in home.list_shells():
        home.wait_shell(shell["shell_id"], timeout=20)
    assert {s["status"] for s in home.list_shells()} == {"stopped"}


@pytest.mark.timeout(30)
def test_kill_racing_with_a_natural_exit(home: Supervisor) -> None:
    for delay in ("0", "0.01", "0.05"):
        sid = home.start_shell(f"sleep {delay}")
        result = home.kill_shell(sid, grace=1)
        final = home.get_shell_status(sid)
        assert final["status"] in ("stopped", "killed")
        if result.get("message") == "Process already terminated":
            assert result["status"] == final["status"]
        else:
            assert result == {"shell_id": sid, "status": "killed", "signal": "SIGTERM"}
            assert final["status"] == "killed"


@pytest.mark.timeout(30)
def test_two_killers_at_once(home: Supervisor) -> None:
    sid = home.start_shell("sleep 30")
    results: list[dict[str, object]] = []
    threads = [threading.Thread(target=lambda: results.append(Supervisor(home.home).kill_shell(sid, grace=1)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    assert all(r["status"] == "killed" for r in results)
    assert home.get_shell_status(sid)["status"] == "killed"


def test_kill_arguments_are_checked(home: Supervisor) -> None:
    sid = home.start_shell("sleep 30")
    with pytest.raises(InvalidRequest, match="unknown signal 'SIGNOPE'"):
        home.kill_shell(sid, signal="SIGNOPE")
    with pytest.raises(InvalidRequest, match=re.escape("grace must be zero or more seconds, got -1")):
        home.kill_shell(sid, grace=-1)
    assert home.get_shell_status(sid)["status"] == "running"
    assert home.kill_shell(sid, signal="SIGKILL", grace=0)["signal"] == "SIGKILL"
    assert home.get_shell_status(sid)["exit_code"] == -9


def test_clean(sup_factory: Callable[..., Supervisor], wait_for: Callable[..., Any]) -> None:
    sup = sup_factory(max_concurrent=1)
    ended = sup.start_shell("true")
    sup.wait_shell(ended, timeout=10)
    running = sup.start_shell("sleep 30")
    queued = sup.start_shell("true", queue=True)
    assert sup.clean() == [ended]
    assert not (sup.home / "shells" / ended).exists()
    assert [s["shell_id"] for s in sup.list_shells()] == [running, queued]
    assert sorted(sup.clean(everything=True)) == sorted([running, queued])
    assert sup.list_shells() == []
    assert os.listdir(sup.home / "queue") == []
    wait_for(lambda: os.listdir(sup.home / "running") == [], what="the slots to be given back")


def test_start_coordination_passes_the_suffix_as_instance_id(home: Supervisor, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("agents: []\n")
    sid = home.start_coordination(config, "What is 6 * 7?", cwd=tmp_path, name="coord")
    status = home.wait_shell(sid, timeout=30)
    command = status["command"]
    assert command[-5:] == ["--config", str(config), "--instance-id", sid[6:], "What is 6 * 7?"]
    assert "--automation" in command and status["name"] == "coord" and status["cwd"] == str(tmp_path)


def test_start_coordination_bad_input(home: Supervisor, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="question is empty"):
        home.start_coordination(tmp_path / "c.yaml", "  ")
    with pytest.raises(InvalidRequest, match=re.escape(f"config file not found: '{tmp_path}/c.yaml'")):
        home.start_coordination(tmp_path / "c.yaml", "q")
    with pytest.raises(InvalidRequest, match="cwd does not exist"):
        home.start_coordination("c.yaml", "q", cwd=tmp_path / "nope")
    assert not home.home.exists()
