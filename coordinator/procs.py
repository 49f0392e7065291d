"""Process handling for agent subprocesses: one stop protocol, and a sweep at the end of a run.

Every agent runs in its own process group. Stopping it signals the group and every descendant
found, waits a short grace, then SIGKILLs what is left and reaps the main process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys

import psutil

from supervisor.proc import MONITOR_VAR

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


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _signal_all(pgid: int, processes: list[psutil.Process], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)


async def stop_process_tree(process: asyncio.subprocess.Process, grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop an agent process started with ``start_new_session=True``, its group and its descendants."""
    pgid = process.pid
    family = _descendants(process.pid)
    if process.returncode is None:
        _signal_all(pgid, family, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), grace)
    family += [p for p in _descendants(process.pid) if p not in family]
    # Members that survived SIGTERM, or that the agent left behind after exiting normally.
    _signal_all(pgid, family, signal.SIGKILL)
    await process.wait()


def end_descendants(grace: float = STOP_GRACE_SECONDS) -> int:
    """Stop every remaining descendant of this process but supervised shells; returns how many were found.

    Shells started from inside the run (an agent calling ``start_shell`` or ``start_coordination``)
    are independent supervised jobs that outlive it. Their monitors detach and, since the run is a
    subreaper, re-parent to it; they carry ``MGSUP_MONITOR_OF`` in their environment (never passed on
    to their jobs), and the sweep leaves such a process and everything below it alone.
    """
    children = _sweepable(psutil.Process())
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=grace)
    if children:
        log.debug("ended %d leftover agent process(es)", len(children))
    return len(children)


def _sweepable(root: psutil.Process) -> list[psutil.Process]:
    found = []
    todo = [root]
    while todo:
        try:
            children = todo.pop().children()
        except psutil.Error:
            continue
        for child in children:
            if not is_shell_monitor(child):
                found.append(child)
                todo.append(child)
    return found


def is_shell_monitor(process: psutil.Process) -> bool:
    """True when ``process`` is the monitor of a supervised shell (the supervisor marks its environment)."""
    try:
        return MONITOR_VAR in process.environ()
    except psutil.Error:
        return False
