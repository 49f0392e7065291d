"""Budgets of coordination runs: what a budget may hold, and the watch the monitor keeps while the job runs.

A budget is `{"max_tokens": N, "max_cost_usd": X, "max_duration_seconds": S}` (any of them). The
monitor, which outlives every caller, asks `Watch.passed` whenever `Watch.due` says so: the
duration is checked against the clock, tokens and cost against the run's status.json (found
where the run announced it on stdout; MassGen's newest attempt), at most every LOOK_SECONDS. The
first figure past its limit is returned, e.g. `{"limit": "max_tokens", "budget": 1000, "used":
1534}`; the monitor then interrupts the run (SIGINT, so the runner records its end), waits up to
INTERRUPT_GRACE seconds, and stops what is left the usual way.

Stdlib only, and imported by the monitor only for a run that has a budget.
"""

from __future__ import annotations

import math
import os

from .automation import locate, usage
from .lifecycle import MAX_SECONDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KEYS = ("max_tokens", "max_cost_usd", "max_duration_seconds")
# How often a running job's status.json is read for its tokens and cost.
LOOK_SECONDS = 1.0
# How long a run interrupted for its budget gets to record its end before it is stopped.
INTERRUPT_GRACE = 10.0


def problem(budget: object) -> str | None:
    """What is wrong with `budget` as a spec holds it, or None when it is usable."""
    if not isinstance(budget, dict) or not budget:
        return "a budget must be a mapping with max_tokens, max_cost_usd or max_duration_seconds"
    for key, value in budget.items():
        if key not in KEYS:
            return f"unknown budget key {key!r}: use {', '.join(KEYS)}"
        if key == "max_tokens":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                return f"max_tokens must be a whole number >= 1, got {value!r}"
        elif (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
              or not 0 < value <= MAX_SECONDS):
            return f"{key} must be a number > 0, got {value!r}"
    return None


class Watch:
    """The budget of one running job; `started` and every `now` are on the monotonic clock."""

    def __init__(self, budget: dict[str, Any], prices: dict[str, list[float]] | None, *, stdout_path: str,
                 cwd: str, status_file: str | None, started: float) -> None:
        self.budget = budget
        self.prices = prices or {}
        self.stdout_path = stdout_path
        self.cwd = cwd
        self.status_file = status_file
        self.started = started
        self.reads_usage = "max_tokens" in budget or "max_cost_usd" in budget
        self.next_look = started
        self.interrupt_grace = INTERRUPT_GRACE

    def due(self, now: float) -> float:
        """Seconds until something may have passed: the next look at usage, or the end of the duration."""
        waits = []
        if self.reads_usage:
            waits.append(self.next_look - now)
        if "max_duration_seconds" in self.budget:
            waits.append(self.started + self.budget["max_duration_seconds"] - now)
        return max(0.0, min(waits))

    def passed(self, now: float) -> dict[str, Any] | None:
        """The first figure past its limit, or None."""
        limit = self.budget.get("max_duration_seconds")
        elapsed = now - self.started
        if limit is not None and elapsed > limit:
            return {"limit": "max_duration_seconds", "budget": limit, "used": round(elapsed, 3)}
        if not self.reads_usage or now < self.next_look:
            return None
        self.next_look = now + LOOK_SECONDS
        data = self._status()
        if data is None:
            return None
        spent = usage.tokens(data)
        limit = self.budget.get("max_tokens")
        if limit is not None and spent is not None and spent["total_tokens"] > limit:
            return {"limit": "max_tokens", "budget": limit, "used": spent["total_tokens"]}
        limit = self.budget.get("max_cost_usd")
        if limit is not None:
            cost, source = usage.cost(data, self.prices)
            if cost is not None and cost > limit:
                return {"limit": "max_cost_usd", "budget": limit, "used": round(cost, 6), "source": source}
        return None

    def _status(self) -> dict[str, Any] | None:
        if self.status_file is None:
            _, announced = locate.announced_paths(self.stdout_path)
            if announced is None:
                return None
            self.status_file = os.path.join(self.cwd, announced)
        snapshot = usage.read_status(locate.current_status_file(self.status_file))
        return snapshot[0] if snapshot is not None else None
