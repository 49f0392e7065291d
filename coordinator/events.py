"""coordination_events.json: the ordered record of everything that happened in a run.

The file is one JSON document, ``{"session_metadata": {...}, "events": [...]}`` (DESIGN §6), laid
out with the metadata on the first line and one event per line::

    {"session_metadata": {"session_id": "log_...", ...}, "events": [
    {"timestamp": 1730678800.1, "event_type": "turn_started", "agent_id": "a", "details": {...}, "context": {...}},
    {"timestamp": 1730678801.2, "event_type": "new_answer", "agent_id": "a", "details": {...}, "context": {...}}
    ]}

An event is appended in place: one write replaces the closing ``]}`` with ``,`` + the event + a new
closing ``]}``. Recording costs the size of the event, not of the run so far, and after each write
the file is a complete document again. A reader that catches a write half done, or the file of a
run that died in the middle of one, still gets every complete event with :func:`read_events`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.automation.schema import escape_surrogates
from supervisor.layout import atomic_write_text

_CLOSE = b"\n]}\n"


class EventLog:
    """Appends events to a run's coordination_events.json; :meth:`close` when the run ends."""

    def __init__(self, path: Path, session_metadata: dict[str, Any], clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        head = _encode({"session_metadata": session_metadata, "events": []})[: -len(b"]}")]
        atomic_write_text(path, head.decode() + _CLOSE.decode(), durable=False)
        self._end = len(head)  # where the closing bytes start
        self._count = 0
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CLOEXEC)

    def record(
        self,
        event_type: str,
        agent_id: str | None = None,
        details: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        """Append one event (ignored after :meth:`close`)."""
        if self._fd is None:
            return
        event = {
            "timestamp": self._clock(),
            "event_type": event_type,
            "agent_id": agent_id,
            "details": details or {},
            "context": context or {},
        }
        line = (b",\n" if self._count else b"\n") + _encode(event)
        data = memoryview(line + _CLOSE)
        offset = self._end
        while data:
            written = os.pwrite(self._fd, data, offset)
            data, offset = data[written:], offset + written
        self._end += len(line)
        self._count += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _encode(value: Any) -> bytes:
    # Paths keep their bytes that are not UTF-8, as status.json does.
    return escape_surrogates(json.dumps(value, ensure_ascii=False, default=str)).encode()


def read_events(path: Path) -> dict[str, Any]:
    """The document of a coordination_events.json: every complete event, even mid-write.

    Files written whole (mgcoord 0.1 wrote them indented) load as they are.
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        document: dict[str, Any] = json.loads(text)
        return document
    except ValueError:
        pass
    head, _, rest = text.partition("\n")
    document = json.loads(head + "]}")
    for line in rest.splitlines():
        try:
            event = json.loads(line.removesuffix(","))
        except ValueError:
            break  # the closing line, or an event cut short
        if not isinstance(event, dict):
            break
        document["events"].append(event)
    return document
