"""A well-behaved, stateless OpenAI-compatible chat server on 127.0.0.1, for coordination runners.

It stands in for a remote LLM API (the one thing a test cannot have here) and answers
`POST /v1/chat/completions`, streamed (SSE) or not, deciding each reply from the request alone:

- `vote` is offered and other agents' answers are in the messages: a `vote` tool call for the first
  choice the tool allows;
- `vote` and `new_answer` are offered and no answer exists yet (or mgcoord offers `new_answer`
  alone, for a first answer): a `new_answer` tool call (`answer`);
- anything else is the final presentation (MassGen offers `new_answer` alone then): plain text
  (`answer`), streamed in `chunks` pieces `chunk_delay` seconds apart.

`delay` holds every reply that long first (a slow model), `failing=True` answers every request
with HTTP 500 (every backend fails). A usage chunk reports `prompt_tokens` / `completion_tokens`
per reply (PROMPT_TOKENS / COMPLETION_TOKENS unless given). `gate` holds every request until the
test sets it; `stall_after=N` holds every request after the first N until the server stops (a run
that goes on until it is stopped). Both MassGen (`type: chatcompletion`, `base_url`) and mgcoord's
openai backend talk to it.

>>> with OpenAIServer(answer="391") as server:
...     client = openai.OpenAI(base_url=server.base_url, api_key="any")
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

PROMPT_TOKENS = 120
COMPLETION_TOKENS = 30
# How MassGen shows other agents' answers to a model (and what it shows when there are none yet),
# and how mgcoord does.
ANSWERS_BLOCK = "<CURRENT ANSWERS from the agents>"
NO_ANSWERS = "no answers available yet"
MGCOORD_ANSWERS = "\nCurrent answers:\n"
MGCOORD_TURN = "\nMay give a new answer: yes"


@dataclass
class Behaviour:
    answer: str = "The answer is 391."
    failing: bool = False
    delay: float = 0.0
    chunks: int = 1
    chunk_delay: float = 0.0
    prompt_tokens: int = PROMPT_TOKENS
    completion_tokens: int = COMPLETION_TOKENS
    gate: threading.Event | None = None
    stall_after: int | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    requests: list[dict[str, Any]] = field(default_factory=list)


def decide(body: dict[str, Any], behaviour: Behaviour) -> tuple[str, dict[str, Any]] | str:
    """The reply to one request: (tool name, arguments) for a tool call, else the text to stream."""
    tools = {t.get("function", {}).get("name"): t.get("function", {}) for t in body.get("tools") or []}
    text = "\n".join(_text(m.get("content")) for m in body.get("messages") or [])
    answers_shown = (ANSWERS_BLOCK in text and NO_ANSWERS not in text) or MGCOORD_ANSWERS in text
    if "vote" in tools and answers_shown:
        target = tools["vote"].get("parameters", {}).get("properties", {}).get("agent_id", {})
        choices = target.get("enum") or ["agent1"]
        return "vote", {"agent_id": choices[0], "reason": "It is correct and complete."}
    if "new_answer" in tools and ("vote" in tools or MGCOORD_TURN in text):
        return "new_answer", {"content": behaviour.answer}
    return behaviour.answer


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        behaviour = self.server.behaviour
        behaviour.requests.append(body)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if behaviour.gate is not None:
            behaviour.gate.wait()
        if behaviour.stall_after is not None and len(behaviour.requests) > behaviour.stall_after:
            behaviour.stopping.wait()
            return
        if behaviour.delay:
            time.sleep(behaviour.delay)
        if behaviour.failing:
            self._json(500, {"error": {"message": "the fake server fails every request", "type": "server_error"}})
            return
        reply = decide(body, behaviour)
        model = body.get("model", "fake-model")
        if body.get("stream"):
            self._stream(model, reply, behaviour)
        else:
            self._json(200, _completion(model, reply, behaviour))

    def _json(self, code: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, model: str, reply: tuple[str, dict[str, Any]] | str, behaviour: Behaviour) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self._event(_chunk(model, {"role": "assistant", "content": ""}))
        if isinstance(reply, str):
            pieces = _split(reply, behaviour.chunks)
            for i, piece in enumerate(pieces):
                if i and behaviour.chunk_delay:
                    time.sleep(behaviour.chunk_delay)
                self._event(_chunk(model, {"content": piece}))
            self._event(_chunk(model, {}, finish="stop"))
        else:
            name, arguments = reply
            call = {"index": 0, "id": f"call_{name}", "type": "function",
                    "function": {"name": name, "arguments": ""}}
            self._event(_chunk(model, {"tool_calls": [call]}))
            self._event(_chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": json.dumps(arguments)}}]}))
            self._event(_chunk(model, {}, finish="tool_calls"))
        self._event({**_chunk(model, {}), "choices": [], "usage": _usage(behaviour)})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _event(self, payload: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
        self.wfile.flush()


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _completion(model: str, reply: tuple[str, dict[str, Any]] | str, behaviour: Behaviour) -> dict[str, Any]:
    if isinstance(reply, str):
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        finish = "stop"
    else:
        name, arguments = reply
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]}
        finish = "tool_calls"
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": _usage(behaviour)}


def _usage(behaviour: Behaviour) -> dict[str, int]:
    return {"prompt_tokens": behaviour.prompt_tokens, "completion_tokens": behaviour.completion_tokens,
            "total_tokens": behaviour.prompt_tokens + behaviour.completion_tokens}


def _split(text: str, parts: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, parts)))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour


class OpenAIServer:
    """The server, serving from a thread while the `with` block lasts; `base_url` ends in `/v1`."""

    def __init__(self, **behaviour: Any) -> None:
        self.behaviour = Behaviour(**behaviour)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.behaviour = self.behaviour
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.behaviour.requests

    def __enter__(self) -> OpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.behaviour.stopping.set()
        if self.behaviour.gate is not None:
            self.behaviour.gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
