"""Reading files that a job names (`STATUS: <path>`): bounded, regular files only, never blocking.

A job may print any path: a FIFO (an open for reading would wait for a writer), `/dev/zero`
(endless), a 1 GB file, a directory. Every status read of every shell goes through here, so one
such line must cost a reader nothing more than a failed read. Stdlib only: a cluster node's
runner reads a run's status.json through here too.
"""

from __future__ import annotations

import os

from .. import layout as lay

MAX_STATUS_BYTES = 4 * 1024 * 1024


def read_regular(path: str | os.PathLike[str], limit: int) -> tuple[bytes, float] | None:
    """The content and modification time of `path` when it is a regular file of at most `limit` bytes.

    None for anything else (missing, unreadable, not a regular file, too large). A job may name a
    link to its status file, so links are followed here.

    >>> read_regular("/tmp/run/status.json", 4 << 20)
    (b'{"meta": ...}', 1730678901.2)
    """
    try:
        return lay.read_bounded(path, limit, follow=True)
    except (OSError, ValueError):
        return None


def modified(path: str | os.PathLike[str]) -> float | None:
    """The modification time of `path` (any kind of file; stat never blocks), or None."""
    try:
        return os.stat(path).st_mtime
    except (OSError, ValueError):
        return None
