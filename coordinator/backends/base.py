"""The one small interface every agent backend implements."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..limits import MAX_QUOTE_CHARS, quote
from ..protocol.messages import Action, CoordinateRequest, PresentRequest

log = logging.getLogger(__name__)

MAX_REPORTED_TOKENS = 10**9
"""The largest token count one reply may report; larger counts are nonsense and are ignored."""

Transcript = Callable[[str], None]
"""Receives, in order, everything an agent produces (written to ``agent_outputs/<id>.txt``)."""


@dataclass
class Usage:
    """Token usage as reported by a backend, summed over the run."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def add(self, prompt_tokens: int, completion_tokens: int, total_tokens: int | None = None) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.total_tokens += total_tokens if total_tokens is not None else prompt_tokens + completion_tokens


def add_reported_usage(current: Usage | None, reported: object) -> Usage | None:
    """Add a reported ``{"prompt_tokens", "completion_tokens"[, "total_tokens"]}`` object.

    Counts must be integers from 0 to :data:`MAX_REPORTED_TOKENS`; a report with a negative,
    fractional, boolean or absurd count is ignored and logged. A bad or missing ``total_tokens``
    (or one below the sum of the other two) is replaced by that sum.
    """
    if reported is None:
        return current
    prompt, completion = _count(reported, "prompt_tokens"), _count(reported, "completion_tokens")
    if prompt is None or completion is None:
        log.warning("ignored a usage report with invalid token counts: %s", quote(reported, MAX_QUOTE_CHARS * 2))
        return current
    total = _count(reported, "total_tokens")
    if total is None or total < prompt + completion:
        total = prompt + completion
    usage = current if current is not None else Usage()
    usage.add(prompt, completion, total)
    return usage


def _count(reported: object, key: str) -> int | None:
    value = reported.get(key) if isinstance(reported, dict) else None
    # `type() is int` also refuses True and False, which Python counts as 1 and 0.
    return value if type(value) is int and 0 <= value <= MAX_REPORTED_TOKENS else None


class Backend(Protocol):
    """An agent. Calls may be cancelled at any time; a backend must then release what it started.

    Failures of a turn are raised as :class:`coordinator.errors.AgentError`.
    """

    @property
    def usage(self) -> Usage | None:
        """Tokens used so far, or ``None`` when the backend never reported any."""
        ...

    async def coordinate(self, request: CoordinateRequest) -> Action:
        """Play one coordination turn: return a new answer or a vote."""
        ...

    async def present(self, request: PresentRequest) -> str:
        """Write the final answer (only the winner is asked)."""
        ...

    async def aclose(self) -> None:
        """Release connections and processes; called once at the end of the run."""
        ...
