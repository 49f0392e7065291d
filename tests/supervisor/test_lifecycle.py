"""The lifecycle transitions, as pure functions: no process, no file."""

from __future__ import annotations

import os
import signal

import pytest

from supervisor import lifecycle
from supervisor.models import State


def exit_status(code: int) -> int:
    return code << 8


def signal_status(sig: int) -> int:
    return sig


def test_new_admitted_and_queued() -> None:
    admitted = lifecycle.new(100.0, queued=False)
    queued = lifecycle.new(100.0, queued=True)
    assert admitted["status"] == "starting" and admitted["queued_at"] is None
    assert queued["status"] == "queued" and queued["queued_at"] == 100.0
    for state in (admitted, queued):
        assert state["exit_code"] is None and state["pid"] is None and state["timed_out"] is False
        State.model_validate(state)


def test_running_records_pids_and_start() -> None:
    state = lifecycle.running(lifecycle.new(1.0, queued=False), 2.0, pid=10, pid_start=5, monitor_pid=9,
                              monitor_start=4)
    assert state["status"] == "running"
    assert (state["start_time"], state["pid"], state["pid_start"], state["monitor_pid"]) == (2.0, 10, 5, 9)
    assert not lifecycle.is_ended(state)


@pytest.mark.parametrize(("wait_status", "killed", "timed_out", "status", "code", "sig"), [
    (exit_status(0), False, False, "stopped", 0, None),
    (exit_status(3), False, False, "failed", 3, None),
    (signal_status(signal.SIGKILL), False, False, "killed", -9, "SIGKILL"),
    (signal_status(signal.SIGTERM), True, False, "killed", -15, "SIGTERM"),
    # A job that traps SIGTERM and exits 0 was still killed on request.
    (exit_status(0), True, False, "killed", 0, None),
    (signal_status(signal.SIGTERM), False, True, "killed", -15, "SIGTERM"),
])
def test_exited(wait_status: int, killed: bool, timed_out: bool, status: str, code: int, sig: str | None) -> None:
    start = lifecycle.running(lifecycle.new(1.0, queued=False), 2.0, pid=10, pid_start=5, monitor_pid=9,
                              monitor_start=4)
    end = lifecycle.exited(start, 5.0, wait_status, killed=killed, timed_out=timed_out,
                           rusage={"user_seconds": 0.5})
    assert (end["status"], end["exit_code"], end["signal"], end["timed_out"]) == (status, code, sig, timed_out)
    assert end["end_time"] == 5.0 and end["start_time"] == 2.0 and end["rusage"] == {"user_seconds": 0.5}
    assert lifecycle.is_ended(end)
    State.model_validate(end)


def test_exited_decodes_real_wait_statuses() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(42)
    _, status = os.waitpid(pid, 0)
    assert lifecycle.exited(lifecycle.new(0, queued=False), 1, status, killed=False, timed_out=False)[
        "exit_code"] == 42


def test_not_started_keeps_start_or_sets_it() -> None:
    state = lifecycle.not_started(lifecycle.new(1.0, queued=False), 3.0, "cannot start: No such file")
    assert (state["status"], state["exit_code"], state["start_time"], state["end_time"]) == ("failed", 127, 3.0, 3.0)
    assert state["message"] == "cannot start: No such file"
    assert lifecycle.not_started(lifecycle.new(1.0, queued=False), 3.0, "x", exit_code=126)["exit_code"] == 126


def test_removed_from_queue_lost_and_force_killed() -> None:
    queued = lifecycle.new(1.0, queued=True)
    removed = lifecycle.removed_from_queue(queued, 2.0)
    assert (removed["status"], removed["message"], removed["exit_code"]) == ("killed", "Removed from queue", None)
    lost = lifecycle.lost(queued, 2.0, "monitor died")
    assert (lost["status"], lost["message"], lost["end_time"]) == ("lost", "monitor died", 2.0)
    forced = lifecycle.force_killed(queued, 2.0, signal.SIGKILL)
    assert (forced["status"], forced["exit_code"], forced["signal"]) == ("killed", -9, "SIGKILL")
    assert all(lifecycle.is_ended(s) for s in (removed, lost, forced))


def test_transitions_do_not_mutate_their_input() -> None:
    state = lifecycle.new(1.0, queued=True)
    before = dict(state)
    lifecycle.removed_from_queue(state, 2.0)
    lifecycle.lost(state, 2.0, "x")
    assert state == before


def test_signal_name() -> None:
    assert lifecycle.signal_name(signal.SIGINT) == "SIGINT"
    assert lifecycle.signal_name(200) == "SIG200"


def test_statuses_are_the_contract() -> None:
    assert lifecycle.STATUSES == ("queued", "running", "paused", "stopped", "failed", "killed", "lost")
    assert {"stopped", "failed", "killed", "lost"} == lifecycle.ENDED


def _ended(status: str, *, attempt: int = 1, **extra: object) -> lifecycle.State:
    return {**lifecycle.new(100.0, queued=False), "status": status, "attempt": attempt, "exit_code": 1, **extra}


@pytest.mark.parametrize(("ended", "retries", "again"), [
    (_ended("failed"), 1, True),
    (_ended("failed", attempt=2), 1, False),          # attempts used up
    (_ended("stopped"), 3, False),                    # it succeeded
    (_ended("killed", timed_out=True), 1, True),      # a timeout
    (_ended("killed", signal="SIGSEGV"), 1, True),    # a crash
    (_ended("killed", kill_requested=True), 5, False),  # kill_shell: never again
    (_ended("killed", budget_exceeded={"limit": "max_tokens", "budget": 10, "used": 11}), 5, False),  # its budget
    (_ended("failed"), 0, False),
])
def test_which_attempts_run_again(ended: lifecycle.State, retries: int, again: bool) -> None:
    assert lifecycle.should_retry(ended, retries) is again


def test_between_attempts_the_shell_runs_without_a_job() -> None:
    ended = lifecycle.exited(lifecycle.running(lifecycle.new(100.0, queued=False), 101.0, pid=7, pid_start=1,
                                               monitor_pid=8, monitor_start=2), 105.0, signal_status(signal.SIGKILL),
                             killed=False, timed_out=False)
    waiting = lifecycle.retrying(ended, 2, 1.5)
    assert (waiting["status"], waiting["attempt"], waiting["pid"], waiting["exit_code"]) == ("running", 2, None, None)
    assert waiting["message"] == "attempt 1 was ended by SIGKILL; attempt 2 of 3 starts in 1.5 s"
    again = lifecycle.running(waiting, 107.0, pid=9, pid_start=3, monitor_pid=8, monitor_start=2)
    assert again["start_time"] == 101.0, "the shell started with its first attempt"
    final = lifecycle.last_attempt(lifecycle.exited(again, 108.0, exit_status(0), killed=False, timed_out=False), 2)
    assert (final["status"], final["message"]) == ("stopped", "attempt 2 of 3; the earlier one failed")
    killed = lifecycle.stopped_between_attempts(waiting, 106.0)
    assert (killed["status"], killed["kill_requested"]) == ("killed", True)
    for state in (waiting, again, final, killed):
        State.model_validate(state)


def test_attempts_that_spent_the_budget_end_the_shell() -> None:
    figure = {"limit": "max_tokens", "budget": 1000, "used": 1200}
    final = lifecycle.budget_spent(lifecycle.last_attempt(_ended("failed", attempt=2), 3), figure)
    assert (final["status"], final["exit_code"], final["budget_exceeded"]) == ("failed", 1, figure)
    assert final["message"] == ("attempt 2 of 4; the earlier one failed; not run again: its attempts passed the "
                                "budget (max_tokens 1000, used 1200)")
    waiting = lifecycle.retrying(_ended("failed"), 1, 0.0, output_start=512)
    assert (waiting["output_start"], State.model_validate(waiting).output_start) == (512, 512)
    State.model_validate(final)


def test_paused_and_resumed() -> None:
    running = lifecycle.running(lifecycle.new(100.0, queued=False), 101.0, pid=7, pid_start=1, monitor_pid=8,
                                monitor_start=2)
    paused = lifecycle.paused(running, 102.0)
    assert (paused["status"], paused["paused_at"]) == ("paused", 102.0)
    assert lifecycle.resumed(paused) == {**running, "paused_at": None}
    ended = lifecycle.exited(paused, 103.0, signal_status(signal.SIGTERM), killed=True, timed_out=False)
    assert (ended["status"], ended["paused_at"]) == ("killed", None)
    State.model_validate(paused)
