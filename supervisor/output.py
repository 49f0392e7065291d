"""Reading windows of a log file. Cost depends on the size of the window, never on the size of the log."""

from __future__ import annotations

import os
from typing import BinaryIO

from . import layout as lay
from .models import StreamWindow

BLOCK = 64 * 1024


def open_log(path: str | os.PathLike[str]) -> BinaryIO | None:
    """`path` opened for reading if it is a regular file; None for anything else or nothing.

    Never blocks (a FIFO put in a log's place) and never follows a link.
    """
    try:
        return os.fdopen(lay.open_regular(path), "rb")
    except (OSError, ValueError):
        return None


def read_window(path: str | os.PathLike[str], *, tail_lines: int | None = None, offset: int | None = None,
                max_bytes: int | None = None) -> StreamWindow:
    """The text of `path` asked for: everything, the last `tail_lines` lines, or what follows `offset`.

    `max_bytes` caps the bytes returned (for a tail, the last bytes are kept), except that a
    window never ends inside a UTF-8 character and always makes progress: when the character at
    the start is longer than `max_bytes`, that one character (up to 4 bytes) is returned.
    `next_offset` is the byte offset where the returned text ends, to continue from; `truncated`
    says whether text between the requested start and the end of the file was left out;
    `remaining_bytes` how many bytes of the file (as it was when read) follow the window.
    Only a regular file is read (never blocking on a FIFO, never following a link): anything else
    in its place reads as empty, like a missing file.
    """
    empty = StreamWindow(text="", next_offset=offset or 0, truncated=False, remaining_bytes=0)
    f = open_log(path)
    if f is None:
        return empty
    with f:
        size = os.fstat(f.fileno()).st_size
        start = min(offset or 0, size)
        end = size
        if tail_lines is not None:
            start = max(start, _tail_start(f, size, tail_lines))
        if max_bytes is not None:
            if tail_lines is not None:
                start = max(start, end - max_bytes)
            else:
                end = min(end, start + max_bytes)
        f.seek(start)
        data = f.read(end - start)
        if end < size:
            # Never split a UTF-8 character: leave its first bytes for the next call, unless they
            # are all the window holds (the next call would start here again, forever).
            cut = _incomplete_suffix(data)
            if cut < len(data):
                data = data[: len(data) - cut]
                end -= cut
            elif data:
                f.seek(start)
                data = f.read(_char_length(data[0]))
                end = start + len(data)
    truncated = start > (offset or 0) or end < size
    return StreamWindow(text=data.decode("utf-8", errors="replace"), next_offset=end, truncated=truncated,
                        remaining_bytes=size - end)


def _tail_start(f: BinaryIO, size: int, lines: int) -> int:
    """The offset where the last `lines` lines begin, reading backwards block by block."""
    if lines <= 0:
        return size
    pos = size
    newlines = 0
    # A final line without a trailing newline counts as a line; a trailing newline does not start one.
    f.seek(max(0, size - 1))
    skip_last = f.read(1) == b"\n"
    while pos > 0:
        step = min(BLOCK, pos)
        pos -= step
        f.seek(pos)
        block = f.read(step)
        if skip_last and pos + step == size:
            block = block[:-1]
        idx = len(block)
        while True:
            idx = block.rfind(b"\n", 0, idx)
            if idx < 0:
                break
            newlines += 1
            if newlines == lines:
                return pos + idx + 1
    return 0


def _incomplete_suffix(data: bytes) -> int:
    """How many bytes at the end of `data` are the start of an unfinished UTF-8 character."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: the lead byte of the last character
            return back if _char_length(byte) > back else 0
    return 0


def _char_length(lead: int) -> int:
    """The length of the UTF-8 character that starts with byte `lead` (1 for anything else)."""
    return 2 if lead & 0xE0 == 0xC0 else 3 if lead & 0xF0 == 0xE0 else 4 if lead & 0xF8 == 0xF0 else 1
