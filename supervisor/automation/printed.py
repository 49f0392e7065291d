"""What a coordination run prints on stdout (DESIGN §6), and reading it back from the shell's log.

The head of the output announces where the run logs:

    LOG_DIR: <absolute path>
    STATUS: <absolute path>/status.json
    QUESTION: <question>
    [Coordination in progress - monitor status.json for real-time updates]

and its end says how it went: `WINNER`, `ANSWER_FILE`, `DURATION`, `ANSWER_PREVIEW` and `COMPLETED`,
or `ERROR: <reason>`. MassGen prints its `ANSWER_FILE` relative to its cwd and adds an absolute
`ANSWER:` line (preferred here), a `TIMELINE:` block that grows with agents and votes, and errors
as `❌ Error: ...` lines (on stderr for a configuration error). Between head and end a runner may
print anything (MassGen's litellm prints coloured noise), so the end is read by bytes from the end
of the log back to the progress line, however long it is.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from .. import layout as lay
from ..output import open_log, read_window
from .locate import announced_paths

# The line keys of the contract.
LOG_DIR = "LOG_DIR"
STATUS = "STATUS"
QUESTION = "QUESTION"
WINNER = "WINNER"
ANSWER_FILE = "ANSWER_FILE"
ANSWER = "ANSWER"
DURATION = "DURATION"
ANSWER_PREVIEW = "ANSWER_PREVIEW"
ERROR = "ERROR"
COMPLETED = "COMPLETED"
PROGRESS_LINE = "[Coordination in progress - monitor status.json for real-time updates]"
ERROR_MARK = "❌"
CLOSING_KEYS = (WINNER, ANSWER_FILE, ANSWER, DURATION, ANSWER_PREVIEW, ERROR, COMPLETED)
_PATH_KEYS = (ANSWER_FILE, ANSWER)

TAIL_BLOCK = 64 * 1024
# How far back the end of a run is looked for: far beyond any closing block, and still a bounded read.
TAIL_LIMIT = 8 * 1024 * 1024
STDERR_TAIL_BYTES = 16 * 1024
STDERR_TAIL_LINES = 200
# An error line is shown in every status: keep it readable whatever a runner printed.
ERROR_CHARS = 500
_START = b"\n" + PROGRESS_LINE.encode()
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def line(key: str, value: object) -> str:
    """One line of the contract.

    >>> line(WINNER, "agent_a")
    'WINNER: agent_a'
    """
    return f"{key}: {value}"


def line_bytes(key: str, value: str | os.PathLike[str]) -> bytes:
    """One line of the contract as printed, without its newline: a path's value as its exact bytes.

    POSIX paths are bytes, and those that are not UTF-8 must come back as they were: a path
    (`os.PathLike`) is printed with `os.fsencode`, which the readers here undo with `os.fsdecode`.
    Other text is UTF-8 (a lone surrogate, which UTF-8 cannot hold, as its `\\uXXXX` escape).

    >>> line_bytes(LOG_DIR, Path(os.fsdecode(b"/tmp/d\\xe9/log_1")))
    b'LOG_DIR: /tmp/d\\xe9/log_1'
    """
    data = os.fsencode(value) if isinstance(value, os.PathLike) else value.encode("utf-8", "backslashreplace")
    return f"{key}: ".encode() + data


class Printed(NamedTuple):
    """What a job printed of the contract; None for what it did not print.

    `answer_file` is absolute; `error` is the run's own one-line reason for failing.
    """

    log_dir: str | None = None
    status_file: str | None = None
    answer_file: str | None = None
    error: str | None = None


def printed(stdout_path: str | os.PathLike[str], *, ended: bool, cwd: str | os.PathLike[str],
            stderr_path: str | os.PathLike[str] | None = None, coordination: bool = False,
            record: str | None = None, start: int = 0) -> Printed:
    """The LOG_DIR and STATUS a job announced and, once it has `ended`, its answer file or error.

    The announcements are looked for from byte `start` of stdout (where the job's last attempt began).
    The end of the output is read only for a job that announced a log directory or that is
    known to be a `coordination` run. A relative answer file is taken from the run's `cwd`. With
    `record`, an ended job's findings are taken from that file when it exists (written once by
    `record_printed`); this function itself writes nothing.

    >>> printed(Path("stdout.log"), ended=True, cwd="/runs").answer_file
    '/runs/.massgen/massgen_logs/log_20250101_120000_000000/turn_1/final/agent_a/answer.txt'
    """
    if ended and record is not None:
        try:
            return Printed(**lay.read_json(record))
        except (OSError, ValueError, TypeError):
            pass
    log_dir, status_file = announced_paths(stdout_path, ended=ended, start=start)
    if not ended:
        return Printed(log_dir, status_file)
    answer_file = error = None
    if log_dir or status_file or coordination:
        closing = parse_closing(closing_lines(stdout_path))
        answer = closing.get(ANSWER) or closing.get(ANSWER_FILE)
        answer_file = os.path.normpath(os.path.join(cwd, answer)) if answer else None
        error = closing.get(ERROR)
        if error is None and answer_file is None and stderr_path is not None:
            stderr_tail = read_window(stderr_path, tail_lines=STDERR_TAIL_LINES, max_bytes=STDERR_TAIL_BYTES)
            error = parse_closing(stderr_tail.text.splitlines()).get(ERROR)
    return Printed(log_dir, status_file, answer_file, error)


def record_printed(record: str, stdout_path: str | os.PathLike[str], *, cwd: str | os.PathLike[str],
                   stderr_path: str | os.PathLike[str], start: int = 0) -> None:
    """Write what an ended coordination run printed to `record`, for `printed` to read back.

    Called by the run's monitor once the job and all it started have ended, before the end is
    recorded, so that reading the shells of a home never writes. Nothing is written when the disk
    refuses: readers then read the output itself.
    """
    found = printed(stdout_path, ended=True, cwd=cwd, stderr_path=stderr_path, coordination=True, start=start)
    try:
        lay.write_json(record, found._asdict(), durable=False)
    except OSError:
        pass


def closing_lines(stdout_path: str | os.PathLike[str], *, limit: int = TAIL_LIMIT) -> list[str]:
    """The lines after the last progress line (the end of a run), read backwards from the end of the log.

    Without a progress line within `limit` bytes of the end, the last `limit` bytes (whole lines).
    """
    opened = open_log(stdout_path)
    if opened is None:
        return []
    try:
        with opened as f:
            size = os.fstat(f.fileno()).st_size
            data = b""
            pos = size
            start = -1
            while pos > 0 and size - pos < limit:
                step = min(TAIL_BLOCK, pos, limit - (size - pos))
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
                # Only the new block (and a marker cut at its end) needs searching.
                start = data.rfind(_START, 0, step + len(_START))
                if start >= 0 or (pos == 0 and data.startswith(_START[1:])):
                    break
    except OSError:
        return []
    if start >= 0 or data.startswith(_START[1:]):
        # What follows the progress line (the rest of that line is nothing).
        end_of_line = data.find(b"\n", max(start, 0) + len(_START) - 1)
        data = b"" if end_of_line < 0 else data[end_of_line + 1:]
    elif pos > 0:
        data = data[data.find(b"\n") + 1:]  # the first line was cut
    # Undoes `line_bytes`: an answer file's path keeps its exact bytes (see `parse_closing` for the rest).
    return os.fsdecode(data).splitlines()


def parse_closing(lines: list[str]) -> dict[str, str]:
    """The closing lines by key, the last of each kind; what follows a `❌` counts as `ERROR`.

    MassGen marks its errors with `❌`, at the start of a line on stdout, after a log prefix on stderr.
    The paths (`ANSWER_FILE`, `ANSWER`) keep bytes that are not UTF-8 as `os.fsdecode` gives them;
    in other values, which are only shown, such bytes become U+FFFD.

    >>> parse_closing(["WINNER: agent_a", "DURATION: 1.5s", "❌ Timeout error: no answer in 60 s"])
    {'WINNER': 'agent_a', 'DURATION': '1.5s', 'ERROR': 'Timeout error: no answer in 60 s'}
    """
    found: dict[str, str] = {}
    for raw in lines:
        text = _ANSI.sub("", raw).strip()
        _, mark, reason = text.partition(ERROR_MARK)
        if mark and reason.strip():
            found[ERROR] = _bounded(_shown(reason.strip()))
            continue
        key, sep, value = text.partition(": ")
        if sep and key in CLOSING_KEYS:
            value = value.strip() if key in _PATH_KEYS else _shown(value.strip())
            found[key] = _bounded(value) if key == ERROR else value
    return found


def _shown(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _bounded(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS] + "..."
