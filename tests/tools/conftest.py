"""Fixtures for the tool tests: an MCP client on the in-process server, and the no-leftover check.

The shared `home` fixture gives each test its own $MGSUP_HOME. tests/tools is not among the
directories the shared reaper checks, so `no_leftovers` does it here: after each test every shell
still queued or running is killed, and no process tagged with one of the test's shells may remain.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from supervisor import Supervisor, lifecycle, proc
from supervisor.tools.mcp_server import build_server


@pytest.fixture(autouse=True)
def no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    ids = []
    for shells in tmp_path.rglob("shells"):
        sup = Supervisor(shells.parent, max_concurrent=1000)
        for shell in sup.list_shells():
            ids.append(shell["shell_id"])
            if shell["status"] in lifecycle.LIVE:
                sup.kill_shell(shell["shell_id"], grace=1.0)
    deadline = time.monotonic() + 5
    left = {shell_id: proc.tagged(shell_id) for shell_id in ids}
    while any(left.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
        left = {shell_id: proc.tagged(shell_id) for shell_id in ids}
    for pids in left.values():
        proc.send(pids, 9)
    assert not any(left.values()), f"processes left behind: {left}"


Scenario = Callable[[Client], Awaitable[Any]]


@pytest.fixture
def with_client(home: Supervisor) -> Callable[[Scenario], Any]:
    """Run `scenario(client)` against the in-process MCP server on the test's home; return what it returns."""

    def run(scenario: Scenario, server: Any = None) -> Any:
        async def go() -> Any:
            async with Client(server or build_server()) as client:
                return await scenario(client)

        return asyncio.run(go())

    return run
