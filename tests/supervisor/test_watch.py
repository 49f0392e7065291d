"""Following a shell by file watching: watch yields each change and ends; wait_shell blocks and times out."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from supervisor import Supervisor


@pytest.mark.timeout(30)
def test_watch_yields_changes_and_ends(sup_factory: Callable[..., Supervisor]) -> None:
    sup = sup_factory(max_concurrent=1)
    blocker = sup.start_shell("sleep 0.3")
    sid = sup.start_shell("sleep 0.3; exit 4", queue=True)
    seen = [s["status"] for s in sup.watch(sid, timeout=20)]
    assert seen[0] == "queued" and seen[-1] == "failed"
    assert "running" in seen
    assert seen.index("running") < len(seen) - 1
    assert sup.get_shell_status(blocker)["status"] == "stopped"


def test_watch_of_an_ended_shell_yields_once(home: Supervisor) -> None:
    sid = home.start_shell("true")
    final = home.wait_shell(sid, timeout=10)
    updates = list(home.watch(sid))
    assert updates == [final]


@pytest.mark.timeout(30)
def test_watch_follows_a_coordination_status_file(home: Supervisor, tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    status = log_dir / "status.json"
    script = (f"echo LOG_DIR: {log_dir}; echo STATUS: {status}; "
              + "; ".join(f"sleep 0.3; printf '%s' '{json.dumps({'coordination': {'phase': phase}})}' > {status}"
                          for phase in ("initial_answer", "enforcement", "completed")))
    sid = home.start_shell(script)
    phases = [(s["coordination"] or {}).get("phase") for s in home.watch(sid, timeout=20)]
    assert [p for p in dict.fromkeys(phases) if p] == ["initial_answer", "enforcement", "completed"]


@pytest.mark.timeout(30)
def test_wait_shell_returns_when_killed_elsewhere(home: Supervisor) -> None:
    sid = home.start_shell("sleep 30")
    killer = threading.Timer(0.3, lambda: Supervisor(home.home).kill_shell(sid, grace=1))
    killer.start()
    try:
        final = home.wait_shell(sid, timeout=20)
        assert final["status"] == "killed"
    finally:
        killer.join()


@pytest.mark.timeout(30)
def test_wait_shell_notices_a_dead_monitor(home: Supervisor) -> None:
    import psutil

    sid = home.start_shell("sleep 30")
    state = json.loads((home.home / "shells" / sid / "state.json").read_text())
    psutil.Process(state["monitor_pid"]).kill()
    assert home.wait_shell(sid, timeout=10)["status"] == "lost"


def test_wait_shell_timeout_zero(home: Supervisor) -> None:
    sid = home.start_shell("sleep 30")
    with pytest.raises(TimeoutError):
        home.wait_shell(sid, timeout=0)
    with pytest.raises(ValueError, match="timeout must be zero or more seconds"):
        home.wait_shell(sid, timeout=-1)
