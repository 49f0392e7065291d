"""The MCP server in process, through the SDK's client: the seven tools, their results and their errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from mcp import Client
from mcp_types import CallToolResult

from supervisor import InvalidRequest, Supervisor
from supervisor.tools.mcp_server import build_server

SEVEN = {"start_shell", "get_shell_status", "get_shell_output", "kill_shell", "list_shells", "wait_shell",
         "start_coordination"}
PY = sys.executable
REPO = Path(__file__).resolve().parents[2]


async def ok(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call a tool that must succeed; check its structured result against the advertised output schema."""
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    tool = next(t for t in (await client.list_tools()).tools if t.name == name)
    jsonschema.validate(result.structured_content, tool.output_schema)
    return result.structured_content


async def failed(client: Client, name: str, arguments: dict[str, Any]) -> str:
    """Call a tool that must fail as a tool error; return the text the model reads."""
    result: CallToolResult = await client.call_tool(name, arguments)
    assert result.is_error, result.structured_content
    assert result.structured_content is None
    return result.content[0].text  # type: ignore[union-attr]


def test_lists_the_seven_tools_with_schemas(with_client: Callable[..., Any]) -> None:
    async def scenario(client: Client) -> Any:
        return (await client.list_tools()).tools, client.instructions

    tools, instructions = with_client(scenario)
    assert {t.name for t in tools} == SEVEN
    assert "start_shell" in (instructions or "")
    for tool in tools:
        assert tool.description and len(tool.description) > 150, tool.name
        assert tool.input_schema["type"] == "object"
        assert tool.input_schema["additionalProperties"] is False
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
    by_name = {t.name: t for t in tools}
    assert by_name["start_shell"].input_schema["required"] == ["command"]
    assert set(by_name["get_shell_output"].input_schema["properties"]) == {
        "shell_id", "tail_lines", "offset", "max_bytes", "stream", "detail"}
    for tool in tools:
        assert tool.input_schema["properties"]["detail"]["default"] is False, tool.name
    assert "wait_expired" in by_name["wait_shell"].output_schema["properties"]
    assert by_name["kill_shell"].annotations is not None and by_name["kill_shell"].annotations.destructive_hint
    assert by_name["list_shells"].annotations is not None and by_name["list_shells"].annotations.read_only_hint


def test_start_read_wait_kill(with_client: Callable[..., Any], home: Supervisor, tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        started = await ok(client, "start_shell", {
            "command": [PY, "-c", "import os, sys; print('out', os.environ['GREETING']); "
                                  "print('err', file=sys.stderr)"],
            "env": ["GREETING=hello=world"], "name": "greeter", "cwd": str(tmp_path)})
        assert started["status"] in ("running", "stopped") and started["name"] == "greeter"
        shell_id = started["shell_id"]
        done = await ok(client, "wait_shell", {"shell_id": shell_id, "timeout": 30})
        assert (done["status"], done["exit_code"]) == ("stopped", 0) and "wait_expired" not in done
        out = await ok(client, "get_shell_output", {"shell_id": shell_id})
        assert (out["stdout"], out["stderr"]) == ("out hello=world\n", "err\n")
        assert "stdout_remaining_bytes" not in out and "hint" not in out
        status = await ok(client, "get_shell_status", {"shell_id": shell_id})
        assert "cwd" not in status and "stdout_path" not in status
        assert (await ok(client, "get_shell_status", {"shell_id": shell_id, "detail": True}))["cwd"] == str(tmp_path)

        sleeper = (await ok(client, "start_shell", {"command": "sleep 60"}))["shell_id"]
        assert (await ok(client, "get_shell_status", {"shell_id": sleeper}))["status"] == "running"
        killed = await ok(client, "kill_shell", {"shell_id": sleeper, "grace": 1})
        assert killed == {"shell_id": sleeper, "status": "killed", "signal": "SIGTERM"}
        again = await ok(client, "kill_shell", {"shell_id": sleeper, "detail": True})
        assert again == {"shell_id": sleeper, "status": "killed", "signal": None,
                         "message": "Process already terminated"}
        listed = await ok(client, "list_shells", {})
        assert [s["shell_id"] for s in listed["shells"]] == [sleeper, shell_id]
        assert (listed["total"], listed["running"], listed["queued"], listed["max_concurrent"]) == (2, 0, 0, 10)
        only = await ok(client, "list_shells", {"status": "killed"})
        assert [s["shell_id"] for s in only["shells"]] == [sleeper]

    with_client(scenario)
    # The same records, read by the library: the tools add no state of their own.
    assert home.get_shell_status(home.list_shells()[1]["shell_id"])["status"] == "killed"


def test_wait_that_times_out_is_a_normal_result(with_client: Callable[..., Any]) -> None:
    async def scenario(client: Client) -> None:
        shell_id = (await ok(client, "start_shell", {"command": "sleep 60"}))["shell_id"]
        waited = await ok(client, "wait_shell", {"shell_id": shell_id, "timeout": 0.3})
        assert (waited["wait_expired"], waited["status"]) == (True, "running")
        assert waited["waited_seconds"] >= 0.3
        await ok(client, "kill_shell", {"shell_id": shell_id, "grace": 1})

    with_client(scenario)


def test_output_is_paged_within_a_byte_budget(with_client: Callable[..., Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    line = "x" * 99 + "\n"
    script = f"import sys; sys.stdout.write({line!r} * 1000); sys.stderr.write('tail\\n')"

    async def scenario(client: Client) -> None:
        shell_id = (await ok(client, "start_shell", {"command": [PY, "-c", script]}))["shell_id"]
        await ok(client, "wait_shell", {"shell_id": shell_id})
        first = await ok(client, "get_shell_output", {"shell_id": shell_id})
        assert len(first["stdout"]) == 30 * 1024 and first["stdout_truncated"]
        assert f"{100_000 - 30 * 1024} more bytes of stdout" in first["hint"]
        assert first["stderr"] == "tail\n" and "stderr_truncated" not in first
        assert "stream='stdout' and offset=30720" in first["hint"]
        full = await ok(client, "get_shell_output", {"shell_id": shell_id, "detail": True})
        assert (full["max_bytes"], full["stdout_remaining_bytes"], full["stderr_remaining_bytes"]) == (
            30 * 1024, 100_000 - 30 * 1024, 0)
        text, offset = first["stdout"], first["stdout_next_offset"]
        while True:
            page = await ok(client, "get_shell_output", {"shell_id": shell_id, "stream": "stdout", "offset": offset,
                                                         "max_bytes": 40_000})
            assert "stderr" not in page and "stderr_next_offset" not in page
            text, offset = text + page["stdout"], page["stdout_next_offset"]
            if "hint" not in page:
                assert "stdout_truncated" not in page
                break
        assert text == line * 1000
        tail = await ok(client, "get_shell_output", {"shell_id": shell_id, "tail_lines": 2, "stream": "stdout"})
        assert tail["stdout"] == line * 2 and tail["stdout_truncated"]
        monkeypatch.setenv("MGSUP_TOOL_MAX_BYTES", "1000")
        small = await ok(client, "get_shell_output", {"shell_id": shell_id, "stream": "stdout", "detail": True})
        assert (small["max_bytes"], len(small["stdout"]), small["stdout_next_offset"]) == (1000, 1000, 1000)
        monkeypatch.setenv("MGSUP_TOOL_MAX_BYTES", "lots")
        bad_setting = await failed(client, "get_shell_output", {"shell_id": shell_id})
        assert "misconfigured (MGSUP_TOOL_MAX_BYTES must be a whole number" in bad_setting
        assert "tell the user" in bad_setting

    with_client(scenario)


def test_start_coordination_runs_the_demo(with_client: Callable[..., Any], tmp_path: Path) -> None:
    async def scenario(client: Client) -> None:
        started = await ok(client, "start_coordination", {"config": str(REPO / "configs" / "demo.yaml"),
                                                          "question": "What is 17 * 23?", "cwd": str(tmp_path)})
        done = await ok(client, "wait_shell", {"shell_id": started["shell_id"], "timeout": 90})
        assert (done["status"], done["exit_code"]) == ("stopped", 0), done
        assert done["coordination"]["winner"] and "391" in done["coordination"]["final_answer_preview"]
        assert "log_dir" not in done and "answer_file" not in done["coordination"]
        full = await ok(client, "get_shell_status", {"shell_id": started["shell_id"], "detail": True})
        assert full["log_dir"] and full["coordination"]["winner"] == done["coordination"]["winner"]
        answer = Path(full["coordination"]["answer_file"])
        assert answer.parent.name == done["coordination"]["winner"] and "391" in answer.read_text()
        out = await ok(client, "get_shell_output", {"shell_id": started["shell_id"], "stream": "stdout"})
        assert "WINNER: " in out["stdout"] and "391" in out["stdout"]
        missing = await failed(client, "start_coordination", {"config": "nowhere.yaml", "question": "q?",
                                                             "cwd": str(tmp_path)})
        assert "config file not found" in missing and "start_coordination again" in missing

    with_client(scenario)


@pytest.mark.parametrize("tool", ["get_shell_status", "get_shell_output", "kill_shell", "wait_shell"])
def test_unknown_shell_is_a_tool_error(with_client: Callable[..., Any], tool: str) -> None:
    async def scenario(client: Client) -> str:
        return await failed(client, tool, {"shell_id": "shell_0badcafe"})

    text = with_client(scenario)
    assert "unknown shell id 'shell_0badcafe'" in text and "call list_shells" in text


def test_limit_reached_is_a_tool_error(with_client: Callable[..., Any], home: Supervisor,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGSUP_MAX_CONCURRENT", "1")

    async def scenario(client: Client) -> str:
        await ok(client, "start_shell", {"command": "sleep 60"})
        return await failed(client, "start_shell", {"command": "sleep 60"})

    text = with_client(scenario)
    assert "Maximum concurrent shells (1) reached" in text and "queue=true" in text
    assert len(home.list_shells()) == 1


@pytest.mark.parametrize(("tool", "arguments", "expected"), [
    ("start_shell", {"command": "true", "cwd": "/no/such/dir"}, "invalid request: cwd does not exist"),
    ("start_shell", {"command": "   "}, "invalid request: command is empty"),
    ("start_shell", {"command": "true", "name": "no spaces"}, "invalid request: invalid name"),
    ("start_shell", {"command": "true", "env": ["NOEQUALS"]}, "env.0"),
    ("start_shell", {"command": []}, "command"),
    ("start_shell", {"command": "true", "queue": "maybe"}, "queue"),
    ("start_shell", {"command": "true", "timeout_s": 5}, "Extra inputs are not permitted"),
    ("start_shell", {}, "Field required"),
    ("wait_shell", {"shell_id": "shell_0badcafe", "timeout": 601}, "less than or equal to 600"),
    ("kill_shell", {"shell_id": "shell_0badcafe", "signal": "SIGNOPE"}, "unknown signal"),
    ("get_shell_output", {"shell_id": "shell_0badcafe", "offset": -1}, "greater than or equal to 0"),
    ("list_shells", {"status": "sleeping"}, "status"),
])
def test_bad_input_is_a_tool_error_and_starts_nothing(with_client: Callable[..., Any], home: Supervisor, tool: str,
                                                      arguments: dict[str, Any], expected: str) -> None:
    async def scenario(client: Client) -> str:
        return await failed(client, tool, arguments)

    text = with_client(scenario)
    assert expected in text
    assert "errors.pydantic.dev" not in text and "input_value=" not in text, "raw validator text reached the model"
    assert home.list_shells() == []
    assert not (home.home / "shells").exists() or not any((home.home / "shells").iterdir())


def test_schema_failures_read_like_the_dispatchers(with_client: Callable[..., Any]) -> None:
    async def scenario(client: Client) -> str:
        return await failed(client, "start_shell", {"comand": "true"})

    # The SDK puts "Error executing tool start_shell: " in front of every tool error.
    assert with_client(scenario).endswith("invalid arguments for start_shell: command: Field required; comand: Extra "
                                          "inputs are not permitted. Correct them and call start_shell again")


def test_unexpected_errors_are_masked_and_logged(with_client: Callable[..., Any],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Supervisor:
        raise RuntimeError("secret detail of the host")

    async def scenario(client: Client) -> str:
        return await failed(client, "list_shells", {})

    with caplog.at_level(logging.ERROR):
        text = with_client(scenario, server=build_server(broken))
    assert text == "Error executing tool list_shells"
    logged = [r for r in caplog.records if r.exc_info and "secret detail" in str(r.exc_info[1].__cause__)]
    assert logged, caplog.records


STATUS_WRITER = """
import json, os, sys, time
folder, period = sys.argv[1], float(sys.argv[2])
os.makedirs(folder, exist_ok=True)
status = os.path.join(folder, "status.json")
print("STATUS: " + status, flush=True)
while True:
    with open(status + ".tmp", "w") as f:
        json.dump({"meta": {"last_updated": time.time()}, "coordination": {"phase": "initial_answer"}}, f)
    os.replace(status + ".tmp", status)
    if period == 0:
        time.sleep(120)
    time.sleep(period)
"""


@pytest.mark.timeout(60)
def test_wait_kills_a_stalled_run_and_spares_a_healthy_one(with_client: Callable[..., Any], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGSUP_STALL_SECONDS", "0.5")
    script = tmp_path / "writer.py"
    script.write_text(STATUS_WRITER)

    async def scenario(client: Client) -> tuple[dict[str, Any], dict[str, Any]]:
        quiet = await ok(client, "start_shell", {"command": [PY, str(script), str(tmp_path / "quiet"), "0"]})
        busy = await ok(client, "start_shell", {"command": [PY, str(script), str(tmp_path / "busy"), "0.05"]})
        stalled = await ok(client, "wait_shell", {"shell_id": quiet["shell_id"], "timeout": 30,
                                                  "kill_on_stall": True})
        healthy = await ok(client, "wait_shell", {"shell_id": busy["shell_id"], "timeout": 2, "kill_on_stall": True})
        await ok(client, "kill_shell", {"shell_id": busy["shell_id"], "grace": 1})
        return stalled, healthy

    stalled, healthy = with_client(scenario)
    assert stalled["status"] == "killed" and "stalled" in stalled["message"] and "wait_expired" not in stalled
    assert (healthy["status"], healthy["wait_expired"]) == ("running", True)


def test_concurrency_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidRequest, match="MGSUP_MCP_THREADS must be a whole number >= 1, got 0"):
        build_server(threads=0)
    monkeypatch.setenv("MGSUP_MCP_MAX_WAITS", "lots")
    with pytest.raises(InvalidRequest, match="MGSUP_MCP_MAX_WAITS must be a whole number >= 1, got 'lots'"):
        build_server()
