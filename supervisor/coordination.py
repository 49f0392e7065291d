"""What the supervisor knows of a coordination run: where it logs and how far it has come.

A job that follows the automation output contract prints `LOG_DIR: <path>` and
`STATUS: <path>/status.json` first; those lines are found in the head of its stdout log. The
`coordination` summary is read from that status.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

HEAD_BYTES = 64 * 1024
DEFAULT_STALL_SECONDS = 60.0


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
    """The `coordination` summary of a run's status.json, or None when there is none to read yet."""
    if not status_file:
        return None
    path = Path(status_file)
    try:
        data = json.loads(path.read_bytes())
        mtime = path.stat().st_mtime
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    coordination = data.get("coordination") or {}
    results = data.get("results") or {}
    agents = data.get("agents") or {}
    meta = data.get("meta") or {}
    last_updated = meta.get("last_updated", mtime)
    now = time.time() if now is None else now
    return {
        "phase": coordination.get("phase"),
        "completion_percentage": coordination.get("completion_percentage"),
        "winner": results.get("winner"),
        "active_agent": coordination.get("active_agent"),
        "agents": {aid: (a or {}).get("status") for aid, a in agents.items()},
        "errors": {aid: a["error"] for aid, a in agents.items() if isinstance(a, dict) and a.get("error")},
        "votes": results.get("votes") or {},
        "final_answer_preview": results.get("final_answer_preview"),
        "last_updated": last_updated,
        "stalled": bool(running and now - max(mtime, float(last_updated or 0)) > stall_seconds),
    }
