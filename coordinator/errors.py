"""The coordinator's error hierarchy; each error knows the exit code it maps to."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of ``mgcoord`` (DESIGN §6)."""

    SUCCESS = 0
    CONFIG_ERROR = 1
    EXECUTION_ERROR = 2
    TIMEOUT = 3
    INTERRUPTED = 4


class CoordinatorError(Exception):
    """Base class of every error the coordinator reports to its user."""

    exit_code: ExitCode = ExitCode.EXECUTION_ERROR


class ConfigError(CoordinatorError):
    """The configuration or the command line cannot be used (exit 1)."""

    exit_code = ExitCode.CONFIG_ERROR


class ExecutionError(CoordinatorError):
    """Coordination ran but produced no final answer (exit 2)."""

    exit_code = ExitCode.EXECUTION_ERROR


class AgentError(Exception):
    """One agent turn failed: bad exit, invalid reply, refused action, API error.

    Raised by backends and by the engine's checks; the engine retries the turn a bounded
    number of times before it leaves the agent out. ``retry=False`` says no retry can help
    (the endpoint refused the API key, say): the agent is left out at once.
    """

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry
