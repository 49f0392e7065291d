"""The typed arguments and results of the agent tools, shared by the MCP server and the OpenAI schemas.

Every optional argument defaults to None or to a value that None also stands for, so a model that
must send every key (OpenAI strict mode) can send `null` to mean "use the default".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..lifecycle import MAX_RETRIES
from ..models import Backend, Status

MAX_WAIT_SECONDS = 600.0
DEFAULT_WAIT_SECONDS = 60.0
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 200

ShellId = Annotated[str, Field(description="The shell id returned by start_shell, e.g. 'shell_1a2b3c4d'; or a "
                                           "unique prefix of its hex digits, the shell's name, or 'last' (newest).")]
Cwd = Annotated[str | None, Field(description="Working directory (absolute, or relative to the server's). "
                                              "Default: the server's working directory.")]
Timeout = Annotated[float | None, Field(gt=0, description="Kill the job after this many seconds "
                                                          "(status 'killed', timed_out true). Default: no limit.")]
Queue = Annotated[bool, Field(description="At the concurrency limit: true waits in line and starts by itself "
                                          "when a slot frees; false (default) fails with a limit error.")]
Name = Annotated[str | None, Field(description="A short label (letters, digits, '.', '_', '-') shown in "
                                               "list_shells. Optional.")]
Cpus = Annotated[float | None, Field(ge=0, description="Only when the server runs shells on a Ray cluster: CPUs "
                                                       "the job needs on its node. Default: 1.")]
Gpus = Annotated[float | None, Field(ge=0, description="Only when the server runs shells on a Ray cluster: GPUs "
                                                       "the job needs on its node. Default: 0.")]
Resources = Annotated[list[Annotated[str, Field(pattern=r"^[^=]+=")]] | None, Field(
    description="Only when the server runs shells on a Ray cluster: custom resources the job needs, as "
                "'NAME=AMOUNT' strings.")]
Detail = Annotated[bool, Field(description="true: every field of the result, paths and times included.")]
Group = Annotated[str | None, Field(description="Group name; a limit set for the group caps how many of its shells "
                                                "run at once.")]
After = Annotated[list[str] | None, Field(description="Shells (ids or names) that must all end 'stopped' first; until "
                                                      "then it is 'queued', and it ends 'failed' if one fails.")]
Retries = Annotated[int, Field(ge=0, le=MAX_RETRIES, description="Run again up to this many times on failure or "
                                                                 "timeout (not after kill_shell). Default 0.")]
RetryDelay = Annotated[float, Field(ge=0, description="Seconds between attempts. Default 0.")]


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
    group: Group = None
    after: After = None
    retries: Retries = 0
    retry_delay: RetryDelay = 0.0
    merge_output: bool = Field(False, description="true: stderr into stdout, in the order written.")
    cpus: Cpus = None
    gpus: Gpus = None
    resources: Resources = None
    detail: Detail = False


class ShellIdArgs(Arguments):
    shell_id: ShellId
    detail: Detail = False


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
    detail: Detail = False


class KillShellArgs(Arguments):
    shell_id: ShellId
    signal: str = Field("SIGTERM", description="Signal sent first, e.g. 'SIGTERM', 'SIGINT' or 'SIGKILL'.")
    grace: float = Field(5.0, ge=0, le=60, description="Seconds to wait after the signal before SIGKILL.")
    detail: Detail = False


class ListShellsArgs(Arguments):
    status: Status | None = Field(None, description="Only shells in this status. Default: all.")
    name: str | None = Field(None, min_length=1, description="Only shells with this name, or whose name matches "
                                                             "this pattern ('train-*'). Default: all.")
    group: str | None = Field(None, min_length=1, description="Only shells of this group.")
    limit: int = Field(DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT,
                       description=f"At most this many shells, newest first (default {DEFAULT_LIST_LIMIT}).")
    offset: int = Field(0, ge=0, description="Skip this many of the newest matching shells (the next page).")
    detail: Detail = False


class WaitShellArgs(Arguments):
    shell_id: ShellId
    timeout: float = Field(DEFAULT_WAIT_SECONDS, ge=0, le=MAX_WAIT_SECONDS,
                           description=f"Longest time to block, in seconds (at most {MAX_WAIT_SECONDS:g}).")
    kill_on_stall: bool = Field(False, description="For a coordination run: kill it as soon as its progress "
                                                   "file stops changing (status 'stalled'), and return.")
    detail: Detail = False


class BudgetArgs(Arguments):
    max_tokens: int | None = Field(None, ge=1, description="Most tokens the run may use.")
    max_cost_usd: float | None = Field(None, gt=0, description="Most USD the run may cost.")
    max_duration_seconds: float | None = Field(None, gt=0, description="Most seconds the run may take.")


class StartCoordinationArgs(Arguments):
    config: str = Field(description="Path of the coordination config (YAML), relative to cwd or absolute.")
    question: str = Field(min_length=1, description="The question the agents answer.")
    runner: str | Annotated[list[str], Field(min_length=1)] | None = Field(
        None, description="The program that runs it: 'mgcoord', 'massgen' (the real MassGen CLI on PATH), or a "
                          "command as a path or a list (e.g. ['uv', 'run', 'massgen']). Default: $MGSUP_RUNNER, "
                          "else 'mgcoord'.")
    cwd: Cwd = None
    timeout: Timeout = None
    queue: Queue = False
    name: Name = None
    group: Group = None
    after: After = None
    retries: Retries = 0
    retry_delay: RetryDelay = 0.0
    cpus: Cpus = None
    gpus: Gpus = None
    resources: Resources = None
    budget: BudgetArgs | None = Field(None, description="Limits the supervisor holds the run to: past one, it is "
                                                        "stopped with outcome 'budget_exceeded'. Default: none.")
    detail: Detail = False


class Result(BaseModel):
    """Base of the results: compact ones leave keys out, `detail=true` ones add the Python API's keys."""

    model_config = ConfigDict(extra="allow")


class ShellView(Result):
    shell_id: str
    status: Status
    name: str | None = None
    exit_code: int | None = Field(None, description="The exit code; negative: the signal that ended it.")
    signal: str | None = None
    timed_out: bool | None = Field(None, description="true: killed because it ran longer than its timeout.")
    pid: int | None = None
    command: str | list[str] | None = None
    duration_seconds: float | None = None
    message: str | None = None
    coordination: dict[str, Any] | None = Field(None, description="A coordination run's progress and result.")
    group: str | None = None
    after: list[str] | None = Field(None, description="The shells it starts after.")
    attempt: int | None = Field(None, description="With retries: the attempt running or last run (1 is the first).")
    retries: int | None = None
    backend: Backend | None = Field(None, description="'ray': a job of the Ray cluster (absent: this machine).")


class KillView(Result):
    shell_id: str
    outcome: Literal["dequeued", "killed", "already_ended"] = Field(
        description="dequeued: it was queued and never ran; killed: this call ended it; already_ended: it had ended.")
    status: Status
    signal: str | None = Field(None, description="The signal sent; absent or null when nothing had to be killed.")
    message: str | None = None


class ShellPage(Result):
    shells: list[ShellView] = Field(description="Newest first.")
    total: int = Field(description="How many shells match the filters; shells holds at most `limit` of them.")
    running: int = Field(description="Shells running now, in this state directory.")
    queued: int = Field(description="Shells waiting for a slot.")
    max_concurrent: int = Field(description="How many shells may run at once.")
    hint: str | None = Field(None, description="The call that shows the next page, when there is one.")


class WaitView(ShellView):
    waited_seconds: float
    wait_expired: bool | None = Field(None, description="true: the wait ended before the shell did; it is still "
                                                        "queued or running. Absent (or false) when it ended.")


class OutputView(Result):
    shell_id: str
    status: Status
    exit_code: int | None = None
    stdout: str | None = Field(None, description="Text of stdout in the window (absent when stream='stderr').")
    stderr: str | None = Field(None, description="Text of stderr in the window (absent when stream='stdout').")
    stdout_next_offset: int | None = Field(None, description="Pass as offset (with stream='stdout') to read on.")
    stderr_next_offset: int | None = Field(None, description="Pass as offset (with stream='stderr') to read on.")
    stdout_truncated: bool | None = Field(None, description="true when stdout text was left out of this window.")
    stderr_truncated: bool | None = Field(None, description="true when stderr text was left out of this window.")
    stdout_remaining_bytes: int | None = Field(None, description="Bytes of stdout after stdout_next_offset.")
    stderr_remaining_bytes: int | None = Field(None, description="Bytes of stderr after stderr_next_offset.")
    hint: str | None = Field(None, description="What to call next to read what was left out, if anything.")
