"""The `mgsup` entry point: the commonest invocations answered without click, rich or pydantic.

Importing click and rich costs a command several times a bare interpreter start, which scripts
that loop on `mgsup list`, `watch mgsup status` and shell completions feel. So `main` first tries
to read the arguments itself: `list`, `status` (JSON, or the table in a pipe), `start` without
`--wait` or `--config`, `kill` and `wait` (no live view), with the global options `--home` and
`--max-concurrent`. Anything it does not recognise completely (help, other verbs and options, a
bad value, a terminal that wants colours) goes to the click application (`cli.py`), which prints
its usual usage and errors. Both print the same, exit with the same codes, and share the parts
here that are more than one library call.

A verb added to `cli.py` needs nothing here: it is served by click.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import lifecycle, render
from .exitcodes import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_WAIT_TIMEOUT, job_exit_code

if TYPE_CHECKING:
    from .bulk import KillResult
    from .core import Supervisor

# A table in a pipe is this wide, unless $COLUMNS says otherwise (as `progress.console`).
PIPE_WIDTH = 200
# What makes rich treat a stream as a terminal (colours, a live view): click and rich handle those.
_TERMINAL_VARS = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


class Unknown(Exception):
    """The arguments are not of a form this module reads completely: click reads them."""


def main(argv: list[str] | None = None) -> int:
    """Run `mgsup` and return its exit code; every error is one `mgsup: error: ...` line on stderr."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        run = _fast(args)
        if run is not None:
            code = run()
            sys.stdout.flush()
            return code
    except Unknown:
        pass  # nothing was printed: click reads the arguments afresh
    except (Exception, KeyboardInterrupt) as exc:
        return failure(exc)
    from .cli import main as click_main

    return click_main(args)


def failure(exc: BaseException) -> int:
    """Report an error a verb raised as one `mgsup: error:` line and return its exit code (see `exitcodes`)."""
    from .errors import SupervisorError

    if isinstance(exc, SupervisorError):
        return fail(str(exc), exc.exit_code)
    if isinstance(exc, TimeoutError):
        return fail(str(exc) or "timed out", EXIT_WAIT_TIMEOUT)
    if isinstance(exc, KeyboardInterrupt):
        return fail(f"interrupted; {exc}" if str(exc) else "interrupted", EXIT_INTERRUPTED)
    if isinstance(exc, BrokenPipeError):
        # The reader went away (`mgsup logs ID | head`): say nothing, and keep the interpreter's
        # final flush from failing too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    if os.environ.get("MGSUP_DEBUG") == "1":
        import traceback

        traceback.print_exception(exc)
    return fail(f"unexpected {type(exc).__name__}: {exc} (set MGSUP_DEBUG=1 for the traceback)", 1)


def fail(message: str, code: int) -> int:
    print(f"mgsup: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return code


def print_json(value: Any) -> None:
    echo(json.dumps(value, indent=2))


def echo(line: str) -> None:
    """Print a line as `click.echo` does: without terminal escape sequences when stdout is not a terminal."""
    if "\x1b" in line and not sys.stdout.isatty():
        import re

        line = re.sub(r"\033\[[;?0-9]*[a-zA-Z]", "", line)
    print(line)


def kill_lines(results: list[KillResult]) -> list[str]:
    """What `mgsup kill` prints for the results of `Supervisor.kill_many`."""
    lines = []
    for result in results:
        if result["outcome"] == "dequeued":
            lines.append(f"{result['shell_id']} removed from queue")
        elif result["outcome"] == "killed":
            lines.append(f"{result['shell_id']} killed ({result['signal']})")
        else:
            lines.append(f"{result['shell_id']} already {result['status']}")
    return lines or ["no running, paused or queued shells"]


# -- reading the arguments ----------------------------------------------------------------------------

class Arguments:
    """The options and operands of one verb, read from the front, as click reads them."""

    def __init__(self, args: list[str], *, interspersed: bool = True) -> None:
        self.args = args
        self.interspersed = interspersed
        self.values: dict[str, list[str]] = {}
        self.operands: list[str] = []

    def read(self, flags: tuple[str, ...], options: tuple[str, ...], repeatable: tuple[str, ...] = ()) -> None:
        """Read `--flag`s and `--option VALUE`s (or `--option=VALUE`); Unknown for anything else."""
        args = list(self.args)
        while args:
            arg = args.pop(0)
            if arg == "--":
                self.operands += args
                return
            if not arg.startswith("-") or arg == "-":
                self.operands.append(arg)
                if not self.interspersed:
                    self.operands += args
                    return
                continue
            name, equals, value = arg.partition("=")
            if name in flags and not equals:
                self._add(name, "", repeatable)
            elif name in options:
                if not equals:
                    if not args or args[0].startswith("-"):
                        raise Unknown(arg)
                    value = args.pop(0)
                self._add(name, value, repeatable)
            else:
                raise Unknown(arg)

    def _add(self, name: str, value: str, repeatable: tuple[str, ...]) -> None:
        if name in self.values and name not in repeatable:
            raise Unknown(name)  # click takes the last one; leave that to it
        self.values.setdefault(name, []).append(value)

    def flag(self, name: str) -> bool:
        return name in self.values

    def value(self, name: str) -> str | None:
        found = self.values.get(name)
        return found[-1] if found else None

    def count(self, name: str, minimum: int) -> int | None:
        raw = self.value(name)
        if raw is None:
            return None
        if not (raw.isdigit() and raw.isascii() and int(raw) >= minimum):
            raise Unknown(name)
        return int(raw)

    def number(self, name: str) -> float | None:
        raw = self.value(name)
        if raw is None:
            return None
        try:
            return float(raw)
        except ValueError:
            raise Unknown(name) from None


def _fast(args: list[str]) -> Callable[[], int] | None:
    """The function that runs `args` here, or None when click should."""
    home = max_concurrent = None
    while args and args[0].startswith("--"):
        name, equals, value = args[0].partition("=")
        if name not in ("--home", "--max-concurrent"):
            return None
        if not equals:
            if len(args) < 2:
                return None
            value = args[1]
        args = args[1 if equals else 2:]
        if name == "--home":
            home = value
        elif value.isdigit() and value.isascii() and int(value) >= 1:
            max_concurrent = int(value)
        else:
            return None
    if not args or args[0] not in VERBS:
        return None
    verb = VERBS[args[0]]
    return verb(_Session(home, max_concurrent), args[1:])


class _Session:
    """The global options, and the Supervisor built from them on first use (as `cli.Session`)."""

    def __init__(self, home: str | None, max_concurrent: int | None) -> None:
        self.home = home
        self.max_concurrent = max_concurrent

    @property
    def sup(self) -> Supervisor:
        from .core import Supervisor

        return Supervisor(self.home, max_concurrent=self.max_concurrent)


# The options of `status` and `list` that choose rows, as `cli._filters` declares them.
_FILTERS = ("--status", "--group", "--name", "--limit")


def _filters(parsed: Arguments, min_limit: int) -> dict[str, Any]:
    status = parsed.value("--status")
    if status is not None and status not in lifecycle.STATUSES:
        raise Unknown("--status")  # click names the choices
    return {"status": status, "group": parsed.value("--group"), "name": parsed.value("--name"),
            "limit": parsed.count("--limit", min_limit)}


def _list(session: _Session, args: list[str]) -> Callable[[], int]:
    parsed = Arguments(args)
    parsed.read(("--json",), _FILTERS)
    if parsed.operands:
        raise Unknown("list")
    chosen = _filters(parsed, 1)

    def run() -> int:
        shells = session.sup.list_shells(chosen["status"], group=chosen["group"], name=chosen["name"],
                                         newest_first=True, limit=chosen["limit"])
        if parsed.flag("--json"):
            return _printed_json(shells)
        return _printed(*map(render.list_line, shells))

    return run


def _status(session: _Session, args: list[str]) -> Callable[[], int]:
    parsed = Arguments(args)
    parsed.read(("--json",), _FILTERS)
    if len(parsed.operands) > 1 or (parsed.operands and not parsed.flag("--json")):
        raise Unknown("status")  # the details of one shell are a rich view
    if parsed.operands and any(parsed.flag(option) for option in _FILTERS):
        raise Unknown("status")  # a usage error: click words it
    if not parsed.flag("--json") and _terminal(sys.stdout):
        raise Unknown("status")
    chosen = _filters(parsed, 0)
    width = _width()

    def run() -> int:
        sup = session.sup
        if parsed.operands:
            return _printed_json(sup.get_shell_status(parsed.operands[0]))
        limit = chosen["limit"]
        selection = {"group": chosen["group"], "name": chosen["name"], "newest_first": True}
        if parsed.flag("--json"):
            return _printed_json(sup.list_shells(chosen["status"], **selection, limit=limit or None))
        shells = sup.list_shells(chosen["status"], **selection)
        if not shells:
            filtered = chosen["status"] or chosen["group"] or chosen["name"]
            return _printed(f"no shells {'match' if filtered else 'on record'} in {sup.home}")
        rows = render.TABLE_ROWS if limit is None else limit or None
        lines = render.plain_table(shells[:rows], width)
        if lines is None:
            raise Unknown("status")  # a table that needs rich's care; nothing was printed yet
        _printed(*lines)
        if rows is not None and len(shells) > rows:
            print(render.older_note(len(shells) - rows), file=sys.stderr)
        return 0

    return run


def _start(session: _Session, args: list[str]) -> Callable[[], int]:
    parsed = Arguments(args, interspersed=False)
    parsed.read(("--queue", "--isolate", "--json"), ("--name", "--cwd", "--env", "--timeout"), ("--env",))
    if not parsed.operands:
        raise Unknown("start")
    env = {}
    for item in parsed.values.get("--env", []):
        key, sep, value = item.partition("=")
        if not sep:
            raise Unknown("--env")
        env[key] = value
    command: str | list[str] = parsed.operands[0] if len(parsed.operands) == 1 else parsed.operands
    timeout = parsed.number("--timeout")

    def run() -> int:
        sup = session.sup
        shell_id = sup.start_shell(command, cwd=parsed.value("--cwd"), env=env or None, name=parsed.value("--name"),
                                   timeout=timeout, queue=parsed.flag("--queue"), isolate=parsed.flag("--isolate"))
        if parsed.flag("--json"):
            print_json(sup.get_shell_status(shell_id))
        else:
            echo(shell_id)
        return 0

    return run


def _kill(session: _Session, args: list[str]) -> Callable[[], int]:
    parsed = Arguments(args)
    parsed.read(("--all", "--json"), ("--signal", "--grace"))
    if parsed.flag("--all") == bool(parsed.operands):
        raise Unknown("kill")  # a usage error: click words it
    sig = parsed.value("--signal") or "SIGTERM"
    grace = parsed.number("--grace")

    def run() -> int:
        results = session.sup.kill_many("all" if parsed.flag("--all") else parsed.operands,
                                        signal=int(sig) if sig.isdigit() else sig,
                                        grace=5.0 if grace is None else grace)
        if parsed.flag("--json"):
            return _printed_json(results)
        return _printed(*kill_lines(results))

    return run


def _wait(session: _Session, args: list[str]) -> Callable[[], int]:
    parsed = Arguments(args)
    parsed.read(("--kill-on-stall", "--json"), ("--timeout",))
    if len(parsed.operands) != 1 or _terminal(sys.stderr):
        raise Unknown("wait")  # progress on a terminal is a rich live view
    shell_id = parsed.operands[0]
    timeout = parsed.number("--timeout")

    def run() -> int:
        try:
            final = session.sup.wait_shell(shell_id, timeout, kill_on_stall=parsed.flag("--kill-on-stall"))
        except KeyboardInterrupt:
            raise KeyboardInterrupt(f"{shell_id} keeps running ('mgsup kill {shell_id}' stops it)") from None
        if parsed.flag("--json"):
            print_json(final)
        return job_exit_code(final)

    return run


VERBS: dict[str, Callable[[_Session, list[str]], Callable[[], int]]] = {
    "list": _list, "status": _status, "start": _start, "kill": _kill, "wait": _wait,
}


def _printed(*lines: str) -> int:
    for line in lines:
        echo(line)
    return 0


def _printed_json(value: Any) -> int:
    print_json(value)
    return 0


def _terminal(stream: Any) -> bool:
    return bool(stream.isatty()) or any(os.environ.get(name) for name in _TERMINAL_VARS)


def _width() -> int:
    raw = os.environ.get("COLUMNS")
    if not raw:
        return PIPE_WIDTH
    if not (raw.isdigit() and raw.isascii() and int(raw) > 0):
        raise Unknown("COLUMNS")  # rich then guesses a width of its own
    return int(raw)
