"""Tokens of a turn that failed and was retried count in status.json like any other: the failed
attempt's tokens were spent, and budgets read these totals (a real mgcoord run per test)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from coord_helpers import ChatServer, chat_response, child_env, command_agent, run_mgcoord, write_config

from supervisor.automation.schema import StatusDocument

pytestmark = pytest.mark.timeout(60)

QUESTION = "What is 6 * 7?"

# One agent: its first call fails after reporting usage (how, is the argument), every later call
# answers, votes for itself or presents, reporting 1 + 1 tokens. Calls are counted in a file.
_AGENT = """import json, pathlib, sys
calls = pathlib.Path(sys.argv[2])
n = int(calls.read_text()) + 1 if calls.exists() else 1
calls.write_text(str(n))
req = json.load(sys.stdin)
usage = {"prompt_tokens": 1, "completion_tokens": 1}
if n == 1:
    # An action that does not exist, or a reply as usual from a program that then fails.
    action = "dance" if sys.argv[1] == "invalid_action" else "new_answer"
    print(json.dumps({"action": action, "content": "42", "usage": {"prompt_tokens": 100, "completion_tokens": 10}}))
    sys.exit(3 if sys.argv[1] == "exit_code" else 0)
if req["phase"] == "present":
    reply = {"content": "final: 42"}
elif req["can_answer"] and not req["answers"]:
    reply = {"action": "new_answer", "content": "42"}
else:
    reply = {"action": "vote", "agent_id": req["vote_options"][0], "reason": "fine"}
reply["usage"] = usage
print(json.dumps(reply))
"""


def _run(config: Path, cwd: Path, **env: str) -> dict[str, Any]:
    result = run_mgcoord("--automation", "--config", str(config), QUESTION, cwd=cwd, env=child_env(**env))
    assert result.returncode == 0, result
    data: dict[str, Any] = json.loads(Path(result.value("STATUS")).read_text(encoding="utf-8"))
    StatusDocument.model_validate(data)
    return data


def _tokens(usage: dict[str, int] | None) -> tuple[int, int, int] | None:
    return None if usage is None else (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"])


@pytest.mark.parametrize("failure", ["invalid_action", "exit_code"])
def test_a_failed_command_turn_counts_its_tokens(run_dir: Path, failure: str) -> None:
    script = run_dir / "agent.py"
    script.write_text(_AGENT)
    calls = run_dir / "calls"
    config = write_config(run_dir / "c.yaml", [command_agent("solo", [sys.executable, str(script), failure,
                                                                     str(calls)])])
    status = _run(config, run_dir)
    # The failed call, then an answer, a vote and the presentation.
    assert calls.read_text() == "4"
    assert _tokens(status["agents"]["solo"]["usage"]) == (103, 13, 116)
    assert _tokens(status["results"]["usage"]) == (103, 13, 116)


def test_a_reply_without_a_message_counts_its_tokens(run_dir: Path, chat_server: ChatServer) -> None:
    """An OpenAI-compatible server that bills a reply without a message (``choices: []``)."""
    replies: list[dict[str, Any]] = [
        {"id": "x", "object": "chat.completion", "choices": [],
         "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}},
        chat_response(tool_calls=[("new_answer", '{"content": "42"}')]),
        chat_response(tool_calls=[("vote", '{"agent_id": "agent1", "reason": "fine"}')]),
        chat_response(content="final: 42"),
    ]
    chat_server.responder = lambda body: replies.pop(0)
    agent = {"id": "model", "backend": {"type": "openai", "model": "m", "base_url": chat_server.base_url,
                                        "api_key_env": "TEST_CHAT_KEY"}}
    config = write_config(run_dir / "c.yaml", [agent])
    status = _run(config, run_dir, TEST_CHAT_KEY="k")
    assert replies == [] and len(chat_server.requests) == 4
    # Each good reply of chat_response reports 10 + 5 tokens.
    assert _tokens(status["agents"]["model"]["usage"]) == (130, 25, 155)
    assert _tokens(status["results"]["usage"]) == (130, 25, 155)
