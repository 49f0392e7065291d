"""The OpenAI-side dispatcher, driven by tool calls recorded as models send them (tests/tools/data)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from supervisor import Supervisor
from supervisor.tools import dispatch

CALLS = json.loads((Path(__file__).parent / "data" / "tool_calls.json").read_text())


def run_recorded(calls: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Dispatch each recorded call in turn, as an agent loop would; SHELL_ID becomes the first call's shell id."""
    results: list[tuple[str, dict[str, Any]]] = []
    shell_id = "SHELL_ID"
    for item in calls:
        function = item.get("function", item)
        answer = dispatch(function["name"], function["arguments"].replace("SHELL_ID", shell_id))
        assert isinstance(answer, str)
        result = json.loads(answer)
        assert "error" not in result, result
        shell_id = results[0][1]["shell_id"] if results else result["shell_id"]
        results.append((function["name"], result))
    return results


def test_recorded_chat_session(home: Supervisor) -> None:
    results = dict(run_recorded(CALLS["chat"]))
    assert results["start_shell"]["name"] == "recorded"
    assert results["wait_shell"]["status"] == "stopped" and "wait_expired" not in results["wait_shell"]
    assert results["get_shell_output"]["stdout"] == "recorded run\n"
    assert results["get_shell_output"]["stdout_next_offset"] == len("recorded run\n")
    assert results["get_shell_status"]["exit_code"] == 0
    assert [s["name"] for s in results["list_shells"]["shells"]] == ["recorded"]
    # null stood for the defaults: SIGTERM and 5 s grace; the job had already ended.
    assert results["kill_shell"] == {"shell_id": results["start_shell"]["shell_id"], "status": "stopped",
                                     "message": "Process already terminated"}
    shell = home.list_shells()[0]
    assert shell["command"] == "printf 'recorded run\\n'; sleep 0.2"


def test_recorded_responses_session(home: Supervisor) -> None:
    results = dict(run_recorded(CALLS["responses"]))
    assert results["wait_shell"]["wait_expired"] is True
    assert results["kill_shell"]["status"] == "killed" and results["kill_shell"]["signal"] == "SIGINT"
    assert home.list_shells()[0]["status"] == "killed"


@pytest.mark.parametrize("call", CALLS["malformed"], ids=lambda c: c["error"])
def test_malformed_calls_get_readable_errors_and_start_nothing(home: Supervisor, call: dict[str, str]) -> None:
    answer = json.loads(dispatch(call["name"], call["arguments"]))
    assert set(answer) == {"error"}
    assert call["error"] in answer["error"]
    assert "https://" not in answer["error"]
    assert home.list_shells() == []


def test_unknown_tool_names_the_tools() -> None:
    answer = json.loads(dispatch("run_shell", "{}"))["error"]
    assert "the tools are start_shell, get_shell_status, get_shell_output" in answer


def test_arguments_may_be_empty_or_already_parsed(home: Supervisor) -> None:
    for arguments in ("", "  ", None, {}, {"status": None}):
        assert json.loads(dispatch("list_shells", arguments))["shells"] == []


def test_anticipated_failures(home: Supervisor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    unknown = json.loads(dispatch("get_shell_output", '{"shell_id": "shell_0badcafe"}'))["error"]
    assert "unknown shell id 'shell_0badcafe'" in unknown and "list_shells" in unknown
    invalid = json.loads(dispatch("start_shell", json.dumps({"command": "true", "cwd": str(tmp_path / "nope")})))
    assert "invalid request: cwd does not exist" in invalid["error"]
    assert home.list_shells() == []
    monkeypatch.setenv("MGSUP_MAX_CONCURRENT", "1")
    first = json.loads(dispatch("start_shell", '{"command": "sleep 60"}'))
    refused = json.loads(dispatch("start_shell", '{"command": "sleep 60"}'))["error"]
    assert "Maximum concurrent shells (1) reached" in refused and "queue=true" in refused
    assert [s["shell_id"] for s in home.list_shells()] == [first["shell_id"]]


def test_unexpected_failures_are_masked_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Supervisor:
        raise RuntimeError("secret detail of the host")

    with caplog.at_level(logging.ERROR, logger="supervisor.tools"):
        answer = json.loads(dispatch("list_shells", "{}", supervisor=broken))
    assert "internal error in list_shells" in answer["error"] and "secret" not in answer["error"]
    assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records)


def test_no_error_gives_command_line_advice(home: Supervisor, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("MGSUP_MAX_CONCURRENT", "1")
    call = json.loads(dispatch("start_shell", '{"command": "sleep 60"}'))
    limit = json.loads(dispatch("start_shell", '{"command": "sleep 60"}'))["error"]
    unknown = json.loads(dispatch("kill_shell", '{"shell_id": "shell_0badcafe"}'))["error"]
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    broken_home = json.loads(dispatch("start_shell", '{"command": "true"}', supervisor=lambda: Supervisor(not_a_dir)))
    for text in (limit, unknown, broken_home["error"]):
        assert "mgsup " not in text and "--" not in text, text
    assert limit.startswith("Maximum concurrent shells (1) reached: nothing was started. Call start_shell again "
                            "with queue=true")
    assert "list_shells with status='running'" in limit
    assert unknown.startswith("unknown shell id 'shell_0badcafe'")
    assert "state directory cannot be read or written" in broken_home["error"]
    assert "tell the user" in broken_home["error"]
    assert [s["shell_id"] for s in home.list_shells()] == [call["shell_id"]]


def test_a_misconfigured_server_says_so(home: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGSUP_MAX_CONCURRENT", "many")
    error = json.loads(dispatch("start_shell", '{"command": "true"}'))["error"]
    assert error.startswith("this server is misconfigured (MGSUP_MAX_CONCURRENT must be a whole number")
    monkeypatch.delenv("MGSUP_MAX_CONCURRENT")
    assert home.list_shells() == []
