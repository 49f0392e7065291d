"""Scheduling through a real `mgsup mcp` stdio server: a group's limit, `after`, retries and merged output
hold for starts made by tools, and bad scheduling arguments are tool errors that start nothing."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from supervisor import Supervisor

pytestmark = pytest.mark.timeout(120)
PY = sys.executable
# Fails on its first run (leaving a marker in its cwd), succeeds on the next.
FAIL_ONCE = ("import os, sys\nif os.path.exists('marker'):\n    print('second try'); sys.exit(0)\n"
             "open('marker', 'w').close(); print('first try'); sys.exit(1)\n")
INTERLEAVED = ("import sys\nfor i in range(5):\n    print(f'out{i}', flush=True)\n"
               "    print(f'err{i}', file=sys.stderr, flush=True)\n")


def serve(home: Supervisor, cwd: Path) -> StdioServerParameters:
    return StdioServerParameters(command=PY, args=["-m", "supervisor", "mcp"], cwd=str(cwd),
                                 env={"MGSUP_HOME": str(home.home), "PATH": "/usr/bin:/bin"})


async def ok(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


async def failed(client: Client, name: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(name, arguments)
    assert result.is_error, result.structured_content
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text.removeprefix(f"Error executing tool {name}: ")


def test_group_limit_after_retries_and_merged_output_over_stdio(home: Supervisor, tmp_path: Path) -> None:
    home.set_group_limit("gpu", 1)
    gate = tmp_path / "gate"
    os.mkfifo(gate)

    async def host() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with Client(serve(home, tmp_path)) as client:
            # A group's limit: the second shell of "gpu" is refused, or queued; a shell of no group runs.
            first = await ok(client, "start_shell", {"command": ["sleep", "60"], "group": "gpu", "name": "g1"})
            seen["refused"] = await failed(client, "start_shell", {"command": "echo two", "group": "gpu"})
            seen["second"] = await ok(client, "start_shell", {"command": "echo two", "group": "gpu", "queue": True})
            seen["other"] = await ok(client, "start_shell", {"command": ["sleep", "60"]})
            seen["in_gpu"] = await ok(client, "list_shells", {"group": "gpu"})
            await ok(client, "kill_shell", {"shell_id": first["shell_id"], "grace": 1})
            seen["second_done"] = await ok(client, "wait_shell", {"shell_id": seen["second"]["shell_id"],
                                                                  "timeout": 60})
            await ok(client, "kill_shell", {"shell_id": seen["other"]["shell_id"], "grace": 1})

            # after: the dependant waits queued while its dependency runs, and runs once it ended stopped.
            blocker = await ok(client, "start_shell", {"command": ["cat", str(gate)], "name": "blocker"})
            seen["dependant"] = await ok(client, "start_shell", {"command": "echo after", "after": ["blocker"]})
            seen["dependant_read"] = await ok(client, "get_shell_status",
                                              {"shell_id": seen["dependant"]["shell_id"]})
            with open(gate, "w") as writer:  # cat ends once the gate is written and closed
                writer.write("go\n")
            seen["blocker_done"] = await ok(client, "wait_shell", {"shell_id": blocker["shell_id"], "timeout": 60})
            seen["dependant_done"] = await ok(client, "wait_shell", {"shell_id": seen["dependant"]["shell_id"],
                                                                     "timeout": 60})
            seen["dependant_out"] = await ok(client, "get_shell_output", {"shell_id": seen["dependant"]["shell_id"]})

            # retries: a command that fails once is run again; the attempt shows.
            retried = await ok(client, "start_shell", {"command": [PY, "-c", FAIL_ONCE], "retries": 2,
                                                       "cwd": str(tmp_path)})
            seen["retried"] = retried
            seen["retried_done"] = await ok(client, "wait_shell", {"shell_id": retried["shell_id"], "timeout": 60})
            seen["retried_out"] = await ok(client, "get_shell_output", {"shell_id": retried["shell_id"],
                                                                        "stream": "stdout"})

            # merge_output: both streams in stdout, in the order written.
            merged = await ok(client, "start_shell", {"command": [PY, "-c", INTERLEAVED], "merge_output": True})
            await ok(client, "wait_shell", {"shell_id": merged["shell_id"], "timeout": 60})
            seen["merged_out"] = await ok(client, "get_shell_output", {"shell_id": merged["shell_id"]})

            # Bad scheduling arguments: tool errors that say what to call, and nothing started.
            before = len(home.list_shells())
            seen["unknown_after"] = await failed(client, "start_shell", {"command": "true", "after": ["blockr"]})
            seen["bad_group"] = await failed(client, "start_shell", {"command": "true", "group": "no spaces"})
            seen["many_retries"] = await failed(client, "start_shell", {"command": "true", "retries": 1001})
            seen["started_by_errors"] = len(home.list_shells()) - before
        return seen

    seen = asyncio.run(host())

    assert seen["refused"].startswith("Maximum concurrent shells of group 'gpu' (1) reached: nothing was started.")
    assert "queue=true" in seen["refused"] and "list_shells with group='gpu', status='running'" in seen["refused"]
    assert (seen["second"]["status"], seen["second"]["group"]) == ("queued", "gpu")
    assert seen["other"]["status"] == "running" and "group" not in seen["other"]
    assert [s["name"] for s in seen["in_gpu"]["shells"] if "name" in s] == ["g1"]
    assert seen["in_gpu"]["total"] == 2
    assert (seen["second_done"]["status"], seen["second_done"]["exit_code"]) == ("stopped", 0)

    blocker_id = seen["blocker_done"]["shell_id"]
    assert seen["dependant"]["status"] == "queued" and seen["dependant"]["after"] == [blocker_id]
    assert seen["dependant_read"]["message"] == f"waiting for {blocker_id} to end"
    assert seen["blocker_done"]["status"] == "stopped"
    assert seen["dependant_done"]["status"] == "stopped" and seen["dependant_out"]["stdout"] == "after\n"

    assert (seen["retried"]["attempt"], seen["retried"]["retries"]) == (1, 2)
    done = seen["retried_done"]
    assert (done["status"], done["attempt"], done["retries"]) == ("stopped", 2, 2)
    assert seen["retried_out"]["stdout"] == "first try\nsecond try\n"

    assert seen["merged_out"]["stdout"] == "".join(f"out{i}\nerr{i}\n" for i in range(5))
    assert seen["merged_out"]["stderr"] == ""

    assert seen["unknown_after"].startswith("unknown shell 'blockr' in after: no shell on record has this id or "
                                            "name, and nothing was started; did you mean 'blocker'?")
    assert "call start_shell again with after naming shells that exist" in seen["unknown_after"]
    assert seen["bad_group"].startswith("invalid request: invalid group 'no spaces': use 1-64 letters")
    assert seen["bad_group"].endswith("Correct the arguments and call start_shell again")
    assert seen["many_retries"] == ("invalid arguments for start_shell: retries: Input should be less than or equal "
                                    "to 1000. Correct them and call start_shell again")
    assert seen["started_by_errors"] == 0
