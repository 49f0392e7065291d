"""`mgsup start` and `mgsup wait`: commands, options, exit codes and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import CONTRACT_KEYS, Mgsup


def test_start_prints_the_shell_id_alone(mgsup: Mgsup) -> None:
    out = mgsup.ok("start", "--", "sleep 0.1; echo hi")
    assert re.fullmatch(r"shell_[0-9a-f]{8}\n", out)
    assert mgsup.ok("wait", out.strip()) == ""
    assert mgsup.ok("logs", out.strip()) == "hi\n"


def test_one_argument_runs_under_the_shell_and_several_run_directly(mgsup: Mgsup) -> None:
    as_shell = mgsup.start("--", "echo $((1+2)); echo x | tr x y")
    direct = mgsup.start("--", "printf", "%s\\n", "a b", "$HOME")
    for shell_id in (as_shell, direct):
        mgsup.ok("wait", shell_id)
    assert mgsup.ok("logs", as_shell) == "3\ny\n"
    assert mgsup.ok("logs", direct) == "a b\n$HOME\n"


def test_start_json_is_the_status_document(mgsup: Mgsup) -> None:
    status = json.loads(mgsup.ok("start", "--json", "--name", "nap", "--", "sleep", "5"))
    assert status.keys() >= CONTRACT_KEYS
    assert status["status"] == "running" and status["pid"] > 0
    assert status["name"] == "nap" and status["command"] == ["sleep", "5"]
    assert status["cwd"] == str(mgsup.work)


def test_env_cwd_and_isolate_reach_the_job(mgsup: Mgsup, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    env_id = mgsup.start("--env", "GREETING=a=b", "--env", "EMPTY=", "--cwd", str(other), "--",
                         'echo "$GREETING|$EMPTY|$(pwd)"')
    iso_id = mgsup.start("--isolate", "--name", "iso", "--", "pwd")
    for shell_id in (env_id, iso_id):
        mgsup.ok("wait", shell_id)
    assert mgsup.ok("logs", env_id) == f"a=b||{other}\n"
    assert mgsup.ok("logs", iso_id) == f"{mgsup.work}/.mgsup/workspaces/iso_{iso_id[6:]}\n"


@pytest.mark.parametrize(("script", "code"), [("true", 0), ("exit 3", 3), ("kill -TERM $$", 143),
                                              ("kill -KILL $$", 137)])
def test_start_wait_and_wait_exit_with_the_jobs_code(mgsup: Mgsup, script: str, code: int) -> None:
    waited = mgsup.run("start", "--wait", "--", script)
    assert waited.code == code, waited
    shell_id = waited.out.splitlines()[0]
    assert mgsup.run("wait", shell_id).code == code
    final = json.loads(mgsup.run("wait", "--json", shell_id).out)
    assert final["shell_id"] == shell_id and final["status"] in ("stopped", "failed", "killed")


def test_start_wait_json_prints_one_document(mgsup: Mgsup) -> None:
    result = mgsup.run("start", "--wait", "--json", "--", "echo hi; exit 4")
    assert result.code == 4
    final = json.loads(result.out)
    assert final["status"] == "failed" and final["exit_code"] == 4


def test_a_killed_shell_waits_with_128_plus_signal(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "sleep", "30")
    assert mgsup.ok("kill", shell_id) == f"{shell_id} killed (SIGTERM)\n"
    assert mgsup.run("wait", shell_id).code == 143
    timed = mgsup.run("start", "--timeout", "0.3", "--wait", "--json", "--", "sleep", "30")
    assert timed.code == 143
    assert json.loads(timed.out)["timed_out"] is True


def test_wait_timeout_exits_124_and_leaves_the_shell_running(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "sleep", "30")
    result = mgsup.run("wait", "--timeout", "0.3", shell_id)
    assert result.code == 124
    assert "still running" in result.error_line()
    assert json.loads(mgsup.ok("status", "--json", shell_id))["status"] == "running"


@pytest.mark.parametrize(("args", "message"), [
    (["--", ""], "command is empty"),
    (["--", "   "], "command is empty"),
    ([], "no command given"),
    (["--cwd", "/nonexistent/dir", "--", "true"], "cwd does not exist"),
    (["--env", "NOEQUALS", "--", "true"], "'NOEQUALS' is not of the form NAME=VALUE"),
    (["--env", "=value", "--", "true"], "invalid environment variable name"),
    (["--timeout", "-1", "--", "true"], "timeout must be more than zero"),
    (["--timeout", "soon", "--", "true"], "'soon' is not a valid float"),
    (["--name", "bad name!", "--", "true"], "invalid name"),
    (["--", "no-such-program-xyz", "arg"], "command not found"),
    (["--config", "missing.yaml", "What?"], "config file not found"),
    (["--config", "x.yaml", "--isolate", "What?"], "--isolate does not apply to a coordination run"),
    (["--config", "x.yaml", "one", "two"], "one quoted argument"),
])
def test_bad_input_is_one_line_exit_2_and_creates_nothing(mgsup: Mgsup, args: list[str], message: str) -> None:
    result = mgsup.run("start", *args)
    assert result.code == 2, result
    assert result.out == ""
    assert message in result.error_line()
    assert mgsup.shell_dirs() == []


def test_limit_reached_exits_4_and_queue_waits_for_a_slot(mgsup: Mgsup) -> None:
    first = mgsup.ok("--max-concurrent", "1", "start", "--", "sleep 30").strip()
    refused = mgsup.run("--max-concurrent", "1", "start", "--", "true")
    assert refused.code == 4
    assert "Maximum concurrent shells (1) reached" in refused.error_line()
    assert "mgsup start --queue" in refused.error_line()
    assert [d.name for d in mgsup.shell_dirs()] == [first]
    queued = mgsup.ok("--max-concurrent", "1", "start", "--queue", "--json", "--", "echo later")
    queued_id = json.loads(queued)["shell_id"]
    assert json.loads(queued)["status"] == "queued"
    mgsup.ok("kill", first)
    assert mgsup.run("wait", queued_id).code == 0
    assert mgsup.ok("logs", queued_id) == "later\n"


def test_an_unusable_home_exits_5(mgsup: Mgsup, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    result = mgsup.run("--home", str(not_a_dir), "start", "--", "true")
    assert result.code == 5
    assert "state directory" in result.error_line()
