"""The one small interface every agent backend implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..protocol.messages import Action, CoordinateRequest, PresentRequest

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
    """Add a reported ``{"prompt_tokens", "completion_tokens"[, "total_tokens"]}`` object; ignore others."""
    if not isinstance(reported, dict):
        return current
    prompt, completion = reported.get("prompt_tokens"), reported.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return current
    total = reported.get("total_tokens")
    usage = current if current is not None else Usage()
    usage.add(prompt, completion, total if isinstance(total, int) else None)
    return usage


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
