"""`Supervisor.restart`: the same spec as a new shell; environment values are given again, never read from disk."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor import Supervisor
from supervisor.errors import InvalidRequest

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def test_restart_repeats_the_spec_as_a_new_shell(home: Supervisor, tmp_path: Path) -> None:
    old = home.start_shell("echo $PWD; exit 3", cwd=tmp_path, name="job", timeout=50, group="g", retries=1,
                           merge_output=True)
    home.wait_shell(old, timeout=10)
    new = home.restart("job")
    assert new != old and home.resolve("job") == new
    final = home.wait_shell(new, timeout=10)
    assert (final["restarted_from"], final["name"], final["group"], final["retries"]) == (old, "job", "g", 1)
    assert final["command"] == "echo $PWD; exit 3" and final["cwd"] == str(tmp_path)
    assert (final["status"], final["exit_code"], final["attempt"]) == ("failed", 3, 2)
    spec = (home.home / "shells" / new / "spec.json").read_text()
    assert '"timeout":50' in spec.replace(" ", "") and '"merge_output":true' in spec.replace(" ", "")


def test_restarting_a_running_shell_kills_it_first(home: Supervisor) -> None:
    old = home.start_shell("sleep 30")
    new = home.restart(old)
    assert home.get_shell_status(old)["status"] == "killed"
    assert home.get_shell_status(new)["status"] == "running"


def test_environment_values_must_be_given_again(home: Supervisor, monkeypatch: pytest.MonkeyPatch,
                                                 wait_for: Callable[..., Any]) -> None:
    monkeypatch.delenv("MGSUP_TEST_TOKEN", raising=False)
    old = home.start_shell("echo token=$MGSUP_TEST_TOKEN; sleep 30", env={"MGSUP_TEST_TOKEN": "first"})
    assert "first" not in "".join(p.read_text() for p in (home.home / "shells" / old).glob("*.json"))
    with pytest.raises(InvalidRequest, match=f"{old} was started with MGSUP_TEST_TOKEN set, and environment "
                                             "values are never kept: give it again"):
        home.restart(old)
    assert home.get_shell_status(old)["status"] == "running", "a refused restart kills nothing"
    assert len(home.list_shells()) == 1
    given = home.restart(old, env={"MGSUP_TEST_TOKEN": "second"})
    monkeypatch.setenv("MGSUP_TEST_TOKEN", "third")
    inherited = home.restart(given)
    for shell_id, value in ((given, "second"), (inherited, "third")):
        assert home.get_shell_status(shell_id)["restarted_from"] in (old, given)
        # Killed once it has printed: a kill that comes first (a loaded machine) would leave nothing to compare.
        wait_for(lambda sid=shell_id: home.get_shell_output(sid)["stdout"], what="the job to print its token")
        home.kill_shell(shell_id)
        assert home.get_shell_output(shell_id)["stdout"] == f"token={value}\n"


def test_a_start_that_would_fail_is_refused_before_the_old_shell_is_killed(home: Supervisor, tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\nsleep 30\n")
    script.chmod(0o755)
    old = home.start_shell(["./run.sh"], cwd=tmp_path)
    script.unlink()
    with pytest.raises(InvalidRequest, match="command not found or not executable"):
        home.restart(old)
    assert home.get_shell_status(old)["status"] == "running"


def test_an_isolated_shell_restarts_in_a_fresh_workspace(home: Supervisor, tmp_path: Path) -> None:
    old = home.start_shell("pwd", cwd=tmp_path, isolate=True, name="iso")
    new = home.restart(old)
    for shell_id in (old, new):
        home.wait_shell(shell_id, timeout=10)
    workspaces = tmp_path / ".mgsup" / "workspaces"
    assert home.get_shell_output(new)["stdout"] == f"{workspaces / ('iso_' + new[6:])}\n"
    assert sorted(os.listdir(workspaces)) == sorted([f"iso_{old[6:]}", f"iso_{new[6:]}"])


@pytest.mark.timeout(120)
def test_a_coordination_run_restarts_with_its_own_instance_id(home: Supervisor, tmp_path: Path) -> None:
    old = home.start_coordination(CONFIG, "What is 17 * 23?", cwd=tmp_path, name="demo")
    assert home.wait_shell(old, timeout=60)["status"] == "stopped"
    new = home.restart("demo")
    final = home.wait_shell(new, timeout=60)
    assert final["status"] == "stopped" and final["question"] == "What is 17 * 23?"
    assert final["command"][-3:] == ["--instance-id", new[6:], "What is 17 * 23?"]
    assert final["log_dir"] != home.get_shell_status(old)["log_dir"]
