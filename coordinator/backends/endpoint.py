"""One OpenAI-compatible chat-completions endpoint, spoken to with bounded replies and polite retries.

- A reply body is read as it arrives and given up past ``max_response_bytes``, counted both as
  received and once unpacked (gzip or deflate), so a small compressed body cannot expand into
  gigabytes. Bodies are unpacked chunk by chunk and parsed in a worker thread: the event loop, and
  with it every timeout and the status heartbeat, keeps running while a reply is read.
- Overloaded or failing servers (408, 409, 429, 5xx, broken connections) are retried a few times
  with exponential backoff and jitter. A ``Retry-After`` is honoured, also by the next request
  of a later turn, up to :data:`MAX_RETRY_AFTER_SECONDS`; a server that asks for longer fails the
  attempt at once.
- 401, 403 and 404 (bad key, no access, wrong URL or model) are never retried: the error says the
  agent cannot go on (``AgentError.retry`` is false).

Example::

    endpoint = ChatEndpoint(base_url="http://127.0.0.1:8000/v1", api_key="k", timeout=60)
    reply = await endpoint.complete({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import math
import random
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from ..errors import AgentError
from ..limits import DEFAULT_MAX_RESPONSE_BYTES, clean_text, clip
from .replies import parse_json

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
FATAL_STATUS = frozenset({401, 403, 404})
MAX_RETRY_AFTER_SECONDS = 60.0
BACKOFF_SECONDS = 0.5
"""The first retry waits about this long (between half and one and a half times); each next one twice as long."""
ERROR_BODY_BYTES = 4096
"""How much of an error response is read to quote it."""


class ChatEndpoint:
    """POSTs chat-completions requests to ``base_url``; ``sleep`` and ``jitter`` are seams for tests."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            # Only encodings this module can unpack within the byte limit.
            headers={"Authorization": f"Bearer {api_key}", "Accept-Encoding": "gzip, deflate"},
            timeout=timeout,
            transport=transport,
        )
        self._max_bytes = max_response_bytes
        self._retries = retries
        self._sleep = sleep
        self._jitter = jitter
        self._not_before = 0.0  # time.monotonic() before which no request goes out

    async def aclose(self) -> None:
        await self._client.aclose()

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``chat/completions`` and return the JSON object of the reply."""
        last = ""
        for attempt in range(self._retries + 1):
            wait = self._not_before - time.monotonic()
            if wait > 0:
                await self._sleep(wait)
            try:
                status, headers, data = await self._post(body)
            except httpx.TransportError as exc:
                last = clip(f"{type(exc).__name__}: {exc}", 200)
                self._defer(self._backoff(attempt))
                continue
            if status in RETRY_STATUS:
                last = f"HTTP {status}"
                asked = retry_after(headers.get("retry-after"))
                if asked is not None and asked > MAX_RETRY_AFTER_SECONDS:
                    raise AgentError(
                        f"HTTP {status}: the server asks to retry after {asked:g}s, "
                        f"longer than the {MAX_RETRY_AFTER_SECONDS:g}s this backend waits"
                    )
                self._defer(asked if asked is not None else self._backoff(attempt))
                continue
            if status >= 400:
                text = clean_text(data.decode("utf-8", "replace")).strip()
                raise AgentError(
                    f"HTTP {status} from {self._client.base_url}chat/completions: {clip(text, 200)}",
                    retry=status not in FATAL_STATUS,
                )
            reply = await asyncio.to_thread(parse_json, data, "response")
            if not isinstance(reply, dict):
                raise AgentError(f"response is a JSON {type(reply).__name__}, not an object")
            return reply
        raise AgentError(f"endpoint failed after {self._retries + 1} attempts: {last}")

    def _backoff(self, attempt: int) -> float:
        return float(BACKOFF_SECONDS * 2**attempt * (0.5 + self._jitter()))

    def _defer(self, seconds: float) -> None:
        self._not_before = max(self._not_before, time.monotonic() + seconds)

    async def _post(self, body: dict[str, Any]) -> tuple[int, httpx.Headers, bytes]:
        async with self._client.stream("POST", "chat/completions", json=body) as response:
            if response.status_code >= 400:
                data = await read_body(response, ERROR_BODY_BYTES, cut=True)
            else:
                data = await read_body(response, self._max_bytes)
            return response.status_code, response.headers, data


async def read_body(response: httpx.Response, limit: int, *, cut: bool = False) -> bytes:
    """The unpacked body of ``response``, at most ``limit`` bytes received and unpacked.

    Past the limit: the first ``limit`` bytes with ``cut``, else an :class:`AgentError`.
    """
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise AgentError(f"response uses Content-Encoding {clip(encoding, 40)!r}, which was not asked for")
    # wbits 32 + 15: a gzip or a zlib header, whichever the body has.
    decoder = None if encoding in ("", "identity") else zlib.decompressobj(32 + zlib.MAX_WBITS)
    declared = response.headers.get("content-length", "")
    if not cut and declared.isdigit() and int(declared) > limit:
        raise _too_big(limit)
    body = bytearray()
    received = 0
    try:
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if decoder is None:
                body += chunk
            else:
                pending = chunk
                while pending and len(body) <= limit:
                    body += decoder.decompress(pending, limit + 1 - len(body))
                    pending = decoder.unconsumed_tail
            if received > limit or len(body) > limit:
                if cut:
                    return bytes(body[:limit])
                raise _too_big(limit)
        if decoder is not None:
            body += decoder.flush()
    except zlib.error as exc:
        raise AgentError(f"response body is not valid {encoding} data ({exc})") from None
    if len(body) > limit and not cut:
        raise _too_big(limit)
    return bytes(body[:limit])


def _too_big(limit: int) -> AgentError:
    return AgentError(f"response larger than {limit} bytes (backend.max_response_bytes)")


def retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), None when absent or unreadable.

    >>> retry_after("3")
    3.0
    >>> retry_after("soon") is None
    True
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)  # HTTP dates are in GMT
        seconds = when.timestamp() - now()
    return max(seconds, 0.0) if math.isfinite(seconds) else None
