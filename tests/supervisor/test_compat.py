"""supervisor.compat: MassGen's BackgroundShellManager interface on real mgsup shells, and what mgsup adds."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import supervisor
from supervisor import LimitReached, Supervisor, compat, proc
from supervisor.compat import BackgroundShellManager

PY = sys.executable
STATUS_KEYS = ["shell_id", "status", "exit_code", "pid", "command", "cwd", "start_time", "duration_seconds"]
OUTPUT_KEYS = ["shell_id", "stdout", "stderr", "status", "exit_code"]


@pytest.fixture
def manager(home: Supervisor) -> Iterator[BackgroundShellManager]:
    """The process's manager, with no shells of earlier tests and MassGen's default settings."""
    BackgroundShellManager.reset_for_testing()
    manager = BackgroundShellManager()
    manager._max_concurrent, manager._max_output_lines = 10, compat.DEFAULT_MAX_OUTPUT_LINES
    yield manager
    BackgroundShellManager.reset_for_testing()


def ended(manager: BackgroundShellManager, shell_id: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        status = manager.get_status(shell_id)
        return status if status["status"] != "running" else None

    return check


def test_one_manager_per_process_importable_from_the_package() -> None:
    assert supervisor.BackgroundShellManager is BackgroundShellManager
    assert BackgroundShellManager() is BackgroundShellManager()


def test_start_read_and_finish(manager: BackgroundShellManager, home: Supervisor,
                               wait_for: Callable[..., Any]) -> None:
    shell_id = manager.start_shell("echo 'first line' && echo second && echo oops >&2")
    assert shell_id.startswith("shell_") and shell_id in manager._shells
    status = wait_for(ended(manager, shell_id), what="the echo to end")
    assert list(status) == STATUS_KEYS
    assert (status["status"], status["exit_code"], status["cwd"]) == ("stopped", 0, None)
    assert status["pid"] > 0 and status["command"] == "echo 'first line' && echo second && echo oops >&2"
    output = manager.get_output(shell_id)
    assert list(output) == OUTPUT_KEYS
    # As MassGen's: lines joined with newlines, without the last one.
    assert (output["stdout"], output["stderr"], output["status"]) == ("first line\nsecond", "oops", "stopped")
    # The same shell as the library sees it.
    assert home.get_shell_status(shell_id)["status"] == "stopped"


def test_failure_and_running_states(manager: BackgroundShellManager, wait_for: Callable[..., Any]) -> None:
    failing = manager.start_shell("exit 3")
    sleeper = manager.start_shell("sleep 30")
    assert wait_for(ended(manager, failing))["exit_code"] == 3
    assert manager.get_status(failing)["status"] == "failed"
    running = manager.get_status(sleeper)
    assert (running["status"], running["exit_code"]) == ("running", None)
    assert [s["shell_id"] for s in manager.list_shells()] == [failing, sleeper]


def test_kill_stops_the_whole_tree_and_reports_like_massgen(manager: BackgroundShellManager,
                                                            wait_for: Callable[..., Any]) -> None:
    # A grandchild in its own session that ignores SIGTERM: MassGen's kill reaches the direct child only.
    shell_id = manager.start_shell(
        f"setsid {PY} -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)' & "
        "sleep 60")

    def whole_tree() -> set[int] | None:
        pids = proc.tagged(shell_id)
        return pids if len(pids) >= 3 else None

    tree = wait_for(whole_tree, what="the job's tree: sh, python, sleep")
    assert manager.kill_shell(shell_id) == {"shell_id": shell_id, "status": "killed", "signal": "SIGTERM"}
    assert [pid for pid in tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"] == []
    status = manager.get_status(shell_id)
    assert (status["status"], status["exit_code"]) == ("killed", -15)
    assert manager.kill_shell(shell_id) == {"shell_id": shell_id, "status": "killed", "signal": None,
                                            "message": "Process already terminated"}


def test_unknown_ids_raise_key_error(manager: BackgroundShellManager) -> None:
    for call in (manager.get_status, manager.get_output, manager.kill_shell):
        with pytest.raises(KeyError):
            call("shell_nonexistent")


def test_the_limit_is_checked_at_start(manager: BackgroundShellManager, home: Supervisor) -> None:
    manager._max_concurrent = 2
    first, second = manager.start_shell("sleep 30"), manager.start_shell("sleep 30")
    with pytest.raises(RuntimeError, match=r"Maximum concurrent shells \(2\) reached") as raised:
        manager.start_shell("sleep 30")
    assert isinstance(raised.value, LimitReached)
    assert [s["shell_id"] for s in home.list_shells()] == [first, second]
    assert list(manager._shells) == [first, second]


def test_output_shows_the_last_lines_and_keeps_them_all_on_disk(manager: BackgroundShellManager, home: Supervisor,
                                                                wait_for: Callable[..., Any]) -> None:
    manager._max_output_lines = 5
    shell_id = manager.start_shell([PY, "-c", "for i in range(1, 101): print('Line', i)"])
    wait_for(ended(manager, shell_id))
    assert manager.get_output(shell_id)["stdout"] == "\n".join(f"Line {i}" for i in range(96, 101))
    assert home.get_shell_output(shell_id)["stdout"].count("\n") == 100


def test_cwd_and_env_as_popen_takes_them(manager: BackgroundShellManager, tmp_path: Path,
                                         wait_for: Callable[..., Any]) -> None:
    (tmp_path / "marker.txt").write_text("here")
    listing = manager.start_shell("ls", cwd=str(tmp_path))
    # env is the job's whole environment, as with subprocess.Popen(env=...).
    only = manager.start_shell("echo \"[$ONLY_VAR][$HOME]\"", env={"ONLY_VAR": "x1", "PATH": os.environ["PATH"]})
    wait_for(ended(manager, listing))
    wait_for(ended(manager, only))
    assert "marker.txt" in manager.get_output(listing)["stdout"]
    assert manager.get_status(listing)["cwd"] == str(tmp_path)
    assert manager.get_output(only)["stdout"] == "[x1][]"


def test_duration_grows_then_freezes(manager: BackgroundShellManager, wait_for: Callable[..., Any]) -> None:
    shell_id = manager.start_shell([PY, "-c", "import sys; sys.stdin.read()"])
    first = manager.get_status(shell_id)["duration_seconds"]
    wait_for(lambda: manager.get_status(shell_id)["duration_seconds"] > first, what="the duration to grow")
    manager.kill_shell(shell_id)
    frozen = manager.get_status(shell_id)["duration_seconds"]
    assert frozen == round(frozen, 2) and manager.get_status(shell_id)["duration_seconds"] == frozen


def test_module_functions_use_the_process_manager(manager: BackgroundShellManager,
                                                  wait_for: Callable[..., Any]) -> None:
    shell_id = compat.start_shell("echo convenient")
    assert shell_id in manager._shells
    wait_for(lambda: compat.get_shell_status(shell_id)["status"] == "stopped")
    assert compat.get_shell_output(shell_id)["stdout"] == "convenient"
    assert [s["shell_id"] for s in compat.list_shells()] == [shell_id]
    sleeper = compat.start_shell("sleep 30")
    assert compat.kill_shell(sleeper)["status"] == "killed"


def test_shells_outlive_the_process_that_started_them(manager: BackgroundShellManager, home: Supervisor,
                                                      wait_for: Callable[..., Any]) -> None:
    started = subprocess.run(
        [PY, "-c", "from supervisor import BackgroundShellManager as M; m = M(); "
                   "print(m.start_shell('echo kept; sleep 30')); print(m.start_shell('echo done'))"],
        capture_output=True, text=True, check=True, timeout=60)
    running, finished = started.stdout.split()
    # The starting process exited: like MassGen's, its manager killed the shell still running.
    assert manager.get_status(running)["status"] == "killed"
    # Unlike MassGen's, ids and output are still there for any process.
    wait_for(lambda: manager.get_status(finished)["status"] == "stopped")
    assert manager.get_output(finished)["stdout"] == "done"
    assert manager.get_output(running)["stdout"] == "kept"
    assert running not in manager._shells and manager.list_shells() == []


def test_cleanup_all_kills_only_this_managers_shells(manager: BackgroundShellManager, home: Supervisor) -> None:
    mine = manager.start_shell("sleep 30")
    other = home.start_shell("sleep 30")
    manager.cleanup_all()
    assert manager.get_status(mine)["status"] == "killed"
    assert home.get_shell_status(other)["status"] == "running"
    BackgroundShellManager.reset_for_testing()
    assert manager._shells == {} and BackgroundShellManager() is manager
