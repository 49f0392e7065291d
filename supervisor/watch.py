"""Following a shell by file watching (inotify through watchfiles), never by busy polling.

The shell directory is watched for state.json (and for stdout.log until the run announces its
log directory); once a coordination run's status.json is known, its folder is watched too.
A slow periodic check (LIVENESS_MS) notices a monitor that died without writing anything.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchfiles._rust_notify import RustNotify

from . import lifecycle
from .cluster.polling import poll_changes

if TYPE_CHECKING:
    from .core import Supervisor

LIVENESS_MS = 1000
# Group the bursts of a rename (temp file written, then moved) into one wake-up.
DEBOUNCE_MS = 200
STEP_MS = 5
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
    status = sup.get_shell_status(shell_id)
    if status["backend"] == "ray":
        # Nothing of a cluster shell changes here by itself: its state is Ray's.
        yield from poll_changes(sup, shell_id, timeout, status_changed)
        return
    last: dict[str, Any] | None = None
    shell_dir = Path(sup.layout.shell_dir(shell_id))
    while True:
        folders = _folders(shell_dir, status)
        with RustNotify([str(p) for p in folders], False, False, 300, False, True) as notify:
            # Read again now that the watch is in place: a change in between is not missed.
            status = sup.get_shell_status(shell_id)
            while True:
                if status_changed(status, last):
                    last = status
                    yield status
                if lifecycle.is_ended(status):
                    return
                if _folders(shell_dir, status) != folders:
                    break
                wait_ms = LIVENESS_MS
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"{shell_id} is still {status['status']} after {timeout:g} s")
                    wait_ms = max(1, min(wait_ms, int(left * 1000)))
                result = notify.watch(DEBOUNCE_MS, STEP_MS, wait_ms, None)
                if result == "signal":
                    raise KeyboardInterrupt
                status = sup.get_shell_status(shell_id)


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
