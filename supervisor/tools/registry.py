"""The seven agent tools, defined once over `Supervisor` and served by both surfaces (MCP and OpenAI).

Each tool has a name, a description written for a model, typed arguments and a typed result.
`call` runs one: anticipated failures (unknown shell, limit reached, bad input, state directory
trouble) become `ToolFailure` with a message that says what to do next; anything else propagates
for the surface to mask and log.

Results are compact for a model's budget unless a call asks for `detail` (see `views`).

>>> spec = find("list_shells")
>>> call(spec, spec.arguments(), Supervisor)["running"]
0
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .. import audit, bulk, request, settings
from ..core import Supervisor
from ..errors import AmbiguousReference, InvalidRequest, LimitReached, ShellNotFound, StateDirError, SupervisorError
from .guard import guarded
from .policy import Denied, Policy
from .schemas import (
    DEFAULT_LIST_LIMIT,
    GetShellOutputArgs,
    KillShellArgs,
    KillView,
    ListShellsArgs,
    OutputView,
    ShellIdArgs,
    ShellPage,
    ShellView,
    StartCoordinationArgs,
    StartShellArgs,
    WaitShellArgs,
    WaitView,
)
from .views import compact, output_view, shell_view, wait_view

log = logging.getLogger(__name__)
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
    run: Callable[[Supervisor, Any], dict[str, Any]]
    read_only: bool


def default_max_bytes() -> int:
    """The per-stream byte budget of get_shell_output: $MGSUP_TOOL_MAX_BYTES, else 30 KB."""
    return settings.whole_number("MGSUP_TOOL_MAX_BYTES", DEFAULT_MAX_BYTES)


def _start_shell(sup: Supervisor, a: StartShellArgs) -> dict[str, Any]:
    env = None if a.env is None else dict(item.split("=", 1) for item in a.env)
    shell_id = sup.start_shell(a.command, cwd=a.cwd, env=env, inherit_env=a.inherit_env, name=a.name,
                               timeout=a.timeout, queue=a.queue, isolate=a.isolate, group=a.group,
                               after=_after(sup, "start_shell", a.after), retries=a.retries,
                               retry_delay=a.retry_delay, merge_output=a.merge_output, cpus=a.cpus, gpus=a.gpus,
                               resources=_resources(a.resources))
    return shell_view(sup.get_shell_status(shell_id), detail=a.detail)


def _start_coordination(sup: Supervisor, a: StartCoordinationArgs) -> dict[str, Any]:
    shell_id = sup.start_coordination(a.config, a.question, runner=a.runner, cwd=a.cwd, timeout=a.timeout,
                                      queue=a.queue, name=a.name, group=a.group,
                                      after=_after(sup, "start_coordination", a.after), retries=a.retries,
                                      retry_delay=a.retry_delay, cpus=a.cpus, gpus=a.gpus,
                                      resources=_resources(a.resources),
                                      budget=a.budget.model_dump(exclude_none=True) if a.budget else None)
    return shell_view(sup.get_shell_status(shell_id), detail=a.detail)


def _after(sup: Supervisor, tool: str, refs: list[str] | None) -> list[str] | None:
    """The ids of the shells `after` names; a reference that fits no shell, or several, is a failure naming it.

    Resolved here, before the start, because the library's error does not say which reference of the
    list it was; the library checks the ids again when it records the shell.
    """
    if refs is None:
        return None
    ids = []
    for ref in refs:
        try:
            ids.append(sup.resolve(ref))
        except ShellNotFound as exc:
            raise unknown_shell(exc, ref, argument="after", tool=tool) from None
        except AmbiguousReference as exc:
            raise ambiguous(exc, ref, argument="after", tool=tool) from None
    return ids


def _resources(items: list[str] | None) -> dict[str, float] | None:
    if items is None:
        return None
    amounts = {}
    for item in items:
        name, _, amount = item.partition("=")
        try:
            amounts[name] = float(amount)
        except ValueError:
            raise InvalidRequest(f"resource {item!r} is not NAME=AMOUNT with a number") from None
    return amounts


def _get_shell_status(sup: Supervisor, a: ShellIdArgs) -> dict[str, Any]:
    return shell_view(sup.get_shell_status(a.shell_id), detail=a.detail)


def _get_shell_output(sup: Supervisor, a: GetShellOutputArgs) -> dict[str, Any]:
    try:
        budget = a.max_bytes if a.max_bytes is not None else default_max_bytes()
    except InvalidRequest as exc:
        raise misconfigured(exc) from None
    out = sup.get_shell_output(a.shell_id, tail_lines=a.tail_lines, offset=a.offset, max_bytes=budget,
                               stream=None if a.stream == "both" else a.stream)
    return output_view(out, max_bytes=budget, detail=a.detail)


def _kill_shell(sup: Supervisor, a: KillShellArgs) -> dict[str, Any]:
    [result] = sup.kill_many([a.shell_id], signal=a.signal, grace=a.grace)
    return dict(result) if a.detail else compact(dict(result))


def _list_shells(sup: Supervisor, a: ListShellsArgs) -> dict[str, Any]:
    group = request.group_name("group", a.group)
    every = sup.list_shells(newest_first=True)
    matching = [s for s in every if bulk.selected(s, status=a.status, group=group, name=a.name)]
    page = matching[a.offset:a.offset + a.limit]
    result = {"shells": [shell_view(s, detail=a.detail) for s in page], "total": len(matching),
              "running": sum(s["status"] == "running" for s in every),
              "queued": sum(s["status"] == "queued" for s in every), "max_concurrent": sup.max_concurrent}
    hint = _next_page(a, shown=len(page), total=len(matching))
    return result | {"hint": hint} if hint or a.detail else result


def _next_page(a: ListShellsArgs, *, shown: int, total: int) -> str | None:
    left = total - a.offset - shown
    if left <= 0:
        return None if a.offset <= total else f"offset {a.offset} is past the {total} matching shells"
    # The same call otherwise: the arguments given, the defaults left out.
    parts = [f"offset={a.offset + shown}"]
    if a.limit != DEFAULT_LIST_LIMIT:
        parts.append(f"limit={a.limit}")
    parts += [f"{key}={value!r}" for key, value in (("status", a.status), ("group", a.group), ("name", a.name))
              if value]
    if a.detail:
        parts.append("detail=true")
    return f"{left} older shells not shown: call list_shells with {', '.join(parts)}"


def _wait_shell(sup: Supervisor, a: WaitShellArgs) -> dict[str, Any]:
    began = time.monotonic()
    try:
        status, expired = sup.wait_shell(a.shell_id, timeout=a.timeout, kill_on_stall=a.kill_on_stall), False
    except TimeoutError:
        status, expired = sup.get_shell_status(a.shell_id), True
    return wait_view(status, expired=expired, waited=time.monotonic() - began, detail=a.detail)


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "start_shell",
        "Start a command in the background and return at once with its status (shell_id, 'running' or "
        "'queued', pid). Use it for anything that may take a while: builds, tests, servers, scripts. The "
        "job keeps running after this call; its output is kept on disk. Next: wait_shell(shell_id) to block "
        "until it ends, or get_shell_output(shell_id) to read what it has printed so far. At most a limited "
        "number of shells run at once: pass queue=true to wait in line instead of getting a limit error.",
        StartShellArgs, ShellView, _start_shell, read_only=False),
    ToolSpec(
        "get_shell_status",
        "Get the current status of one shell: 'queued', 'running', 'stopped' (exit 0), 'failed' (non-zero "
        "exit), 'killed' (signal, kill_shell or its timeout) or 'lost'; its exit_code, duration and, for a "
        "coordination run, a 'coordination' progress summary (phase, completion percentage, winner, agents). "
        "Compact: keys without a value are left out; detail=true adds times, paths and every other field. "
        "Cheap; prefer wait_shell to calling this in a loop.",
        ShellIdArgs, ShellView, _get_shell_status, read_only=True),
    ToolSpec(
        "get_shell_output",
        "Read what a shell wrote to stdout and stderr, within a byte budget per stream (30 KB by default). "
        "Use tail_lines to see the latest lines; use offset to read on from where the last call ended "
        "(its *_next_offset), one stream at a time. When text is left, the result says how much "
        "in 'hint', with the exact call that reads on. Works while the job runs and after it ended.",
        GetShellOutputArgs, OutputView, _get_shell_output, read_only=True),
    ToolSpec(
        "kill_shell",
        "Stop a shell and its whole process tree (children and grandchildren too): sends the signal, waits "
        "up to grace seconds, then SIGKILL. Returns once nothing of the job is left: status 'killed', or the "
        "status it already had with message 'Process already terminated'. A queued shell is removed from "
        "the queue. Use it to stop a job that hangs, runs too long or is no longer needed.",
        KillShellArgs, KillView, _kill_shell, read_only=False),
    ToolSpec(
        "list_shells",
        "List shells on record, newest first, at most `limit` (default 20), optionally only those in one "
        "status, group or with one name; plus how many match (total), how many run and wait in line, and the "
        "concurrency limit. 'hint' gives the call for the next page. Use it to find a shell id you lost, "
        "to see what is still running, or to decide whether a new job would have to queue.",
        ListShellsArgs, ShellPage, _list_shells, read_only=True),
    ToolSpec(
        "wait_shell",
        "Block until a shell ends, or until timeout seconds pass (default 60, at most 600), and return its "
        "status. Use it instead of polling get_shell_status. If the wait ends first, the result has "
        "wait_expired=true and the shell is still queued or running: call wait_shell again to keep "
        "waiting, get_shell_output to see progress, or kill_shell to stop it. Waiting never stops the job.",
        WaitShellArgs, WaitView, _wait_shell, read_only=True),
    ToolSpec(
        "start_coordination",
        "Start a multi-agent coordination run (mgcoord, or the chosen runner, with --automation) as a background "
        "shell and return its status. Several agents answer the question, vote, and the winner writes the final "
        "answer. Next: "
        "wait_shell(shell_id) until it ends (get_shell_status shows its progress meanwhile); the final "
        "status's 'coordination' then has the winner and final_answer_preview, or 'error'; with detail=true "
        "also answer_file, the path of the full answer. Its 'outcome' is 'answered' only when a final answer "
        "exists.",
        StartCoordinationArgs, ShellView, _start_coordination, read_only=False),
)
_BY_NAME = {spec.name: spec for spec in TOOLS}


def unknown_shell(exc: ShellNotFound, ref: object, *, argument: str = "shell_id",
                  tool: str | None = None) -> ToolFailure:
    """The failure for a shell reference that fits no shell: the near names, and what to call instead.

    A reference in a start's `after` says so, and that nothing was started.
    """
    close = f"did you mean {' or '.join(repr(s) for s in exc.suggestions)}? " if exc.suggestions else ""
    if argument == "shell_id":
        return ToolFailure(f"unknown shell id {ref!r}: no shell on record has this id or name; {close}call list_shells "
                           "to see the shells on record (a shell_id is an id like 'shell_1a2b3c4d', a unique prefix "
                           "of its hex digits, a shell's name, or 'last')")
    return ToolFailure(f"unknown shell {ref!r} in {argument}: no shell on record has this id or name, and nothing was "
                       f"started; {close}call list_shells to see the shells on record, then call {tool} again with "
                       f"{argument} naming shells that exist (an id like 'shell_1a2b3c4d', a unique prefix of its hex "
                       "digits, a shell's name, or 'last')")


def ambiguous(exc: AmbiguousReference, ref: object, *, argument: str, tool: str) -> ToolFailure:
    """The failure for a shell reference that fits several shells: their ids, and the call to make."""
    where = "" if argument == "shell_id" else f" in {argument}"
    return ToolFailure(f"{ref!r}{where} fits several shells, newest first: {', '.join(exc.candidates)}; "
                       f"call {tool} again with one of these ids{where}")


def find(name: str) -> ToolSpec:
    """The tool called `name`; ToolFailure naming the tools that exist otherwise."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ToolFailure(f"unknown tool {name!r}: the tools are {', '.join(_BY_NAME)}") from None


def call(spec: ToolSpec, arguments: BaseModel, supervisor: SupervisorFactory, policy: Policy | None = None, *,
         surface: str = "dispatch") -> dict[str, Any]:
    """Run `spec` with validated `arguments` under `policy` and return its result as a JSON-ready dict.

    The call is decided by the policy and written to the audit log (`guard.guarded`).
    """
    with failures(spec, arguments):
        sup = connect(supervisor)
        with guarded(spec.name, arguments, sup, policy, surface=surface) as passage:
            return passage.returns(spec.run(sup, passage.arguments))


def connect(supervisor: SupervisorFactory) -> Supervisor:
    """The Supervisor the calls act on; a failure here is the server's configuration, not the model's doing.

    The audit log's setting is checked here too: no call runs when it could not be recorded as configured.
    """
    try:
        audit.max_bytes()
        return supervisor()
    except SupervisorError as exc:
        raise misconfigured(exc) from None


def misconfigured(exc: Exception) -> ToolFailure:
    """The failure for a bad setting of the server's environment: nothing the model can correct."""
    return ToolFailure(f"this server is misconfigured ({exc}); calls that need this setting cannot succeed until "
                       "it is fixed: tell the user")


_LIMIT = re.compile(r"Maximum concurrent shells (?:of group '([^']+)' )?\(\d+\) reached")


@contextmanager
def failures(spec: ToolSpec, arguments: BaseModel) -> Iterator[None]:
    """Turn the library's anticipated errors into ToolFailure, worded for a model: what to call next."""
    try:
        yield
    except Denied as exc:
        raise ToolFailure(str(exc)) from None
    except ShellNotFound as exc:
        if hasattr(arguments, "shell_id"):
            raise unknown_shell(exc, arguments.shell_id) from None
        # A start whose `after` named a shell that was removed after `_after` resolved it.
        raise unknown_shell(exc, getattr(arguments, "after", None), argument="after", tool=spec.name) from None
    except AmbiguousReference as exc:
        raise ambiguous(exc, getattr(arguments, "shell_id", None), argument="shell_id", tool=spec.name) from None
    except LimitReached as exc:
        found = _LIMIT.search(str(exc))
        group = f"group={found.group(1)!r}, " if found and found.group(1) else ""
        raise ToolFailure(f"{found.group(0) if found else 'The concurrency limit is reached'}: nothing was started. "
                          f"Call {spec.name} again with queue=true to have it start by itself when a slot frees, "
                          f"or call list_shells with {group}status='running' to see what runs, then wait_shell or "
                          "kill_shell one of those") from None
    except InvalidRequest as exc:
        raise ToolFailure(f"invalid request: {exc}. Correct the arguments and call {spec.name} again") from None
    except StateDirError as exc:
        log.warning("%s: %s", spec.name, exc)
        raise ToolFailure(f"{spec.name} failed: this server's state directory cannot be read or written, so no "
                          "shell can be started or read; other arguments will not help: tell the user") from None
    except SupervisorError as exc:
        raise ToolFailure(f"{spec.name} failed: {exc}") from None
