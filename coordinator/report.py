"""Printing the automation-mode stdout contract (DESIGN §6): only these lines, each flushed when known.

The line keys are the contract's (`supervisor.automation.printed`), which the supervisor reads back.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TextIO

from supervisor.automation.printed import (
    ANSWER_FILE,
    ANSWER_PREVIEW,
    COMPLETED,
    DURATION,
    ERROR,
    LOG_DIR,
    PROGRESS_LINE,
    QUESTION,
    STATUS,
    WINNER,
    line,
    line_bytes,
)

from .limits import clip
from .status import preview


def one_line(text: str) -> str:
    return " ".join(text.split())


class Reporter:
    """Prints the contract lines to ``stream`` (stdout by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout

    def _print(self, line: str | bytes = "") -> None:
        """Print one line: text as UTF-8, bytes (a line holding a path, see ``line_bytes``) as they are."""
        try:
            # The bytes go under the text layer: whatever it holds goes out first, keeping the order.
            self._stream.flush()
            out = self._stream.buffer
            out.write((line if isinstance(line, bytes) else line.encode("utf-8", "backslashreplace")) + b"\n")
            out.flush()
        except OSError:
            # The reader is gone (a closed terminal after SIGHUP, a dead pipe): the run still
            # finishes its files. Later writes, and the interpreter's flush at exit, go nowhere.
            self._silence()

    def _silence(self) -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def started(self, log_dir: Path, status_path: Path, question: str) -> None:
        self._print(line_bytes(LOG_DIR, log_dir))
        self._print(line_bytes(STATUS, status_path))
        self._print(line(QUESTION, one_line(question)))
        self._print(PROGRESS_LINE)

    def winner(self, agent_id: str, answer_file: Path, duration: float, answer: str) -> None:
        self._print()
        self._print(line(WINNER, agent_id))
        self._print(line_bytes(ANSWER_FILE, answer_file))
        self._print(line(DURATION, f"{duration:.1f}s"))
        self._print(line(ANSWER_PREVIEW, preview(answer)))

    def error(self, reason: str) -> None:
        self._print()
        self._print(line(ERROR, clip(one_line(reason))))

    def completed(self, agent_count: int, total_seconds: float) -> None:
        self._print()
        self._print(line(COMPLETED, f"{agent_count} agents, {total_seconds:.1f}s total"))

    def answer(self, text: str) -> None:
        """The whole final answer, after the summary (without ``--automation``)."""
        self._print()
        self._print(text.rstrip("\n"))
