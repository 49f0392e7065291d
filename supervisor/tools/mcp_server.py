"""The agent tools served over MCP (stdio) with the official SDK: `mgsup mcp`.

Each tool of `registry.TOOLS` becomes an MCP tool with its arguments model as input schema and
its result model as output schema (structured content, and the same JSON, compact, as text).
Anticipated failures are `ToolError`s the model reads; anything else is masked by the SDK
("Error executing tool ...") and logged with its traceback to stderr. While serving, the SDK points
fd 0 at /dev/null and fd 1 at stderr, so nothing but protocol reaches stdout and no child can read
the protocol stream.

Concurrency: the SDK reads stdin and writes stdout on threads of anyio's default pool, so no tool
call may hold one of those. Calls run on two pools of their own (reads; starts and kills), so a flood
of one kind never starves the other nor the protocol; wait_shell holds no thread at all (`waiting`).
Lifetime: the server exits when stdin closes or when its parent (the host) dies, even with calls in
flight: what they started is on record and goes on without it.

An MCP host runs it with `{"command": "mgsup", "args": ["mcp"]}`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ValidationError

from .. import audit, settings
from ..core import Supervisor
from .guard import rejected
from .policy import Policy
from .registry import TOOLS, SupervisorFactory, ToolFailure, ToolSpec, call, invalid_arguments
from .schemas import WaitShellArgs
from .strict import plain_schema
from .threads import Pool
from .views import as_text
from .waiting import DEFAULT_MOST, Waits

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Background process supervisor. start_shell runs a command in the background and returns a shell_id at "
    "once; wait_shell blocks until it ends (or a timeout passes); get_shell_output reads its output in pages; "
    "kill_shell stops it with its whole process tree; list_shells shows the newest shells. start_coordination "
    "starts a multi-agent coordination run the same way. Results are compact; pass detail=true for every field. "
    "Shells outlive this server and are shared with the mgsup command line."
)
DEFAULT_THREADS = 10
# How often the server checks that its parent (the host) is still there.
HOST_CHECK_SECONDS = 1.0
# How long calls still running on threads may finish once the host is gone, before the server exits anyway.
EXIT_GRACE_SECONDS = 2.0


def build_server(supervisor: SupervisorFactory = Supervisor, *, threads: int | None = None,
                 waits: int | None = None, policy: Policy | None = None) -> MCPServer[Any]:
    """An MCP server exposing the seven tools; each call acts on `supervisor()` (default: from the environment).

    `threads`: the size of each of the two thread pools for tool calls ($MGSUP_MCP_THREADS, default 10);
    `waits`: how many wait_shell calls are served at once ($MGSUP_MCP_MAX_WAITS, default 200);
    `policy`: what the calls may do (`supervisor.tools.policy`); the server is one session of it.
    Every call is written to the home's audit log.

    >>> server = build_server(policy=load_policy("policy.yaml"))
    >>> server.run("stdio")
    """
    size = settings.whole_number("MGSUP_MCP_THREADS", DEFAULT_THREADS, threads)
    audit.max_bytes()  # a bad setting refuses to serve rather than failing every call
    reads, changes = Pool(size), Pool(size)
    most = settings.whole_number("MGSUP_MCP_MAX_WAITS", DEFAULT_MOST, waits)
    waiting = Waits(supervisor, reads, changes, most, policy)

    def runner(spec: ToolSpec) -> Callable[[BaseModel], Awaitable[dict[str, Any]]]:
        if spec.name == "wait_shell":
            return lambda args: waiting.run(spec, WaitShellArgs.model_validate(args))
        # A call the host cancels (or leaves behind by going away) does not hold up the server; the
        # library call itself goes on to a consistent end on its thread.
        pool = reads if spec.read_only else changes
        run = functools.partial(call, surface="mcp")
        return lambda args: pool.run(run, spec, args, supervisor, policy)

    def refused(name: str, arguments: dict[str, Any], failure: ToolFailure) -> None:
        rejected(name, arguments, supervisor, policy, surface="mcp", error=str(failure))

    return MCPServer("mgsup", version=_version(), instructions=INSTRUCTIONS,
                     tools=[_mcp_tool(spec, runner(spec), refused) for spec in TOOLS], log_level="WARNING")


def _mcp_tool(spec: ToolSpec, run_call: Callable[[BaseModel], Awaitable[dict[str, Any]]],
              refused: Callable[[str, dict[str, Any], ToolFailure], None]) -> Tool:
    # The SDK validates arguments with `arg_model` before calling; deriving it from the shared model keeps
    # one definition of each tool's arguments (constraints and `extra="forbid"` included).
    arg_model: type[ArgModelBase] = type(f"{spec.name}_arguments", (spec.arguments, ArgModelBase),
                                         {"__module__": __name__})

    async def run(**arguments: Any) -> CallToolResult:
        try:
            if _INVALID in arguments:
                failure, given = arguments[_INVALID]
                refused(spec.name, given, failure)
                raise failure
            result = await run_call(spec.arguments.model_validate(arguments))
        except ToolFailure as exc:
            raise ToolError(str(exc)) from None
        return CallToolResult(content=[TextContent(type="text", text=as_text(result))], structured_content=result)

    return Tool(
        fn=run, name=spec.name, title=None, description=spec.description, context_kwarg=None,
        # The schema a model reads: pydantic's titles only repeat the argument names.
        parameters=plain_schema(spec.arguments),
        fn_metadata=_Arguments(arg_model=arg_model, output_model=spec.result, tool_name=spec.name), is_async=True,
        annotations=ToolAnnotations(read_only_hint=spec.read_only, destructive_hint=spec.name == "kill_shell",
                                    open_world_hint=False),
    )


_INVALID = "__invalid_arguments__"


class _Arguments(FuncMetadata):
    """The SDK's argument check, with the failure handed to the tool to report in the dispatcher's words.

    The SDK turns a failed check into raw pydantic text (with a documentation link) before any tool
    code runs; passing the failure through lets `run` raise the same message `dispatch` gives.
    """

    tool_name: str

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        try:
            return super().validate_arguments(arguments_to_validate)
        except ValidationError as exc:
            return {_INVALID: (invalid_arguments(self.tool_name, exc), arguments_to_validate)}



def _version() -> str:
    try:
        return importlib.metadata.version("mgsup")
    except importlib.metadata.PackageNotFoundError:
        return ""


def main(policy: Policy | None = None) -> None:
    """Serve the tools over stdio, under `policy`, until the host closes stdin or goes away."""
    serve(build_server(policy=policy))


def serve(server: MCPServer[Any]) -> None:
    """Serve `server` over stdio; return once the host has closed stdin, exit the process if the host died."""
    anyio.run(_serve_while_host_lives, server)
    _leave()


async def _serve_while_host_lives(server: MCPServer[Any]) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(_exit_when_orphaned, os.getppid())
        await server.run_stdio_async()
        group.cancel_scope.cancel()


async def _exit_when_orphaned(parent: int) -> None:
    # A dead host closes our stdin, which ends the server; but a process that inherited the host's end of
    # the pipe keeps it open. Being re-parented is then the sign, and the stdin reader (blocked on a
    # thread) cannot be cancelled: leave without it.
    if parent == 1:
        return
    while os.getppid() == parent:
        await anyio.sleep(HOST_CHECK_SECONDS)
    log.warning("the MCP host (pid %d) is gone: exiting", parent)
    _leave(now=True)


def _leave(*, now: bool = False) -> None:
    """Let calls still running on threads finish for up to EXIT_GRACE_SECONDS, then end the process.

    Returns (for a normal interpreter exit) only when no thread is left and `now` is false.
    """
    deadline = time.monotonic() + EXIT_GRACE_SECONDS
    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    for thread in others:
        thread.join(max(0.0, deadline - time.monotonic()))
    if now or any(thread.is_alive() for thread in others):
        logging.shutdown()
        os._exit(0)
