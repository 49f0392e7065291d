"""Typed views of what is stored per shell (spec.json, state.json) and of what the API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["queued", "running", "stopped", "failed", "killed", "lost"]


class Spec(BaseModel):
    """What to run: written once when the shell is created. Env *names* only, never values."""

    model_config = ConfigDict(extra="ignore")

    shell_id: str
    name: str | None = None
    command: str | list[str]
    argv: list[str]
    cwd: str
    env_names: list[str] = []
    inherit_env: bool = True
    timeout: float | None = None
    isolate: bool = False
    max_concurrent: int = 10
    created: float
    log_dir: str | None = None
    status_file: str | None = None
    # The kind of runner of a coordination run (mgcoord, massgen, command); None for a plain shell.
    runner: str | None = None


class State(BaseModel):
    """Where the shell is in its lifecycle (see `lifecycle.py` for the transitions)."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["starting", "queued", "running", "stopped", "failed", "killed", "lost"]
    created: float | None = None
    queued_at: float | None = None
    start_time: float | None = None
    end_time: float | None = None
    pid: int | None = None
    pid_start: int | None = None
    monitor_pid: int | None = None
    monitor_start: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    timed_out: bool = False
    rusage: dict[str, float] | None = None
    message: str | None = None


class ShellStatus(BaseModel):
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


class StreamWindow(BaseModel):
    text: str
    next_offset: int
    truncated: bool
    remaining_bytes: int


class ShellOutput(BaseModel):
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


def iso(timestamp: float | None) -> str | None:
    """An epoch timestamp as ISO 8601 in local time with its UTC offset."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp).astimezone().isoformat()
