"""The supervisor as tools for LLM agents: one tool layer, served over MCP and as OpenAI functions.

OpenAI function calling (this package; no MCP import):

>>> from supervisor.tools import openai_tools, dispatch
>>> tools = openai_tools("chat")          # or openai_tools("responses")
>>> dispatch("get_shell_status", '{"shell_id": "shell_1a2b3c4d"}')

MCP: `mgsup mcp`, or `supervisor.tools.mcp_server.main()`, serves the same tools over stdio.
"""

from __future__ import annotations

from .dispatch import dispatch, openai_tools
from .registry import TOOLS, ToolFailure, ToolSpec

__all__ = ["TOOLS", "ToolFailure", "ToolSpec", "dispatch", "openai_tools"]
