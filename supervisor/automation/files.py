"""Reading files that a job names (`STATUS: <path>`): bounded, regular files only, never blocking.

A job may print any path: a FIFO (an open for reading would wait for a writer), `/dev/zero`
(endless), a 1 GB file, a directory. Every status read of every shell goes through here, so one
such line must cost a reader nothing more than a failed read.
"""

from __future__ import annotations

import os
import stat

# O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


def read_regular(path: str | os.PathLike[str], limit: int) -> tuple[bytes, float] | None:
    """The content and modification time of `path` when it is a regular file of at most `limit` bytes.

    None for anything else (missing, unreadable, not a regular file, too large). Content and time
    come from one open descriptor, so a rename in between cannot pair new content with an old time.

    >>> read_regular("/tmp/run/status.json", 4 << 20)
    (b'{"meta": ...}', 1730678901.2)
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        chunks = []
        left = limit + 1  # the file may have grown since fstat: never read more than the limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:
            return None
        return b"".join(chunks), info.st_mtime
    except OSError:
        return None
    finally:
        os.close(fd)


def modified(path: str | os.PathLike[str]) -> float | None:
    """The modification time of `path` (any kind of file; stat never blocks), or None."""
    try:
        return os.stat(path).st_mtime
    except (OSError, ValueError):
        return None
