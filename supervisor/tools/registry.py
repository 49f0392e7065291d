"""The seven agent tools, defined once over `Supervisor` and served by both surfaces (MCP and OpenAI).

Each tool has a name, a description written for a model, typed arguments and a typed result.
`call` runs one: anticipated failures (unknown shell, limit reached, bad input, state directory
trouble) become `ToolFailure` with a message that says what to do next; anything else propagates
for the surface to mask and log.

>>> spec = find("list_shells")
>>> call(spec, spec.arguments(), Supervisor)["running"]
0
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ..core import Supervisor
from ..errors import InvalidRequest, LimitReached, ShellNotFound, SupervisorError
from .schemas import (
    GetShellOutputArgs,
    KillResult,
    KillShellArgs,
    ListShellsArgs,
    ShellIdArgs,
    ShellList,
    ShellStatus,
    StartCoordinationArgs,
    StartShellArgs,
    ToolShellOutput,
    WaitResult,
    WaitShellArgs,
)

DEFAULT_MAX_BYTES = 30 * 1024
SupervisorFactory = Callable[[], Supervisor]


class ToolFailure(Exception):
    """An anticipated tool failure; its message is meant for the model."""


def invalid_arguments(name: str, exc: ValidationError) -> ToolFailure:
    """The failure for arguments that do not fit a tool's schema, said so that a model can correct them."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        parts.append(f"{where}: {error['msg']}")
    return ToolFailure(f"invalid arguments for {name}: {'; '.join(parts)}. Correct them and call {name} again")


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    arguments: type[BaseModel]
    result: type[BaseModel]
    run: Callable[[Supervisor, Any], BaseModel]
    read_only: bool


def default_max_bytes() -> int:
    """The per-stream byte budget of get_shell_output: $MGSUP_TOOL_MAX_BYTES, else 30 KB."""
    raw = os.environ.get("MGSUP_TOOL_MAX_BYTES")
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidRequest(f"MGSUP_TOOL_MAX_BYTES must be a whole number >= 1, got {raw!r}")
    return value


def _start_shell(sup: Supervisor, a: StartShellArgs) -> ShellStatus:
    env = None if a.env is None else dict(item.split("=", 1) for item in a.env)
    shell_id = sup.start_shell(a.command, cwd=a.cwd, env=env, inherit_env=a.inherit_env, name=a.name,
                               timeout=a.timeout, queue=a.queue, isolate=a.isolate)
    return ShellStatus.model_validate(sup.get_shell_status(shell_id))


def _start_coordination(sup: Supervisor, a: StartCoordinationArgs) -> ShellStatus:
    shell_id = sup.start_coordination(a.config, a.question, cwd=a.cwd, timeout=a.timeout, queue=a.queue,
                                      name=a.name)
    return ShellStatus.model_validate(sup.get_shell_status(shell_id))


def _get_shell_status(sup: Supervisor, a: ShellIdArgs) -> ShellStatus:
    return ShellStatus.model_validate(sup.get_shell_status(a.shell_id))


def _get_shell_output(sup: Supervisor, a: GetShellOutputArgs) -> ToolShellOutput:
    budget = a.max_bytes if a.max_bytes is not None else default_max_bytes()
    out = sup.get_shell_output(a.shell_id, tail_lines=a.tail_lines, offset=a.offset, max_bytes=budget,
                               stream=None if a.stream == "both" else a.stream)
    hints = [f"{out[f'{stream}_remaining_bytes']} more bytes of {stream}: call get_shell_output with "
             f"stream='{stream}' and offset={out[f'{stream}_next_offset']}"
             for stream in ("stdout", "stderr") if out[f"{stream}_remaining_bytes"]]
    return ToolShellOutput(**out, max_bytes=budget, hint="; ".join(hints) or None)


def _kill_shell(sup: Supervisor, a: KillShellArgs) -> KillResult:
    return KillResult.model_validate(sup.kill_shell(a.shell_id, signal=a.signal, grace=a.grace))


def _list_shells(sup: Supervisor, a: ListShellsArgs) -> ShellList:
    every = [ShellStatus.model_validate(s) for s in sup.list_shells()]
    return ShellList(shells=[s for s in every if a.status in (None, s.status)],
                     running=sum(s.status == "running" for s in every),
                     queued=sum(s.status == "queued" for s in every), max_concurrent=sup.max_concurrent)


def _wait_shell(sup: Supervisor, a: WaitShellArgs) -> WaitResult:
    began = time.monotonic()
    try:
        status, timed_out = sup.wait_shell(a.shell_id, timeout=a.timeout, kill_on_stall=a.kill_on_stall), False
    except TimeoutError:
        status, timed_out = sup.get_shell_status(a.shell_id), True
    return WaitResult(**status, timed_out_waiting=timed_out, waited_seconds=round(time.monotonic() - began, 3))


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "start_shell",
        "Start a command in the background and return at once with its status (shell_id, 'running' or "
        "'queued', pid). Use it for anything that may take a while: builds, tests, servers, scripts. The "
        "job keeps running after this call; its output is kept on disk. Next: wait_shell(shell_id) to block "
        "until it ends, or get_shell_output(shell_id) to read what it has printed so far. At most a limited "
        "number of shells run at once: pass queue=true to wait in line instead of getting a limit error.",
        StartShellArgs, ShellStatus, _start_shell, read_only=False),
    ToolSpec(
        "get_shell_status",
        "Get the current status of one shell: 'queued', 'running', 'stopped' (exit 0), 'failed' (non-zero "
        "exit), 'killed' (signal, kill_shell or timeout) or 'lost'; plus exit_code, pid, times, duration, and "
        "for a coordination run its log_dir and a 'coordination' progress summary (phase, completion "
        "percentage, winner, agents). Cheap; prefer wait_shell to calling this in a loop.",
        ShellIdArgs, ShellStatus, _get_shell_status, read_only=True),
    ToolSpec(
        "get_shell_output",
        "Read what a shell wrote to stdout and stderr, within a byte budget per stream (30 KB by default). "
        "Use tail_lines to see the latest lines; use offset to read on from where the last call ended "
        "(its *_next_offset), one stream at a time. The result says how many bytes are left "
        "(*_remaining_bytes) and, in 'hint', the exact call that reads on. Works while the job runs and "
        "after it ended.",
        GetShellOutputArgs, ToolShellOutput, _get_shell_output, read_only=True),
    ToolSpec(
        "kill_shell",
        "Stop a shell and its whole process tree (children and grandchildren too): sends the signal, waits "
        "up to grace seconds, then SIGKILL. Returns once nothing of the job is left: status 'killed', or the "
        "status it already had with message 'Process already terminated'. A queued shell is removed from "
        "the queue. Use it to stop a job that hangs, runs too long or is no longer needed.",
        KillShellArgs, KillResult, _kill_shell, read_only=False),
    ToolSpec(
        "list_shells",
        "List every shell on record, oldest first, with its status, plus how many are running and queued "
        "and the concurrency limit. Use it to find a shell id you lost, to see what is still running, or "
        "to decide whether a new job would have to queue.",
        ListShellsArgs, ShellList, _list_shells, read_only=True),
    ToolSpec(
        "wait_shell",
        "Block until a shell ends, or until timeout seconds pass (default 60, at most 600), and return its "
        "status. Use it instead of polling get_shell_status. If the wait ends first, the result has "
        "timed_out_waiting=true and the shell is still queued or running: call wait_shell again to keep "
        "waiting, get_shell_output to see progress, or kill_shell to stop it. Waiting never stops the job.",
        WaitShellArgs, WaitResult, _wait_shell, read_only=True),
    ToolSpec(
        "start_coordination",
        "Start a multi-agent coordination run (mgcoord --automation) as a background shell and return its "
        "status. Several agents answer the question, vote, and the winner writes the final answer. Next: "
        "wait_shell(shell_id) until it ends (get_shell_status shows its progress meanwhile); the final "
        "status's 'coordination' then has the winner, final_answer_preview and answer_file (the path of the "
        "full answer), or 'error'. Exit code 0 means a final answer exists.",
        StartCoordinationArgs, ShellStatus, _start_coordination, read_only=False),
)
_BY_NAME = {spec.name: spec for spec in TOOLS}


def find(name: str) -> ToolSpec:
    """The tool called `name`; ToolFailure naming the tools that exist otherwise."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ToolFailure(f"unknown tool {name!r}: the tools are {', '.join(_BY_NAME)}") from None


def call(spec: ToolSpec, arguments: BaseModel, supervisor: SupervisorFactory) -> dict[str, Any]:
    """Run `spec` with validated `arguments` and return its result as a JSON-ready dict."""
    try:
        return spec.run(supervisor(), arguments).model_dump(mode="json")
    except ShellNotFound:
        raise ToolFailure(f"unknown shell id {getattr(arguments, 'shell_id', None)!r}: call list_shells to see "
                          "the shells on record (ids look like 'shell_1a2b3c4d')") from None
    except LimitReached as exc:
        raise ToolFailure(f"{exc}. As tools: call {spec.name} again with queue=true to wait in line, or "
                          "list_shells to see what runs, then wait_shell or kill_shell") from None
    except InvalidRequest as exc:
        raise ToolFailure(f"invalid request: {exc}. Correct the arguments and call {spec.name} again") from None
    except SupervisorError as exc:
        raise ToolFailure(f"{spec.name} failed: {exc}") from None
