"""What the supervisor knows of a coordination run: where it logs, how far it has come, how it ended.

A job that follows the automation output contract prints `LOG_DIR: <path>` and
`STATUS: <path>/status.json` first; those lines are found in the head of its stdout log. When it
ends it prints `ANSWER_FILE: <path>` (or `ERROR: <reason>`) near the end of that log. The
`coordination` summary is read from the run's status.json. Reading never raises: the file may be
missing, half-written by a writer that does not replace it atomically, or replaced while read.

What a shell printed cannot change once it has ended, so the first reader after the end records
it in a small file beside the logs (`run.json`); every later read of the shell costs one small
file instead of a scan of its output.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import layout as lay
from .output import read_window

HEAD_BYTES = 64 * 1024
HEAD_BLOCK = 4 * 1024
# The closing block of the automation output (WINNER ... COMPLETED) is a handful of lines.
TAIL_LINES = 20
TAIL_BYTES = 16 * 1024
DEFAULT_STALL_SECONDS = 60.0
READ_ATTEMPTS = 3
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
_LOG_DIR = re.compile(rb"^LOG_DIR: (.*)$", re.MULTILINE)
_STATUS = re.compile(rb"^STATUS: (.*)$", re.MULTILINE)
# The lines of the automation output contract that summarise a finished run (DESIGN §6).
OUTCOME_KEYS = ("WINNER", "ANSWER_FILE", "DURATION", "ANSWER_PREVIEW", "ERROR", "COMPLETED")


@dataclass(frozen=True)
class Printed:
    """What a job printed of the automation output contract; None for what it did not print."""

    log_dir: str | None = None
    status_file: str | None = None
    answer_file: str | None = None
    error: str | None = None


def printed(stdout_path: str | os.PathLike[str], *, ended: bool, record: str | None = None) -> Printed:
    """The LOG_DIR and STATUS a job announced, and once it has `ended`, its ANSWER_FILE or ERROR.

    With `record`, an ended job's findings (including "nothing") are kept in that file and read
    back from it next time. A home that cannot be written is read afresh each time.

    >>> printed(Path("stdout.log"), ended=True).answer_file
    '/runs/log_20250101_120000_000000/final/agent_a/answer.txt'
    """
    if ended and record is not None:
        try:
            return Printed(**lay.read_json(record))
        except (OSError, ValueError, TypeError):
            pass
    log_dir, status_file = announced_paths(stdout_path, ended=ended)
    if not ended:
        return Printed(log_dir, status_file)
    outcome = parse_outcome(read_window(stdout_path, tail_lines=TAIL_LINES, max_bytes=TAIL_BYTES).text)
    found = Printed(log_dir, status_file, outcome.get("ANSWER_FILE"), outcome.get("ERROR"))
    if record is not None:
        try:
            lay.write_json(record, asdict(found), durable=False)
        except OSError:
            pass
    return found


def announced_paths(stdout_path: str | os.PathLike[str], *, ended: bool = False) -> tuple[str | None, str | None]:
    """The LOG_DIR and STATUS paths the job printed at the start of its stdout, if any.

    Read block by block: a run prints both on its first lines, so usually one small read is enough.
    While the job runs, a last line without its newline may still be growing and is not read.
    """
    try:
        with open(stdout_path, "rb") as f:
            head = f.read(HEAD_BLOCK)
            log_dir, status = _find(head, ended and len(head) < HEAD_BLOCK)
            if not (log_dir and status) and len(head) == HEAD_BLOCK:
                head += f.read(HEAD_BYTES - HEAD_BLOCK)
                log_dir, status = _find(head, ended and len(head) < HEAD_BYTES)
    except FileNotFoundError:
        return None, None
    log_dir_text = _line_value(log_dir)
    status_text = _line_value(status)
    if log_dir_text and not status_text:
        status_text = str(Path(log_dir_text) / "status.json")
    return log_dir_text, status_text


def _find(head: bytes, whole_file: bool) -> tuple[re.Match[bytes] | None, re.Match[bytes] | None]:
    """The first LOG_DIR and STATUS lines in `head`; its last line counts only when it ends the file for good."""
    whole = head if whole_file else head[: head.rfind(b"\n") + 1]
    return _LOG_DIR.search(whole), _STATUS.search(whole)


def _line_value(match: re.Match[bytes] | None) -> str | None:
    if match is None:
        return None
    return match.group(1).decode("utf-8", errors="replace").strip() or None


def parse_outcome(stdout_tail: str) -> dict[str, str]:
    """The `WINNER:` ... `COMPLETED:` lines a coordination run printed at its end, by key.

    >>> parse_outcome("WINNER: agent_a\\nDURATION: 1.5s\\n")
    {'WINNER': 'agent_a', 'DURATION': '1.5s'}
    """
    found: dict[str, str] = {}
    for line in stdout_tail.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in OUTCOME_KEYS:
            found[key] = value.strip()
    return found


def summarize(status_file: str | None, *, running: bool, stall_seconds: float = DEFAULT_STALL_SECONDS,
              now: float | None = None, outcome: Printed | None = None) -> dict[str, Any] | None:
    """The `coordination` summary of a run's status.json, or None when there is nothing to read yet.

    `stalled` is true when the job is `running` and the file has not changed for longer than
    `stall_seconds`. `usage` holds the run's token totals when the agents report them.
    `answer_file` and `error` come from what the ended run printed (`outcome`), else None.

    >>> summarize("/runs/x/status.json", running=True, stall_seconds=30)["phase"]
    'enforcement'
    """
    if not status_file:
        return None
    snapshot = _read(Path(status_file))
    if snapshot is None:
        return None
    data, mtime = snapshot
    coordination = _mapping(data.get("coordination"))
    results = _mapping(data.get("results"))
    agents = {str(k): _mapping(v) for k, v in _mapping(data.get("agents")).items()}
    meta = _mapping(data.get("meta"))
    last_updated = meta.get("last_updated")
    now = time.time() if now is None else now
    return {
        "phase": coordination.get("phase"),
        "completion_percentage": coordination.get("completion_percentage"),
        "winner": results.get("winner"),
        "active_agent": coordination.get("active_agent"),
        "agents": {aid: a.get("status") for aid, a in agents.items()},
        "errors": {aid: a["error"] for aid, a in agents.items() if a.get("error")},
        "votes": _mapping(results.get("votes")),
        "final_answer_preview": results.get("final_answer_preview"),
        "usage": _usage(results, agents),
        "last_updated": last_updated if isinstance(last_updated, int | float) else mtime,
        "stalled": bool(running and now - mtime > stall_seconds),
        "answer_file": outcome.answer_file if outcome else None,
        "error": outcome.error if outcome else None,
    }


def _read(path: Path) -> tuple[dict[str, Any], float] | None:
    """The parsed document and the modification time of that same version of the file."""
    for _ in range(READ_ATTEMPTS):
        try:
            # One descriptor for both: a rename in between cannot pair new content with an old mtime.
            with open(path, "rb") as f:
                mtime = os.fstat(f.fileno()).st_mtime
                raw = f.read()
        except OSError:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            # A writer that truncates and rewrites in place: the next read usually sees it whole.
            continue
        return (data, mtime) if isinstance(data, dict) else None
    return None


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _usage(results: dict[str, Any], agents: dict[str, dict[str, Any]]) -> dict[str, int] | None:
    """The run's token totals: `results.usage`, else the sum over `agents.<id>.usage`, else None."""
    total = _counts(results.get("usage"))
    if total is not None:
        return total
    reported = [c for c in (_counts(a.get("usage")) for a in agents.values()) if c is not None]
    if not reported:
        return None
    return {key: sum(c[key] for c in reported) for key in _USAGE_KEYS}


def _counts(value: object) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    prompt, completion, total = (_count(value.get(key)) for key in _USAGE_KEYS)
    if prompt is None or completion is None:
        return None
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion if total is None else total}


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
