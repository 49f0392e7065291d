"""Which program runs a coordination run, and the command line it gets.

A runner is `"mgcoord"` (the default, this package's own), `"massgen"` (the real MassGen CLI found
on the job's PATH), or an explicit command: a path to a program, or an argv list, for any runner
that follows the automation contract. Every runner gets `--automation --config CONFIG "QUESTION"`;
only mgcoord also gets `--instance-id` (MassGen refuses the option), which keeps parallel runs of one
config in separate workspaces.

A run on a cluster node looks its program up there (`for_node`): only what travels with the job,
the run's working directory, can be checked on the submitting machine.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

from ..errors import InvalidRequest

MGCOORD = "mgcoord"
MASSGEN = "massgen"
NAMES = (MGCOORD, MASSGEN)
RUNNER_VAR = "MGSUP_RUNNER"

Runner = str | list[str]


class ResolvedRunner(NamedTuple):
    """A runner checked and located: its `kind` (mgcoord, massgen or command) and its program argv."""

    kind: str
    program: list[str]

    def argv(self, config: str, question: str, instance_id: str) -> list[str]:
        """The whole command line of one run."""
        extra = ["--instance-id", instance_id] if self.kind == MGCOORD else []
        return [*self.program, "--automation", "--config", config, *extra, question]


def default_runner() -> Runner:
    """`$MGSUP_RUNNER` (a name, a path, or a command line split like a shell would), else mgcoord."""
    text = os.environ.get(RUNNER_VAR, "").strip()
    return parse(text) if text else MGCOORD


def parse(text: str) -> Runner:
    """A runner typed on a command line: one word is a name or a path, several are an argv.

    >>> parse("uv run massgen")
    ['uv', 'run', 'massgen']
    """
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InvalidRequest(f"cannot read the runner {text!r}: {exc}") from None
    return words[0] if len(words) == 1 else words


def resolve(runner: object, *, path: str | None, cwd: Path) -> ResolvedRunner:
    """Check `runner` and find its program on the job's PATH (`path`); InvalidRequest says what was looked for.

    A relative program path is taken from `cwd`, the run's working directory.

    >>> resolve("massgen", path=os.environ["PATH"], cwd=Path.cwd()).program
    ['/home/me/.venvs/massgen/bin/massgen']
    """
    if runner is None:
        runner = default_runner()
    if isinstance(runner, str):
        if runner == MGCOORD:
            return ResolvedRunner(MGCOORD, _mgcoord_argv())
        if runner == MASSGEN:
            return ResolvedRunner(MASSGEN, [_on_path(MASSGEN, path)])
        if "/" not in runner:
            raise InvalidRequest(f"unknown runner {runner!r}: use {' or '.join(NAMES)}, a path to a runner program, "
                                 "or a command as a list")
        return _command([runner], cwd)
    if isinstance(runner, list | tuple) and runner and all(isinstance(arg, str) and arg for arg in runner):
        first = runner[0]
        program = _on_path(first, path) if "/" not in first else first
        return _command([program, *runner[1:]], cwd)
    raise InvalidRequest(f"runner must be {' or '.join(NAMES)}, a program path or a non-empty list of strings, "
                         f"got {runner!r}")


def for_node(runner: object, *, cwd: Path) -> ResolvedRunner:
    """Check `runner` for a run on a cluster node, in a copy of `cwd`; its program is found on the node.

    mgcoord by name is the copy that travels with the job. `massgen` and a bare program name are
    looked up on the node's PATH when the run starts. A relative program path must be a program
    inside `cwd` (checked here: it travels with the job); an absolute one must exist on the node.

    >>> for_node("massgen", cwd=Path.cwd())
    ResolvedRunner(kind='massgen', program=['massgen'])
    """
    if runner is None:
        runner = default_runner()
    if isinstance(runner, str) and runner in NAMES:
        return ResolvedRunner(runner, [runner])
    if isinstance(runner, str) and "/" not in runner:
        raise InvalidRequest(f"unknown runner {runner!r}: use {' or '.join(NAMES)}, a path to a runner program, "
                             "or a command as a list")
    argv = [runner] if isinstance(runner, str) else runner
    if not (isinstance(argv, list | tuple) and argv and all(isinstance(arg, str) and arg for arg in argv)):
        raise InvalidRequest(f"runner must be {' or '.join(NAMES)}, a program path or a non-empty list of strings, "
                             f"got {runner!r}")
    first = argv[0]
    if "/" in first and not first.startswith("/"):
        program = (cwd / first).resolve()
        if not program.is_relative_to(cwd.resolve()):
            raise InvalidRequest(f"runner program {first!r} is outside the run's working directory {str(cwd)!r}, "
                                 "which is all that travels to the node: give its absolute path on the node")
        _command([first], cwd)
    name = os.path.basename(first)
    return ResolvedRunner(name if name in NAMES else "command", list(argv))


def _command(argv: list[str], cwd: Path) -> ResolvedRunner:
    program = cwd / Path(argv[0]).expanduser()
    if not program.is_file():
        raise InvalidRequest(f"runner program not found: {str(program)!r}")
    if not os.access(program, os.X_OK):
        raise InvalidRequest(f"runner program is not executable: {str(program)!r}")
    # A path to mgcoord is still mgcoord: it gets its instance id.
    kind = program.name if program.name in NAMES else "command"
    return ResolvedRunner(kind, [str(program), *argv[1:]])


def _on_path(name: str, path: str | None) -> str:
    search = os.defpath if path is None else path
    found = shutil.which(name, path=search)
    if found is None:
        raise InvalidRequest(f"runner {name!r} not found on the job's PATH ({search}); install it there, or give "
                             "the runner as a path")
    return os.path.abspath(found)


def _mgcoord_argv() -> list[str]:
    """How to run mgcoord: the console script next to this Python, else the module."""
    script = Path(sys.executable).with_name(MGCOORD)
    return [str(script)] if script.exists() else [sys.executable, "-m", "coordinator"]
