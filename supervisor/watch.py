"""Following a shell by file watching (inotify), never by busy polling.

The shell directory is watched for its records (state.json is replaced by rename), and for writes
only while the job's stdout may still announce a coordination run (its first
`automation.locate.HEAD_BYTES`): a job writing gigabytes of output does not wake the waiter for each
write. Once a coordination run's status.json is known, its folder is watched too. A slow
periodic check (LIVENESS_MS) notices a monitor that died without writing anything; it settles
the shell (`Supervisor.settle`), so waiting on a shell also hands on a slot a dead monitor held
and records `lost`.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import inotify, lifecycle
from . import layout as lay
from .automation import locate
from .cluster.polling import poll_changes

if TYPE_CHECKING:
    from .core import Supervisor

LIVENESS_MS = 1000
_VOLATILE = ("duration_seconds",)


def watch_status(sup: Supervisor, shell_id: str, timeout: float | None, *,
                 kill_on_stall: bool = False) -> Iterator[dict[str, Any]]:
    """Yield the status of `shell_id` now and after every change, ending with its final status.

    With `kill_on_stall`, a run reported `stalled` is killed; the last status then says why. The
    LIVENESS_MS wake-up re-reads the status, so a stall is seen although no file changes.
    """
    for status in _changes(sup, shell_id, timeout):
        if kill_on_stall and (status.get("coordination") or {}).get("stalled"):
            yield _kill_stalled(sup, shell_id)
            return
        yield status


def wait_until_ended(sup: Supervisor, shell_id: str, timeout: float | None, *,
                     kill_on_stall: bool = False) -> dict[str, Any]:
    """The final status of `shell_id`; TimeoutError when `timeout` seconds pass first."""
    [final] = deque(watch_status(sup, shell_id, timeout, kill_on_stall=kill_on_stall), maxlen=1)
    return final


def _changes(sup: Supervisor, shell_id: str, timeout: float | None) -> Iterator[dict[str, Any]]:
    deadline = None if timeout is None else time.monotonic() + timeout
    status = sup.settle(shell_id)
    if status["backend"] == "ray":
        # Nothing of a cluster shell changes here by itself: its state is Ray's.
        yield from poll_changes(sup, shell_id, timeout, status_changed)
        return
    last: dict[str, Any] | None = None
    shell_dir = sup.layout.shell_dir(shell_id)
    with inotify.Watcher() as watcher:
        watched: dict[str, int] = {}
        check_at = time.monotonic() + LIVENESS_MS / 1000
        while True:
            if status_changed(status, last):
                last = status
                yield status
            if lifecycle.is_ended(status):
                return
            wanted = _watches(shell_dir, status)
            # A change between the last read and a new watch is not missed: read once more.
            changed = wanted != watched
            watcher.watch(wanted)
            watched = wanted
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise TimeoutError(f"{shell_id} is still {status['status']} after {timeout:g} s")
            if not changed:
                changed = watcher.wait(min(check_at, deadline if deadline is not None else check_at) - now)
            now = time.monotonic()
            if now >= check_at:
                check_at = now + LIVENESS_MS / 1000
                status = sup.settle(shell_id)
            elif changed or (deadline is not None and now >= deadline):
                status = sup.get_shell_status(shell_id)
                if status["status"] == "lost":
                    status = sup.settle(shell_id)  # what a read finds lost is acted on before it is final


def _watches(shell_dir: str, status: dict[str, Any]) -> dict[str, int]:
    """The directories to watch for `status`, each with the events that can change it."""
    mask = inotify.RECORDS
    if not status.get("status_file") and _size(os.path.join(shell_dir, lay.STDOUT)) < locate.HEAD_BYTES:
        mask |= inotify.IN_MODIFY  # the run may still print where its status.json is
    wanted = {shell_dir: mask}
    if status.get("status_file"):
        parent = str(Path(status["status_file"]).parent)
        if os.path.isdir(parent):
            wanted[parent] = inotify.RECORDS
    return wanted


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _kill_stalled(sup: Supervisor, shell_id: str) -> dict[str, Any]:
    killed = sup.kill_shell(shell_id)["status"] == "killed"
    final = sup.get_shell_status(shell_id)
    if killed:
        final["message"] = (f"killed because it stalled: its status.json did not change for more than "
                            f"{sup.stall_seconds:g} s")
    return final


def status_changed(status: dict[str, Any], last: dict[str, Any] | None) -> bool:
    """Whether `status` says something `last` did not (the growing duration aside)."""
    if last is None:
        return True
    return any(status[k] != last[k] for k in status if k not in _VOLATILE)
