"""What the supervisor knows of a coordination run: where it logs and how far it has come.

A job that follows the automation output contract prints `LOG_DIR: <path>` and
`STATUS: <path>/status.json` first; those lines are found in the head of its stdout log. The
`coordination` summary is read from that status.json. Reading never raises: the file may be
missing, half-written by a writer that does not replace it atomically, or replaced while read.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

HEAD_BYTES = 64 * 1024
DEFAULT_STALL_SECONDS = 60.0
READ_ATTEMPTS = 3
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def announced_paths(stdout_path: Path) -> tuple[str | None, str | None]:
    """The LOG_DIR and STATUS paths the job printed at the start of its stdout, if any."""
    try:
        with open(stdout_path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except FileNotFoundError:
        return None, None
    log_dir = status_file = None
    for raw in head.splitlines():
        line = raw.decode("utf-8", errors="replace")
        if line.startswith("LOG_DIR: ") and log_dir is None:
            log_dir = line[len("LOG_DIR: "):].strip()
        elif line.startswith("STATUS: ") and status_file is None:
            status_file = line[len("STATUS: "):].strip()
        if log_dir and status_file:
            break
    if log_dir and not status_file:
        status_file = str(Path(log_dir) / "status.json")
    return log_dir, status_file


def summarize(status_file: str | None, *, running: bool, stall_seconds: float = DEFAULT_STALL_SECONDS,
              now: float | None = None) -> dict[str, Any] | None:
    """The `coordination` summary of a run's status.json, or None when there is nothing to read yet.

    `stalled` is true when the job is `running` and the file has not changed for longer than
    `stall_seconds`. `usage` holds the run's token totals when the agents report them.

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
