"""What the pages receive: status dicts shaped into table rows, filtered pages and shell details.

Pure functions over the status dicts of `Supervisor.get_shell_status`; nothing here reads the
state directory. Keys that only some versions or backends report (`group`, `backend`, the
coordination summary's `outcome`, token and cost figures) pass through when present.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import lifecycle
from ..errors import InvalidRequest
from ..render import command_text

StatusDict = Mapping[str, Any]
PER_PAGE = 100
MAX_PER_PAGE = 500


@dataclass(frozen=True)
class Query:
    """The filters and page of the shells table."""

    status: str = ""
    group: str = ""
    name: str = ""
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Query:
        """A query from URL parameters; InvalidRequest for a page or page size that is not a whole number."""
        return cls(status=params.get("status", "").strip(), group=params.get("group", "").strip(),
                   name=params.get("name", "").strip(), page=_whole(params, "page", 1, 1, 10**9),
                   per_page=_whole(params, "per_page", PER_PAGE, 1, MAX_PER_PAGE))


def _whole(params: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{key} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise InvalidRequest(f"{key} must be between {low} and {high}, got {value}")
    return value


def epoch(iso_time: str | None) -> float | None:
    return None if not iso_time else datetime.fromisoformat(iso_time).timestamp()


def progress(status: StatusDict) -> dict[str, Any] | None:
    """The coordination run's progress for the table, or None for a plain job."""
    summary = status.get("coordination")
    if not summary:
        return None
    return {"phase": summary.get("phase"), "percent": summary.get("completion_percentage"),
            "stalled": bool(summary.get("stalled")), "winner": summary.get("winner"),
            "outcome": summary.get("outcome")}


def row(status: StatusDict) -> dict[str, Any]:
    """One row of the shells table."""
    return {
        "id": status["shell_id"], "name": status.get("name"), "group": status.get("group"),
        "status": status["status"], "exit_code": status.get("exit_code"), "signal": status.get("signal"),
        "timed_out": bool(status.get("timed_out")), "created": epoch(status.get("created_at")),
        "start": epoch(status.get("start_time")), "end": epoch(status.get("end_time")),
        "duration": status.get("duration_seconds"), "command": command_text(status["command"], program_name=True),
        "backend": status.get("backend"), "progress": progress(status), "message": status.get("message"),
    }


def _matches_name(status: StatusDict, needle: str) -> bool:
    if not needle:
        return True
    needle = needle.lower()
    return needle in status["shell_id"] or needle in (status.get("name") or "").lower()


def table(shells: Iterable[StatusDict], query: Query, now: float) -> dict[str, Any]:
    """The page of the shells table that `query` asks for, newest first, with counts for the filters."""
    everything = list(shells)
    groups = sorted({s["group"] for s in everything if s.get("group")})
    narrowed = [s for s in everything
                if (not query.group or s.get("group") == query.group) and _matches_name(s, query.name)]
    counts = Counter(s["status"] for s in narrowed)
    chosen = [s for s in narrowed if not query.status or s["status"] == query.status]
    chosen.sort(key=lambda s: (epoch(s.get("created_at")) or 0.0, s["shell_id"]), reverse=True)
    pages = max(1, math.ceil(len(chosen) / query.per_page))
    page = min(query.page, pages)
    first = (page - 1) * query.per_page
    return {
        "rows": [row(s) for s in chosen[first:first + query.per_page]],
        "total": len(everything), "matched": len(chosen), "page": page, "pages": pages,
        "per_page": query.per_page, "first": first + 1 if chosen else 0,
        "counts": {name: counts.get(name, 0) for name in (*lifecycle.STATUSES, *sorted(set(counts)
                                                                                     - set(lifecycle.STATUSES)))},
        "groups": groups, "now": now,
        "query": {"status": query.status, "group": query.group, "name": query.name},
    }


def details(status: StatusDict, timeline: list[dict[str, Any]], answer: str | None, now: float) -> dict[str, Any]:
    """Everything the shell page shows about one shell besides its output."""
    return {"status": dict(status), "row": row(status), "timeline": timeline, "answer": answer, "now": now,
            "command_line": command_text(status["command"])}
