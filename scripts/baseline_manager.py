"""The baseline the benchmarks compare mgsup with: an in-process background-shell manager.

It works like the reference implementation that DESIGN §8 describes: each job is a
`subprocess.Popen` of the calling process with piped output, two reader threads per job copy the
output into 10,000-line ring buffers (older lines are silently dropped), the records live only in
this process's memory, and `kill_shell` signals the direct child only, so grandchildren survive.
Those defects are kept on purpose: this is what mgsup is measured against.

>>> manager = BaselineManager(max_concurrent=4)
>>> sid = manager.start_shell("echo hi")
>>> manager.wait_shell(sid)["exit_code"]
0
>>> manager.get_shell_output(sid)["stdout"]
'hi\\n'
>>> manager.close()
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any

RING_LINES = 10_000


@dataclass
class _Shell:
    shell_id: str
    command: str
    process: subprocess.Popen[str]
    start_time: float
    stdout: deque[str] = field(default_factory=lambda: deque(maxlen=RING_LINES))
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=RING_LINES))
    readers: list[threading.Thread] = field(default_factory=list)
    killed: bool = False


class BaselineManager:
    """Background shells held in memory by the calling process (the reference design)."""

    def __init__(self, max_concurrent: int = 10) -> None:
        self.max_concurrent = max_concurrent
        self._shells: dict[str, _Shell] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def start_shell(self, command: str, cwd: str | None = None) -> str:
        """Run `command` under `/bin/sh -c` with piped output; RuntimeError at the limit."""
        with self._lock:
            running = sum(1 for s in self._shells.values() if s.process.poll() is None)
            if running >= self.max_concurrent:
                raise RuntimeError(f"Maximum concurrent shells ({self.max_concurrent}) reached")
            shell_id = f"shell_{next(self._ids):08x}"
            process = subprocess.Popen(command, shell=True, cwd=cwd, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       errors="replace", bufsize=1)
            shell = _Shell(shell_id, command, process, time.time())
            assert process.stdout is not None and process.stderr is not None
            for stream, ring in ((process.stdout, shell.stdout), (process.stderr, shell.stderr)):
                reader = threading.Thread(target=_pump, args=(stream, ring), daemon=True)
                reader.start()
                shell.readers.append(reader)
            self._shells[shell_id] = shell
        return shell_id

    def get_shell_status(self, shell_id: str) -> dict[str, Any]:
        shell = self._shells[shell_id]
        code = shell.process.poll()
        if code is None:
            status = "running"
        elif shell.killed:
            status = "killed"
        else:
            status = "stopped" if code == 0 else "failed"
        return {"shell_id": shell_id, "status": status, "exit_code": code, "pid": shell.process.pid,
                "command": shell.command, "start_time": shell.start_time}

    def list_shells(self) -> list[dict[str, Any]]:
        return [self.get_shell_status(shell_id) for shell_id in list(self._shells)]

    def get_shell_output(self, shell_id: str, tail_lines: int | None = None) -> dict[str, Any]:
        """What the ring buffers still hold: everything or the last `tail_lines` lines of each stream."""
        shell = self._shells[shell_id]

        def text(ring: deque[str]) -> str:
            lines = list(ring)
            return "".join(lines if tail_lines is None else lines[len(lines) - tail_lines:])

        return {"shell_id": shell_id, "stdout": text(shell.stdout), "stderr": text(shell.stderr),
                **self.get_shell_status(shell_id)}

    def ring_usage(self, shell_id: str) -> tuple[int, int]:
        """(lines, bytes) the ring buffers of `shell_id` hold in this process's memory."""
        shell = self._shells[shell_id]
        # list() copies a deque atomically; iterating it while a reader appends would fail.
        rings = [(ring, list(ring)) for ring in (shell.stdout, shell.stderr)]
        lines = sum(len(copy) for _, copy in rings)
        return lines, sum(sys.getsizeof(ring) + sum(sys.getsizeof(line) for line in copy) for ring, copy in rings)

    def kill_shell(self, shell_id: str, grace: float = 5.0) -> dict[str, Any]:
        """SIGTERM to the direct child, then SIGKILL after `grace`; descendants are not reached."""
        with self._lock:
            shell = self._shells[shell_id]
            shell.killed = True
            shell.process.send_signal(signal.SIGTERM)
            try:
                shell.process.wait(grace)
            except subprocess.TimeoutExpired:
                shell.process.kill()
                shell.process.wait()
        return {"shell_id": shell_id, "status": "killed", "signal": "SIGTERM"}

    def wait_shell(self, shell_id: str, timeout: float | None = None) -> dict[str, Any]:
        shell = self._shells[shell_id]
        shell.process.wait(timeout)
        for reader in shell.readers:
            reader.join(timeout)
        return self.get_shell_status(shell_id)

    def close(self) -> None:
        """Kill what still runs (direct children only, like `kill_shell`) and wait for the readers."""
        for shell_id, shell in list(self._shells.items()):
            if shell.process.poll() is None:
                self.kill_shell(shell_id)
            for reader in shell.readers:
                reader.join(5.0)
            if not any(reader.is_alive() for reader in shell.readers):
                for stream in (shell.process.stdout, shell.process.stderr):
                    if stream is not None:
                        stream.close()


def _pump(stream: IO[str], ring: deque[str]) -> None:
    # A grandchild that survives a kill keeps the pipe open, so this thread can outlive the job.
    for line in stream:
        ring.append(line)
