"""Windows of a shell's output for the shell page, as byte ranges of its logs.

The page holds one contiguous range [start, end) of each stream. It opens on the last
WINDOW_BYTES, follows the end as the job writes (`since`), and "load earlier" asks for the window
that ends where its range starts (`before`). Every read goes through `Supervisor.get_shell_output`
with an explicit offset and size, so its cost does not depend on the size of the log.
"""

from __future__ import annotations

from typing import Any

from ..core import Supervisor

WINDOW_BYTES = 64 * 1024
# The most one live update carries; a job that wrote more than JUMP_BYTES since the page last
# looked is shown from its last window again (the page can load what it skipped).
LIVE_BYTES = 256 * 1024
JUMP_BYTES = 1024 * 1024
REPLACEMENT = "\ufffd"
# A UTF-8 character has at most 3 continuation bytes; each decodes alone as one REPLACEMENT.
MAX_CONTINUATION = 3


def size(sup: Supervisor, shell_id: str, stream: str) -> int:
    """The size of the stream's log now."""
    out = sup.get_shell_output(shell_id, offset=0, max_bytes=0, stream=stream)
    return int(out[f"{stream}_remaining_bytes"])


def before(sup: Supervisor, shell_id: str, stream: str, end: int | None = None,
           window: int = WINDOW_BYTES) -> dict[str, Any]:
    """The window of at most `window` bytes that ends at byte `end` (default: the end of the log).

    A window that does not start at the beginning of the log starts at a character boundary (the
    continuation bytes of a character cut in two belong to the window before) and, when that line
    can be told apart exactly (no invalid UTF-8 before it), at its first whole line. So for valid
    UTF-8 the windows before one another join into exactly the bytes of the log.
    """
    total = size(sup, shell_id, stream)
    end = total if end is None else min(end, total)
    start = max(0, end - window)
    out = sup.get_shell_output(shell_id, offset=start, max_bytes=end - start, stream=stream)
    text: str = out[stream]
    if start > 0:
        cut = min(len(text) - len(text.lstrip(REPLACEMENT)), MAX_CONTINUATION)
        start, text = start + cut, text[cut:]
        head, newline, rest = text.partition("\n")
        if newline and rest and REPLACEMENT not in head:
            start += len(head.encode()) + 1
            text = rest
    return {"stream": stream, "start": start, "end": out[f"{stream}_next_offset"], "text": text, "size": total}


def since(sup: Supervisor, shell_id: str, stream: str, offset: int) -> dict[str, Any]:
    """What the stream holds after byte `offset`, at most LIVE_BYTES; `reset` when it jumped to the last window."""
    out = sup.get_shell_output(shell_id, offset=offset, max_bytes=LIVE_BYTES, stream=stream)
    remaining = int(out[f"{stream}_remaining_bytes"])
    end = int(out[f"{stream}_next_offset"])
    if remaining + (end - offset) > JUMP_BYTES:
        return {**before(sup, shell_id, stream), "reset": True}
    return {"stream": stream, "start": offset, "end": end, "text": out[stream], "size": end + remaining,
            "reset": False}
