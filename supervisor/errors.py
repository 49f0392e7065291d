"""The error hierarchy of mgsup. Each error knows the exit code the CLI uses for it."""

from __future__ import annotations


class SupervisorError(Exception):
    """Base class of every error mgsup raises on purpose."""

    exit_code = 1


class InvalidRequest(SupervisorError, ValueError):
    """The request is malformed (empty command, missing cwd, bad env, name or timeout)."""

    exit_code = 2


class ShellNotFound(SupervisorError, KeyError):
    """No shell with this id exists in the state directory."""

    exit_code = 3

    def __str__(self) -> str:
        # KeyError would quote the message; show it as written.
        return str(self.args[0]) if self.args else "shell not found"


class LimitReached(SupervisorError, RuntimeError):
    """The concurrency limit is reached and the caller did not ask to queue."""

    exit_code = 4


class StateDirError(SupervisorError, OSError):
    """The state directory cannot be created, read or written."""

    exit_code = 5


class ClusterUnavailable(SupervisorError, ConnectionError):
    """The Ray cluster cannot be used from here: unreachable, refusing, or Ray is not installed."""

    exit_code = 6
