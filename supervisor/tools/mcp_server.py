"""The agent tools served over MCP (stdio) with the official SDK: `mgsup mcp`.

Each tool of `registry.TOOLS` becomes an MCP tool with its arguments model as input schema and
its result model as output schema (structured content). Anticipated failures are `ToolError`s
the model reads; anything else is masked by the SDK ("Error executing tool ...") and logged with
its traceback to stderr. While serving, the SDK points fd 0 at /dev/null and fd 1 at stderr, so
nothing but protocol reaches stdout and no child can read the protocol stream.

An MCP host runs it with `{"command": "mgsup", "args": ["mcp"]}`.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import ToolAnnotations
from pydantic import ValidationError

from ..core import Supervisor
from .registry import TOOLS, SupervisorFactory, ToolFailure, ToolSpec, call, invalid_arguments

INSTRUCTIONS = (
    "Background process supervisor. start_shell runs a command in the background and returns a shell_id at "
    "once; wait_shell blocks until it ends (or a timeout passes); get_shell_output reads its output in pages; "
    "kill_shell stops it with its whole process tree; list_shells shows every shell. start_coordination starts "
    "a multi-agent coordination run the same way. Shells outlive this server and are shared with the mgsup "
    "command line."
)


def build_server(supervisor: SupervisorFactory = Supervisor) -> MCPServer[Any]:
    """An MCP server exposing the seven tools; each call acts on `supervisor()` (default: from the environment).

    >>> server = build_server()
    >>> server.run("stdio")
    """
    return MCPServer("mgsup", version=_version(), instructions=INSTRUCTIONS,
                     tools=[_mcp_tool(spec, supervisor) for spec in TOOLS], log_level="WARNING")


def _mcp_tool(spec: ToolSpec, supervisor: SupervisorFactory) -> Tool:
    # The SDK validates arguments with `arg_model` before calling; deriving it from the shared model keeps
    # one definition of each tool's arguments (constraints and `extra="forbid"` included).
    arg_model: type[ArgModelBase] = type(f"{spec.name}_arguments", (spec.arguments, ArgModelBase),
                                         {"__module__": __name__})

    def run(**arguments: Any) -> dict[str, Any]:
        try:
            if _INVALID in arguments:
                raise arguments[_INVALID]
            return call(spec, spec.arguments.model_validate(arguments), supervisor)
        except ToolFailure as exc:
            raise ToolError(str(exc)) from None

    return Tool(
        fn=run, name=spec.name, title=None, description=spec.description, context_kwarg=None,
        parameters=arg_model.model_json_schema(by_alias=True),
        fn_metadata=_Arguments(arg_model=arg_model, output_model=spec.result, tool_name=spec.name), is_async=False,
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
            return {_INVALID: invalid_arguments(self.tool_name, exc)}


def _version() -> str:
    try:
        return importlib.metadata.version("mgsup")
    except importlib.metadata.PackageNotFoundError:
        return ""


def main() -> None:
    """Serve the tools over stdio until the host closes stdin."""
    build_server().run("stdio")
