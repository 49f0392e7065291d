"""The machine as admission and the kill protocol see it: clocks, waiting, processes, monitors.

`Host()` is the real one, over `proc` and `time`. Admission, settling and the kill waits receive
it from their caller (a `Supervisor` passes its own down), so their decisions can be tested
against a scripted host: which processes are alive, what a stop did, how much time passed.
Stdlib only: monitors use it when they hand their slot on.
"""

from __future__ import annotations

import os
import time

from . import launch, proc

# Annotations only, as everywhere the monitor imports.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Host:
    """The real machine. `clock` is the wall clock that records are stamped with."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def now(self) -> float:
        """Wall-clock time for records (start, end, slot markers)."""
        return self.clock()

    def clock_ns(self) -> int:
        """Nanoseconds of the real clock: queue entries sort by it."""
        return time.time_ns()

    def monotonic(self) -> float:
        """A clock for deadlines, never stepped."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def me(self) -> tuple[int, int | None]:
        """This process: its pid and start time, for the slot markers it writes."""
        pid = os.getpid()
        return pid, proc.start_ticks(pid)

    def is_alive(self, pid: object, ticks: object) -> bool:
        return proc.is_alive(pid, ticks)

    def monitors_of(self, shell_dir: str) -> set[int]:
        """Processes started as the monitor of the shell in `shell_dir`, recorded or still coming up."""
        return proc.monitors_of(shell_dir)

    def signal(self, pid: object, ticks: object, sig: int) -> None:
        """Send `sig` to `pid` if it is still the process that started at `ticks`."""
        if proc.is_alive(pid, ticks):
            proc.send([pid], sig)  # type: ignore[list-item]

    def stop_job(self, shell_id: str, state: dict[str, Any], sig: int, grace: float) -> None:
        """Stop what is left of a job without its monitor: the stop protocol over `proc.job_processes`."""
        pid, start = state.get("pid"), state.get("pid_start")
        proc.stop(lambda: proc.job_processes(shell_id, pid, start), sig, grace, self.sleep)

    def stop_monitors(self, shell_dir: str, sig: int, grace: float) -> None:
        """Stop every process that claims to be the monitor of the shell in `shell_dir` (see `proc.monitors_of`)."""
        proc.stop(lambda: proc.monitors_of(shell_dir), sig, grace, self.sleep)

    def stop_process(self, pid: object, ticks: object, sig: int, grace: float) -> None:
        """The stop protocol for one process known by pid and start time."""
        proc.stop(lambda: {pid} if proc.is_alive(pid, ticks) else set(), sig, grace,  # type: ignore[arg-type]
                  self.sleep)

    def spawn_monitor(self, home: str, shell_id: str, env: dict[str, str] | None, log: str) -> int:
        """Start the monitor of `shell_id` (through the home's launcher when it answers); see `launch.spawn_monitor`."""
        return launch.spawn_monitor(home, shell_id, env, log)


REAL = Host()
