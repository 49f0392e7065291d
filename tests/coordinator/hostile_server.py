"""A misbehaving OpenAI-compatible chat-completions server on 127.0.0.1, one mode per failure.

    with HostileServer("gzip_bomb", size=256 * 2**20) as server:
        ...  # point an openai backend at server.base_url

Modes:
  normal        plays coordination: a new_answer while nothing is on offer to vote for, else a vote
                for the first option, and a final answer when asked to present
  gzip_bomb     a gzip body of a few hundred KB that unpacks to ``size`` bytes of one JSON string
  huge          an uncompressed body of ``size`` bytes, without Content-Length
  dense         a valid reply padded with ``size`` bytes of empty JSON lists: the most Python
                objects a body of that size can make
  drip          a body that never ends: one byte every 50 ms
  retry_after   429 with ``Retry-After: <retry_after>`` (none when empty) for the first ``failures``
                requests, then as scripted
  unauthorized  401 with an OpenAI-style error body, always
  absurd_usage  normal replies that report negative, huge and boolean token counts
  scripted      the responses of ``script`` (JSON objects) in order, then normal

Every request is recorded with its arrival time (``time.monotonic()``). The benchmark in
scripts/bench_coord_limits.py uses this server as well as the tests.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("normal", "gzip_bomb", "huge", "dense", "drip", "retry_after", "unauthorized", "absurd_usage", "scripted")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Received:
    at: float
    body: dict[str, Any]


def tool_call_response(name: str, arguments: Any, usage: Any = None) -> dict[str, Any]:
    """A chat-completions response with one tool call (``arguments`` sent as given)."""
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return _response({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls", usage)


def text_response(content: str, usage: Any = None) -> dict[str, Any]:
    return _response({"role": "assistant", "content": content}, "stop", usage)


def _response(message: dict[str, Any], finish: str, usage: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage if usage is not None else {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def coordination_reply(body: dict[str, Any], usage: Any = None) -> dict[str, Any]:
    """What a sensible model answers to a request of mgcoord's openai backend."""
    messages = body.get("messages") or [{}]
    prompt = str(messages[min(1, len(messages) - 1)].get("content", ""))
    if "Write the final answer" in prompt:
        return text_response("Final: 42", usage)
    offered = {tool["function"]["name"] for tool in body.get("tools", [])}
    options = re.search(r"^Vote options: (agent\d+)", prompt, re.MULTILINE)
    if "vote" in offered and options:
        return tool_call_response("vote", json.dumps({"agent_id": options.group(1), "reason": "fine"}), usage)
    return tool_call_response("new_answer", json.dumps({"content": "42"}), usage)


@functools.cache
def gzip_bomb(size: int) -> bytes:
    """A gzip body that unpacks to a chat-completions object whose content is ``size`` bytes of "A"."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(b'{"choices": [{"message": {"role": "assistant", "content": "')]
    block = b"A" * _CHUNK
    for _ in range(size // _CHUNK):
        parts.append(packer.compress(block))
    parts.append(packer.compress(b"A" * (size % _CHUNK) + b'"}}]}'))
    parts.append(packer.flush())
    return b"".join(parts)


class HostileServer:
    """The server, run in a thread of the calling process."""

    def __init__(
        self,
        mode: str = "normal",
        *,
        size: int = 256 * 2**20,
        retry_after: str = "1",
        failures: int = 2,
        script: list[dict[str, Any]] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        self.mode = mode
        self.size = size
        self.retry_after = retry_after
        self.failures = failures
        self.script = list(script or [])
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # a drip never ends; its thread stops with _stopping
        # A short poll interval: shutdown() waits for one.
        serve = functools.partial(self._httpd.serve_forever, poll_interval=0.02)
        self._thread = threading.Thread(target=serve, name="hostile-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> HostileServer:
        if self.mode == "gzip_bomb":
            gzip_bomb(self.size)  # built before the first request, not while a client waits
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _record(self, body: dict[str, Any]) -> int:
        with self._lock:
            self.requests.append(Received(time.monotonic(), body))
            return len(self.requests)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                number = server._record(body)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server._answer(self, body, number)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], number: int) -> None:
        mode = self.mode
        if mode == "gzip_bomb":
            self._send(handler, 200, gzip_bomb(self.size), {"Content-Encoding": "gzip"})
        elif mode == "huge":
            self._send(handler, 200, None, {})
            for chunk in _huge_body(self.size):
                handler.wfile.write(chunk)
        elif mode == "dense":
            reply = coordination_reply(body)
            reply["padding"] = "PADDING"
            head, tail = json.dumps(reply).encode().split(b'"PADDING"')
            count = self.size // 3
            data = head + b"[" + b",".join([b"[]"] * count) + b"]" + tail
            self._send(handler, 200, data, {})
        elif mode == "drip":
            self._send(handler, 200, None, {})
            handler.wfile.write(b'{"choices": [')
            while not self._stopping.wait(0.05):
                handler.wfile.write(b" ")
                handler.wfile.flush()
        elif mode == "retry_after" and number <= self.failures:
            error = {"error": {"message": "slow down", "type": "rate_limit"}}
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            self._send(handler, 429, json.dumps(error).encode(), headers)
        elif mode == "unauthorized":
            error = {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
            self._send(handler, 401, json.dumps(error).encode(), {})
        elif 0 < (index := number - (self.failures if mode == "retry_after" else 0)) <= len(self.script):
            self._send(handler, 200, json.dumps(self.script[index - 1]).encode(), {})
        else:
            usage = {"prompt_tokens": -15, "completion_tokens": 3e30, "total_tokens": True}
            reply = coordination_reply(body, usage if mode == "absurd_usage" else None)
            self._send(handler, 200, json.dumps(reply).encode(), {})

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, data: bytes | None, headers: dict[str, str]) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        if data is not None:
            handler.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if data is not None:
            handler.wfile.write(data)


def _huge_body(size: int) -> Iterator[bytes]:
    yield b'{"choices": [{"message": {"role": "assistant", "content": "'
    block = b"B" * _CHUNK
    for _ in range(size // _CHUNK):
        yield block
    yield b"B" * (size % _CHUNK) + b'"}}]}'
