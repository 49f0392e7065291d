"""Process handling for agent subprocesses: stopping one agent's tree, and a sweep at the end of a run.

Process lookups, signals and the stop protocol are the supervisor's (:mod:`supervisor.proc`), so a
coordination run and a supervised shell stop their processes the same way and both spare the
monitors of supervised shells started from inside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time

from supervisor import proc

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 1.0
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux), so agents' detached grandchildren can still be found and ended."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _signal_tree(pgid: int, pids: set[int], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    proc.send(pids, sig)


async def stop_process_tree(process: asyncio.subprocess.Process, grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop an agent process started with ``start_new_session=True``, its group and its descendants.

    Not :func:`supervisor.proc.stop`: its waits block, and here the other agents' turns and the
    status heartbeat share the thread. The run is the subreaper of every agent at once, so an
    agent's orphans are told apart from the others' by process group, which a pid list cannot say.
    """
    pgid = process.pid
    family = proc.descendants(process.pid)
    if process.returncode is None:
        _signal_tree(pgid, family, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), grace)
    # Members that survived SIGTERM, or that the agent left behind after exiting normally.
    _signal_tree(pgid, family | proc.descendants(process.pid), signal.SIGKILL)
    await process.wait()


def end_descendants(grace: float = STOP_GRACE_SECONDS) -> int:
    """Stop every remaining descendant of this process but supervised shells; returns how many were found.

    Shells started from inside the run (an agent calling ``start_shell`` or ``start_coordination``)
    are independent supervised jobs that outlive it. Their monitors detach and, since the run is a
    subreaper, re-parent to it; :func:`supervisor.proc.descendants` leaves such a monitor and its
    tree alone. Orphans that end here stay zombies until the run's process exits a moment later.
    """
    me = os.getpid()
    found: set[int] = set()

    def remaining() -> set[int]:
        pids = proc.descendants(me)
        found.update(pids)
        return pids

    proc.stop(remaining, signal.SIGTERM, grace, time.sleep)
    if found:
        log.debug("ended %d leftover agent process(es)", len(found))
    return len(found)
