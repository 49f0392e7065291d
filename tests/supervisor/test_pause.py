"""`Supervisor.pause` / `resume`: the whole tree stops and continues, the slot stays taken, the timeout waits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psutil
import pytest
from processes import tagged

from supervisor import LimitReached, Supervisor
from supervisor.errors import InvalidRequest

TREE = "sleep 30 & sleep 30 & (sleep 30 &) ; wait"



def _states(shell_id: str) -> set[str]:
    states = set()
    for p in tagged(shell_id):
        try:
            states.add(p.status())
        except psutil.Error:
            continue
    return states


def test_pause_stops_every_process_and_resume_continues_them(home: Supervisor,
                                                             wait_for: Callable[..., Any]) -> None:
    shell_id = home.start_shell(TREE)
    wait_for(lambda: len(tagged(shell_id)) == 4, what="the whole tree")
    paused = home.pause(shell_id)
    assert paused["status"] == "paused" and paused["pid"] is not None
    # A signal takes effect when its process is next scheduled: moments after the monitor sent it.
    wait_for(lambda: _states(shell_id) == {psutil.STATUS_STOPPED}, what="every process to stop")
    assert home.pause(shell_id)["status"] == "paused", "pausing twice changes nothing"
    assert [s["shell_id"] for s in home.list_shells("paused")] == [shell_id]
    resumed = home.resume(shell_id)
    assert resumed["status"] == "running"
    wait_for(lambda: psutil.STATUS_STOPPED not in _states(shell_id), what="every process to continue")
    assert len(tagged(shell_id)) == 4
    assert home.resume(shell_id)["status"] == "running", "resuming a running shell changes nothing"


def test_a_paused_shell_keeps_its_slot_and_can_be_killed(sup_factory: Callable[..., Supervisor]) -> None:
    sup = sup_factory(max_concurrent=1)
    shell_id = sup.start_shell(TREE)
    sup.pause(shell_id)
    with pytest.raises(LimitReached):
        sup.start_shell("true")
    assert sup.kill_shell(shell_id, grace=1.0) == {"shell_id": shell_id, "status": "killed", "signal": "SIGTERM"}
    assert tagged(shell_id) == []
    assert sup.wait_shell(sup.start_shell("true"), timeout=10)["status"] == "stopped"


def test_the_timeout_does_not_run_while_paused(home: Supervisor) -> None:
    shell_id = home.start_shell("sleep 30", timeout=1.0)
    home.pause(shell_id)
    with pytest.raises(TimeoutError):
        home.wait_shell(shell_id, timeout=1.5)
    assert home.get_shell_status(shell_id)["status"] == "paused"
    home.resume(shell_id)
    final = home.wait_shell(shell_id, timeout=20)
    assert (final["status"], final["timed_out"]) == ("killed", True)
    assert final["duration_seconds"] >= 1.5


def test_only_running_shells_pause(sup_factory: Callable[..., Supervisor]) -> None:
    sup = sup_factory(max_concurrent=1)
    done = sup.start_shell("true")
    sup.wait_shell(done, timeout=10)
    with pytest.raises(InvalidRequest, match=f"{done} is stopped: only a running shell can be paused"):
        sup.pause(done)
    with pytest.raises(InvalidRequest, match="is stopped"):
        sup.resume(done)
    sup.start_shell("sleep 30")
    queued = sup.start_shell("true", queue=True)
    with pytest.raises(InvalidRequest, match=f"{queued} is queued"):
        sup.pause(queued)
    assert sup.get_shell_status(queued)["status"] == "queued"
