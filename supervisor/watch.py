"""Following a shell by file watching (inotify through watchfiles), never by busy polling.

The shell directory is watched for state.json (and for stdout.log until the run announces its
log directory); once a coordination run's status.json is known, its folder is watched too.
A slow periodic check (LIVENESS_MS) notices a monitor that died without writing anything; it
settles the shell (`Supervisor.settle`), so waiting on a shell also hands on a slot a dead
monitor held and records `lost`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import watchfiles

from . import lifecycle
from .cluster.polling import poll_changes

if TYPE_CHECKING:
    from .core import Supervisor

LIVENESS_MS = 1000
# Group the bursts of a rename (temp file written, then moved) into one wake-up.
DEBOUNCE_MS = 200
STEP_MS = 5
# The watcher wakes this often without a change: the first wake-up after it is in place re-reads
# the status (a change between the first read and the watch is not missed), later ones only
# count towards LIVENESS_MS and the caller's deadline. A wake-up reads no file.
TICK_MS = 50
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
    shell_dir = Path(sup.layout.shell_dir(shell_id))
    while True:
        folders = _folders(shell_dir, status)
        watcher = _watch(folders)
        try:
            fresh = True
            check_at = time.monotonic() + LIVENESS_MS / 1000
            while True:
                if status_changed(status, last):
                    last = status
                    yield status
                if lifecycle.is_ended(status):
                    return
                if _folders(shell_dir, status) != folders:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"{shell_id} is still {status['status']} after {timeout:g} s")
                changes = next(watcher)
                now = time.monotonic()
                if now >= check_at:
                    check_at = now + LIVENESS_MS / 1000
                    status = sup.settle(shell_id)
                elif changes or fresh or (deadline is not None and now >= deadline):
                    status = sup.get_shell_status(shell_id)
                    if status["status"] == "lost":
                        status = sup.settle(shell_id)  # what a read finds lost is acted on before it is final
                fresh = False
        finally:
            watcher.close()


def _watch(folders: list[Path]) -> Generator[set[tuple[watchfiles.Change, str]], None, None]:
    """Changes in `folders` (not below them), or an empty set every TICK_MS; KeyboardInterrupt on a signal."""
    return watchfiles.watch(*folders, watch_filter=None, debounce=DEBOUNCE_MS, step=STEP_MS, rust_timeout=TICK_MS,
                            yield_on_timeout=True, recursive=False, ignore_permission_denied=True,
                            force_polling=False, debug=False)


def _kill_stalled(sup: Supervisor, shell_id: str) -> dict[str, Any]:
    killed = sup.kill_shell(shell_id)["status"] == "killed"
    final = sup.get_shell_status(shell_id)
    if killed:
        final["message"] = (f"killed because it stalled: its status.json did not change for more than "
                            f"{sup.stall_seconds:g} s")
    return final


def _folders(shell_dir: Path, status: dict[str, Any]) -> list[Path]:
    folders = [shell_dir]
    if status.get("status_file"):
        parent = Path(status["status_file"]).parent
        if parent.is_dir():
            folders.append(parent)
    return folders


def status_changed(status: dict[str, Any], last: dict[str, Any] | None) -> bool:
    """Whether `status` says something `last` did not (the growing duration aside)."""
    if last is None:
        return True
    return any(status[k] != last[k] for k in status if k not in _VOLATILE)
