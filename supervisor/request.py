"""Checking what a caller asks for, before anything is written or started."""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidRequest

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
STREAMS = ("stdout", "stderr")


@dataclass(frozen=True)
class StartRequest:
    command: str | list[str]
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    env_names: list[str]
    name: str | None
    timeout: float | None


def start_request(command: Any, *, cwd: Any, env: Any, inherit_env: bool, name: Any,
                  timeout: Any, isolate: bool = False, path_lookup: bool = True) -> StartRequest:
    """Validate the arguments of `start_shell`; InvalidRequest says what is wrong.

    `path_lookup=False` leaves a program name without a slash unchecked: it is looked up on the
    PATH of another machine (a cluster node).
    """
    argv = _argv(command)
    workdir = working_dir(cwd)
    overlay = _env(env)
    job_env = {**(os.environ if inherit_env else {}), **overlay}
    if "/" not in argv[0]:
        if path_lookup and shutil.which(argv[0], path=job_env.get("PATH", os.defpath)) is None:
            raise InvalidRequest(f"command not found: {argv[0]!r} is not on the job's PATH")
    else:
        program = workdir / argv[0]
        if not program.is_file() or not os.access(program, os.X_OK):
            raise InvalidRequest(f"command not found or not executable: {str(program)!r}")
        if isolate and not os.path.isabs(argv[0]):
            # The job runs in the fresh workspace, where a path relative to `cwd` finds nothing.
            raise InvalidRequest(f"an isolated job runs in a new, empty workspace where {argv[0]!r} does "
                                 f"not exist: give the program's absolute path ({str(program)!r}) or a command "
                                 "on PATH")
    if name is not None and (not isinstance(name, str) or not NAME_PATTERN.fullmatch(name)):
        raise InvalidRequest(f"invalid name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit")
    return StartRequest(command=command, argv=argv, cwd=workdir, env=job_env, env_names=sorted(overlay),
                        name=name, timeout=seconds("timeout", timeout))


def seconds(what: str, value: Any, *, allow_zero: bool = False) -> float | None:
    """A duration in seconds: None, or a finite positive number (zero too when `allow_zero`)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest(f"{what} must be a number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidRequest(f"{what} must be {'zero or more' if allow_zero else 'more than zero'} "
                             f"seconds, got {value!r}")
    return float(value)


def count(what: str, value: Any) -> int | None:
    """None, or a whole number >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"{what} must be a whole number >= 0, got {value!r}")
    return value


def streams(value: Any) -> tuple[str, ...]:
    """The output streams asked for: None means both."""
    if value is None:
        return STREAMS
    if value not in STREAMS:
        raise InvalidRequest(f"unknown stream {value!r}: use 'stdout' or 'stderr' (or None for both)")
    return (value,)


def signal_number(value: Any) -> int:
    """A signal given as a name ('SIGTERM', 'TERM') or a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return int(signal.Signals(value))
        except ValueError:
            pass
    elif isinstance(value, str):
        name = value.upper() if value.upper().startswith("SIG") else f"SIG{value.upper()}"
        if name in signal.Signals.__members__:
            return int(signal.Signals[name])
    raise InvalidRequest(f"unknown signal {value!r}: use a name such as SIGTERM, SIGINT or SIGKILL")


def _argv(command: Any) -> list[str]:
    if isinstance(command, str):
        if not command.strip():
            raise InvalidRequest("command is empty: give a shell command line or a list of arguments")
        if "\0" in command:
            raise InvalidRequest("command contains a NUL character")
        return ["/bin/sh", "-c", command]
    if isinstance(command, list | tuple):
        if not command:
            raise InvalidRequest("command is empty: give a shell command line or a list of arguments")
        if not all(isinstance(arg, str) for arg in command):
            raise InvalidRequest("every argument of a command list must be a string")
        if not command[0]:
            raise InvalidRequest("the program name (first argument) is empty")
        if any("\0" in arg for arg in command):
            raise InvalidRequest("command contains a NUL character")
        return list(command)
    raise InvalidRequest(f"command must be a string or a list of strings, got {type(command).__name__}")


def working_dir(cwd: Any) -> Path:
    """The absolute directory a job will run in (default: the current one); InvalidRequest when it is unusable."""
    if cwd is None:
        return Path.cwd()
    if not isinstance(cwd, str | os.PathLike):
        raise InvalidRequest(f"cwd must be a path, got {type(cwd).__name__}")
    path = Path(cwd).expanduser().absolute()
    if not path.exists():
        raise InvalidRequest(f"cwd does not exist: {str(path)!r}")
    if not path.is_dir():
        raise InvalidRequest(f"cwd is not a directory: {str(path)!r}")
    return path


def _env(env: Any) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise InvalidRequest(f"env must be a mapping of names to strings, got {type(env).__name__}")
    for key, value in env.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise InvalidRequest(f"invalid environment variable name {key!r}")
        if not isinstance(value, str):
            raise InvalidRequest(f"env value for {key!r} must be a string, got {type(value).__name__}")
        if "\0" in value:
            raise InvalidRequest(f"env value for {key!r} contains a NUL character")
    return dict(env)
