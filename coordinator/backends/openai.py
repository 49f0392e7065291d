"""The ``openai`` backend: any OpenAI-compatible chat-completions endpoint.

A coordination turn offers the model two tools, ``new_answer(content)`` and ``vote(agent_id,
reason)``, and returns the first valid call. A reply without a tool call, malformed arguments, an
unknown tool or a vote for an id not on offer are told back to the model and retried a few times
before the turn fails.

Extra tools (for instance the supervisor's tools) plug in through :class:`ToolKit`: their
definitions are offered next to the coordination tools and their calls are run by its executor::

    async def run_tool(name: str, arguments: dict[str, Any]) -> str:
        return json.dumps(dispatch(name, arguments))

    backend = OpenAIBackend(..., toolkit=ToolKit(definitions=schemas, execute=run_tool))
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ..config import DEFAULT_MAX_TOOL_ROUNDS, OpenAIBackendConfig
from ..errors import AgentError, ConfigError
from ..protocol.messages import Action, CoordinateRequest, NewAnswer, PresentRequest, Vote, render_context
from .base import Transcript, Usage, add_reported_usage

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
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})

ToolExecutor = Callable[[str, dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class ToolKit:
    """Extra tools for the model: OpenAI function definitions and the coroutine that runs a call."""

    definitions: Sequence[dict[str, Any]]
    execute: ToolExecutor

    @property
    def names(self) -> frozenset[str]:
        return frozenset(d["function"]["name"] for d in self.definitions)


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
        self._http_retries = http_retries
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
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
        )

    @property
    def usage(self) -> Usage | None:
        return self._usage

    async def aclose(self) -> None:
        await self._client.aclose()

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
            message = await self._complete(messages, tools + list(self._toolkit.definitions if self._toolkit else []))
            calls = message.get("tool_calls") or []
            messages.append({k: v for k, v in message.items() if k in ("role", "content", "tool_calls")})
            if not calls:
                problems.append("the model replied without calling new_answer or vote")
                messages.append({"role": "user", "content": REMINDER})
            action: Action | None = None
            for call in calls:
                result, candidate = await self._run_call(call, request, problems)
                if action is None:
                    action = candidate
                messages.append({"role": "tool", "tool_call_id": str(call.get("id", "")), "content": result})
            if action is not None:
                return action
            if len(problems) >= self._max_attempts:
                raise AgentError(f"no valid new_answer or vote after {len(problems)} attempts: {problems[-1]}")
        raise AgentError(f"no new_answer or vote within {self._max_rounds} model calls (backend.max_tool_rounds)")

    async def present(self, request: PresentRequest) -> str:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self._system},
            {"role": "user", "content": render_context(request) + "\n" + PRESENT_PROMPT},
        ]
        tools = list(self._toolkit.definitions) if self._toolkit else []
        for _ in range(self._max_rounds):
            message = await self._complete(messages, tools)
            calls = message.get("tool_calls") or []
            if not calls:
                content = message.get("content")
                if isinstance(content, str) and content.strip():
                    return content
                raise AgentError("the model returned an empty final answer")
            messages.append({k: v for k, v in message.items() if k in ("role", "content", "tool_calls")})
            for call in calls:
                result, _ = await self._run_call(call, None, [])
                messages.append({"role": "tool", "tool_call_id": str(call.get("id", "")), "content": result})
        raise AgentError(f"no final answer within {self._max_rounds} model calls (backend.max_tool_rounds)")

    async def _run_call(
        self, call: Mapping[str, Any], request: CoordinateRequest | None, problems: list[str]
    ) -> tuple[str, Action | None]:
        """Run one tool call; returns the tool result for the model and the action it makes, if any."""
        function = call.get("function") or {}
        name = function.get("name")
        try:
            arguments = json.loads(function.get("arguments") or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as exc:
            problems.append(f"malformed arguments for {name}: {exc}")
            return f"error: {problems[-1]}", None
        if request is not None and name in ("new_answer", "vote"):
            try:
                action = _coordination_action(name, arguments, request)
            except AgentError as exc:
                problems.append(str(exc))
                return f"error: {exc}", None
            return "accepted", action
        if self._toolkit is not None and name in self._toolkit.names:
            try:
                return await self._toolkit.execute(name, arguments), None
            except Exception as exc:
                return f"error: {type(exc).__name__}: {exc}", None
        problems.append(f"unknown tool {name!r}")
        return f"error: {problems[-1]}", None

    async def _complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self._model, "messages": messages}
        if tools:
            body["tools"] = tools
        if self._temperature is not None:
            body["temperature"] = self._temperature
        if self._max_tokens is not None:
            body["max_tokens"] = self._max_tokens
        data = await self._post(body)
        try:
            message = data["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError("message is not an object")
        except (KeyError, IndexError, TypeError) as exc:
            raise AgentError(f"malformed chat-completions response: {exc!r}") from exc
        self._usage = add_reported_usage(self._usage, data.get("usage"))
        message.setdefault("role", "assistant")
        self._transcript(json.dumps({k: message.get(k) for k in ("content", "tool_calls")}, ensure_ascii=False))
        return message

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        last = ""
        for attempt in range(self._http_retries + 1):
            if attempt:
                await asyncio.sleep(0.5 * attempt)
            try:
                response = await self._client.post("chat/completions", json=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in RETRY_STATUS:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise AgentError(f"HTTP {response.status_code} from {response.url}: {response.text[:200]}")
            try:
                data = response.json()
            except ValueError as exc:
                raise AgentError(f"response is not JSON: {response.text[:120]!r}") from exc
            if not isinstance(data, dict):
                raise AgentError("response is not a JSON object")
            return data
        raise AgentError(f"endpoint failed after {self._http_retries + 1} attempts: {last}")


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
        raise AgentError(f"vote for unknown agent {target!r}; options: {', '.join(request.vote_options)}")
    reason = arguments.get("reason", "")
    return Vote(str(target), reason if isinstance(reason, str) else str(reason))
