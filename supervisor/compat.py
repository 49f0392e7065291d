"""A drop-in for MassGen's `BackgroundShellManager`, built on mgsup.

Code written for `massgen.filesystem_manager.background_shell` runs unchanged with only its import
changed: the same class, methods, arguments and result keys, the same module functions, one manager
per process, and the attributes MassGen's own tests set (`_shells`, `_max_concurrent`,
`_max_output_lines`).

>>> from supervisor import BackgroundShellManager
>>> manager = BackgroundShellManager()            # the same object on every call, as MassGen's
>>> shell_id = manager.start_shell("python train.py --epochs 100")
>>> manager.get_status(shell_id)["status"]
'running'
>>> manager.get_output(shell_id)["stdout"]       # the last _max_output_lines lines of each stream
'epoch 1 ...'
>>> manager.kill_shell(shell_id)["status"]
'killed'

Each shell is an ordinary mgsup shell of the state directory chosen by the environment
($MGSUP_HOME, ...), so it also shows in `mgsup list` and can be read and killed from anywhere. What
mgsup adds under the same interface:

- `kill_shell` ends the whole process tree (MassGen's reaches only the direct child) and says
  `killed` only once nothing of the job is left;
- output goes to files on disk, whole: `get_output` shows the last `_max_output_lines` lines of each
  stream, where MassGen keeps only those lines in memory and drops the rest;
- ids outlive the process: `get_status`, `get_output` and `kill_shell` also take the id of a shell
  another process started (`list_shells` and `cleanup_all` cover the shells of this manager).

Kept from MassGen: `env` replaces the environment (as `subprocess.Popen(env=...)`); the limit is
checked when a shell starts and raises `RuntimeError("Maximum concurrent shells (N) reached")`
(mgsup's `LimitReached`); at exit, `cleanup_all` kills the shells this manager started that still
run (their records and output stay). Different: the limit counts every running shell of the state
directory, from every process that shares it, not only this manager's; statuses may also read
`queued` or `lost` for shells started elsewhere.
"""

from __future__ import annotations

import atexit
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .core import Supervisor
from .errors import ShellNotFound

__all__ = ["BackgroundShell", "BackgroundShellManager", "get_shell_output", "get_shell_status", "kill_shell",
           "list_shells", "start_shell"]
log = logging.getLogger(__name__)

# MassGen's kill waits this long after SIGTERM before SIGKILL.
KILL_GRACE_SECONDS = 0.5
DEFAULT_MAX_OUTPUT_LINES = 10_000


@dataclass(frozen=True)
class BackgroundShell:
    """A shell this manager started: its id, what it was asked to run, and the state directory it lives in."""

    shell_id: str
    command: str | list[str]
    cwd: str | None
    home: Path


class BackgroundShellManager:
    """MassGen's manager of background shells, on mgsup: one instance per process (a singleton)."""

    _instance: ClassVar[BackgroundShellManager | None] = None
    _lock: ClassVar[threading.RLock] = threading.RLock()
    _initialized: bool

    def __new__(cls) -> BackgroundShellManager:
        with cls._lock:
            if cls._instance is None:
                cls._instance = super().__new__(cls)
                cls._instance._initialized = False
            return cls._instance

    def __init__(self) -> None:
        with self._lock:
            if self._initialized:
                return
            self._shells: dict[str, BackgroundShell] = {}
            self._shells_lock = threading.RLock()
            self._max_concurrent = Supervisor().max_concurrent
            self._max_output_lines = DEFAULT_MAX_OUTPUT_LINES
            atexit.register(self.cleanup_all)
            self._initialized = True

    def start_shell(self, command: str | list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> str:
        """Start `command` in the background (a string runs under /bin/sh -c) and return its shell id.

        `env`, when given, is the job's whole environment. RuntimeError (LimitReached) when
        `_max_concurrent` shells already run in the state directory.
        """
        sup = Supervisor(max_concurrent=self._max_concurrent)
        shell_id = sup.start_shell(command, cwd=cwd, env=env, inherit_env=env is None)
        with self._shells_lock:
            self._shells[shell_id] = BackgroundShell(shell_id, command, cwd, sup.home)
        return shell_id

    def get_status(self, shell_id: str) -> dict[str, Any]:
        """`shell_id, status, exit_code, pid, command, cwd, start_time, duration_seconds`; KeyError if unknown."""
        status = self._supervisor(shell_id).get_shell_status(shell_id)
        mine = self._shells.get(shell_id)
        return {
            "shell_id": shell_id,
            "status": status["status"],
            "exit_code": status["exit_code"],
            "pid": status["pid"],
            "command": mine.command if mine else status["command"],
            "cwd": mine.cwd if mine else status["cwd"],
            "start_time": status["start_time"],
            "duration_seconds": round(status["duration_seconds"] or 0.0, 2),
        }

    def get_output(self, shell_id: str) -> dict[str, Any]:
        """`shell_id, stdout, stderr, status, exit_code`: the last `_max_output_lines` lines of each stream."""
        output = self._supervisor(shell_id).get_shell_output(shell_id, tail_lines=self._max_output_lines)
        return {
            "shell_id": shell_id,
            "stdout": _joined_lines(output["stdout"]),
            "stderr": _joined_lines(output["stderr"]),
            "status": output["status"],
            "exit_code": output["exit_code"],
        }

    def kill_shell(self, shell_id: str) -> dict[str, Any]:
        """Kill the whole process tree: `{shell_id, status: 'killed', signal: 'SIGTERM'}` once nothing is left.

        A shell that had ended already: `{shell_id, status, signal: None, message: 'Process already terminated'}`.
        """
        return self._supervisor(shell_id).kill_shell(shell_id, grace=KILL_GRACE_SECONDS)

    def list_shells(self) -> list[dict[str, Any]]:
        """The status of every shell this manager started, in the order they were started."""
        statuses = []
        for shell_id in self._started():
            try:
                statuses.append(self.get_status(shell_id))
            except ShellNotFound:
                continue  # its record was removed meanwhile (`mgsup clean`)
        return statuses

    def cleanup_all(self) -> None:
        """Kill every shell this manager started that still runs (called at exit, as MassGen's is)."""
        for shell_id in self._started():
            try:
                if self.get_status(shell_id)["status"] in ("queued", "running"):
                    self.kill_shell(shell_id)
            except Exception:
                log.exception("could not clean up %s", shell_id)

    @classmethod
    def reset_for_testing(cls) -> None:
        """Kill this process's shells and forget them (the instance stays), as MassGen's does for its tests."""
        with cls._lock:
            if cls._instance is not None:
                cls._instance.cleanup_all()
                with cls._instance._shells_lock:
                    cls._instance._shells.clear()

    def _started(self) -> list[str]:
        with self._shells_lock:
            return list(self._shells)

    def _supervisor(self, shell_id: str) -> Supervisor:
        mine = self._shells.get(shell_id)
        home = mine.home if mine else None
        return Supervisor(home, max_concurrent=self._max_concurrent)


def _joined_lines(text: str | None) -> str:
    # MassGen keeps each line without its newline and joins them with "\n".
    text = text or ""
    return text[:-1] if text.endswith("\n") else text


def start_shell(command: str | list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> str:
    """Start a command in the background with the process's manager; see `BackgroundShellManager.start_shell`."""
    return BackgroundShellManager().start_shell(command, cwd=cwd, env=env)


def get_shell_output(shell_id: str) -> dict[str, Any]:
    """The output of a shell; see `BackgroundShellManager.get_output`."""
    return BackgroundShellManager().get_output(shell_id)


def get_shell_status(shell_id: str) -> dict[str, Any]:
    """The status of a shell; see `BackgroundShellManager.get_status`."""
    return BackgroundShellManager().get_status(shell_id)


def kill_shell(shell_id: str) -> dict[str, Any]:
    """Kill a shell's whole process tree; see `BackgroundShellManager.kill_shell`."""
    return BackgroundShellManager().kill_shell(shell_id)


def list_shells() -> list[dict[str, Any]]:
    """The shells this process's manager started; see `BackgroundShellManager.list_shells`."""
    return BackgroundShellManager().list_shells()
