"""A bounded pool of threads for the MCP server's library calls, also when the host abandons calls.

anyio's `to_thread.run_sync(..., abandon_on_cancel=True)` lets a cancelled call return at once while
its thread goes on, but gives its limiter token back at once too: a host that sends and cancels calls
in a loop would then start threads without bound. Here the token goes back only when the thread is
done, so at most `size` calls of a pool run at any time, abandoned ones included.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.from_thread

T = TypeVar("T")


class _Dropped(Exception):
    """A call cancelled before its thread took it up: nobody waits for its result."""


class Pool:
    """At most `size` calls at once, each on a thread of its own; `await pool.run(fn, *args)`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._tokens = anyio.CapacityLimiter(size)
        # The real bound is `_tokens`; this only keeps the calls off anyio's default limiter, which the
        # SDK's stdio transport needs for reading and writing.
        self._threads = anyio.CapacityLimiter(math.inf)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)` on a thread; a cancelled call returns at once and its thread keeps its token to the end."""
        token = object()
        await self._tokens.acquire_on_behalf_of(token)
        guard = threading.Lock()
        started = dropped = False

        def work() -> T:
            nonlocal started
            with guard:
                if dropped:
                    raise _Dropped
                started = True
            try:
                return fn(*args)
            finally:
                try:
                    anyio.from_thread.run_sync(self._tokens.release_on_behalf_of, token)
                except RuntimeError:
                    pass  # the event loop has ended: the server is exiting, no token is needed any more

        try:
            return await anyio.to_thread.run_sync(work, limiter=self._threads, abandon_on_cancel=True)
        except BaseException:
            with guard:
                # Cancelled before its thread took it up: it never will, so the token is given back here.
                if not started:
                    dropped = True
                    self._tokens.release_on_behalf_of(token)
            raise
