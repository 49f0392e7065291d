"""The shell lifecycle as pure functions over the plain dict stored in state.json.

Stdlib only: the monitor writes states with these functions, the library reads them back through
the pydantic model in `models.py`. Statuses: `starting` (internal: admitted, monitor not yet
running; shown as `queued`), `queued`, `running`, and the ended ones.
"""

from __future__ import annotations

import os

# Annotations only: importing `typing` at run time would slow the monitor's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    State = dict[str, Any]

ENDED = frozenset({"stopped", "failed", "killed", "lost"})
# The longest timeout, grace or wait (ten years): deadlines and select() overflow not far beyond.
MAX_SECONDS = 10 * 366 * 86400.0
# How long a stopped job gets between SIGTERM and SIGKILL when nobody said (timeouts, kill requests
# that could not be written).
DEFAULT_GRACE = 5.0
STATUSES = ("queued", "running", "stopped", "failed", "killed", "lost")


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
    }


def running(state: State, now: float, *, pid: int, pid_start: int | None, monitor_pid: int,
            monitor_start: int | None) -> State:
    return {**state, "status": "running", "start_time": now, "pid": pid, "pid_start": pid_start,
            "monitor_pid": monitor_pid, "monitor_start": monitor_start}


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
            "timed_out": timed_out, "kill_requested": killed, "rusage": rusage, "budget_exceeded": budget_exceeded}


def not_started(state: State, now: float, message: str, *, exit_code: int = 127) -> State:
    """The state of a shell whose command could not be executed."""
    return {**state, "status": "failed", "start_time": state.get("start_time") or now, "end_time": now,
            "exit_code": exit_code, "message": message}


def removed_from_queue(state: State, now: float) -> State:
    return {**state, "status": "killed", "end_time": now, "message": "Removed from queue"}


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
