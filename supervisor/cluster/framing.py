"""The records the node-side runner writes into a job's Ray log, and how the submitting side reads them back.

Ray keeps one log per job: Ray's own lines first ("Runtime env is setting up.", "Running entrypoint
for job ..."), then whatever the entrypoint writes, stdout and stderr merged. The runner writes the
job's output there as it comes and, between two pieces of it, records the submitting side needs:
`begin` (the job is about to start: everything before it is Ray's), `status` (a coordination run's
status.json), `answer` (its final answer) and `end` (the final state, written last).

A record is `\\x1emgsup:<kind> <json>\\x1e\\n`. JSON escapes control characters, so a record never
holds a second \\x1e, and the text around records is the job's output, byte for byte (as UTF-8).
Stdlib only: the runner imports this module on the node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

OPEN = "\x1emgsup:"
CLOSE = "\x1e\n"
BEGIN = "begin"
STATUS = "status"
ANSWER = "answer"
END = "end"


def record(kind: str, data: Any) -> str:
    """The text of one record.

    >>> record("end", {"status": "stopped"})
    '\\x1emgsup:end {"status":"stopped"}\\x1e\\n'
    """
    return f"{OPEN}{kind} {json.dumps(data, separators=(',', ':'))}{CLOSE}"


@dataclass
class Cursor:
    """How far a reader has read a job's log: characters consumed, and whether `begin` and `end` were seen."""

    consumed: int = 0
    begun: bool = False
    ended: bool = False


@dataclass
class Piece:
    """What a log holds past a cursor: the job's output, the records in order, and the cursor after them."""

    output: str = ""
    records: list[tuple[str, Any]] = field(default_factory=list)
    cursor: Cursor = field(default_factory=Cursor)


def read(log: str, cursor: Cursor) -> Piece:
    """The output and records of `log` (a job's whole Ray log) past `cursor`.

    A record still being written, or the first characters of one, stay for the next read. Text
    before `begin` is Ray's and text after `end` is not the job's: both are skipped.

    >>> read("Ray says hi\\n" + record("begin", {}) + "hello\\n", Cursor()).output
    'hello\\n'
    """
    piece = Piece(cursor=Cursor(cursor.consumed, cursor.begun, cursor.ended))
    at = cursor.consumed
    out: list[str] = []
    while not piece.cursor.ended:
        start = log.find(OPEN, at)
        if start < 0:
            if piece.cursor.begun:
                keep = _partial_open(log)
                out.append(log[at:len(log) - keep])
                at = len(log) - keep
            break
        close = log.find(CLOSE, start + len(OPEN))
        if close < 0:
            if piece.cursor.begun:
                out.append(log[at:start])
                at = start
            break
        kind, _, payload = log[start + len(OPEN):close].partition(" ")
        if piece.cursor.begun:
            out.append(log[at:start])
        try:
            data = json.loads(payload)
        except ValueError:
            data = None  # damaged: dropped, like Ray's own lines
        if kind == BEGIN:
            piece.cursor.begun = True
        elif piece.cursor.begun:
            piece.records.append((kind, data))
            piece.cursor.ended = kind == END
        at = close + len(CLOSE)
    # Before `begin`, nothing is consumed: the whole banner is read again until the job has begun.
    piece.cursor.consumed = at if piece.cursor.begun else 0
    piece.output = "".join(out)
    return piece


def _partial_open(log: str) -> int:
    """How many characters at the end of `log` could be the start of a record being written."""
    for size in range(min(len(OPEN) - 1, len(log)), 0, -1):
        if log.endswith(OPEN[:size]):
            return size
    return 0
