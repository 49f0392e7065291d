"""The typed arguments and results of the agent tools, shared by the MCP server and the OpenAI schemas.

Every optional argument defaults to None or to a value that None also stands for, so a model that
must send every key (OpenAI strict mode) can send `null` to mean "use the default".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self, cast

from pydantic import BaseModel, ConfigDict, Field

from .. import models
from ..models import Status
from ..records import pydantic_model

MAX_WAIT_SECONDS = 600.0
DEFAULT_WAIT_SECONDS = 60.0

ShellId = Annotated[str, Field(description="The shell id returned by start_shell, e.g. 'shell_1a2b3c4d'.")]
Cwd = Annotated[str | None, Field(description="Working directory (absolute, or relative to the server's). "
                                              "Default: the server's working directory.")]
Timeout = Annotated[float | None, Field(gt=0, description="Kill the job after this many seconds "
                                                          "(status 'killed', timed_out true). Default: no limit.")]
Queue = Annotated[bool, Field(description="At the concurrency limit: true waits in line and starts by itself "
                                          "when a slot frees; false (default) fails with a limit error.")]
Name = Annotated[str | None, Field(description="A short label (letters, digits, '.', '_', '-') shown in "
                                               "list_shells. Optional.")]


class ShellStatus(pydantic_model(models.ShellStatus)):  # type: ignore[misc]  # built from the record class
    """The status of one shell, as `get_shell_status` returns it."""

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        return cast(Self, super().model_validate(obj, *args, **kwargs))


class Arguments(BaseModel):
    """Base of every tool's arguments: unknown keys are an error, so a misspelt argument is never ignored."""

    model_config = ConfigDict(extra="forbid")


class StartShellArgs(Arguments):
    command: str | Annotated[list[str], Field(min_length=1)] = Field(
        description="A shell command line run by /bin/sh -c (e.g. 'pytest -q 2>&1 | tail -5'), or a list of "
                    "arguments run directly without a shell (e.g. ['python3', 'train.py', '--epochs', '3']).")
    cwd: Cwd = None
    env: list[Annotated[str, Field(pattern=r"^[^=]+=")]] | None = Field(
        None, description="Extra environment variables as 'NAME=VALUE' strings, laid over the inherited ones.")
    inherit_env: bool = Field(True, description="false: the job sees only the variables given in env.")
    name: Name = None
    timeout: Timeout = None
    queue: Queue = False
    isolate: bool = Field(False, description="Run in a fresh empty directory <cwd>/.mgsup/workspaces/<name>_<id> "
                                             "so parallel jobs never touch each other's files.")


class ShellIdArgs(Arguments):
    shell_id: ShellId


class GetShellOutputArgs(Arguments):
    shell_id: ShellId
    tail_lines: int | None = Field(None, ge=0, description="Only the last N lines of each stream (the latest "
                                                          "output). Default: read from offset.")
    offset: int | None = Field(None, ge=0, description="Byte offset to read from: pass the *_next_offset of the "
                                                       "previous call to get only what came after. Default: 0.")
    max_bytes: int | None = Field(None, ge=1, le=1_000_000, description="Byte budget per stream. Default: the "
                                                                       "server's budget (30 KB unless configured).")
    stream: Literal["both", "stdout", "stderr"] = Field(
        "both", description="Which stream to read. Page one stream at a time with offset: the two streams "
                            "have different offsets.")


class KillShellArgs(Arguments):
    shell_id: ShellId
    signal: str = Field("SIGTERM", description="Signal sent first, e.g. 'SIGTERM', 'SIGINT' or 'SIGKILL'.")
    grace: float = Field(5.0, ge=0, le=60, description="Seconds to wait after the signal before SIGKILL.")


class ListShellsArgs(Arguments):
    status: Status | None = Field(None, description="Only shells in this status. Default: all.")


class WaitShellArgs(Arguments):
    shell_id: ShellId
    timeout: float = Field(DEFAULT_WAIT_SECONDS, ge=0, le=MAX_WAIT_SECONDS,
                           description=f"Longest time to block, in seconds (at most {MAX_WAIT_SECONDS:g}).")
    kill_on_stall: bool = Field(False, description="For a coordination run: kill it as soon as its progress "
                                                   "file stops changing (status 'stalled'), and return.")


class StartCoordinationArgs(Arguments):
    config: str = Field(description="Path of the coordination config (YAML), relative to cwd or absolute.")
    question: str = Field(min_length=1, description="The question the agents answer.")
    cwd: Cwd = None
    timeout: Timeout = None
    queue: Queue = False
    name: Name = None


class KillResult(BaseModel):
    shell_id: str
    status: Status
    signal: str | None = Field(description="The signal sent, or null when nothing had to be killed.")
    message: str | None = None


class ShellList(BaseModel):
    shells: list[ShellStatus]
    running: int = Field(description="Shells running now, in this state directory.")
    queued: int = Field(description="Shells waiting for a slot.")
    max_concurrent: int = Field(description="How many shells may run at once.")


class WaitResult(ShellStatus):
    timed_out_waiting: bool = Field(description="true: the wait ended before the shell did; it is still queued "
                                                "or running. Call wait_shell again or kill_shell.")
    waited_seconds: float


class ToolShellOutput(BaseModel):
    shell_id: str
    status: Status
    exit_code: int | None
    stdout: str | None = Field(description="Text of stdout in the window (null when stream='stderr').")
    stderr: str | None = Field(description="Text of stderr in the window (null when stream='stdout').")
    stdout_next_offset: int | None = Field(description="Pass as offset (with stream='stdout') to read on.")
    stderr_next_offset: int | None = Field(description="Pass as offset (with stream='stderr') to read on.")
    stdout_truncated: bool | None = Field(description="true when stdout text was left out of this window.")
    stderr_truncated: bool | None = Field(description="true when stderr text was left out of this window.")
    stdout_remaining_bytes: int | None = Field(description="Bytes of stdout after stdout_next_offset, not read yet.")
    stderr_remaining_bytes: int | None = Field(description="Bytes of stderr after stderr_next_offset, not read yet.")
    max_bytes: int = Field(description="The byte budget per stream applied to this call.")
    hint: str | None = Field(description="What to call next to read what was left out, if anything.")
