"""The entry point's fast path (`supervisor.verbs`): same output and exit codes as click, without its imports.

Each case runs in a fresh interpreter twice, once through `verbs.main` and once through the click
application (`cli.main`), on the same home; the fast one must not have imported click, rich or
pydantic.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from supervisor import Supervisor, render

from .conftest import Mgsup

HEAVY = ("click", "rich", "pydantic")
RUN = """
import json, sys
from supervisor import {module}
code = {module}.main(sys.argv[1:])
sys.stdout.flush()
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print(json.dumps(heavy), file=sys.stderr)
raise SystemExit(code)
"""


def run(mgsup: Mgsup, module: str, *args: str) -> tuple[int, str, str, list[str]]:
    """(exit code, stdout, stderr without the last line, heavy modules imported) of one invocation."""
    done = subprocess.run([sys.executable, "-c", RUN.format(module=module, heavy=HEAVY), "--home", str(mgsup.home),
                           *args], cwd=mgsup.work, env=mgsup.env, capture_output=True, text=True, timeout=60)
    *err, heavy = done.stderr.splitlines()
    return done.returncode, done.stdout, "\n".join(err), json.loads(heavy)


@pytest.fixture
def shells(mgsup: Mgsup) -> dict[str, str]:
    """A home with an ended, a failed, a running and a queued shell, by status."""
    sup = Supervisor(mgsup.home, max_concurrent=1)
    ok = sup.start_shell("echo ok", name="first")
    sup.wait_shell(ok, timeout=30)
    bad = sup.start_shell(["sh", "-c", "exit 3"])
    sup.wait_shell(bad, timeout=30)
    running = sup.start_shell(["sleep", "60"])
    queued = sup.start_shell(["sleep", "61"], queue=True)
    return {"stopped": ok, "failed": bad, "running": running, "queued": queued}


READS = [("list",), ("list", "--json"), ("list", "--status", "failed"), ("status", "--json"),
         ("list", "--name", "fir*"), ("list", "--limit", "2", "--status", "stopped"), ("list", "--group", "none"),
         ("status", "--json", "--limit", "1"), ("status", "--json", "--status", "queued")]


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_reads_print_the_same_without_click_rich_or_pydantic(mgsup: Mgsup, shells: dict[str, str],
                                                             args: tuple[str, ...]) -> None:
    fast = run(mgsup, "verbs", *args)
    slow = run(mgsup, "cli", *args)
    assert fast[3] == [], f"imported {fast[3]}"
    if "--json" in args:
        # A running shell's duration grows between the two reads.
        fast_out, slow_out = (json.loads(out) for out in (fast[1], slow[1]))
        for listing in (fast_out, slow_out):
            for status in listing:
                status["duration_seconds"] = None if status["status"] == "running" else status["duration_seconds"]
        assert fast_out == slow_out
    else:
        assert fast[1] == slow[1]
    assert fast[0] == slow[0] == 0 and fast[2] == slow[2] == ""


def test_one_shells_json_and_errors_are_the_same(mgsup: Mgsup, shells: dict[str, str]) -> None:
    for args in (("status", "--json", shells["failed"]), ("status", "--json", "shell_00000000"),
                 ("status", "--json", "first"), ("status", "--json", shells["failed"][6:10]), ("wait", "first"),
                 ("kill", "no-such-name"),
                 ("wait", shells["failed"]), ("wait", "--json", shells["stopped"]), ("wait", "nonsense"),
                 ("wait", "--timeout", "0.2", shells["running"]), ("kill", "shell_00000000")):
        fast, slow = run(mgsup, "verbs", *args), run(mgsup, "cli", *args)
        assert fast[3] == [], (args, fast[3])
        assert fast[:3] == slow[:3], args
    assert run(mgsup, "verbs", "wait", shells["failed"])[0] == 3
    assert run(mgsup, "verbs", "wait", "--timeout", "0.2", shells["running"])[0] == 124


def test_start_and_kill_without_click(mgsup: Mgsup, shells: dict[str, str]) -> None:
    code, out, err, heavy = run(mgsup, "verbs", "--max-concurrent", "1", "start", "--queue", "--name", "later",
                                "--env", "A=1", "--", "sh", "-c", "echo $A")
    assert (code, err, heavy) == (0, "", [])
    shell_id = out.strip()
    status = Supervisor(mgsup.home).get_shell_status(shell_id)
    assert (status["name"], status["status"], status["command"]) == ("later", "queued", ["sh", "-c", "echo $A"])
    code, out, err, heavy = run(mgsup, "verbs", "kill", shells["queued"], shells["running"])
    assert (code, err, heavy) == (0, "", [])
    assert out.splitlines() == [f"{shells['queued']} removed from queue", f"{shells['running']} killed (SIGTERM)"]
    assert Supervisor(mgsup.home).wait_shell(shell_id, timeout=30)["status"] == "stopped"
    assert Supervisor(mgsup.home).get_shell_output(shell_id)["stdout"] == "1\n"


@pytest.mark.parametrize("args", [("--help",), ("status", "shell_00000000"), ("list", "--status", "bogus"),
                                  ("kill",), ("start",), ("start", "--config", "missing.yaml", "question"),
                                  ("--version",)],
                         ids=" ".join)
def test_what_the_fast_path_does_not_read_goes_to_click(mgsup: Mgsup, args: tuple[str, ...]) -> None:
    fast, slow = run(mgsup, "verbs", *args), run(mgsup, "cli", *args)
    assert "click" in fast[3]
    assert fast[:3] == slow[:3]


# -- the table without rich -------------------------------------------------------------------------------


def status(**fields: Any) -> dict[str, Any]:
    base = {"shell_id": "shell_0a1b2c3d", "name": None, "status": "stopped", "pid": 4242, "exit_code": 0,
            "created_at": "2026-01-01T00:00:00+00:00", "start_time": "2026-01-01T00:00:01+00:00",
            "duration_seconds": 12.5, "coordination": None, "command": "echo hi"}
    return {**base, **fields}


def rich_lines(shells: list[dict[str, Any]], width: int, now: float) -> list[str]:
    """What `progress.show` prints for the table in a pipe `width` columns wide."""
    screen = Console(width=width, force_terminal=False)
    with screen.capture() as captured:
        screen.print(render.shells_table(shells, now, width=width))
    return [line.rstrip() for line in captured.get().splitlines()]


TABLES = {
    "one": [status()],
    "mixed": [status(), status(shell_id="shell_00000001", name="a-name_of.16chrs", status="running", pid=None,
                             exit_code=None, duration_seconds=None, start_time=None),
              status(shell_id="shell_00000002", status="failed", exit_code=-9, pid=1,
                     command=["/usr/bin/python3", "-c", "print('x y')"]),
              status(shell_id="shell_00000003", coordination={"phase": "voting", "completion_percentage": 65},
                     command="x" * 80)],
    "a coordination run that stalled": [status(coordination={"phase": "initial_answer", "completion_percentage": 5,
                                                              "stalled": True})],
}


@pytest.mark.parametrize("name", TABLES)
def test_the_plain_table_is_what_rich_prints(name: str) -> None:
    now = time.mktime((2026, 1, 1, 3, 4, 5, 0, 0, 0))
    shells = TABLES[name]
    assert render.plain_table(shells, 200, now) == rich_lines(shells, 200, now)


@pytest.mark.parametrize("shells", [
    [status(name="a name longer than sixteen")],      # rich cuts it with an ellipsis
    [status(command="é" * 10)],                        # rich measures characters by their width on screen
    [status(command="x" * 300)],                       # too wide: rich narrows the columns
    [status(command="echo [bold]x")],                  # fine as Text, but...
], ids=["long name", "non-ASCII", "too wide", "markup in a Text cell"])
def test_tables_that_need_rich_are_left_to_it(shells: list[dict[str, Any]]) -> None:
    now = time.time()
    lines = render.plain_table(shells, 200, now)
    if lines is not None:  # a cell rich takes as Text is shown as it is: the same either way
        assert lines == rich_lines(shells, 200, now)
    else:
        assert rich_lines(shells, 200, now)


def test_a_table_too_wide_for_columns_goes_to_rich(mgsup: Mgsup, shells: dict[str, str]) -> None:
    env = {**mgsup.env, "COLUMNS": "30"}
    done = subprocess.run([sys.executable, "-c", RUN.format(module="verbs", heavy=HEAVY), "--home", str(mgsup.home),
                           "status"], cwd=mgsup.work, env=env, capture_output=True, text=True, timeout=60)
    assert "rich" in json.loads(done.stderr.splitlines()[-1])
    assert all(len(line) <= 30 for line in done.stdout.splitlines())


def test_the_console_script_and_python_m_use_the_fast_path() -> None:
    scripts = Path(sys.executable).parent
    script = (scripts / "mgsup").read_text() if (scripts / "mgsup").exists() else "from supervisor.verbs import main"
    assert "from supervisor.verbs import main" in script
    main = (Path(__file__).parents[2] / "supervisor" / "__main__.py").read_text()
    assert "from .verbs import main" in main
