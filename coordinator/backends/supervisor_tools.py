"""The supervisor's agent tools for the ``openai`` backend: a :class:`ToolKit` over ``supervisor.tools``.

The model is offered the tools' strict chat-completions schemas; each call is run by
``supervisor.tools.dispatch``, whose JSON result (or readable error) goes back as the tool message::

    toolkit = supervisor_toolkit(["start_coordination", "wait_shell", "get_shell_output"])
    backend = OpenAIBackend(model="gpt-4o-mini", ..., toolkit=toolkit)

A call may block for minutes (``wait_shell``), so it runs in a thread of its own. That thread is a
daemon thread on purpose: when the turn is cancelled (agent timeout, restart, interrupt) the wait
cannot be interrupted, and a thread of the event loop's default executor would hold the end of the
run until the wait ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from supervisor.core import Supervisor
from supervisor.tools import dispatch, openai_tools

from .openai import ToolKit


def supervisor_toolkit(names: Sequence[str], *, supervisor: Callable[[], Supervisor] = Supervisor) -> ToolKit:
    """The named supervisor tools as a :class:`ToolKit`; ``supervisor`` builds the Supervisor of each call.

    The default builds it from the environment at call time (``$MGSUP_HOME``, ``$MGSUP_MAX_CONCURRENT``),
    so shells started by an agent share the home and the concurrency limit of every other caller.

    >>> [d["function"]["name"] for d in supervisor_toolkit(["wait_shell"]).definitions]
    ['wait_shell']
    """
    definitions = openai_tools("chat", strict=True, names=names)

    async def execute(name: str, arguments: dict[str, Any]) -> str:
        return await run_in_daemon_thread(lambda: dispatch(name, arguments, supervisor=supervisor))

    return ToolKit(definitions=definitions, execute=execute)


async def run_in_daemon_thread(function: Callable[[], str]) -> str:
    """Await ``function()`` run in a new daemon thread; cancelling the await abandons the thread."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def work() -> None:
        try:
            settle = functools.partial(_set_result, future, function())
        except Exception as exc:
            settle = functools.partial(_set_exception, future, exc)
        # The loop is closed when the run ended before this call did; nobody waits for the result then.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle)

    threading.Thread(target=work, name="supervisor-tool", daemon=True).start()
    return await future


def _set_result(future: asyncio.Future[str], result: str) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[str], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
