"""The MCP server's thread pools stay bounded when calls are cancelled: a token goes back when its thread ends."""

from __future__ import annotations

import threading

import anyio
import pytest

from supervisor.tools.threads import Pool


async def until(predicate: object, what: str) -> None:
    with anyio.fail_after(30):
        while not predicate():  # type: ignore[operator]
            await anyio.sleep(0.005)


@pytest.mark.timeout(60)
def test_an_abandoned_call_keeps_its_token_until_its_thread_ends() -> None:
    release = threading.Event()
    entered = threading.Event()
    ran: list[str] = []

    def slow() -> None:
        entered.set()
        if release.wait(30):
            ran.append("slow")

    async def scenario() -> None:
        pool = Pool(1)
        async with anyio.create_task_group() as group:
            group.start_soon(pool.run, slow)
            # The token is taken before the thread starts: cancel only once the thread runs the call.
            await until(entered.is_set, "the slow call to run on its thread")
            group.cancel_scope.cancel()
        # The caller is gone at once; its thread still runs and still holds the pool's only token.
        assert pool._tokens.borrowed_tokens == 1
        async with anyio.create_task_group() as group:
            group.start_soon(pool.run, ran.append, "next")
            await until(lambda: pool._tokens.statistics().tasks_waiting == 1, "the next call to queue")
            assert ran == []
            release.set()
        assert ran == ["slow", "next"]
        assert pool._tokens.borrowed_tokens == 0

    anyio.run(scenario)


@pytest.mark.timeout(60)
def test_a_call_cancelled_while_queued_takes_no_token() -> None:
    release = threading.Event()

    async def scenario() -> None:
        pool = Pool(1)
        async with anyio.create_task_group() as group:
            group.start_soon(pool.run, release.wait, 30)
            await until(lambda: pool._tokens.borrowed_tokens == 1, "the first call to hold the token")
            async with anyio.create_task_group() as queued:
                queued.start_soon(pool.run, print, "never")
                await until(lambda: pool._tokens.statistics().tasks_waiting == 1, "the second call to queue")
                queued.cancel_scope.cancel()
            assert pool._tokens.statistics().tasks_waiting == 0
            release.set()
        assert pool._tokens.borrowed_tokens == 0
        assert await pool.run(sum, [1, 2]) == 3

    anyio.run(scenario)


def test_errors_reach_the_caller_and_give_the_token_back() -> None:
    async def scenario() -> None:
        pool = Pool(1)
        with pytest.raises(ZeroDivisionError):
            await pool.run(divmod, 1, 0)
        assert pool._tokens.borrowed_tokens == 0

    anyio.run(scenario)
