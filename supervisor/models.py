"""Typed views of what is stored per shell (spec.json, state.json) and of what the API returns.

Records (`records.Record`) rather than pydantic models, so that reading shells costs no pydantic
import.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from .lifecycle import MAX_RETRIES, MAX_SECONDS
from .records import Field, Record

Status = Literal["queued", "running", "paused", "stopped", "failed", "killed", "lost"]
Backend = Literal["local", "ray"]
# Bounds of what a record may hold: anything outside is damage, reported for that shell alone
# (a `created` of 1e300 cannot even be shown as a date).
MAX_TIMESTAMP = 1e11
MAX_PID = 1 << 22
# A status shows at most this much of a command (a list command: of all its arguments together);
# the whole command stays in spec.json and is what runs.
COMMAND_SHOWN = 4096

Timestamp = Annotated[float, Field(ge=0, lt=MAX_TIMESTAMP, allow_inf_nan=False)]
Pid = Annotated[int, Field(ge=1, le=MAX_PID)]
Ticks = Annotated[int, Field(ge=0)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]


class Spec(Record):
    """What to run: written once when the shell is created. Env *names* only, never values."""

    shell_id: str
    name: str | None = None
    command: str | list[str]
    argv: Annotated[list[str], Field(min_length=1)]
    cwd: str
    env_names: list[str] = []  # noqa: RUF012 - a default, copied into each record
    inherit_env: bool = True
    timeout: Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)] | None = None
    isolate: bool = False
    max_concurrent: Annotated[int, Field(ge=1)] = 10
    created: Timestamp
    log_dir: str | None = None
    status_file: str | None = None
    # Where the job runs: here, or as a job of the Ray cluster at `cluster` asking for `resources`.
    backend: Backend = "local"
    cluster: str | None = None
    resources: dict[str, float] | None = None
    # The kind of runner of a coordination run (mgcoord, massgen, command); None for a plain shell.
    runner: str | None = None
    # Scheduling: the group whose limit applies, the shells to start after, re-runs on failure.
    group: str | None = None
    after: list[str] = []  # noqa: RUF012 - a record copies its defaults (records.Record)
    retries: Annotated[int, Field(ge=0, le=MAX_RETRIES)] = 0
    retry_delay: Seconds = 0.0
    merge_output: bool = False
    # What a restart repeats: the shell it was restarted from, and a coordination run's request.
    restarted_from: str | None = None
    config: str | None = None
    question: str | None = None
    # A coordination run's budget (`budget.KEYS`), and the price table it is held to for its cost.
    budget: dict[str, int | float] | None = None
    prices: dict[str, list[float]] | None = None


class State(Record):
    """Where the shell is in its lifecycle (see `lifecycle.py` for the transitions)."""

    status: Literal["starting", "queued", "running", "paused", "stopped", "failed", "killed", "lost"]
    created: Timestamp | None = None
    queued_at: Timestamp | None = None
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    pid: Pid | None = None
    pid_start: Ticks | None = None
    monitor_pid: Pid | None = None
    monitor_start: Ticks | None = None
    exit_code: Annotated[int, Field(ge=-128, le=255)] | None = None
    signal: str | None = None
    timed_out: bool = False
    # Whether the end came from a kill request (kill_shell), rather than the job ending by itself.
    kill_requested: bool = False
    rusage: dict[str, Finite] | None = None
    message: str | None = None
    attempt: Annotated[int, Field(ge=1)] = 1
    # Where the current attempt's output begins in stdout.log (its announcements are read from there).
    output_start: Annotated[int, Field(ge=0)] = 0
    paused_at: Timestamp | None = None
    # The figure that passed the run's budget when its monitor stopped it for that.
    budget_exceeded: dict[str, Any] | None = None


class ShellStatus(Record):
    """The status of one shell, as `get_shell_status` returns it."""

    shell_id: str
    name: str | None
    status: Status
    exit_code: int | None
    signal: str | None
    timed_out: bool
    pid: int | None
    command: str | list[str]
    cwd: str
    created_at: str | None
    start_time: str | None
    end_time: str | None
    duration_seconds: float | None
    stdout_path: str
    stderr_path: str
    log_dir: str | None
    status_file: str | None
    coordination: dict[str, Any] | None
    message: str | None = None
    resource_usage: dict[str, float] | None = None
    group: str | None = None
    after: list[str] = []  # noqa: RUF012 - a record copies its defaults (records.Record)
    attempt: int = 1
    retries: int = 0
    restarted_from: str | None = None
    question: str | None = None
    backend: Backend = "local"
    cluster: str | None = None
    budget: dict[str, int | float] | None = None


class StreamWindow(Record):
    text: str
    next_offset: int
    truncated: bool
    remaining_bytes: int


class ShellOutput(Record):
    """What `get_shell_output` returns; the keys of a stream that was not asked for are None."""

    shell_id: str
    status: Status
    exit_code: int | None
    stdout: str | None = None
    stderr: str | None = None
    stdout_next_offset: int | None = None
    stderr_next_offset: int | None = None
    stdout_truncated: bool | None = None
    stderr_truncated: bool | None = None
    stdout_remaining_bytes: int | None = None
    stderr_remaining_bytes: int | None = None


def shown_text(text: str) -> str:
    """`text` safe for JSON and terminals' encoders: bytes that were not UTF-8 become U+FFFD.

    Arguments, paths and environments are bytes on POSIX; Python carries the bytes that are not
    UTF-8 as lone surrogates, which a strict UTF-8 encoder (a JSON reply, a terminal) rejects.
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def shown_command(command: str | list[str]) -> str | list[str]:
    """The command as a status shows it: `shown_text`, and at most COMMAND_SHOWN characters.

    A longer string ends in `… [N more characters]`; a longer list keeps its first arguments and
    ends with one item `… [N more characters]` in place of the rest.
    """
    if isinstance(command, str):
        if len(command) <= COMMAND_SHOWN:
            return shown_text(command)
        return shown_text(command[:COMMAND_SHOWN]) + f"… [{len(command) - COMMAND_SHOWN} more characters]"
    shown: list[str] = []
    budget = COMMAND_SHOWN
    for position, arg in enumerate(command):
        if len(arg) > budget:
            rest = len(arg) - budget + sum(len(a) for a in command[position + 1:])
            if budget:
                shown.append(shown_text(arg[:budget]))
            shown.append(f"… [{rest} more characters]")
            break
        shown.append(shown_text(arg))
        budget -= len(arg)
    return shown


def iso(timestamp: float | None) -> str | None:
    """An epoch timestamp as ISO 8601 in local time with its UTC offset."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp).astimezone().isoformat()
