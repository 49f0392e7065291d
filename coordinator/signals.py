"""The signals that end a run. Each takes the interrupted path: status.json and the logs are
finalised, no agent process is left, and mgcoord exits 4.

These are the signals whose default action ends a process and that a program may catch. Python
itself ignores SIGPIPE and SIGXFSZ (a failed write raises instead); SIGKILL and SIGSTOP cannot be
caught; SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP and SIGSYS report faults of the process
itself and keep their default action.

A signal that is ignored when mgcoord starts stays ignored, as ``nohup`` expects for SIGHUP.
"""

from __future__ import annotations

import signal

_NAMES = (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGVTALRM", "SIGPROF",
    "SIGXCPU", "SIGIO", "SIGPWR", "SIGSTKFLT",
)
ENDING_SIGNALS: tuple[signal.Signals, ...] = tuple(getattr(signal, name) for name in _NAMES if hasattr(signal, name))


def catchable() -> list[signal.Signals]:
    """The :data:`ENDING_SIGNALS` this process does not ignore."""
    return [sig for sig in ENDING_SIGNALS if signal.getsignal(sig) != signal.SIG_IGN]
