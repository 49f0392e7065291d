"""coordination_events.json: the ordered record of everything that happened in a run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.layout import atomic_write_text


class EventLog:
    """Appends events and rewrites the file atomically, so a reader always sees valid JSON."""

    def __init__(self, path: Path, session_metadata: dict[str, Any], clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._session = session_metadata
        self._events: list[dict[str, Any]] = []
        self._clock = clock
        self._flush()

    def record(
        self,
        event_type: str,
        agent_id: str | None = None,
        details: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        self._events.append(
            {
                "timestamp": self._clock(),
                "event_type": event_type,
                "agent_id": agent_id,
                "details": details or {},
                "context": context or {},
            }
        )
        self._flush()

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(self._events)

    def _flush(self) -> None:
        document = {"session_metadata": self._session, "events": self._events}
        atomic_write_text(self.path, json.dumps(document, indent=2, ensure_ascii=False, default=str), durable=False)
