"""mgsup: a background-process supervisor for multi-agent coordination runs.

>>> from supervisor import start_shell, wait_shell, get_shell_output
>>> shell_id = start_shell("echo hello")
>>> wait_shell(shell_id)["status"]
'stopped'
>>> get_shell_output(shell_id)["stdout"]
'hello\\n'

Names are loaded on first use, so the monitor process (stdlib only) can import submodules cheaply.
"""

from __future__ import annotations

# `typing` stays out of the run-time imports: the monitor imports this package too.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .api import (
        get_shell_output,
        get_shell_status,
        kill_shell,
        list_shells,
        start_coordination,
        start_shell,
        wait_shell,
    )
    from .compat import BackgroundShellManager
    from .core import Supervisor
    from .errors import (
        ClusterUnavailable,
        InvalidRequest,
        LimitReached,
        ShellNotFound,
        StateDirError,
        SupervisorError,
    )

__all__ = [
    "BackgroundShellManager",
    "ClusterUnavailable",
    "InvalidRequest",
    "LimitReached",
    "ShellNotFound",
    "StateDirError",
    "Supervisor",
    "SupervisorError",
    "get_shell_output",
    "get_shell_status",
    "kill_shell",
    "list_shells",
    "start_coordination",
    "start_shell",
    "wait_shell",
]
_HOME_MODULE = {name: "core" for name in ("Supervisor",)} | {
    name: "errors" for name in __all__ if name[0].isupper() and name != "Supervisor"
} | {name: "api" for name in __all__ if name[0].islower()}
_HOME_MODULE["BackgroundShellManager"] = "compat"


def __getattr__(name: str) -> Any:
    if name in _HOME_MODULE:
        import importlib

        return getattr(importlib.import_module(f".{_HOME_MODULE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
