"""`mgsup mcp` launched the way an MCP host launches it: a subprocess spoken to over stdin/stdout."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from supervisor import Supervisor


@pytest.mark.timeout(60)
def test_host_lists_starts_reads_waits_and_kills_over_stdio(home: Supervisor, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "supervisor", "mcp"], cwd=str(tmp_path),
                                   env={"MGSUP_HOME": str(home.home), "MGSUP_MAX_CONCURRENT": "3"})
    reader = [sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"]

    async def host() -> dict[str, Any]:
        async with Client(params) as client:
            seen: dict[str, Any] = {"tools": {t.name for t in (await client.list_tools()).tools}}
            started = await client.call_tool("start_shell", {"command": reader})
            shell_id = started.structured_content["shell_id"]  # type: ignore[index]
            waited = await client.call_tool("wait_shell", {"shell_id": shell_id, "timeout": 30})
            seen["waited"] = waited.structured_content
            output = await client.call_tool("get_shell_output", {"shell_id": shell_id})
            seen["output"] = output.structured_content
            sleeper = await client.call_tool("start_shell", {"command": ["sleep", "60"]})
            seen["sleeper"] = sleeper.structured_content
            seen["stdin_of_job"] = os.readlink(f"/proc/{seen['sleeper']['pid']}/fd/0")
            killed = await client.call_tool("kill_shell", {"shell_id": seen["sleeper"]["shell_id"], "grace": 1})
            seen["killed"] = killed.structured_content
            seen["limit"] = (await client.call_tool("list_shells", {})).structured_content["max_concurrent"]  # type: ignore[index]
            bad = await client.call_tool("get_shell_status", {"shell_id": "shell_0badcafe"})
            seen["bad"] = (bad.is_error, bad.content[0].text)  # type: ignore[union-attr]
            return seen

    with caplog.at_level(logging.WARNING):
        seen = asyncio.run(host())
    assert seen["tools"] == {"start_shell", "get_shell_status", "get_shell_output", "kill_shell", "list_shells",
                             "wait_shell", "start_coordination"}
    assert (seen["waited"]["status"], seen["waited"]["exit_code"]) == ("stopped", 0)
    # The job read end-of-file at once: it never inherits the protocol stream as its stdin.
    assert seen["output"]["stdout"] == "''\n"
    assert seen["stdin_of_job"] == "/dev/null"
    assert seen["killed"]["status"] == "killed"
    assert seen["limit"] == 3
    assert seen["bad"][0] and "list_shells" in seen["bad"][1]
    # Every line the server wrote to stdout was protocol.
    assert not [r for r in caplog.records if "Failed to parse" in r.getMessage()]
    # The server has exited; the shells it started are on record for everyone else.
    assert [s["status"] for s in home.list_shells()] == ["stopped", "killed"]
