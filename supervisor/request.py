"""Checking what a caller asks for, before anything is written or started."""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .admission import MAX_LIMIT
from .errors import InvalidRequest
from .lifecycle import MAX_RETRIES, MAX_SECONDS

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
STREAMS = ("stdout", "stderr")
# Offsets, byte counts and line counts are file positions: beyond 2**63 - 1 no file can reach.
MAX_COUNT = (1 << 63) - 1
# The kernel refuses (E2BIG, "Argument list too long") any single argument or environment entry
# longer than this (MAX_ARG_STRLEN, 32 pages), and all of them together beyond ARG_MAX.
MAX_ARG_BYTES = 32 * 4096 - 1
# What the supervisor adds: the monitor's own arguments and variable (both name the home, a path of
# up to 4 KiB) and the job's tag, with room to spare.
EXEC_MARGIN = 16 * 1024
# How much of a rejected value an error message quotes: a path in full up to the kernel's limit
# (PATH_MAX), anything else briefly.
QUOTED = 200
QUOTED_PATH = 4096


class StartRequest(NamedTuple):
    command: str | list[str]
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    env_names: list[str]
    name: str | None
    timeout: float | None


class Options(NamedTuple):
    """How a start is scheduled and what a restart repeats, beyond the command itself (all checked)."""

    group: str | None = None
    after: tuple[str, ...] = ()
    retries: int = 0
    retry_delay: float = 0.0
    merge_output: bool = False
    restarted_from: str | None = None
    config: str | None = None
    question: str | None = None


def options(*, group: Any = None, after: Any = None, retries: Any = 0, retry_delay: Any = 0.0,
            merge_output: Any = False) -> Options:
    """Check the scheduling arguments of a start; `after` keeps the references as given (resolved later)."""
    if after is None:
        refs: tuple[str, ...] = ()
    elif isinstance(after, str) or not isinstance(after, list | tuple) or not all(isinstance(r, str) for r in after):
        raise InvalidRequest(f"after must be a list of shell references, got {quoted(after)}")
    else:
        refs = tuple(after)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise InvalidRequest(f"retries must be a whole number from 0 to {MAX_RETRIES}, got {quoted(retries)}")
    return Options(group=group_name("group", group), after=refs, retries=retries,
                   retry_delay=seconds("retry_delay", retry_delay, allow_zero=True) or 0.0,
                   merge_output=flag("merge_output", merge_output))


def start_request(command: Any, *, cwd: Any, env: Any, inherit_env: Any, name: Any,
                  timeout: Any, isolate: Any = False, path_lookup: bool = True) -> StartRequest:
    """Validate the arguments of `start_shell`; InvalidRequest says what is wrong.

    `path_lookup=False` leaves a program name without a slash unchecked: it is looked up on the
    PATH of another machine (a cluster node).
    """
    inherit_env = flag("inherit_env", inherit_env)
    isolate = flag("isolate", isolate)
    argv = _argv(command)
    workdir = working_dir(cwd)
    overlay = env_overlay(env)
    job_env = {**(os.environ if inherit_env else {}), **overlay}
    exec_size(argv, job_env)
    name = shell_name(name)
    if "/" not in argv[0]:
        if path_lookup and shutil.which(argv[0], path=job_env.get("PATH", os.defpath)) is None:
            raise InvalidRequest(f"command not found: {quoted(argv[0])} is not on the job's PATH")
    else:
        program = workdir / argv[0]
        if not _is_executable(program):
            raise InvalidRequest(f"command not found or not executable: {quoted_path(str(program))}")
        if isolate and not os.path.isabs(argv[0]):
            # The job runs in the fresh workspace, where a path relative to `cwd` finds nothing.
            raise InvalidRequest(f"an isolated job runs in a new, empty workspace where {quoted(argv[0])} does "
                                 f"not exist: give the program's absolute path ({quoted_path(str(program))}) or a "
                                 "command on PATH")
    return StartRequest(command=command, argv=argv, cwd=workdir, env=job_env, env_names=sorted(overlay),
                        name=name, timeout=seconds("timeout", timeout))


def shell_name(name: Any) -> str | None:
    """A shell's name: None, or what `group_name` allows except what a reference reads otherwise.

    `last` and names that begin like an id (`shell_`) are refused: a reference with them means
    something else (the newest shell, an id prefix).
    """
    valid = group_name("name", name)
    if valid == "last" or (valid or "").startswith("shell_"):
        raise InvalidRequest(f"invalid name {quoted(valid)}: 'last' and names beginning with 'shell_' are reserved "
                             "(a reference with them means the newest shell, or an id)")
    return valid


def group_name(what: str, name: Any) -> str | None:
    """None, or 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."""
    if name is None:
        return None
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidRequest(f"invalid {what} {quoted(name)}: use 1-64 letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit")
    return name


def exec_size(argv: list[str], env: dict[str, str]) -> None:
    """InvalidRequest when the kernel would refuse to run `argv` with `env` (E2BIG), before anything is written."""
    for position, arg in enumerate(argv):
        size = len(os.fsencode(arg))
        if size > MAX_ARG_BYTES:
            what = "the command" if position == 2 and argv[:2] == ["/bin/sh", "-c"] else f"argument {position}"
            raise InvalidRequest(f"{what} is {size} bytes: the kernel runs no program with a single argument "
                                 f"over {MAX_ARG_BYTES} bytes")
    total = 0
    for key, value in env.items():
        size = len(os.fsencode(key)) + 1 + len(os.fsencode(value))
        if size > MAX_ARG_BYTES:
            raise InvalidRequest(f"the environment variable {quoted(key)} is {size} bytes with its name: the "
                                 f"kernel runs no program with an environment entry over {MAX_ARG_BYTES} bytes")
        total += size + 1 + 8
    total += sum(len(os.fsencode(arg)) + 1 + 8 for arg in argv)
    limit = _arg_max() - EXEC_MARGIN
    if total > limit:
        raise InvalidRequest(f"the command and its environment take {total} bytes: more than the {limit} the "
                             "kernel allows a program to start with (ARG_MAX); pass large data in a file")


def _arg_max() -> int:
    try:
        return max(os.sysconf("SC_ARG_MAX"), 64 * 1024)
    except (OSError, ValueError):
        return 128 * 1024


def _is_executable(program: Path) -> bool:
    try:
        return program.is_file() and os.access(program, os.X_OK)
    except OSError:
        return False  # a name too long, a loop of links


def quoted(value: Any, limit: int = QUOTED) -> str:
    """`repr(value)`, cut to `limit` characters: an error never echoes unbounded input back."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def quoted_path(path: str) -> str:
    return quoted(path, QUOTED_PATH)


def flag(what: str, value: Any) -> bool:
    """A boolean option: True or False, nothing else (a string "no" is not false)."""
    if not isinstance(value, bool):
        raise InvalidRequest(f"{what} must be true or false, got {quoted(value)}")
    return value


def home(value: Any) -> str:
    """A state directory given by a caller: a non-empty path."""
    if not isinstance(value, str | os.PathLike):
        raise InvalidRequest(f"home must be a path, got {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not path:
        raise InvalidRequest("home is empty: give the state directory's path, or leave it out for the default")
    if "\0" in path:
        raise InvalidRequest("home contains a NUL character")
    return path


def limit(what: str, value: Any) -> int:
    """A concurrency limit: a whole number from 1 to MAX_LIMIT."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidRequest(f"{what} must be a whole number from 1 to {MAX_LIMIT}, got {quoted(value)}")
    return value


def budget(value: Any) -> dict[str, Any] | None:
    """A coordination run's budget: None, or a mapping of `budget.KEYS` (keys given as None are left out)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = {key: item for key, item in value.items() if item is not None}
        if not value:
            return None
    from . import budget as budgets  # only for a run with a budget: a command reading shells does without it

    problem = budgets.problem(value)
    if problem is not None:
        raise InvalidRequest(f"invalid budget: {problem}")
    return dict(value)


def seconds(what: str, value: Any, *, allow_zero: bool = False) -> float | None:
    """A duration in seconds: None, or a finite positive number up to MAX_SECONDS (zero too when `allow_zero`)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest(f"{what} must be a number of seconds, got {quoted(value)}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidRequest(f"{what} must be {'zero or more' if allow_zero else 'more than zero'} "
                             f"seconds, got {value!r}")
    if value > MAX_SECONDS:
        raise InvalidRequest(f"{what} must be at most {MAX_SECONDS:.0f} seconds (10 years), got {value!r}")
    return float(value)


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(what: str, text: str) -> float:
    """A duration typed by a person: `90`, `90s`, `15m`, `2h`, `7d`, `1w` (a number alone is seconds).

    >>> duration("--older-than", "2h")
    7200.0
    """
    found = _DURATION.fullmatch(text)
    if not found:
        raise InvalidRequest(f"{what} must be a duration such as 90s, 15m, 2h, 7d or 1w, got {quoted(text)}")
    value = float(found.group(1)) * _UNIT_SECONDS[(found.group(2) or "s").lower()]
    checked = seconds(what, value, allow_zero=True)
    assert checked is not None
    return checked


def count(what: str, value: Any) -> int | None:
    """None, or a whole number from 0 to MAX_COUNT."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise InvalidRequest(f"{what} must be a whole number from 0 to {MAX_COUNT}, got {quoted(value)}")
    return value


def streams(value: Any) -> tuple[str, ...]:
    """The output streams asked for: None means both."""
    if value is None:
        return STREAMS
    if value not in STREAMS:
        raise InvalidRequest(f"unknown stream {quoted(value)}: use 'stdout' or 'stderr' (or None for both)")
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
    raise InvalidRequest(f"unknown signal {quoted(value)}: use a name such as SIGTERM, SIGINT or SIGKILL")


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
        try:
            return Path.cwd()
        except OSError as exc:
            raise InvalidRequest(f"the current directory cannot be used ({exc.strerror}): give cwd") from None
    if not isinstance(cwd, str | os.PathLike):
        raise InvalidRequest(f"cwd must be a path, got {type(cwd).__name__}")
    if not os.fspath(cwd) or "\0" in os.fspath(cwd):
        raise InvalidRequest(f"cwd is not a path: {quoted_path(os.fspath(cwd))}")
    path = Path(cwd).expanduser().absolute()
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InvalidRequest(f"cwd does not exist: {quoted_path(str(path))}") from None
    except OSError as exc:
        raise InvalidRequest(f"cwd cannot be used ({exc.strerror}): {quoted_path(str(path))}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidRequest(f"cwd is not a directory: {quoted_path(str(path))}")
    return path


def env_overlay(env: Any) -> dict[str, str]:
    """Environment variables a caller lays over the inherited ones: names to strings, nothing else."""
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise InvalidRequest(f"env must be a mapping of names to strings, got {type(env).__name__}")
    for key, value in env.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise InvalidRequest(f"invalid environment variable name {quoted(key)}")
        if not isinstance(value, str):
            raise InvalidRequest(f"env value for {quoted(key)} must be a string, got {type(value).__name__}")
        if "\0" in value:
            raise InvalidRequest(f"env value for {quoted(key)} contains a NUL character")
    return dict(env)
