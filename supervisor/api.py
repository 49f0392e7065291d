"""The module-level API: each function acts on a `Supervisor()` built from the environment at call time."""

from __future__ import annotations

import os
from typing import Any

from .core import Supervisor


def start_shell(command: str | list[str], *, cwd: str | os.PathLike[str] | None = None,
                env: dict[str, str] | None = None, inherit_env: bool = True, name: str | None = None,
                timeout: float | None = None, queue: bool = False, isolate: bool = False, cpus: float | None = None,
                gpus: float | None = None, resources: dict[str, float] | None = None) -> str:
    """Start `command` in the background (on $MGSUP_CLUSTER when set); see `Supervisor.start_shell`."""
    return Supervisor().start_shell(command, cwd=cwd, env=env, inherit_env=inherit_env, name=name,
                                    timeout=timeout, queue=queue, isolate=isolate, cpus=cpus, gpus=gpus,
                                    resources=resources)


def start_coordination(config: str | os.PathLike[str], question: str, *, runner: str | list[str] | None = None,
                       cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
                       timeout: float | None = None, queue: bool = False, name: str | None = None,
                       cpus: float | None = None, gpus: float | None = None,
                       resources: dict[str, float] | None = None) -> str:
    """Start a coordination run as a shell (on $MGSUP_CLUSTER when set); see `Supervisor.start_coordination`."""
    return Supervisor().start_coordination(config, question, runner=runner, cwd=cwd, env=env, timeout=timeout,
                                           queue=queue, name=name, cpus=cpus, gpus=gpus, resources=resources)


def get_shell_status(shell_id: str) -> dict[str, Any]:
    """The status of a shell; see `Supervisor.get_shell_status`."""
    return Supervisor().get_shell_status(shell_id)


def get_shell_output(shell_id: str, *, tail_lines: int | None = None, offset: int | None = None,
                     max_bytes: int | None = None) -> dict[str, Any]:
    """The output of a shell; see `Supervisor.get_shell_output`."""
    return Supervisor().get_shell_output(shell_id, tail_lines=tail_lines, offset=offset, max_bytes=max_bytes)


def kill_shell(shell_id: str, *, signal: str | int = "SIGTERM", grace: float = 5.0) -> dict[str, Any]:
    """Kill a shell's whole process tree; see `Supervisor.kill_shell`."""
    return Supervisor().kill_shell(shell_id, signal=signal, grace=grace)


def list_shells(status: str | None = None) -> list[dict[str, Any]]:
    """Every shell on record, oldest first; see `Supervisor.list_shells`."""
    return Supervisor().list_shells(status)


def wait_shell(shell_id: str, timeout: float | None = None, *, kill_on_stall: bool = False) -> dict[str, Any]:
    """Block until a shell has ended; see `Supervisor.wait_shell`."""
    return Supervisor().wait_shell(shell_id, timeout, kill_on_stall=kill_on_stall)
