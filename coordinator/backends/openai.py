"""The ``openai`` backend: any OpenAI-compatible chat-completions endpoint.

A coordination turn offers the model two tools, ``new_answer(content)`` and ``vote(agent_id,
reason)``, and returns the first valid call. A reply without a tool call, a malformed call (arguments
that are not a JSON object, ``tool_calls`` or ``function`` of the wrong shape), an unknown tool or a
vote for an id not on offer are told back to the model and retried a few times before the turn
fails. Talking to the endpoint (byte limits, retries) is :mod:`.endpoint`'s job.

Extra tools (for instance the supervisor's tools) plug in through :class:`ToolKit`: their
definitions are offered next to the coordination tools and their calls are run by its executor::

    async def run_tool(name: str, arguments: dict[str, Any]) -> str:
        return json.dumps(dispatch(name, arguments))

    backend = OpenAIBackend(..., toolkit=ToolKit(definitions=schemas, execute=run_tool))
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..config import DEFAULT_MAX_TOOL_ROUNDS, OpenAIBackendConfig
from ..errors import AgentError, ConfigError
from ..limits import DEFAULT_MAX_RESPONSE_BYTES, quote
from ..protocol.messages import Action, CoordinateRequest, NewAnswer, PresentRequest, Vote, render_context
from .base import Transcript, Usage, add_reported_usage
from .endpoint import ChatEndpoint
from .replies import parse_json

PROTOCOL_PROMPT = (
    "You are one of several agents answering the same question together. Each turn you see the "
    "question and the current answers of every agent, anonymised as agent1, agent2, ... Reply by "
    "calling exactly one tool: new_answer(content) with a complete answer that improves on the "
    "current ones, or vote(agent_id, reason) for the best current answer when it needs no improvement."
)
REMINDER = "Reply by calling exactly one of the tools new_answer or vote; plain text is not accepted."
PRESENT_PROMPT = (
    "You gave the winning answer. Write the final answer to the question now, as plain text, "
    "using the best of every answer above."
)
NEW_ANSWER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "new_answer",
        "description": "Give a complete new answer to the question.",
        "parameters": {
            "type": "object",
            "properties": {"content": {"type": "string", "description": "The full answer."}},
            "required": ["content"],
        },
    },
}
VOTE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "vote",
        "description": "Vote for the best current answer.",
        "parameters": {
            "type": "object",
            "properties": {
                "agent_id": {"type": "string", "description": "Anonymous id of the agent, e.g. agent1."},
                "reason": {"type": "string", "description": "Why this answer is the best."},
            },
            "required": ["agent_id", "reason"],
        },
    },
}
ToolExecutor = Callable[[str, dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class ToolKit:
    """Extra tools for the model: OpenAI function definitions and the coroutine that runs a call."""

    definitions: Sequence[dict[str, Any]]
    execute: ToolExecutor

    @property
    def names(self) -> frozenset[str]:
        return frozenset(d["function"]["name"] for d in self.definitions)


@dataclass(frozen=True)
class ToolCall:
    """A tool call of the model: its arguments as written, and as an object unless they are malformed."""

    id: str
    name: str
    arguments_text: str
    arguments: dict[str, Any] | None
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The call as the conversation carries it back to the endpoint."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments_text}}


@dataclass
class ModelReply:
    """The assistant message of a response: its text, its well-formed calls, and what was malformed."""

    content: str | None = None
    calls: list[ToolCall] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_message(self) -> dict[str, Any]:
        """The assistant message to keep in the conversation: malformed parts left out, so the
        endpoint is never sent back what it cannot read."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.calls:
            message["tool_calls"] = [call.as_dict() for call in self.calls]
        return message


def read_reply(data: Mapping[str, Any]) -> ModelReply:
    """The assistant message of a chat-completions response.

    A response without one is an :class:`AgentError`; malformed parts of the message are listed in
    ``problems`` (to be told to the model) and left out.
    """
    choices = data.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    if not isinstance(message, dict):
        raise AgentError(f"malformed chat-completions response: no choices[0].message object in {quote(data)}")
    reply = ModelReply()
    content = message.get("content")
    if isinstance(content, str):
        reply.content = content
    elif content is not None:
        reply.problems.append(f"the message content must be a string, got {type(content).__name__}")
    calls = message.get("tool_calls")
    if calls is None:
        return reply
    if not isinstance(calls, list):
        reply.problems.append(f"tool_calls must be a list of calls, got {type(calls).__name__} {quote(calls)}")
        return reply
    for index, raw in enumerate(calls):
        call = _read_call(raw, index)
        if isinstance(call, str):
            reply.problems.append(f"tool call #{index + 1} is malformed: {call}")
        else:
            reply.calls.append(call)
    return reply


def _read_call(raw: Any, index: int) -> ToolCall | str:
    """The call, or what is wrong with its shape (arguments that are not an object are the call's ``problem``)."""
    if not isinstance(raw, dict):
        return f"expected an object, got {type(raw).__name__} {quote(raw)}"
    function = raw.get("function")
    if not isinstance(function, dict):
        return f"'function' must be an object with 'name' and 'arguments', got {type(function).__name__}"
    name = function.get("name")
    if not isinstance(name, str) or not name:
        return f"'function.name' must be a non-empty string, got {quote(name)}"
    call_id = raw.get("id")
    call_id = call_id if isinstance(call_id, str) and call_id else f"call_{index}"
    written = function.get("arguments")
    if isinstance(written, dict):
        # Some servers send the arguments as an object already; both forms are read the same.
        return ToolCall(call_id, name, json.dumps(written, ensure_ascii=False), written)
    if written is None or written == "":
        return ToolCall(call_id, name, "{}", {})
    if not isinstance(written, str):
        return f"the arguments of {quote(name)} must be a JSON object or its text, got {type(written).__name__}"
    try:
        arguments = parse_json(written, "arguments")
    except AgentError as exc:
        return ToolCall(call_id, name, written, None, str(exc))
    if not isinstance(arguments, dict):
        problem = f"arguments must be a JSON object, got {type(arguments).__name__}"
        return ToolCall(call_id, name, written, None, problem)
    return ToolCall(call_id, name, written, arguments)


class OpenAIBackend:
    """An agent backed by a chat-completions endpoint."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str,
        transcript: Transcript,
        system_message: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float = 180.0,
        toolkit: ToolKit | None = None,
        max_attempts: int = 3,
        max_rounds: int = DEFAULT_MAX_TOOL_ROUNDS,
        http_retries: int = 2,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._model = model
        self._system = f"{system_message}\n\n{PROTOCOL_PROMPT}" if system_message else PROTOCOL_PROMPT
        self._transcript = transcript
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._toolkit = toolkit
        self._max_attempts = max_attempts
        self._max_rounds = max_rounds
        self._endpoint = ChatEndpoint(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_response_bytes=max_response_bytes,
            retries=http_retries,
            transport=transport,
        )
        self._usage: Usage | None = None

    @classmethod
    def from_config(
        cls,
        config: OpenAIBackendConfig,
        *,
        system_message: str | None,
        transcript: Transcript,
        timeout: float,
        environ: Mapping[str, str],
        toolkit: ToolKit | None = None,
    ) -> OpenAIBackend:
        api_key = environ.get(config.api_key_env)
        if not api_key:
            raise ConfigError(f"environment variable {config.api_key_env} is not set (API key for {config.model})")
        return cls(
            model=config.model,
            base_url=config.base_url,
            api_key=api_key,
            transcript=transcript,
            system_message=system_message,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            timeout=timeout,
            toolkit=toolkit,
            max_rounds=config.max_tool_rounds,
            max_response_bytes=config.max_response_bytes,
        )

    @property
    def usage(self) -> Usage | None:
        return self._usage

    async def aclose(self) -> None:
        await self._endpoint.aclose()

    async def coordinate(self, request: CoordinateRequest) -> Action:
        tools = []
        if request.can_answer:
            tools.append(NEW_ANSWER_TOOL)
        if request.vote_options:
            tools.append(VOTE_TOOL)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self._system},
            {"role": "user", "content": render_context(request)},
        ]
        problems: list[str] = []
        for _ in range(self._max_rounds):
            reply = await self._complete(messages, tools + list(self._toolkit.definitions if self._toolkit else []))
            messages.append(reply.as_message())
            action: Action | None = None
            for call in reply.calls:
                result, candidate = await self._run_call(call, request, problems)
                if action is None:
                    action = candidate
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
            if action is not None:
                return action
            self._tell(messages, problems, reply.problems)
            if not reply.calls and not reply.problems:
                problems.append("the model replied without calling new_answer or vote")
                messages.append({"role": "user", "content": REMINDER})
            if len(problems) >= self._max_attempts:
                raise AgentError(f"no valid new_answer or vote after {len(problems)} attempts: {problems[-1]}")
        raise AgentError(f"no new_answer or vote within {self._max_rounds} model calls (backend.max_tool_rounds)")

    async def present(self, request: PresentRequest) -> str:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self._system},
            {"role": "user", "content": render_context(request) + "\n" + PRESENT_PROMPT},
        ]
        tools = list(self._toolkit.definitions) if self._toolkit else []
        problems: list[str] = []
        for _ in range(self._max_rounds):
            reply = await self._complete(messages, tools)
            if not reply.calls and not reply.problems:
                if reply.content is not None and reply.content.strip():
                    return reply.content
                raise AgentError("the model returned an empty final answer")
            messages.append(reply.as_message())
            for call in reply.calls:
                result, _ = await self._run_call(call, None, problems)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
            self._tell(messages, problems, reply.problems)
            if len(problems) >= self._max_attempts:
                raise AgentError(f"no final answer after {len(problems)} malformed replies: {problems[-1]}")
        raise AgentError(f"no final answer within {self._max_rounds} model calls (backend.max_tool_rounds)")

    @staticmethod
    def _tell(messages: list[dict[str, Any]], problems: list[str], found: list[str]) -> None:
        """Tell the model what was malformed in its reply (after the results of its valid calls)."""
        if found:
            problems.extend(found)
            messages.append({"role": "user", "content": "error: " + "; ".join(found)})

    async def _run_call(
        self, call: ToolCall, request: CoordinateRequest | None, problems: list[str]
    ) -> tuple[str, Action | None]:
        """Run one tool call; returns the tool result for the model and the action it makes, if any."""
        if call.arguments is None:
            problems.append(f"malformed arguments for {quote(call.name)}: {call.problem}")
            return f"error: {problems[-1]}", None
        if request is not None and call.name in ("new_answer", "vote"):
            try:
                action = _coordination_action(call.name, call.arguments, request)
            except AgentError as exc:
                problems.append(str(exc))
                return f"error: {exc}", None
            return "accepted", action
        if self._toolkit is not None and call.name in self._toolkit.names:
            try:
                return await self._toolkit.execute(call.name, call.arguments), None
            except Exception as exc:
                return f"error: {type(exc).__name__}: {exc}", None
        problems.append(f"unknown tool {quote(call.name)}")
        return f"error: {problems[-1]}", None

    async def _complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelReply:
        body: dict[str, Any] = {"model": self._model, "messages": messages}
        if tools:
            body["tools"] = tools
        if self._temperature is not None:
            body["temperature"] = self._temperature
        if self._max_tokens is not None:
            body["max_tokens"] = self._max_tokens
        data = await self._endpoint.complete(body)
        # Counted first: a response without a usable message was still billed.
        self._usage = add_reported_usage(self._usage, data.get("usage"))
        reply = read_reply(data)
        message = data["choices"][0]["message"]
        self._transcript(json.dumps({k: message.get(k) for k in ("content", "tool_calls")}, ensure_ascii=False))
        return reply


def _coordination_action(name: str, arguments: Mapping[str, Any], request: CoordinateRequest) -> Action:
    if name == "new_answer":
        content = arguments.get("content")
        if not request.can_answer:
            raise AgentError("new_answer is not allowed any more (answer limit reached); vote instead")
        if not isinstance(content, str) or not content.strip():
            raise AgentError("new_answer needs a non-empty string 'content'")
        return NewAnswer(content)
    target = arguments.get("agent_id")
    if target not in request.vote_options:
        raise AgentError(f"vote for unknown agent {quote(target)}; options: {', '.join(request.vote_options)}")
    reason = arguments.get("reason", "")
    return Vote(str(target), reason if isinstance(reason, str) else str(reason))
