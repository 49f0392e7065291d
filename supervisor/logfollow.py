"""Copying a shell's output to a writer, once or following it until the shell ends (`mgsup logs`).

Reads go through `Supervisor.get_shell_output` with byte offsets and a window cap, so memory stays
bounded however large the log is. Following waits on file events in the shell directory (watchfiles),
not on a sleep loop.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import watchfiles

from . import lifecycle

if TYPE_CHECKING:
    from .core import Supervisor

CHUNK_BYTES = 1024 * 1024
# Group a burst of writes into one read; a short step keeps the echo prompt.
DEBOUNCE_MS = 50
STEP_MS = 10
# The watcher starts just after the first read; output written in between is picked up at this
# timeout at the latest, and so is a monitor that died without a last write.
RESCAN_MS = 500


def copy_output(sup: Supervisor, shell_id: str, write: Callable[[str], object], *, stream: str = "stdout",
                tail_lines: int | None = None, follow: bool = False) -> None:
    """Write `stream` ("stdout" or "stderr") of `shell_id`; with `follow`, keep going until it ends.

    `tail_lines` starts from the last N lines instead of the beginning.

    >>> copy_output(Supervisor(), "shell_0a1b2c3d", sys.stdout.write, tail_lines=10, follow=True)
    """
    offset = 0
    if tail_lines is not None:
        tail = sup.get_shell_output(shell_id, tail_lines=tail_lines, max_bytes=CHUNK_BYTES, stream=stream)
        write(tail[stream])
        offset = tail[f"{stream}_next_offset"]
    offset, status = _drain(sup, shell_id, stream, offset, write)
    if not follow or lifecycle.is_ended({"status": status}):
        return
    shell_dir = Path(sup.layout.shell_dir(shell_id))
    for _changes in watchfiles.watch(shell_dir, watch_filter=None, debounce=DEBOUNCE_MS, step=STEP_MS,
                                     rust_timeout=RESCAN_MS, yield_on_timeout=True):
        offset, status = _drain(sup, shell_id, stream, offset, write)
        if lifecycle.is_ended({"status": status}):
            return


def _drain(sup: Supervisor, shell_id: str, stream: str, offset: int,
           write: Callable[[str], object]) -> tuple[int, str]:
    """Write everything after `offset`, window by window; the new offset and the shell's status.

    The status is read before each window, so when it says ended the window holds the last output.
    """
    while True:
        out = sup.get_shell_output(shell_id, offset=offset, max_bytes=CHUNK_BYTES, stream=stream)
        if out[stream]:
            write(out[stream])
        offset = out[f"{stream}_next_offset"]
        if not out[f"{stream}_truncated"]:
            return offset, out["status"]
