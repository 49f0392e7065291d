"""The shell lifecycle as pure functions over the plain dict stored in state.json.

Stdlib only: the monitor writes states with these functions, the library reads them back through
the pydantic model in `models.py`. Statuses: `starting` (internal: admitted, monitor not yet
running; shown as `queued`), `queued`, `running`, `paused` (its tree stopped, its slot kept), and
the ended ones.
"""

from __future__ import annotations

import os

# Annotations only: importing `typing` at run time would slow the monitor's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    State = dict[str, Any]

ENDED = frozenset({"stopped", "failed", "killed", "lost"})
# A shell whose monitor looks after a job (running, or stopped by `pause`): it holds a slot.
SUPERVISED = frozenset({"running", "paused"})
# The longest timeout, grace or wait (ten years): deadlines and select() overflow not far beyond.
MAX_SECONDS = 10 * 366 * 86400.0
# The most times a failed job is run again (start_shell's `retries`).
MAX_RETRIES = 1000
# How long a stopped job gets between SIGTERM and SIGKILL when nobody said (timeouts, kill requests
# that could not be written).
DEFAULT_GRACE = 5.0
STATUSES = ("queued", "running", "paused", "stopped", "failed", "killed", "lost")
# The statuses of a shell that has not ended: it may still run, and a kill acts on it.
LIVE = ("queued", "running", "paused")


def new(now: float, *, queued: bool) -> State:
    """The state of a shell that was just admitted (`queued=False`) or put in the queue."""
    return {
        "status": "queued" if queued else "starting",
        "created": now,
        "queued_at": now if queued else None,
        "start_time": None,
        "end_time": None,
        "pid": None,
        "pid_start": None,
        "monitor_pid": None,
        "monitor_start": None,
        "exit_code": None,
        "signal": None,
        "timed_out": False,
        "kill_requested": False,
        "rusage": None,
        "message": None,
        "attempt": 1,
        "paused_at": None,
    }


def running(state: State, now: float, *, pid: int, pid_start: int | None, monitor_pid: int,
            monitor_start: int | None) -> State:
    """The state once the job (or a new attempt of it) runs; the shell's start time is its first attempt's."""
    return {**state, "status": "running", "start_time": state.get("start_time") or now, "pid": pid,
            "pid_start": pid_start, "monitor_pid": monitor_pid, "monitor_start": monitor_start}


def paused(state: State, now: float) -> State:
    return {**state, "status": "paused", "paused_at": now}


def resumed(state: State) -> State:
    return {**state, "status": "running", "paused_at": None}


def should_retry(ended: State, retries: int) -> bool:
    """Whether an attempt that ended as `ended` is run again: it failed, timed out or crashed, and
    attempts are left. A job stopped on request (kill_shell) or for passing its budget is never run
    again: the budget is the whole run's, and another attempt would only spend more."""
    attempt = ended.get("attempt") or 1
    return (attempt <= retries and not ended.get("kill_requested") and ended.get("budget_exceeded") is None
            and ended.get("status") in ("failed", "killed"))


def retrying(ended: State, retries: int, delay: float, output_start: int = 0) -> State:
    """The state between a failed attempt and the next one: still `running`, no job process.

    `output_start`: the size of stdout.log now, where the next attempt's output begins.
    """
    attempt = ended.get("attempt") or 1
    how = ("timed out" if ended.get("timed_out") else
           f"was ended by {ended['signal']}" if ended.get("signal") else f"exited {ended.get('exit_code')}")
    wait = f" in {delay:g} s" if delay else ""
    return {**ended, "status": "running", "end_time": None, "pid": None, "pid_start": None, "exit_code": None,
            "signal": None, "timed_out": False, "rusage": None, "attempt": attempt + 1, "paused_at": None,
            "output_start": output_start,
            "message": f"attempt {attempt} {how}; attempt {attempt + 1} of {retries + 1} starts{wait}"}


def last_attempt(ended: State, retries: int) -> State:
    """`ended` as the shell's outcome: after retries, its message says which attempt this was."""
    attempt = ended.get("attempt") or 1
    if attempt == 1:
        return ended
    earlier = "the earlier one" if attempt == 2 else f"the {attempt - 1} earlier ones"
    return {**ended, "message": f"attempt {attempt} of {retries + 1}; {earlier} failed"}


def budget_spent(ended: State, figure: dict[str, Any]) -> State:
    """`ended` as the shell's outcome when its attempts together spent the run's budget: no attempt follows."""
    spent = (f"not run again: its attempts passed the budget ({figure['limit']} {figure['budget']}, "
             f"used {figure['used']})")
    message = ended.get("message")
    return {**ended, "budget_exceeded": figure, "message": f"{message}; {spent}" if message else spent}


def stopped_between_attempts(state: State, now: float) -> State:
    """The state of a shell killed while it waited to run its next attempt."""
    return {**state, "status": "killed", "end_time": now, "kill_requested": True, "paused_at": None,
            "message": f"killed before attempt {state.get('attempt')} started ({state.get('message')})"}


def exited(state: State, now: float, wait_status: int, *, killed: bool, timed_out: bool,
           rusage: dict[str, float] | None = None, budget_exceeded: dict[str, Any] | None = None) -> State:
    """The state after the job's main process ended with `wait_status` (as from os.wait4).

    `killed`: the monitor was asked to stop the job (by kill_shell) before it ended by itself.
    `budget_exceeded`: the figure that passed the run's budget, when the monitor stopped it for that.
    """
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        code, name = -sig, signal_name(sig)
    else:
        code, name = os.waitstatus_to_exitcode(wait_status), None
    if killed or timed_out or budget_exceeded is not None or name is not None:
        status = "killed"
    else:
        status = "stopped" if code == 0 else "failed"
    return {**state, "status": status, "end_time": now, "exit_code": code, "signal": name,
            "timed_out": timed_out, "kill_requested": killed, "rusage": rusage, "paused_at": None,
            "budget_exceeded": budget_exceeded}


def not_started(state: State, now: float, message: str, *, exit_code: int = 127) -> State:
    """The state of a shell whose command could not be executed."""
    return {**state, "status": "failed", "start_time": state.get("start_time") or now, "end_time": now,
            "exit_code": exit_code, "message": message}


def removed_from_queue(state: State, now: float) -> State:
    return {**state, "status": "killed", "end_time": now, "message": "Removed from queue"}


def dependency_failed(state: State, now: float, message: str) -> State:
    """The state of a queued shell that will never start: a shell it was to start after did not succeed."""
    return {**state, "status": "failed", "end_time": now, "message": message}


def lost(state: State, now: float, message: str) -> State:
    return {**state, "status": "lost", "end_time": now, "message": message}


def force_killed(state: State, now: float, sig: int) -> State:
    """The state of a shell whose monitor did not answer a kill and was stopped from outside."""
    return {**state, "status": "killed", "end_time": now, "exit_code": -sig, "signal": signal_name(sig),
            "kill_requested": True, "message": "Monitor did not answer; the job's processes were killed directly"}


def is_ended(state: State) -> bool:
    return state.get("status") in ENDED


def signal_name(sig: int) -> str:
    import signal

    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"SIG{sig}"
