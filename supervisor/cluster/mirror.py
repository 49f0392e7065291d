"""The local copy of a cluster job, kept in its shell directory and brought up to date from its Ray log.

    <home>/shells/<shell_id>/
        stdout.log            the job's output (stdout and stderr merged, as Ray keeps them), Ray's lines left out
        stderr.log            only for a job that never began: Ray's log, which says why
        cluster.json          how far the Ray log has been read, and what the runner reported
        cluster.lock          flock: one reader at a time brings the copy up to date
        run/status.json       a coordination run's status.json, as last relayed from the node
        run/final/<agent>/answer.txt   its final answer

Ray's log only grows, so each update appends what follows the last one. `stdout.log`'s size is
recorded with the cursor: an update that died half way is undone by the next one.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import layout as lay
from ..automation import printed
from . import framing

CURSOR = "cluster.json"
LOCK = "cluster.lock"
RUN_DIR = "run"


def run_dir(layout: lay.Layout, shell_id: str) -> str:
    """Where a cluster coordination run's status.json and final answer are kept locally."""
    return layout.file(shell_id, RUN_DIR)


class Mirror:
    def __init__(self, layout: lay.Layout, shell_id: str) -> None:
        self.layout = layout
        self.shell_id = shell_id

    @contextmanager
    def locked(self) -> Iterator[None]:
        fd = os.open(self.layout.file(self.shell_id, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def take(self, log: str) -> dict[str, Any] | None:
        """Copy what `log` (the job's whole Ray log) holds past the last update; the `end` record once seen."""
        saved = self._saved()
        cursor = framing.Cursor(saved.get("consumed", 0), saved.get("begun", False), saved.get("ended", False))
        if cursor.ended:
            return dict(saved["end"])
        piece = framing.read(log, cursor)
        if piece.cursor == cursor and not piece.output and not piece.records:
            # Nothing new: no write either (followers watch this folder for changes).
            return None
        size = self._append_output(piece.output, saved.get("stdout_size", 0))
        for kind, data in piece.records:
            if kind == framing.STATUS and isinstance(data, dict):
                self._write(os.path.join(RUN_DIR, "status.json"), json.dumps(data, indent=2))
            elif kind == framing.ANSWER and isinstance(data, dict) and isinstance(data.get("text"), str):
                saved["answer_file"] = self._keep_answer(data)
            elif kind == framing.END and isinstance(data, dict):
                saved["end"] = data
        saved |= {"consumed": piece.cursor.consumed, "begun": piece.cursor.begun, "ended": piece.cursor.ended,
                  "stdout_size": size}
        lay.write_json(self.layout.file(self.shell_id, CURSOR), saved, durable=piece.cursor.ended)
        return saved.get("end")

    def finish(self, log: str, *, coordination_run: bool) -> None:
        """Once the job has ended: keep Ray's log when the job never began, and what a run printed, with local paths."""
        saved = self._saved()
        if not saved.get("begun") and log:
            self._write(lay.STDERR, log)
        if coordination_run:
            self._record_printed(saved.get("answer_file"))

    def _record_printed(self, answer_file: str | None) -> None:
        """The run's LOG_DIR, STATUS and ANSWER_FILE name paths on the node; the status shows the local copies."""
        stdout = self.layout.file(self.shell_id, lay.STDOUT)
        # Ray merges stderr into stdout: an error line is found there; the answer file is the local copy.
        found = printed.printed(stdout, ended=True, cwd=self.layout.shell_dir(self.shell_id), coordination=True)
        status_file = os.path.join(run_dir(self.layout, self.shell_id), "status.json")
        local = found._replace(log_dir=run_dir(self.layout, self.shell_id),
                               status_file=status_file if os.path.exists(status_file) else None,
                               answer_file=answer_file)
        lay.write_json(self.layout.file(self.shell_id, lay.PRINTED), local._asdict())

    def _keep_answer(self, data: dict[str, Any]) -> str:
        # Laid out as in the run's own log directory: final/<winner>/answer.txt.
        agent = Path(str(data.get("path") or "answer")).parent.name or "answer"
        relative = os.path.join(RUN_DIR, "final", agent, "answer.txt")
        self._write(relative, data["text"])
        return self.layout.file(self.shell_id, relative)

    def _append_output(self, text: str, size: int) -> int:
        path = self.layout.file(self.shell_id, lay.STDOUT)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            # Beyond the recorded size is what an update that did not finish wrote: it is written again.
            os.ftruncate(fd, size)
            os.lseek(fd, size, os.SEEK_SET)
            data = memoryview(text.encode("utf-8"))
            while data:
                data = data[os.write(fd, data):]
                size = os.lseek(fd, 0, os.SEEK_CUR)
        finally:
            os.close(fd)
        return size

    def _write(self, relative: str, text: str) -> None:
        path = self.layout.file(self.shell_id, relative)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        lay.atomic_write_text(path, text, mode=0o600, durable=False)

    def _saved(self) -> dict[str, Any]:
        try:
            saved = lay.read_json(self.layout.file(self.shell_id, CURSOR))
        except (OSError, ValueError):
            return {}
        return saved if isinstance(saved, dict) else {}
