"""Where a run's status.json is: the paths it announced at the head of its stdout, and MassGen's newest attempt.

Stdlib only (no pydantic, no pathlib): the monitor imports it to watch a run's usage against its budget.
"""

from __future__ import annotations

import os
import re

from ..layout import open_regular

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

HEAD_BYTES = 64 * 1024
HEAD_BLOCK = 4 * 1024
# Enough for any run's log folder; a bound for a path a job made up.
MAX_SCAN_ENTRIES = 512
_LOG_DIR = re.compile(rb"^LOG_DIR: (.*)$", re.MULTILINE)
_STATUS = re.compile(rb"^STATUS: (.*)$", re.MULTILINE)
_ATTEMPT = re.compile(r"^(?P<log>.*)/turn_(?P<turn>\d+)/attempt_(?P<attempt>\d+)/status\.json$")


def announced_paths(stdout_path: str | os.PathLike[str], *, ended: bool = False,
                    start: int = 0) -> tuple[str | None, str | None]:
    """The LOG_DIR and STATUS paths the job printed at the start of its stdout (from byte `start`: a
    later attempt's), if any.

    Read block by block: a run prints both on its first lines, so usually one small read is enough.
    While the job runs, a last line without its newline may still be growing and is not read. Only
    a regular file is read, without blocking (a FIFO put in a log's place) or following a link.
    """
    try:
        with os.fdopen(open_regular(stdout_path), "rb") as f:
            f.seek(start)
            head = f.read(HEAD_BLOCK)
            log_dir, status = _find(head, ended and len(head) < HEAD_BLOCK)
            if not (log_dir and status) and len(head) == HEAD_BLOCK:
                head += f.read(HEAD_BYTES - HEAD_BLOCK)
                log_dir, status = _find(head, ended and len(head) < HEAD_BYTES)
    except (OSError, ValueError):
        return None, None
    log_dir_text = _line_value(log_dir)
    status_text = _line_value(status)
    if log_dir_text and not status_text:
        status_text = os.path.join(log_dir_text, "status.json")
    return log_dir_text, status_text


def _find(head: bytes, whole_file: bool) -> tuple[re.Match[bytes] | None, re.Match[bytes] | None]:
    """The first LOG_DIR and STATUS lines in `head`; its last line counts only when it ends the file for good."""
    whole = head if whole_file else head[: head.rfind(b"\n") + 1]
    return _LOG_DIR.search(whole), _STATUS.search(whole)


def _line_value(match: re.Match[bytes] | None) -> str | None:
    if match is None:
        return None
    # The path's exact bytes, as `printed.line_bytes` printed them.
    return os.fsdecode(match.group(1)).strip() or None


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
