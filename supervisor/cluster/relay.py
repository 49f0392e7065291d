"""Copying a job's output into its Ray log, and a coordination run's status.json with it (stdlib only).

The runner's monitor writes the job's stdout and stderr into one FIFO. `Relay` copies it, as it
comes, into the runner's stdout — the job's Ray log — as valid UTF-8: Ray's log reader fails on
anything else, so invalid bytes are replaced (a character split between two reads is kept whole).
For a coordination run it also notes the `STATUS:` line and the answer lines (`ANSWER_FILE:`, and
MassGen's absolute `ANSWER:`) of the output, and relays the run's status.json (MassGen's newest
attempt), as a record (`framing`), whenever it changed. `Log` keeps output and records from ever
interleaving within one write.
"""

from __future__ import annotations

import codecs
import json
import os
import select
import threading
import time
from typing import Any

from supervisor.automation import files, locate
from supervisor.cluster import framing

# How often a coordination run's status.json is checked for changes (at most one record per period).
STATUS_PERIOD = 0.5
READ_BYTES = 64 * 1024
# Only the first lines announce STATUS and the last ones the answer; a line longer than this is not one.
LINE_MAX = 64 * 1024
# The line keys of the automation contract the relay looks for (supervisor.automation.printed, which
# needs more than the stdlib).
STATUS_KEY = "STATUS"
ANSWER_KEYS = ("ANSWER_FILE", "ANSWER")
# The answer lines kept: a run prints one or two; a preview line that looks like one must not push them out.
ANSWER_CANDIDATES = 8


class Log:
    """The job's Ray log (this process's stdout): output and records, never interleaved mid-write."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()
        self.output_open = True

    def output(self, text: str) -> None:
        with self.lock:
            if self.output_open:
                self._write(text)

    def record(self, kind: str, data: Any) -> None:
        with self.lock:
            self._write(framing.record(kind, data))

    def close_output(self) -> None:
        """From now on only records are written (a relay that did not finish draining is cut off)."""
        with self.lock:
            self.output_open = False

    def _write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(self.fd, data):]


class Relay(threading.Thread):
    """Copies the FIFO into the log; for a coordination run, notes STATUS/ANSWER_FILE and relays status.json."""

    def __init__(self, fifo: int, log: Log, *, job_cwd: str, coordination: bool) -> None:
        super().__init__(name="relay", daemon=True)
        self.fifo = fifo
        self.log = log
        self.job_cwd = job_cwd
        self.coordination = coordination
        self.status_file: str | None = None
        self.answer_candidates: list[str] = []
        self._line = ""
        self._sent: bytes | None = None

    def run(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        next_check = time.monotonic()
        while True:
            wait = max(0.0, next_check - time.monotonic()) if self.coordination else None
            if select.select([self.fifo], [], [], wait)[0]:
                chunk = os.read(self.fifo, READ_BYTES)
                if not chunk:
                    break
                self._forward(decoder.decode(chunk))
            if self.coordination and time.monotonic() >= next_check:
                self.relay_status()
                next_check = time.monotonic() + STATUS_PERIOD
        self._forward(decoder.decode(b"", final=True))

    def _forward(self, text: str) -> None:
        if not text:
            return
        self.log.output(text)
        if self.coordination:
            self._scan(text)

    def _scan(self, text: str) -> None:
        """Note the paths the run announces (automation output contract) as whole lines arrive."""
        *complete, rest = (self._line + text).split("\n")
        self._line = rest[-LINE_MAX:]
        for line in complete:
            key, sep, value = line.partition(": ")
            if sep and key == STATUS_KEY and self.status_file is None:
                self.status_file = self._path(value)
            elif sep and key in ANSWER_KEYS and value.strip():
                self.answer_candidates = [*self.answer_candidates[1 - ANSWER_CANDIDATES:], self._path(value)]

    def _path(self, value: str) -> str:
        # MassGen prints its ANSWER_FILE relative to the run's cwd.
        return os.path.join(self.job_cwd, value.strip())

    @property
    def answer_file(self) -> str | None:
        """The run's final answer: the last answer line that names a file (a preview may look like one)."""
        return next((path for path in reversed(self.answer_candidates) if os.path.isfile(path)), None)

    def relay_status(self) -> None:
        """Send the run's status.json (its newest attempt) when it changed since the last one sent."""
        if self.status_file is None:
            return
        content = files.read_regular(locate.current_status_file(self.status_file), files.MAX_STATUS_BYTES)
        if content is None or content[0] == self._sent:
            return  # not written yet, not a file, or unchanged
        try:
            data = json.loads(content[0])
        except (ValueError, RecursionError):
            return  # caught half-written by a writer that does not replace it
        self._sent = content[0]
        self.log.record(framing.STATUS, data)
