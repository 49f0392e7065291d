"""Copying a shell's output to writers, once or following it until the shell ends.

Used by `mgsup logs` (both streams into one, stderr lines marked, or one stream as written) and by
`start --wait` / `status --follow` of a plain shell (each stream to its own writer, as if the job
ran in the foreground). Reads go through `Supervisor.get_shell_output` with byte offsets and a
window cap, so memory stays bounded however large the log is. Following waits on file events in the
shell directory (watchfiles), not on a sleep loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
STDERR_MARK = "[stderr] "
Writer = Callable[[str], object]


def copy_output(sup: Supervisor, shell_id: str, sinks: Mapping[str, Writer], *, tail_lines: int | None = None,
                follow: bool = False) -> str:
    """Write each stream named in `sinks` ("stdout", "stderr") of `shell_id` to its writer; with
    `follow`, keep going until the shell ends. Returns the shell's status as last read.

    `tail_lines` starts each stream from its last N lines instead of the beginning. Without
    `follow`, the streams are written one after the other (stdout first).

    >>> copy_output(Supervisor(), "shell_0a1b2c3d", {"stdout": sys.stdout.write}, tail_lines=10, follow=True)
    'stopped'
    """
    offsets = dict.fromkeys(sinks, 0)
    if tail_lines is not None:
        for stream, write in sinks.items():
            tail = sup.get_shell_output(shell_id, tail_lines=tail_lines, max_bytes=CHUNK_BYTES, stream=stream)
            write(tail[stream])
            offsets[stream] = tail[f"{stream}_next_offset"]
    status = _drain(sup, shell_id, sinks, offsets)
    if not follow or lifecycle.is_ended({"status": status}):
        return status
    shell_dir = Path(sup.layout.shell_dir(shell_id))
    for _changes in watchfiles.watch(shell_dir, watch_filter=None, debounce=DEBOUNCE_MS, step=STEP_MS,
                                     rust_timeout=RESCAN_MS, yield_on_timeout=True):
        status = _drain(sup, shell_id, sinks, offsets)
        if lifecycle.is_ended({"status": status}):
            break
    return status


def _drain(sup: Supervisor, shell_id: str, sinks: Mapping[str, Writer], offsets: dict[str, int]) -> str:
    """Write everything after `offsets` (moved on), window by window; the shell's status before the first read.

    Read before the windows, a status that says ended means they hold the last output.
    """
    status: str | None = None
    for stream, write in sinks.items():
        while True:
            out = sup.get_shell_output(shell_id, offset=offsets[stream], max_bytes=CHUNK_BYTES, stream=stream)
            status = status or out["status"]
            if out[stream]:
                write(out[stream])
            offsets[stream] = out[f"{stream}_next_offset"]
            if not out[f"{stream}_truncated"]:
                break
    assert status is not None
    return status


class Interleaved:
    """Both streams into one writer, in the order they are read, with each stderr line marked.

    A line that one stream left unfinished is ended before the other stream writes, so a mark
    always starts a line.

    >>> both = Interleaved(sys.stdout.write)
    >>> copy_output(Supervisor(), "shell_0a1b2c3d", both.sinks(), follow=True)
    """

    def __init__(self, write: Writer, mark: str = STDERR_MARK) -> None:
        self.write = write
        self.mark = mark
        self.at_line_start = True
        self.last: str | None = None

    def sinks(self) -> dict[str, Writer]:
        return {"stdout": lambda text: self._put("stdout", text), "stderr": lambda text: self._put("stderr", text)}

    def _put(self, stream: str, text: str) -> None:
        if not text:
            return
        if self.last not in (None, stream) and not self.at_line_start:
            self.write("\n")
            self.at_line_start = True
        self.last = stream
        if stream == "stdout":
            self.write(text)
            self.at_line_start = text.endswith("\n")
            return
        pieces = text.split("\n")
        out = []
        for position, piece in enumerate(pieces):
            last = position == len(pieces) - 1
            if last and not piece:
                break
            if self.at_line_start:
                out.append(self.mark)
            out.append(piece if last else piece + "\n")
            self.at_line_start = not last
        self.write("".join(out))
