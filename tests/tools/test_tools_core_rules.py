"""The core's rules hold unchanged through the tools: the concurrency limit and queue, tree kill, persistence."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import psutil
import pytest
from mcp import Client

from supervisor import Supervisor, proc
from supervisor.tools import dispatch

PY = sys.executable


def call(name: str, **arguments: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(dispatch(name, json.dumps(arguments)))
    assert "error" not in result, result
    return result


def test_limit_and_queue_through_the_tools(home: Supervisor, monkeypatch: pytest.MonkeyPatch,
                                           wait_for: Callable[..., Any]) -> None:
    monkeypatch.setenv("MGSUP_MAX_CONCURRENT", "2")
    running = [call("start_shell", command="sleep 60")["shell_id"] for _ in range(2)]
    refused = json.loads(dispatch("start_shell", '{"command": "sleep 60"}'))
    assert "Maximum concurrent shells (2) reached" in refused["error"]
    queued = call("start_shell", command=[PY, "-c", "print('my turn')"], queue=True)
    assert queued["status"] == "queued" and "pid" not in queued
    listed = call("list_shells")
    assert (listed["running"], listed["queued"], listed["max_concurrent"]) == (2, 1, 2)
    # A slot frees: the queued shell starts by itself, with no caller waiting on it.
    call("kill_shell", shell_id=running[0], grace=1)
    done = call("wait_shell", shell_id=queued["shell_id"], timeout=30)
    assert done["status"] == "stopped" and "wait_expired" not in done
    assert call("get_shell_output", shell_id=queued["shell_id"])["stdout"] == "my turn\n"
    # Removing a queued shell through the tool.
    call("start_shell", command="sleep 60")
    waiting = call("start_shell", command="sleep 60", queue=True)["shell_id"]
    assert call("kill_shell", shell_id=waiting) == {"shell_id": waiting, "status": "killed",
                                                    "message": "Removed from queue"}


def test_kill_through_the_tools_ends_the_whole_tree(home: Supervisor, wait_for: Callable[..., Any]) -> None:
    # A child, a grandchild, and a grandchild in its own session that ignores SIGTERM.
    script = ("sleep 60 & sh -c 'sleep 60 & wait' & "
              f"setsid {PY} -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)' & "
              "wait")
    shell_id = call("start_shell", command=script)["shell_id"]
    def whole_tree() -> set[int] | None:
        pids = proc.tagged(shell_id)
        return pids if len(pids) >= 5 else None

    tree = wait_for(whole_tree, what="the job's tree: sh, sleep, sh, sleep, python")
    killed = call("kill_shell", shell_id=shell_id, grace=0.5)
    assert (killed["status"], killed["signal"]) == ("killed", "SIGTERM")
    # kill_shell returns once nothing of the job is left.
    assert [pid for pid in tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"] == []
    assert proc.tagged(shell_id) == set()


def test_shells_persist_across_servers_and_surfaces(home: Supervisor, with_client: Callable[..., Any]) -> None:
    async def first_host(client: Client) -> str:
        result = await client.call_tool("start_shell", {"command": "sleep 0.3; echo persisted", "name": "kept"})
        return result.structured_content["shell_id"]  # type: ignore[index,no-any-return]

    shell_id = with_client(first_host)

    async def second_host(client: Client) -> dict[str, Any]:
        result = await client.call_tool("wait_shell", {"shell_id": shell_id, "timeout": 30})
        return result.structured_content  # type: ignore[return-value]

    # A new server (as after a host restart) finds the shell the first one started.
    assert with_client(second_host)["status"] == "stopped"
    assert call("get_shell_output", shell_id=shell_id)["stdout"] == "persisted\n"
    assert home.get_shell_status(shell_id)["name"] == "kept"
    assert Supervisor(home.home).list_shells()[0]["shell_id"] == shell_id
