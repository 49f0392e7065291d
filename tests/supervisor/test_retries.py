"""`retries` / `retry_delay`: a failed, timed-out or crashed job runs again; a killed one never does."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor import Supervisor
from supervisor.errors import InvalidRequest


def _counting(tmp_path: Path, succeed_at: int) -> str:
    """A job that counts its runs in a file and exits 0 from run `succeed_at` on (1 otherwise)."""
    counter = tmp_path / "runs"
    return (f"n=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); echo $n > {counter}; echo run $n; "
            f"[ $n -ge {succeed_at} ]")


def test_a_failing_job_runs_again_until_it_succeeds(home: Supervisor, tmp_path: Path) -> None:
    shell_id = home.start_shell(_counting(tmp_path, 3), retries=5)
    final = home.wait_shell(shell_id, timeout=20)
    assert (final["status"], final["attempt"], final["retries"]) == ("stopped", 3, 5)
    assert final["message"] == "attempt 3 of 6; the 2 earlier ones failed"
    out = home.get_shell_output(shell_id)
    assert out["stdout"] == "run 1\nrun 2\nrun 3\n"
    assert out["stderr"] == ("mgsup: attempt 1 exited 1; attempt 2 of 6 starts\n"
                             "mgsup: attempt 2 exited 1; attempt 3 of 6 starts\n")


def test_the_last_attempt_decides(home: Supervisor, tmp_path: Path) -> None:
    final = home.wait_shell(home.start_shell(_counting(tmp_path, 99), retries=2), timeout=20)
    assert (final["status"], final["exit_code"], final["attempt"]) == ("failed", 1, 3)
    assert final["message"] == "attempt 3 of 3; the 2 earlier ones failed"


def test_a_timeout_is_per_attempt_and_retried(home: Supervisor) -> None:
    final = home.wait_shell(home.start_shell("sleep 30", timeout=0.3, retries=1), timeout=30)
    assert (final["status"], final["timed_out"], final["attempt"]) == ("killed", True, 2)


def test_a_killed_job_is_not_run_again(home: Supervisor) -> None:
    shell_id = home.start_shell("sleep 30", retries=5)
    assert home.kill_shell(shell_id)["status"] == "killed"
    assert home.get_shell_status(shell_id)["attempt"] == 1


def test_a_kill_between_attempts_ends_the_shell(home: Supervisor, wait_for: Callable[..., Any]) -> None:
    shell_id = home.start_shell("exit 3", retries=2, retry_delay=60)
    waiting = wait_for(lambda: (s := home.get_shell_status(shell_id))["attempt"] == 2 and s, what="the retry")
    assert waiting["status"] == "running" and waiting["pid"] is None and waiting["exit_code"] is None
    assert waiting["message"] == "attempt 1 exited 3; attempt 2 of 3 starts in 60 s"
    assert home.kill_shell(shell_id)["status"] == "killed"
    final = home.get_shell_status(shell_id)
    assert final["message"].startswith("killed before attempt 2 started")
    assert home.get_shell_output(shell_id)["stdout"] == ""


@pytest.mark.timeout(60)
def test_retries_go_on_after_the_caller_is_gone(home: Supervisor, tmp_path: Path) -> None:
    code = f"""
        from supervisor import Supervisor
        print(Supervisor().start_shell({_counting(tmp_path, 2)!r}, retries=3, retry_delay=0.2))
    """
    shell_id = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=60, env=os.environ, check=True).stdout.strip()
    final = home.wait_shell(shell_id, timeout=30)
    assert (final["status"], final["attempt"]) == ("stopped", 2)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"retries": -1}, "retries must be a whole number from 0 to 1000"),
    ({"retries": True}, "retries must be a whole number"),
    ({"retries": 1, "retry_delay": -2}, "retry_delay must be zero or more seconds"),
])
def test_bad_retries_start_nothing(home: Supervisor, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        home.start_shell("true", **kwargs)
    assert not (home.home / "shells").exists() or not any((home.home / "shells").iterdir())
