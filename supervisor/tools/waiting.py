"""wait_shell for the MCP server: a wait holds no thread, ends the moment the shell does, and can be cancelled.

A running shell's monitor exits right after it has recorded the end, so the wait sleeps on a pidfd of
the monitor: the event loop is told when it exits, and no thread or file watch is held meanwhile.
A queued shell, a monitor that cannot be watched (gone already, not on this machine) and a wait that
must notice a stall re-read the status every TICK seconds instead, as the library's own wait does.
A cluster shell has no monitor here and nothing of it changes on disk by itself: its status is
re-read at the pace of the library's poll of Ray (short after a change, backing off to a couple of
seconds while nothing changes, tolerating a cluster that is briefly away). Each read is a short call
on a thread of the server's pool for reads; between reads the wait only sleeps in the event loop.

When the host cancels the call or goes away, the wait ends at once and closes its descriptor. At most
`most` waits are served at once (each holds one descriptor); one more is refused with a tool error.

The OpenAI dispatcher keeps the library's blocking `Supervisor.wait_shell`: its caller owns the thread.
"""

from __future__ import annotations

import os
import time
from typing import Any

import anyio

from .. import lifecycle, proc
from ..cluster.polling import Pace
from ..core import Supervisor
from ..errors import ClusterUnavailable
from ..watch import status_changed
from .guard import guarded
from .policy import Policy
from .registry import SupervisorFactory, ToolFailure, ToolSpec, connect, failures
from .schemas import WaitShellArgs
from .threads import Pool
from .views import wait_view

TICK = 1.0
DEFAULT_MOST = 200


class Waits:
    """The wait_shell calls one MCP server is serving."""

    def __init__(self, supervisor: SupervisorFactory, reads: Pool, changes: Pool, most: int = DEFAULT_MOST,
                 policy: Policy | None = None) -> None:
        self.supervisor = supervisor
        self.reads = reads
        self.changes = changes
        self.most = most
        self.policy = policy
        self.in_flight = 0

    async def run(self, spec: ToolSpec, args: WaitShellArgs) -> dict[str, Any]:
        """The result of wait_shell(args), as `registry.call` would give it (decided and audited the same way)."""
        with failures(spec, args):
            sup = connect(self.supervisor)
            with guarded(spec.name, args, sup, self.policy, surface="mcp") as passage:
                if self.in_flight >= self.most:
                    raise ToolFailure(f"{self.in_flight} waits are in flight on this server, the most it serves at "
                                      "once: call wait_shell again once one of them has returned, or "
                                      "get_shell_status to look without waiting")
                self.in_flight += 1
                try:
                    return passage.returns(await self._wait(sup, WaitShellArgs.model_validate(passage.arguments)))
                finally:
                    self.in_flight -= 1

    async def _wait(self, sup: Supervisor, a: WaitShellArgs) -> dict[str, Any]:
        began = time.monotonic()
        deadline = began + a.timeout
        read_again = True
        pace = Pace()
        status: dict[str, Any] | None = None
        while True:
            try:
                fresh, monitor = await self.reads.run(_read, sup, a.shell_id)
                pace.answered()
            except ClusterUnavailable:
                # A cluster briefly away (a head restarting) does not end the wait; one that stays away does.
                if status is None or not pace.tolerate():
                    raise
                fresh, monitor = status, None
            last, status = status, fresh
            if lifecycle.is_ended(status):
                break
            if a.kill_on_stall and (status.get("coordination") or {}).get("stalled"):
                stopped = await self.changes.run(_stop_stalled, sup, a.shell_id)
                if stopped is not None:
                    status = stopped
                    break
            left = deadline - time.monotonic()
            if left <= 0:
                return wait_view(status, expired=True, waited=time.monotonic() - began, detail=a.detail)
            if status.get("backend") == "ray":
                await _sleep(None, min(left, pace.pause(changed=status_changed(status, last))))
                continue
            watched = None if a.kill_on_stall else monitor
            fd = proc.exit_fd(*watched) if watched is not None else None
            if watched is not None and fd is None and read_again:
                read_again = False  # the monitor exited since the read: the end is recorded, read it now
                continue
            await _sleep(fd, left if fd is not None else min(left, TICK))
        return wait_view(status, expired=False, waited=time.monotonic() - began, detail=a.detail)


def _read(sup: Supervisor, shell_id: str) -> tuple[dict[str, Any], tuple[int, int | None] | None]:
    """The shell's status, settled as every wait settles it, and while a local shell runs its monitor's identity."""
    status = sup.settle(shell_id)
    if status["status"] != "running" or status.get("backend") == "ray":
        return status, None
    state = sup.store.state(shell_id)
    return status, (state.monitor_pid, state.monitor_start) if state.monitor_pid else None


def _stop_stalled(sup: Supervisor, shell_id: str) -> dict[str, Any] | None:
    """Kill a stalled run the way the library's wait does; None when it is no longer stalled."""
    try:
        return sup.wait_shell(shell_id, timeout=0, kill_on_stall=True)
    except TimeoutError:
        return None


async def _sleep(fd: int | None, seconds: float) -> None:
    """Return when `fd` (a pidfd) is readable, or after `seconds`; close `fd` in any case."""
    try:
        with anyio.move_on_after(seconds):
            if fd is None:
                await anyio.sleep_forever()
            else:
                await anyio.wait_readable(fd)
    finally:
        if fd is not None:
            os.close(fd)
