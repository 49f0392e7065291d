"""`mgsup mcp --policy FILE` spoken to by a real MCP client over stdio: refused calls are tool errors that
quote the rule and do nothing, every call is one audit line, and a malformed policy never serves."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from supervisor import Supervisor, audit

pytestmark = pytest.mark.timeout(90)
SECRET = "sk-do-not-log-4242"


def serve(home: Supervisor, cwd: Path, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "supervisor", "mcp", *extra], cwd=str(cwd),
                                 env={"MGSUP_HOME": str(home.home), "PATH": "/usr/bin:/bin"})


async def outcome(client: Client, name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
    """(is_error, the error text or the structured result)."""
    result = await client.call_tool(name, arguments)
    if result.is_error:
        text: str = result.content[0].text  # type: ignore[union-attr]
        # The SDK puts this in front of every tool error.
        return True, text.removeprefix(f"Error executing tool {name}: ")
    return False, result.structured_content


def test_a_restricted_server_refuses_what_its_policy_does_not_allow(home: Supervisor, tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"""
commands: {{allow: ["{sys.executable} *", "sleep *"], deny: ["*rm -rf*"]}}
cwd_roots: ["{root}"]
env_names: [TOKEN]
max_timeout_seconds: 30
max_shells_per_session: 2
""")
    script = [sys.executable, "-c", "import os; print(len(os.environ['TOKEN']))"]

    async def host() -> dict[str, Any]:
        async with Client(serve(home, root, "--policy", str(policy))) as client:
            seen = {
                "allowed": await outcome(client, "start_shell", {"command": script, "env": [f"TOKEN={SECRET}"]}),
                "pattern": await outcome(client, "start_shell", {"command": f"{sys.executable} x.py; rm -rf {root}"}),
                "symlink": await outcome(client, "start_shell", {"command": ["sleep", "1"],
                                                                 "cwd": str(root / "escape")}),
                "dotdot": await outcome(client, "start_shell", {"command": ["sleep", "1"],
                                                                "cwd": f"{root}/../outside"}),
                "env": await outcome(client, "start_shell", {"command": ["sleep", "1"],
                                                             "env": [f"LD_PRELOAD={SECRET}"]}),
                "timeout": await outcome(client, "start_shell", {"command": ["sleep", "1"], "timeout": 31}),
                "second": await outcome(client, "start_shell", {"command": ["sleep", "0.1"], "timeout": 5}),
                "third": await outcome(client, "start_shell", {"command": ["sleep", "0.1"]}),
                "invalid": await outcome(client, "start_shell", {"command": "x", "env": [SECRET], "colour": 1}),
            }
            first = seen["allowed"][1]["shell_id"]
            seen["waited"] = await outcome(client, "wait_shell", {"shell_id": first, "timeout": 30})
            return seen

    seen = asyncio.run(host())
    assert seen["allowed"][0] is False and seen["allowed"][1]["policy"] == "set by the policy: timeout=30.0"
    assert seen["waited"][1]["exit_code"] == 0
    assert home.get_shell_output(seen["allowed"][1]["shell_id"])["stdout"] == f"{len(SECRET)}\n"
    expected = {
        "pattern": 'denied by the policy rule commands.deny: "*rm -rf*"',
        "symlink": f'denied by the policy rule cwd_roots: ["{root}"]',
        "dotdot": f'denied by the policy rule cwd_roots: ["{root}"]',
        "env": 'denied by the policy rule env_names: ["TOKEN"]',
        "timeout": "denied by the policy rule max_timeout_seconds: 30",
        "third": "denied by the policy rule max_shells_per_session: 2",
    }
    for key, start in expected.items():
        is_error, text = seen[key]
        assert is_error and text.startswith(start), (key, text)
        assert text.endswith("Nothing was done"), (key, text)
    assert f'resolves to "{outside}"' in seen["symlink"][1] and f'resolves to "{outside}"' in seen["dotdot"][1]
    assert seen["second"][0] is False
    assert root.is_dir() and not list(outside.iterdir())
    assert len(home.list_shells()) == 2

    # One audit line per call, in the home, owner-only, without the value of any environment variable.
    log = Path(audit.path(home.home))
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert SECRET not in log.read_text()
    records = audit.read(home.home)
    assert [(r["tool"], r["decision"], r["result"]) for r in records] == [
        ("start_shell", "allowed", "ok"), *[("start_shell", "denied", "error")] * 5,
        ("start_shell", "allowed", "ok"), ("start_shell", "denied", "error"), ("start_shell", "invalid", "error"),
        ("wait_shell", "allowed", "ok")]
    assert {r["surface"] for r in records} == {"mcp"} and len({r["session"] for r in records}) == 1
    assert records[0]["arguments"]["env"] == ["TOKEN=***"] and records[0]["applied"] == {"timeout": 30.0}
    assert records[0]["shell_id"] == seen["allowed"][1]["shell_id"]
    assert records[1]["rule"] == 'commands.deny: "*rm -rf*"'
    assert records[4]["arguments"]["env"] == ["LD_PRELOAD=***"]
    assert records[8]["arguments"] == {"command": "x", "env": ["***"], "colour": 1}
    assert records[9]["status"] == "stopped"


def test_a_read_only_server_reads_and_waits_but_never_starts_or_kills(home: Supervisor, tmp_path: Path) -> None:
    running = home.start_shell(["sleep", "60"])
    policy = tmp_path / "ro.yaml"
    policy.write_text("read_only: true\n")

    async def host() -> dict[str, Any]:
        async with Client(serve(home, tmp_path, "--policy", str(policy))) as client:
            return {
                "start": await outcome(client, "start_shell", {"command": "touch made"}),
                "coordinate": await outcome(client, "start_coordination", {"config": "c.yaml", "question": "q"}),
                "kill": await outcome(client, "kill_shell", {"shell_id": running, "grace": 1}),
                "stall_kill": await outcome(client, "wait_shell", {"shell_id": running, "timeout": 0,
                                                                  "kill_on_stall": True}),
                "status": await outcome(client, "get_shell_status", {"shell_id": running}),
                "list": await outcome(client, "list_shells", {}),
                "output": await outcome(client, "get_shell_output", {"shell_id": running}),
                "wait": await outcome(client, "wait_shell", {"shell_id": running, "timeout": 0.2}),
            }

    seen = asyncio.run(host())
    for key in ("start", "coordinate", "kill", "stall_kill"):
        is_error, text = seen[key]
        assert is_error and text.startswith("denied by the policy rule read_only: true"), (key, text)
    for key in ("status", "list", "output", "wait"):
        assert seen[key][0] is False, (key, seen[key])
    assert seen["wait"][1]["wait_expired"] is True
    assert [(s["shell_id"], s["status"]) for s in home.list_shells()] == [(running, "running")]
    assert not (tmp_path / "made").exists()
    assert [r["decision"] for r in audit.read(home.home)] == ["denied"] * 4 + ["allowed"] * 4
    home.kill_shell(running, grace=1)


@pytest.mark.parametrize("text", ["commands:\n  alow: ['python3 *']\n", "read_only: [\n", ""])
def test_a_malformed_policy_file_refuses_to_serve(home: Supervisor, tmp_path: Path, text: str) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text(text)
    handshake = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                       "clientInfo": {"name": "t", "version": "1"}}}) + "\n"
    done = subprocess.run([sys.executable, "-m", "supervisor", "mcp", "--policy", str(policy)], input=handshake,
                          capture_output=True, text=True, timeout=60, env={"MGSUP_HOME": str(home.home)})
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mgsup: error: policy {policy}: ")
    assert not home.home.exists()
