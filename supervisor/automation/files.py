"""Reading files that a job names (`STATUS: <path>`): bounded, regular files only, never blocking.

A job may print any path: a FIFO (an open for reading would wait for a writer), `/dev/zero`
(endless), a 1 GB file, a directory. Every status read of every shell goes through here, so one
such line must cost a reader nothing more than a failed read. Stdlib only: a cluster node's
runner reads a run's status.json through here too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from .. import layout as lay

MAX_STATUS_BYTES = 4 * 1024 * 1024
# Enough for any run's log folder; a bound for a path a job made up.
MAX_SCAN_ENTRIES = 512
_ATTEMPT = re.compile(r"^(?P<log>.*)/turn_(?P<turn>\d+)/attempt_(?P<attempt>\d+)/status\.json$")


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


def current_status_file(status_file: str) -> str:
    """The status.json to read for `status_file`: for MassGen's `turn_N/attempt_M/`, the newest attempt.

    >>> current_status_file("/l/log_1/turn_1/attempt_1/status.json")   # attempt_2 exists
    '/l/log_1/turn_1/attempt_2/status.json'
    """
    match = _ATTEMPT.match(status_file)
    if match is None:
        return status_file
    log = match.group("log")
    best = (int(match.group("turn")), int(match.group("attempt")))
    for turn, turn_dir in _numbered(log, "turn_"):
        for attempt, attempt_dir in _numbered(turn_dir, "attempt_"):
            if (turn, attempt) > best and os.path.isfile(os.path.join(attempt_dir, "status.json")):
                best = (turn, attempt)
    return os.path.join(log, f"turn_{best[0]}", f"attempt_{best[1]}", "status.json")


def _numbered(folder: str, prefix: str) -> Iterable[tuple[int, str]]:
    try:
        with os.scandir(folder) as entries:
            for n, entry in enumerate(entries):
                if n >= MAX_SCAN_ENTRIES:
                    return
                number = entry.name[len(prefix):]
                if entry.name.startswith(prefix) and number.isdigit():
                    yield int(number), entry.path
    except (OSError, ValueError):
        return
