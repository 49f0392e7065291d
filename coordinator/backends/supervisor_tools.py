"""The supervisor's agent tools for the ``openai`` backend: a :class:`ToolKit` over ``supervisor.tools``.

The model is offered the tools' strict chat-completions schemas; each call is run by
``supervisor.tools.dispatch``, whose JSON result (or readable error) goes back as the tool message::

    toolkit = supervisor_toolkit(["start_coordination", "wait_shell", "get_shell_output"],
                                 workspace=Path("/runs/ws"), policy=load_policy("policy.yaml"))
    backend = OpenAIBackend(model="gpt-4o-mini", ..., toolkit=toolkit)

The agent works in its workspace: a start without ``cwd`` runs there, and a relative ``cwd`` is
taken from there. The policy (one session per agent) decides every call; each call is audited.

A call may block for minutes (``wait_shell``), so it runs in a thread of its own. That thread is a
daemon thread on purpose: when the turn is cancelled (agent timeout, restart, interrupt) the wait
cannot be interrupted, and a thread of the event loop's default executor would hold the end of the
run until the wait ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from supervisor.core import Supervisor
from supervisor.tools import dispatch, openai_tools
from supervisor.tools.policy import Policy, PolicyError, load_policy

from ..errors import ConfigError
from .openai import ToolKit

# The tools whose calls take a working directory.
_WORKING_TOOLS = frozenset({"start_shell", "start_coordination"})


def supervisor_toolkit(names: Sequence[str], *, supervisor: Callable[[], Supervisor] = Supervisor,
                       workspace: Path | None = None, policy: Policy | None = None) -> ToolKit:
    """The named supervisor tools as a :class:`ToolKit`; ``supervisor`` builds the Supervisor of each call.

    The default builds it from the environment at call time (``$MGSUP_HOME``, ``$MGSUP_MAX_CONCURRENT``),
    so shells started by an agent share the home and the concurrency limit of every other caller.
    ``workspace``: where the agent's starts run by default; ``policy``: what its calls may do.

    >>> [d["function"]["name"] for d in supervisor_toolkit(["wait_shell"]).definitions]
    ['wait_shell']
    """
    definitions = openai_tools("chat", strict=True, names=names)

    async def execute(name: str, arguments: dict[str, Any]) -> str:
        if workspace is not None and name in _WORKING_TOOLS:
            given = arguments.get("cwd")
            arguments = {**arguments, "cwd": os.path.join(workspace, given) if isinstance(given, str) else
                         str(workspace) if given is None else given}
        return await run_in_daemon_thread(lambda: dispatch(name, arguments, supervisor=supervisor, policy=policy))

    return ToolKit(definitions=definitions, execute=execute)


def agent_policy(setting: str | Mapping[str, Any], *, agent_id: str, workspace: Path) -> Policy:
    """The policy of an agent's ``supervisor_policy``: a file (absolute path) or the rules inline.

    Relative roots of an inline policy are taken from the agent's workspace (``["."]``: the workspace itself).
    A policy that cannot be used (a file changed since the config was checked) is a :class:`ConfigError`.
    """
    try:
        if isinstance(setting, str):
            return load_policy(setting)
        return Policy.from_mapping(setting, source=f"supervisor_policy of agent {agent_id}", base=workspace)
    except PolicyError as exc:
        raise ConfigError(str(exc)) from None


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
