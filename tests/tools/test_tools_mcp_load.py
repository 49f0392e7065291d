"""`mgsup mcp` under load and at the end of its host: many waits, abandoned waits, stdin closed, host killed.

Each test runs the real server in its own process. Waits on a live shell hold one pidfd each in the
server (and no thread), so the pidfds in /proc/<server>/fd show which waits are in flight. The wait
timeouts (600 s) are far beyond the test timeouts: a server that stalls behind its waits, or
lingers until they end, fails the test instead of passing late.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from supervisor import Supervisor

HOST = Path(__file__).parent / "data" / "mcp_host.py"
REPO = Path(__file__).resolve().parents[2]
# More waits than anyio's default thread pool (40), which the SDK's stdio transport uses too.
FLOOD = 60
HANG = 60  # seconds: only a server that hangs gets near this


def pidfds(pid: int) -> int:
    """How many pidfds (process exit watches) the process `pid` holds."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[pidfd]"
        except FileNotFoundError:
            continue
    return count


def server_process() -> psutil.Process:
    [server] = [p for p in psutil.Process().children() if p.cmdline()[1:] == ["-m", "supervisor", "mcp"]]
    return server


async def until(predicate: Callable[[], bool], what: str) -> None:
    with anyio.fail_after(HANG):
        while not predicate():
            await anyio.sleep(0.02)


def serve(home: Supervisor, tmp_path: Path, scenario: Callable[[Client], Awaitable[Any]], **env: str) -> Any:
    params = StdioServerParameters(command=sys.executable, args=["-m", "supervisor", "mcp"], cwd=str(tmp_path),
                                   env={"MGSUP_HOME": str(home.home), "PATH": os.environ["PATH"], **env})

    async def host() -> Any:
        async with Client(params) as client:
            return await scenario(client)

    return anyio.run(host)


@pytest.mark.timeout(120)
def test_a_flood_of_waits_holds_no_thread_and_every_other_call_is_served(home: Supervisor, tmp_path: Path) -> None:
    async def scenario(client: Client) -> dict[str, Any]:
        started = await client.call_tool("start_shell", {"command": "sleep 600"})
        shell_id = started.structured_content["shell_id"]  # type: ignore[index]
        server = server_process()
        waited: list[dict[str, Any]] = []

        async def wait() -> None:
            result = await client.call_tool("wait_shell", {"shell_id": shell_id, "timeout": 600})
            waited.append(result.structured_content)  # type: ignore[arg-type]

        seen: dict[str, Any] = {}
        async with anyio.create_task_group() as group:
            for _ in range(FLOOD):
                group.start_soon(wait)
            await until(lambda: pidfds(server.pid) == FLOOD, f"{FLOOD} waits in flight")
            seen["threads"] = server.num_threads()
            with anyio.fail_after(HANG):
                seen["listed"] = (await client.call_tool("list_shells", {})).structured_content
                seen["status"] = (await client.call_tool("get_shell_status", {"shell_id": shell_id})
                                  ).structured_content
                seen["killed"] = (await client.call_tool("kill_shell", {"shell_id": shell_id, "grace": 1})
                                  ).structured_content
        seen["waited"] = waited
        seen["pidfds_after"] = pidfds(server.pid)
        return seen

    seen = serve(home, tmp_path, scenario)
    # The waits held no thread: far fewer threads than waits in flight.
    assert seen["threads"] < FLOOD / 2, seen["threads"]
    assert seen["listed"]["running"] == 1 and seen["status"]["status"] == "running"
    # The kill was served while the waits were in flight: it found the job still running.
    assert (seen["killed"]["status"], seen["killed"]["signal"]) == ("killed", "SIGTERM")
    # Every wait saw the end as soon as it came, not its timeout.
    assert len(seen["waited"]) == FLOOD
    assert all(w["status"] == "killed" and "wait_expired" not in w for w in seen["waited"])
    assert seen["pidfds_after"] == 0


@pytest.mark.timeout(120)
def test_waits_the_host_abandons_are_released(home: Supervisor, tmp_path: Path) -> None:
    async def scenario(client: Client) -> dict[str, Any]:
        started = await client.call_tool("start_shell", {"command": "sleep 600"})
        shell_id = started.structured_content["shell_id"]  # type: ignore[index]
        server = server_process()
        seen: dict[str, Any] = {}
        async with anyio.create_task_group() as group:
            for _ in range(FLOOD):
                group.start_soon(client.call_tool, "wait_shell", {"shell_id": shell_id, "timeout": 600})
            await until(lambda: pidfds(server.pid) == FLOOD, f"{FLOOD} waits in flight")
            # Abandoning the calls sends notifications/cancelled for each.
            group.cancel_scope.cancel()
        await until(lambda: pidfds(server.pid) == 0, "the abandoned waits to be released")
        seen["threads"] = server.num_threads()
        with anyio.fail_after(HANG):
            seen["status"] = (await client.call_tool("get_shell_status", {"shell_id": shell_id})).structured_content
            waited = await client.call_tool("wait_shell", {"shell_id": shell_id, "timeout": 0.2})
            seen["waited"] = waited.structured_content
        return seen

    seen = serve(home, tmp_path, scenario)
    # Abandoning a wait never stops the job, and the server goes on serving.
    assert seen["status"]["status"] == "running"
    assert (seen["waited"]["status"], seen["waited"]["wait_expired"]) == ("running", True)
    assert seen["threads"] < FLOOD / 2


@pytest.mark.timeout(120)
def test_waits_beyond_the_servers_bound_are_refused_with_a_readable_error(home: Supervisor, tmp_path: Path) -> None:
    async def scenario(client: Client) -> str:
        started = await client.call_tool("start_shell", {"command": "sleep 600"})
        shell_id = started.structured_content["shell_id"]  # type: ignore[index]
        server = server_process()
        async with anyio.create_task_group() as group:
            for _ in range(2):
                group.start_soon(client.call_tool, "wait_shell", {"shell_id": shell_id, "timeout": 600})
            await until(lambda: pidfds(server.pid) == 2, "2 waits in flight")
            refused = await client.call_tool("wait_shell", {"shell_id": shell_id, "timeout": 600})
            group.cancel_scope.cancel()
        assert refused.is_error
        return refused.content[0].text  # type: ignore[union-attr]

    text = serve(home, tmp_path, scenario, MGSUP_MCP_MAX_WAITS="2")
    assert "2 waits are in flight on this server" in text and "get_shell_status" in text


@contextmanager
def host(tmp_path: Path, home: Supervisor, *args: str) -> Iterator[tuple[subprocess.Popen[str], int, str, int]]:
    """Run tests/tools/data/mcp_host.py: the host, its server's pid, the shell id and the keeper's pid.

    On the way out the host and everything it started are killed, whatever the test did.
    """
    with subprocess.Popen([sys.executable, str(HOST), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True, cwd=tmp_path,
                          env={**os.environ, "MGSUP_HOME": str(home.home), "PYTHONPATH": str(REPO)}) as process:
        assert process.stdout is not None
        ready, server, shell_id, keeper = process.stdout.readline().split()
        assert ready == "ready"
        try:
            yield process, int(server), shell_id, int(keeper)
        finally:
            for pid in (process.pid, int(keeper), int(server)):
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def until_sync(predicate: Callable[[], bool], what: str) -> None:
    anyio.run(until, predicate, what)


@pytest.mark.timeout(120)
def test_the_server_exits_when_stdin_closes_with_waits_in_flight(home: Supervisor, tmp_path: Path) -> None:
    with host(tmp_path, home, "5", "close") as (process, server, shell_id, _):
        until_sync(lambda: pidfds(server) == 5, "5 waits in flight")
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("go\n")
        process.stdin.flush()
        # The host gives the server 60 s (a wait's timeout is 600 s) before it reports `running`.
        ended = process.stdout.readline().split()
    assert ended == ["exited", "0"]
    # What the server started goes on, on record.
    assert home.get_shell_status(shell_id)["status"] == "running"


@pytest.mark.timeout(120)
def test_the_server_exits_when_its_host_dies_even_if_stdin_stays_open(home: Supervisor, tmp_path: Path) -> None:
    with host(tmp_path, home, "5", "stay", "--keeper") as (process, server, shell_id, keeper):
        until_sync(lambda: pidfds(server) == 5, "5 waits in flight")
        gone = psutil.Process(server)
        process.kill()
        process.wait()
        # The keeper holds the host's end of the server's stdin: no end-of-file comes.
        assert alive(psutil.Process(keeper))
        until_sync(lambda: not alive(gone), "the orphaned server to exit")
    assert home.get_shell_status(shell_id)["status"] == "running"
