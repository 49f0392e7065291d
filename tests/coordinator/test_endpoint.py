"""The chat-completions endpoint against a misbehaving server on 127.0.0.1: byte limits, timeouts, retries."""

from __future__ import annotations

import asyncio
import email.utils
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hostile_server import HostileServer, gzip_bomb, text_response

from coordinator.backends.endpoint import MAX_RETRY_AFTER_SECONDS, ChatEndpoint, retry_after
from coordinator.errors import AgentError

pytestmark = pytest.mark.timeout(60)

MiB = 2**20
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _run(server: HostileServer, scenario: Callable[[ChatEndpoint], Awaitable[Any]], **options: Any) -> Any:
    async def main() -> Any:
        endpoint = ChatEndpoint(base_url=server.base_url, api_key="k", timeout=10, **options)
        try:
            return await scenario(endpoint)
        finally:
            await endpoint.aclose()

    return asyncio.run(main())


def _complete(endpoint: ChatEndpoint) -> Awaitable[dict[str, Any]]:
    return endpoint.complete(BODY)


@pytest.mark.parametrize("mode", ["gzip_bomb", "huge"])
def test_a_body_past_the_limit_is_refused_without_holding_it(mode: str) -> None:
    # 64 MiB once unpacked (the gzip body itself is 64 KiB); the limit is 1 MiB.
    with HostileServer(mode, size=64 * MiB) as server:
        tracemalloc.start()
        try:
            with pytest.raises(AgentError, match=r"response larger than 1048576 bytes \(backend.max_response_bytes\)"):
                _run(server, _complete, max_response_bytes=MiB, retries=0)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 8 * MiB, f"{peak / MiB:.1f} MiB allocated at the peak"
    assert len(server.requests) == 1


def test_a_declared_length_past_the_limit_is_refused_before_reading() -> None:
    with HostileServer("scripted", script=[text_response("z" * (2 * MiB))]) as server, \
            pytest.raises(AgentError, match="response larger than 1048576 bytes"):
        _run(server, _complete, max_response_bytes=MiB, retries=0)


def test_a_compressed_body_within_the_limit_is_unpacked() -> None:
    with HostileServer("gzip_bomb", size=100_000) as server:
        reply = _run(server, _complete)
    assert reply["choices"][0]["message"]["content"] == "A" * 100_000
    assert len(gzip_bomb(100_000)) < 1000


def test_a_timeout_ends_a_reply_that_never_ends() -> None:
    # The server sends a byte every 50 ms for ever: no read times out, only the turn's own limit can.
    async def scenario(endpoint: ChatEndpoint) -> None:
        async with asyncio.timeout(1):
            await endpoint.complete(BODY)

    with HostileServer("drip") as server, pytest.raises(TimeoutError):
        _run(server, scenario)


class Sleeps:
    """A stand-in for asyncio.sleep that records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_retry_after_is_honoured_also_by_the_next_call() -> None:
    sleeps = Sleeps()

    async def scenario(endpoint: ChatEndpoint) -> None:
        with pytest.raises(AgentError, match="endpoint failed after 3 attempts: HTTP 429"):
            await endpoint.complete(BODY)
        await endpoint.complete(BODY)  # a later turn: the server still asked for 3 s

    with HostileServer("retry_after", retry_after="3", failures=3) as server:
        _run(server, scenario, sleep=sleeps)
    assert len(server.requests) == 4
    assert len(sleeps.waits) == 3 and all(2.5 < wait <= 3.0 for wait in sleeps.waits), sleeps.waits


def test_retry_after_with_a_real_clock() -> None:
    with HostileServer("retry_after", retry_after="1", failures=1) as server:
        _run(server, _complete)
    first, second = server.requests
    assert second.at - first.at >= 1.0


def test_a_server_that_asks_for_too_long_a_wait_fails_at_once() -> None:
    with HostileServer("retry_after", retry_after="3600", failures=5) as server, \
            pytest.raises(AgentError, match="asks to retry after 3600s, longer than the 60s"):
        _run(server, _complete, sleep=Sleeps())
    assert len(server.requests) == 1


def test_failures_without_retry_after_back_off_with_jitter() -> None:
    sleeps = Sleeps()
    script = [text_response("ok")]
    with HostileServer("retry_after", retry_after="", failures=2, script=script) as server:
        _run(server, _complete, sleep=sleeps, jitter=lambda: 0.25)
    # 0.5 s doubling per attempt, times (0.5 + jitter).
    assert sleeps.waits == pytest.approx([0.375, 0.75], abs=0.01)


def test_an_auth_error_is_never_retried() -> None:
    with HostileServer("unauthorized") as server, \
            pytest.raises(AgentError, match=r"HTTP 401 .*Incorrect API key") as caught:
        _run(server, _complete, sleep=Sleeps())
    assert caught.value.retry is False
    assert len(server.requests) == 1


def test_retry_after_values() -> None:
    now = time.time()
    assert retry_after("3") == 3.0
    assert retry_after("0.5") == 0.5
    assert retry_after("-4") == 0.0
    for unreadable in (None, "", "soon", "nan", "inf", "1e400"):
        assert retry_after(unreadable) is None, unreadable
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after(date, now=lambda: now) == pytest.approx(30, abs=1)
    assert MAX_RETRY_AFTER_SECONDS == 60
