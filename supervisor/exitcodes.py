"""The exit codes of `mgsup`: what each means, and the code `wait` passes on for an ended shell.

Errors of the library carry their own code (`SupervisorError.exit_code`: 1 to 6); the codes here are
those of the command line itself. docs/cli.md holds the same table.
"""

from __future__ import annotations

import signal
from typing import Any

# A coordination run whose runner exited 0 without a final answer (MassGen does, when every backend failed).
EXIT_NO_ANSWER = 122
# A coordination run its monitor stopped because it passed its budget.
EXIT_BUDGET_EXCEEDED = 123
EXIT_WAIT_TIMEOUT = 124
EXIT_LOST = 125
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

EPILOG = """\b
Examples:
  mgsup start -- 'sleep 1; echo hi'          one argument: run under /bin/sh -c
  mgsup start --name build -- make -j4       several arguments: run directly, no shell
  mgsup start --config configs/demo.yaml --wait "What is 17 * 23?"
  mgsup status                               table of all shells
  mgsup status shell_0a1b2c3d --follow       live view until it ends
  mgsup logs shell_0a1b2c3d --tail 50 --follow
  mgsup wait shell_0a1b2c3d --timeout 600 && echo done
  mgsup kill --all

\b
Exit codes:
  0    success (wait / start --wait: the job exited 0; a coordination run with a final answer)
  1    error (unexpected errors too; MGSUP_DEBUG=1 shows the traceback)
  2    bad input or usage (empty command, missing cwd, bad --env, negative timeout, unknown option,
       a bad budget, a --policy file that cannot be used)
  3    no such shell
  4    concurrency limit reached (start with --queue to wait for a slot)
  5    state directory unusable (cannot be created or written)
  6    Ray cluster unavailable (unreachable, refusing, or Ray not installed: pip install 'mgsup[ray]')
  122  wait / start --wait: a coordination run ended without a final answer although
       its runner exited 0 (coordination.outcome says why: no_answer, timeout, ...)
  123  wait / start --wait: a coordination run was stopped because it passed its budget
       (coordination.budget_exceeded holds the figure)
  124  wait --timeout passed before the shell ended
  125  the shell was lost (its monitor vanished; outcome unknown)
  130  interrupted (Ctrl-C)
  141  stdout closed early (broken pipe)
  wait and start --wait otherwise exit with the job's own code: 0-255 as the job
  exited, 128+N when signal N ended it, 143 when killed without a signal of its own
  (it exited after the stop request, or was removed from the queue).
"""


def job_exit_code(status: dict[str, Any]) -> int:
    """The exit code `mgsup wait` passes on for a shell that has ended (see EPILOG).

    >>> job_exit_code({"status": "killed", "exit_code": -9})
    137
    >>> job_exit_code({"status": "stopped", "exit_code": 0, "coordination": {"outcome": "no_answer"}})
    122
    """
    code = status.get("exit_code")
    outcome = (status.get("coordination") or {}).get("outcome")
    if outcome == "budget_exceeded":
        return EXIT_BUDGET_EXCEEDED
    if status["status"] == "stopped":
        return EXIT_NO_ANSWER if outcome not in (None, "answered") else 0
    if status["status"] == "failed":
        return code if isinstance(code, int) and 0 < code < 256 else 1
    if status["status"] == "killed":
        return 128 - code if isinstance(code, int) and code < 0 else 128 + signal.SIGTERM
    if status["status"] == "lost":
        return EXIT_LOST
    return 1
