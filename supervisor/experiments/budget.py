"""A batch's budget: tokens and USD for all its runs together (`--budget-tokens`, `--budget-usd`).

What the batch has spent is what its rows say, every attempt counted (`Result.spent_tokens` /
`spent_usd`), runs still going with their usage so far; it lives in the results table, so a
resumed batch counts what was spent before. Once it is spent, no run starts and the runs still
going are stopped. Each run also gets what is left as its own budget when it starts, which its
monitor holds it to even if the batch process is gone.

>>> budget = BatchBudget(tokens=100_000)
>>> budget.spent_reason(rows)          # None while there is budget left
>>> budget.left(rows)
{'max_tokens': 88000}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequest
from .results import Result


@dataclass(frozen=True)
class BatchBudget:
    tokens: int | None = None
    usd: float | None = None

    def __post_init__(self) -> None:
        if self.tokens is not None and (isinstance(self.tokens, bool) or not isinstance(self.tokens, int)
                                        or self.tokens < 1):
            raise InvalidRequest(f"the batch's token budget must be a whole number >= 1, got {self.tokens!r}")
        if self.usd is not None and (isinstance(self.usd, bool) or not isinstance(self.usd, int | float)
                                     or not self.usd > 0):
            raise InvalidRequest(f"the batch's USD budget must be a number > 0, got {self.usd!r}")

    def spent_reason(self, rows: Iterable[Result]) -> str | None:
        """Why nothing more may run (`the batch's budget of 10,000 tokens is spent: 12,345 used`), or None."""
        rows = list(rows)
        tokens = sum(r.spent_tokens for r in rows)
        usd = sum(r.spent_usd for r in rows)
        if self.tokens is not None and tokens >= self.tokens:
            return f"the batch's budget of {self.tokens:,} tokens is spent: {tokens:,} used"
        if self.usd is not None and usd >= self.usd:
            return f"the batch's budget of ${self.usd:,.4f} is spent: ${usd:,.4f} used"
        return None

    def left(self, rows: Iterable[Result]) -> dict[str, Any]:
        """What is left, as a run's budget (`max_tokens`, `max_cost_usd`)."""
        rows = list(rows)
        budget: dict[str, Any] = {}
        if self.tokens is not None:
            budget["max_tokens"] = max(1, self.tokens - sum(r.spent_tokens for r in rows))
        if self.usd is not None:
            budget["max_cost_usd"] = max(1e-6, round(self.usd - sum(r.spent_usd for r in rows), 6))
        return budget

    def describe(self) -> str:
        """`10,000 tokens and $2.5000`."""
        parts = ([f"{self.tokens:,} tokens"] if self.tokens is not None else []) + (
            [f"${self.usd:,.4f}"] if self.usd is not None else [])
        return " and ".join(parts)
