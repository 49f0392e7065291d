"""`Supervisor.kill_many` (the kill policy: queued first, then the rest in parallel); `clean` by reference and age."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from supervisor import Supervisor
from supervisor.errors import InvalidRequest, ShellNotFound


def test_kill_many_takes_queued_shells_out_first(sup_factory: Callable[..., Supervisor]) -> None:
    sup = sup_factory(max_concurrent=1)
    running = sup.start_shell("sleep 30", name="busy")
    queued = sup.start_shell("echo should never run", queue=True)
    done = sup.start_shell("true", queue=True)
    sup.kill_shell(done)
    results = sup.kill_many(["busy", queued[6:], done])
    assert [(r["shell_id"], r["outcome"]) for r in results] == [
        (queued, "dequeued"), (running, "killed"), (done, "already_ended")]
    assert results[1] == {"shell_id": running, "outcome": "killed", "status": "killed", "signal": "SIGTERM",
                          "message": None}
    # Had the running one gone first, its slot would have started the queued one.
    never = sup.get_shell_status(queued)
    assert never["pid"] is None and sup.get_shell_output(queued)["stdout"] == ""


def test_kill_many_all_kills_every_live_shell_in_parallel(home: Supervisor, tmp_path: Path,
                                                          wait_for: Callable[..., Any]) -> None:
    # Each job notes when SIGTERM reached it, then ignores it until SIGKILL after the grace period.
    job = f"trap 'date +%s.%N > {tmp_path}/$MGSUP_SHELL_ID' TERM; echo up; while :; do sleep 0.05; done"
    ids = [home.start_shell(job) for _ in range(3)]
    for shell_id in ids:
        wait_for(lambda shell_id=shell_id: home.get_shell_output(shell_id)["stdout"], what="the trap")
    results = home.kill_many("all", grace=1.0)
    assert sorted(r["shell_id"] for r in results) == sorted(ids)
    assert {r["outcome"] for r in results} == {"killed"}
    # In parallel: every job had its SIGTERM before the first of them was gone.
    warned = [float((tmp_path / shell_id).read_text()) for shell_id in ids]
    ended = [datetime.fromisoformat(home.get_shell_status(shell_id)["end_time"]).timestamp() for shell_id in ids]
    assert max(warned) < min(ended)
    assert home.kill_many("all") == []


def test_kill_many_resolves_everything_before_killing(home: Supervisor) -> None:
    shell_id = home.start_shell("sleep 30")
    with pytest.raises(ShellNotFound, match="no shell 'nope'"):
        home.kill_many([shell_id, "nope"])
    with pytest.raises(InvalidRequest, match="unknown signal"):
        home.kill_many([shell_id], signal="SIGNOPE")
    with pytest.raises(InvalidRequest, match="targets must be a list of shell references or 'all'"):
        home.kill_many(shell_id)
    assert home.get_shell_status(shell_id)["status"] == "running"


def test_clean_by_reference_refuses_a_live_shell_and_removes_nothing(home: Supervisor) -> None:
    done = home.start_shell("true", name="done")
    home.wait_shell(done, timeout=10)
    live = home.start_shell("sleep 30", name="live")
    with pytest.raises(InvalidRequest, match=f"not ended: {live} \\(running\\); kill first"):
        home.clean(["done", "live"])
    assert {s["shell_id"] for s in home.list_shells()} == {done, live}
    assert home.clean(["done"]) == [done]
    assert home.clean(["live"], everything=True) == [live]
    assert home.list_shells() == []


def test_clean_older_than_keeps_what_ended_recently(home: Supervisor) -> None:
    ended = home.start_shell("true")
    home.wait_shell(ended, timeout=10)
    live = home.start_shell("sleep 30")
    assert home.clean(older_than=3600) == []
    later = Supervisor(home.home, clock=lambda: time.time() + 7200)
    assert later.clean(older_than=3600) == [ended]
    assert [s["shell_id"] for s in home.list_shells()] == [live]
