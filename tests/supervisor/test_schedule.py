"""Groups with their own limits and shells that start after others, decided by the one admission path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor import LimitReached, Supervisor
from supervisor.errors import InvalidRequest, ShellNotFound


def _run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, env=os.environ, check=True)
    return done.stdout


def test_a_group_limit_holds_under_the_home_limit(home: Supervisor, wait_for: Callable[..., Any],
                                                   tmp_path: Path) -> None:
    assert home.set_group_limit("gpu", 1)["max_concurrent"] == 1
    go = tmp_path / "go"
    first = home.start_shell(f"while [ ! -e {go} ]; do sleep 0.02; done", group="gpu")
    with pytest.raises(LimitReached, match="Maximum concurrent shells of group 'gpu' \\(1\\) reached"):
        home.start_shell("true", group="gpu")
    waiting = home.start_shell("echo second", group="gpu", queue=True)
    # Other shells are not held up by the full group.
    assert home.wait_shell(home.start_shell("true", group="cpu"), timeout=10)["status"] == "stopped"
    assert home.wait_shell(home.start_shell("true"), timeout=10)["status"] == "stopped"
    assert home.get_shell_status(waiting)["status"] == "queued"
    assert home.groups() == [
        {"group": "cpu", "max_concurrent": None, "running": 0, "queued": 0, "shells": 1},
        {"group": "gpu", "max_concurrent": 1, "running": 1, "queued": 1, "shells": 2}]
    go.touch()
    assert home.wait_shell(waiting, timeout=10)["status"] == "stopped"
    assert home.wait_shell(first, timeout=10)["status"] == "stopped"


def test_raising_a_group_limit_starts_its_queued_shells(home: Supervisor, tmp_path: Path) -> None:
    home.set_group_limit("io", 1)
    blocker = home.start_shell("sleep 30", group="io")
    queued = home.start_shell("echo let in", group="io", queue=True)
    assert home.get_shell_status(queued)["status"] == "queued"
    home.set_group_limit("io", None)
    assert home.wait_shell(queued, timeout=10)["status"] == "stopped"
    assert home.kill_shell(blocker)["status"] == "killed"
    assert json.loads((home.home / "groups.json").read_text()) == {}


def test_a_group_limit_set_later_counts_the_shells_already_running(home: Supervisor) -> None:
    # Without any group limit, admission does not read which group a slot belongs to; the slot
    # still records it, for a limit set afterwards.
    running = home.start_shell("sleep 30", group="late")
    home.set_group_limit("late", 1)
    with pytest.raises(LimitReached, match="group 'late'"):
        home.start_shell("true", group="late")
    assert home.wait_shell(home.start_shell("true", group="other"), timeout=10)["status"] == "stopped"
    assert home.kill_shell(running)["status"] == "killed"


def test_the_group_limit_is_shared_across_processes(home: Supervisor) -> None:
    _run_python("""
        from supervisor import Supervisor
        sup = Supervisor()
        sup.set_group_limit("g", 1)
        sup.start_shell("sleep 30", group="g")
    """)
    with pytest.raises(LimitReached, match="group 'g'"):
        home.start_shell("true", group="g")


def test_bad_group_input_writes_nothing(home: Supervisor) -> None:
    for call, message in ((lambda: home.set_group_limit("g", 0), "max_concurrent must be a whole number"),
                          (lambda: home.set_group_limit("bad name", 2), "invalid group 'bad name'"),
                          (lambda: home.start_shell("true", group="a/b"), "invalid group 'a/b'")):
        with pytest.raises(InvalidRequest, match=message):
            call()
    assert not (home.home / "groups.json").exists()
    assert not (home.home / "shells").exists() or not any((home.home / "shells").iterdir())


def test_a_shell_starts_after_its_dependencies_succeed(home: Supervisor, tmp_path: Path) -> None:
    go, order = tmp_path / "go", tmp_path / "order"
    build = home.start_shell(f"while [ ! -e {go} ]; do sleep 0.02; done; echo build >> {order}", name="build")
    lint = home.start_shell(f"echo lint >> {order}", name="lint")
    tests = home.start_shell(f"echo tests >> {order}", after=["build", lint[6:]])
    status = home.get_shell_status(tests)
    assert status["status"] == "queued" and status["after"] == [build, lint]
    assert status["message"] in (f"waiting for {build}, {lint} to end", f"waiting for {build} to end")
    go.touch()
    assert home.wait_shell(tests, timeout=10)["status"] == "stopped"
    assert order.read_text().split()[-1] == "tests"


def test_a_failed_dependency_fails_its_dependents_without_running_them(home: Supervisor, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    go = tmp_path / "go"
    build = home.start_shell(f"while [ ! -e {go} ]; do sleep 0.02; done; exit 4", name="build")
    tests = home.start_shell(f"touch {ran}", after=[build])
    deploy = home.start_shell(f"touch {ran}", after=[tests])
    go.touch()
    final = home.wait_shell(tests, timeout=10)
    assert (final["status"], final["exit_code"]) == ("failed", None)
    assert final["message"] == f"not started: {build}, which it was to start after, ended failed (exit 4)"
    assert home.wait_shell(deploy, timeout=10)["message"] == (
        f"not started: {tests}, which it was to start after, ended failed")
    assert not ran.exists()
    assert not (home.home / "shells" / tests / "env.json").exists()
    # Already failed when the start comes: the new shell ends at once.
    late = home.start_shell(f"touch {ran}", after=["build"])
    assert home.get_shell_status(late)["status"] == "failed" and not ran.exists()


def test_a_killed_or_removed_dependency_fails_its_dependent(home: Supervisor) -> None:
    long = home.start_shell("sleep 30")
    dependent = home.start_shell("true", after=[long])
    home.kill_shell(long)
    assert "ended killed (SIGTERM)" in home.wait_shell(dependent, timeout=10)["message"]
    done = home.start_shell("true")
    home.wait_shell(done, timeout=10)
    blocker = home.start_shell("sleep 30")
    second = home.start_shell("true", after=[done, blocker])
    home.clean([done])
    home.kill_shell(blocker)
    assert home.wait_shell(second, timeout=10)["message"] == (
        f"not started: {done}, which it was to start after, is no longer on record")


def test_unknown_dependencies_are_refused_before_anything_is_written(home: Supervisor) -> None:
    with pytest.raises(ShellNotFound, match="no shell 'nothing-like-it'"):
        home.start_shell("true", after=["nothing-like-it"])
    with pytest.raises(InvalidRequest, match="after must be a list of shell references"):
        home.start_shell("true", after="build")  # type: ignore[arg-type]
    assert not (home.home / "shells").exists() or not any((home.home / "shells").iterdir())


@pytest.mark.timeout(60)
def test_dependents_start_after_the_caller_is_gone(home: Supervisor, tmp_path: Path) -> None:
    go = tmp_path / "go"
    ids = _run_python(f"""
        from supervisor import Supervisor
        sup = Supervisor()
        first = sup.start_shell("while [ ! -e {go} ]; do sleep 0.02; done")
        print(first, sup.start_shell("echo after", after=[first]))
    """).split()
    go.touch()
    final = home.wait_shell(ids[1], timeout=20)
    assert final["status"] == "stopped" and home.get_shell_output(ids[1])["stdout"] == "after\n"
