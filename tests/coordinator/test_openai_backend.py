"""The openai backend against an OpenAI-compatible server on 127.0.0.1 with scripted replies."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from coord_helpers import ChatServer, chat_response, child_env, run_mgcoord, write_config
from hostile_server import HostileServer, tool_call_response

from coordinator.backends.openai import OpenAIBackend, ToolKit
from coordinator.errors import AgentError
from coordinator.protocol.messages import AnswerView, CoordinateRequest, NewAnswer, PresentRequest, Vote
from supervisor.automation.schema import StatusDocument

pytestmark = pytest.mark.timeout(30)

ANSWERS = (AnswerView("agent1", "agent1.1", "391"), AnswerView("agent2", "agent2.1", "392"))


def _request(answers: tuple[AnswerView, ...] = ANSWERS, can_answer: bool = True) -> CoordinateRequest:
    return CoordinateRequest(
        agent_id="a",
        anon_id="agent1",
        question="What is 17 * 23?",
        system_message=None,
        workspace="/tmp",
        answers=answers,
        vote_options=tuple(a.anon_id for a in answers),
        can_answer=can_answer,
    )


def _backend(server: ChatServer, transcript: list[str] | None = None, **kwargs: Any) -> OpenAIBackend:
    return OpenAIBackend(
        model="test-model",
        base_url=server.base_url,
        api_key="secret",
        transcript=(transcript if transcript is not None else []).append,
        system_message="Be exact.",
        timeout=5,
        **kwargs,
    )


def _scripted(server: ChatServer, replies: list[dict[str, Any] | tuple[int, str]]) -> None:
    queue = list(replies)
    server.responder = lambda body: queue.pop(0)


def _coordinate(backend: OpenAIBackend, request: CoordinateRequest) -> Any:
    async def scenario() -> Any:
        try:
            return await backend.coordinate(request)
        finally:
            await backend.aclose()

    return asyncio.run(scenario())


def test_new_answer_tool_call(chat_server: ChatServer) -> None:
    _scripted(chat_server, [chat_response(tool_calls=[("new_answer", '{"content": "391"}')])])
    transcript: list[str] = []
    backend = _backend(chat_server, transcript, temperature=0.2)
    assert _coordinate(backend, _request(answers=())) == NewAnswer("391")
    body = chat_server.requests[0]
    assert body["model"] == "test-model" and body["temperature"] == 0.2
    assert [t["function"]["name"] for t in body["tools"]] == ["new_answer"]  # nothing to vote for yet
    assert body["messages"][0]["content"].startswith("Be exact.")
    assert "What is 17 * 23?" in body["messages"][1]["content"]
    assert backend.usage is not None and backend.usage.total_tokens == 15
    assert "new_answer" in transcript[0]


def test_vote_only_when_answer_limit_reached(chat_server: ChatServer) -> None:
    _scripted(
        chat_server,
        [
            chat_response(tool_calls=[("new_answer", '{"content": "again"}')]),
            chat_response(tool_calls=[("vote", '{"agent_id": "agent2", "reason": "checked"}')]),
        ],
    )
    assert _coordinate(_backend(chat_server), _request(can_answer=False)) == Vote("agent2", "checked")
    assert [t["function"]["name"] for t in chat_server.requests[0]["tools"]] == ["vote"]
    tool_reply = chat_server.requests[1]["messages"][-1]
    assert tool_reply["role"] == "tool" and "not allowed" in tool_reply["content"]


def test_malformed_replies_are_told_back_and_retried(chat_server: ChatServer) -> None:
    _scripted(
        chat_server,
        [
            chat_response(content="I think it is 391."),
            chat_response(tool_calls=[("vote", "{not json")]),
            chat_response(tool_calls=[("vote", '{"agent_id": "agent7", "reason": "?"}')]),
        ],
    )
    with pytest.raises(AgentError, match="no valid new_answer or vote after 3 attempts"):
        _coordinate(_backend(chat_server), _request())
    second, third = chat_server.requests[1], chat_server.requests[2]
    assert "exactly one of the tools" in second["messages"][-1]["content"]
    assert "malformed arguments" in third["messages"][-1]["content"]
    assert third["messages"][-2]["tool_calls"][0]["function"]["arguments"] == "{not json"


def test_recovers_after_a_malformed_call(chat_server: ChatServer) -> None:
    _scripted(
        chat_server,
        [
            chat_response(tool_calls=[("teleport", "{}")]),
            chat_response(tool_calls=[("vote", '{"agent_id": "agent1", "reason": "right"}')]),
        ],
    )
    assert _coordinate(_backend(chat_server), _request()) == Vote("agent1", "right")
    assert "unknown tool 'teleport'" in chat_server.requests[1]["messages"][-1]["content"]


def test_extra_tools_are_offered_and_executed(chat_server: ChatServer) -> None:
    _scripted(
        chat_server,
        [
            chat_response(tool_calls=[("list_shells", '{"status": "running"}')]),
            chat_response(tool_calls=[("new_answer", '{"content": "none running"}')]),
        ],
    )
    calls: list[tuple[str, dict[str, Any]]] = []

    async def execute(name: str, arguments: dict[str, Any]) -> str:
        calls.append((name, arguments))
        return json.dumps([])

    schema = {"type": "function", "function": {"name": "list_shells", "parameters": {"type": "object"}}}
    backend = _backend(chat_server, toolkit=ToolKit(definitions=[schema], execute=execute))
    assert _coordinate(backend, _request()) == NewAnswer("none running")
    assert calls == [("list_shells", {"status": "running"})]
    assert "list_shells" in [t["function"]["name"] for t in chat_server.requests[0]["tools"]]
    assert chat_server.requests[1]["messages"][-1] == {"role": "tool", "tool_call_id": "call_0", "content": "[]"}


def test_server_errors_are_retried_then_fail(chat_server: ChatServer) -> None:
    _scripted(chat_server, [(500, "{}"), chat_response(tool_calls=[("vote", '{"agent_id": "agent1"}')])])
    assert _coordinate(_backend(chat_server), _request()) == Vote("agent1", "")
    _scripted(chat_server, [(401, '{"error": "bad key"}')])
    with pytest.raises(AgentError, match="HTTP 401"):
        _coordinate(_backend(chat_server), _request())
    _scripted(chat_server, [(200, '{"choices": []}')])
    with pytest.raises(AgentError, match="malformed chat-completions response"):
        _coordinate(_backend(chat_server), _request())


def test_present_returns_the_text(chat_server: ChatServer) -> None:
    _scripted(chat_server, [chat_response(content="Final: 391")])
    request = PresentRequest("a", "agent1", "q?", None, "/tmp", ANSWERS, {"agent1": 2, "agent2": 0}, "agent1")
    backend = _backend(chat_server)

    async def scenario() -> str:
        try:
            return await backend.present(request)
        finally:
            await backend.aclose()

    assert asyncio.run(scenario()) == "Final: 391"
    assert "tools" not in chat_server.requests[0]
    assert "agent1: 2" in chat_server.requests[0]["messages"][1]["content"]


def _two_model_responder(body: dict[str, Any]) -> dict[str, Any]:
    """model-a answers (after one malformed call), model-b first replies in prose, then both vote agent1."""
    model = body["model"]
    messages = body["messages"]
    prompt = messages[1]["content"]
    if "Write the final answer" in prompt:
        return chat_response(content=f"Final answer from {model}: 391")
    first_call = len(messages) == 2
    if model == "model-a" and first_call and "agent1.1" not in prompt:
        return chat_response(tool_calls=[("new_answer", '{"content": oops')])
    if model == "model-b" and first_call:
        return chat_response(content="Let me think in prose instead.")
    if model == "model-a" and "agent1.1" not in prompt:
        return chat_response(tool_calls=[("new_answer", '{"content": "17 * 23 = 391"}')])
    if "agent1.1" in prompt:
        return chat_response(tool_calls=[("vote", '{"agent_id": "agent1", "reason": "correct"}')])
    return chat_response(content="waiting for an answer")


def test_mgcoord_with_openai_agents(run_dir: Path, chat_server: ChatServer) -> None:
    chat_server.responder = _two_model_responder
    agents = [
        {
            "id": f"agent_{x}",
            "backend": {
                "type": "openai",
                "model": f"model-{x}",
                "base_url": chat_server.base_url,
                "api_key_env": "TEST_CHAT_KEY",
            },
        }
        for x in "ab"
    ]
    config = write_config(run_dir / "c.yaml", agents, max_turn_retries=3)
    result = run_mgcoord(
        "--automation", "--config", str(config), "What is 17 * 23?", cwd=run_dir, env=child_env(TEST_CHAT_KEY="k")
    )
    assert result.returncode == 0, result
    assert result.value("WINNER") == "agent_a"
    assert result.value("ANSWER_PREVIEW") == "Final answer from model-a: 391"
    status = json.loads(Path(result.value("STATUS")).read_text())
    StatusDocument.model_validate(status)
    for info in status["agents"].values():
        assert info["usage"]["total_tokens"] > 0
    totals = status["results"]["usage"]["total_tokens"]
    assert totals == sum(info["usage"]["total_tokens"] for info in status["agents"].values())
    # A request whose turn was restarted before the reply arrived is never counted.
    assert 0 < totals <= 15 * len(chat_server.requests)


def _raw_call(function: Any) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": None,
                                     "tool_calls": [{"id": "c1", "type": "function", "function": function}]}}]}


def _with_tool_calls(tool_calls: Any) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": "hmm", "tool_calls": tool_calls}}]}


@pytest.mark.parametrize(
    ("malformed", "told"),
    [
        (_with_tool_calls("vote agent1"), "tool_calls must be a list of calls, got str 'vote agent1'"),
        (_with_tool_calls(7), "tool_calls must be a list of calls, got int 7"),
        (_with_tool_calls(["vote"]), "tool call #1 is malformed: expected an object, got str 'vote'"),
        (_raw_call("vote"), "'function' must be an object with 'name' and 'arguments', got str"),
        (_raw_call({"name": 5, "arguments": "{}"}), "'function.name' must be a non-empty string, got 5"),
        (_raw_call({"name": "vote", "arguments": 12}), "the arguments of 'vote' must be a JSON object or its text"),
        (_raw_call({"name": "vote", "arguments": "[" * 5000 + "]" * 5000}), "arguments is nested too deeply"),
        (_raw_call({"name": "vote", "arguments": "[1, 2]"}), "arguments must be a JSON object, got list"),
        ({"choices": [{"message": {"role": "assistant", "content": ["a", "b"]}}]},
         "the message content must be a string, got list"),
    ],
    ids=["calls-string", "calls-number", "call-string", "function-string", "name-number", "arguments-number",
         "arguments-deep", "arguments-list", "content-list"],
)
def test_malformed_shapes_are_told_to_the_model(malformed: dict[str, Any], told: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    vote = tool_call_response("vote", '{"agent_id": "agent2", "reason": "ok"}')
    with HostileServer("scripted", script=[malformed, vote]) as server:
        assert _coordinate(_backend_at(server.base_url), _request()) == Vote("agent2", "ok")
    second = server.requests[1].body["messages"]
    assert told in json.dumps(second[-1]) or told in second[-1]["content"], second[-1]
    # What goes back to the endpoint is well formed: no call that it could not read itself.
    for message in second:
        for call in message.get("tool_calls") or []:
            assert isinstance(call["function"]["arguments"], str)
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a malformed reply"


def test_arguments_sent_as_an_object_are_accepted() -> None:
    reply = tool_call_response("vote", {"agent_id": "agent1", "reason": "as an object"})
    with HostileServer("scripted", script=[reply]) as server:
        assert _coordinate(_backend_at(server.base_url), _request()) == Vote("agent1", "as an object")


@pytest.mark.parametrize(
    "response",
    [{"choices": "none"}, {"choices": [7]}, {"choices": [{"message": "hi"}]}, {"id": "x"}, [1, 2]],
    ids=["choices-string", "choice-number", "message-string", "no-choices", "not-an-object"],
)
def test_a_response_without_a_message_is_an_agent_error(response: Any) -> None:
    with HostileServer("scripted", script=[response]) as server, \
            pytest.raises(AgentError, match=r"malformed chat-completions response|not an object"):
        _coordinate(_backend_at(server.base_url, max_attempts=1), _request())


def test_a_huge_tool_name_is_quoted_short() -> None:
    reply = tool_call_response("t" * (3 * 2**20), "{}")
    with HostileServer("scripted", script=[reply, reply, reply]) as server, pytest.raises(AgentError) as caught:
        _coordinate(_backend_at(server.base_url), _request())
    assert "unknown tool 'tttt" in str(caught.value) and len(str(caught.value)) < 300
    assert len(server.requests[1].body["messages"][-1]["content"]) < 300


def _backend_at(base_url: str, **kwargs: Any) -> OpenAIBackend:
    return OpenAIBackend(model="m", base_url=base_url, api_key="k", transcript=lambda _: None, timeout=10, **kwargs)
