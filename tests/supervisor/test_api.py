"""The Python API of DESIGN §2 on real processes: keys, values, commands, environments, errors."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import supervisor
from supervisor import (
    InvalidRequest,
    LimitReached,
    ShellNotFound,
    Supervisor,
    SupervisorError,
    get_shell_output,
    get_shell_status,
    kill_shell,
    list_shells,
    start_shell,
    wait_shell,
)

STATUS_KEYS = {"shell_id", "name", "status", "exit_code", "signal", "timed_out", "pid", "command", "cwd",
               "start_time", "end_time", "duration_seconds", "stdout_path", "stderr_path", "log_dir",
               "status_file", "coordination"}
OUTPUT_KEYS = {"shell_id", "stdout", "stderr", "status", "exit_code", "stdout_next_offset", "stderr_next_offset",
               "stdout_truncated", "stderr_truncated"}
PY = sys.executable


def test_public_names() -> None:
    for name in ("Supervisor", "start_shell", "get_shell_status", "get_shell_output", "kill_shell", "list_shells",
                 "wait_shell", "SupervisorError", "ShellNotFound", "LimitReached", "InvalidRequest"):
        assert getattr(supervisor, name) is not None
    assert issubclass(ShellNotFound, KeyError) and issubclass(InvalidRequest, ValueError)
    assert issubclass(LimitReached, RuntimeError)
    assert all(issubclass(e, SupervisorError) for e in (ShellNotFound, InvalidRequest, LimitReached))
    assert [e.exit_code for e in (SupervisorError, InvalidRequest, ShellNotFound, LimitReached)] == [1, 2, 3, 4]


def test_running_then_stopped_status(home: Supervisor, wait_for: Callable[..., Any]) -> None:
    sid = home.start_shell("echo out; echo err >&2; sleep 0.4", name="job")
    assert re.fullmatch(r"shell_[0-9a-f]{8}", sid)
    running = home.get_shell_status(sid)
    assert running.keys() >= STATUS_KEYS
    assert running["status"] == "running" and running["exit_code"] is None and running["end_time"] is None
    assert running["pid"] and Path(f"/proc/{running['pid']}").exists()
    assert running["name"] == "job" and running["command"] == "echo out; echo err >&2; sleep 0.4"
    assert running["log_dir"] is None and running["status_file"] is None and running["coordination"] is None
    first = running["duration_seconds"]
    assert first is not None and first >= 0
    wait_for(lambda: home.get_shell_status(sid)["duration_seconds"] > first, what="duration to grow")

    final = home.wait_shell(sid, timeout=10)
    assert final["status"] == "stopped" and final["exit_code"] == 0 and final["signal"] is None
    assert final["timed_out"] is False
    start, end = datetime.fromisoformat(final["start_time"]), datetime.fromisoformat(final["end_time"])
    assert start.tzinfo is not None and end > start
    assert final["duration_seconds"] == pytest.approx((end - start).total_seconds(), abs=0.01)
    assert final["duration_seconds"] >= 0.4
    assert home.get_shell_status(sid)["duration_seconds"] == final["duration_seconds"], "frozen after the end"
    assert Path(final["stdout_path"]).read_text() == "out\n"
    assert Path(final["stderr_path"]).read_text() == "err\n"

    out = home.get_shell_output(sid)
    assert out.keys() >= OUTPUT_KEYS
    assert (out["stdout"], out["stderr"], out["status"], out["exit_code"]) == ("out\n", "err\n", "stopped", 0)
    assert (out["stdout_next_offset"], out["stderr_next_offset"]) == (4, 4)
    assert not out["stdout_truncated"] and not out["stderr_truncated"]


def test_failed_exit_code(home: Supervisor) -> None:
    sid = home.start_shell(["sh", "-c", "exit 3"])
    final = home.wait_shell(sid, timeout=10)
    assert (final["status"], final["exit_code"], final["signal"]) == ("failed", 3, None)


def test_signal_gives_a_negative_exit_code(home: Supervisor) -> None:
    sid = home.start_shell([PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    final = home.wait_shell(sid, timeout=10)
    assert (final["status"], final["exit_code"], final["signal"]) == ("killed", -signal.SIGSEGV, "SIGSEGV")


def test_string_runs_under_sh_list_runs_directly(home: Supervisor) -> None:
    by_shell = home.start_shell("echo $((6 * 7)) | tr 4 X")
    direct = home.start_shell(["echo", "$((6 * 7))", "|", "tr"])
    assert home.wait_shell(by_shell, timeout=10)["status"] == "stopped"
    assert home.wait_shell(direct, timeout=10)["command"] == ["echo", "$((6 * 7))", "|", "tr"]
    assert home.get_shell_output(by_shell)["stdout"] == "X2\n"
    assert home.get_shell_output(direct)["stdout"] == "$((6 * 7)) | tr\n"


def test_env_overlay_inherit_and_pythonunbuffered(home: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGSUP_TEST_INHERITED", "from-caller")
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    # The job's own environment block: os.environ of a Python job would show its own locale coercion.
    code = "import json; print(json.dumps(dict(e.split('=', 1) for e in " \
           "open('/proc/self/environ').read().split('\\0') if e)))"
    overlay = home.start_shell([PY, "-c", code], env={"EXTRA": "x y", "MGSUP_TEST_INHERITED": "overridden"})
    inherited = home.start_shell([PY, "-c", code])
    bare = home.start_shell([PY, "-c", code], env={"ONLY": "1"}, inherit_env=False)
    own = home.start_shell([PY, "-c", code], env={"PYTHONUNBUFFERED": "0"})
    envs = {}
    for sid in (overlay, inherited, bare, own):
        assert home.wait_shell(sid, timeout=10)["status"] == "stopped"
        envs[sid] = json.loads(home.get_shell_output(sid)["stdout"])
    assert envs[overlay]["EXTRA"] == "x y" and envs[overlay]["MGSUP_TEST_INHERITED"] == "overridden"
    assert envs[overlay]["PATH"] == os.environ["PATH"]
    assert envs[inherited]["MGSUP_TEST_INHERITED"] == "from-caller"
    assert set(envs[bare]) == {"ONLY", "PYTHONUNBUFFERED", "MGSUP_SHELL_ID"}
    assert all(envs[sid]["PYTHONUNBUFFERED"] == "1" for sid in (overlay, inherited, bare))
    assert envs[own]["PYTHONUNBUFFERED"] == "0"
    assert envs[bare]["MGSUP_SHELL_ID"] == bare


def test_locale_variables_pass_unchanged(home: Supervisor) -> None:
    """The monitor is a Python process whose start coerces a C locale; the job must not see that."""
    exact = home.start_shell(["env"], env={"LC_CTYPE": "C", "ONLY": "1"}, inherit_env=False)
    assert home.wait_shell(exact, timeout=10)["status"] == "stopped"
    lines = set(home.get_shell_output(exact)["stdout"].splitlines())
    assert lines == {"LC_CTYPE=C", "ONLY=1", "PYTHONUNBUFFERED=1", f"MGSUP_SHELL_ID={exact}"}


def test_unbuffered_python_output_is_visible_while_running(home: Supervisor, wait_for: Callable[..., Any]) -> None:
    sid = home.start_shell([PY, "-c", "import time; print('early'); time.sleep(30)"])
    wait_for(lambda: home.get_shell_output(sid)["stdout"] == "early\n", what="unbuffered output")
    home.kill_shell(sid, grace=1)


def test_cwd_and_isolate(home: Supervisor, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    plain = home.start_shell("pwd", cwd=work)
    named = home.start_shell("pwd; touch made-here", cwd=work, isolate=True, name="builder")
    anon = home.start_shell("pwd", cwd=work, isolate=True)
    for sid in (plain, named, anon):
        assert home.wait_shell(sid, timeout=10)["status"] == "stopped"
    assert home.get_shell_output(plain)["stdout"] == f"{work}\n"
    named_dir = work / ".mgsup" / "workspaces" / f"builder_{named[6:]}"
    anon_dir = work / ".mgsup" / "workspaces" / f"shell_{anon[6:]}"
    assert home.get_shell_output(named)["stdout"] == f"{named_dir}\n"
    assert (named_dir / "made-here").is_file()
    assert home.get_shell_output(anon)["stdout"] == f"{anon_dir}\n"
    assert home.get_shell_status(named)["cwd"] == str(named_dir)


def test_isolate_defaults_to_the_current_directory(home: Supervisor, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sid = home.start_shell("pwd", isolate=True)
    home.wait_shell(sid, timeout=10)
    assert home.get_shell_output(sid)["stdout"] == f"{tmp_path}/.mgsup/workspaces/shell_{sid[6:]}\n"


@pytest.mark.timeout(30)
def test_timeout_kills_and_says_timed_out(home: Supervisor) -> None:
    sid = home.start_shell("sleep 30 & sleep 30; echo never", timeout=0.3)
    final = home.wait_shell(sid, timeout=15)
    assert final["status"] == "killed" and final["timed_out"] is True
    assert final["exit_code"] == -signal.SIGTERM and final["signal"] == "SIGTERM"
    assert 0.3 <= final["duration_seconds"] < 5
    assert home.get_shell_output(sid)["stdout"] == ""


def test_module_level_functions_use_mgsup_home(home: Supervisor, wait_for: Callable[..., Any]) -> None:
    sid = start_shell("echo via-api; sleep 30", name="api")
    assert get_shell_status(sid)["status"] == "running"
    wait_for(lambda: get_shell_output(sid)["stdout"] == "via-api\n", timeout=10, what="the job's first line")
    assert (home.home / "shells" / sid).is_dir()
    assert [s["shell_id"] for s in list_shells()] == [sid]
    assert list_shells("stopped") == []
    assert kill_shell(sid, grace=1) == {"shell_id": sid, "status": "killed", "signal": "SIGTERM"}
    assert wait_shell(sid, timeout=5)["status"] == "killed"
    assert get_shell_output(sid, tail_lines=1)["stdout"] == "via-api\n"
    assert [s["shell_id"] for s in list_shells("killed")] == [sid]


def test_list_shells_oldest_first_and_filter(home: Supervisor) -> None:
    ids = [home.start_shell(f"exit {code}") for code in (0, 1, 0)]
    for sid in ids:
        home.wait_shell(sid, timeout=10)
    assert [s["shell_id"] for s in home.list_shells()] == ids
    assert [s["shell_id"] for s in home.list_shells("stopped")] == [ids[0], ids[2]]
    assert [s["shell_id"] for s in home.list_shells(status="failed")] == [ids[1]]
    with pytest.raises(InvalidRequest, match="unknown status 'done'"):
        home.list_shells("done")


def test_list_shells_of_a_home_that_does_not_exist(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "never")
    assert sup.list_shells() == []
    assert not (tmp_path / "never").exists()


def test_kill_running_shell(home: Supervisor) -> None:
    sid = home.start_shell("sleep 30")
    assert home.kill_shell(sid) == {"shell_id": sid, "status": "killed", "signal": "SIGTERM"}
    final = home.get_shell_status(sid)
    assert (final["status"], final["exit_code"], final["signal"], final["timed_out"]) == \
        ("killed", -15, "SIGTERM", False)


def test_kill_with_another_signal(home: Supervisor) -> None:
    sid = home.start_shell(["sleep", "30"])
    assert home.kill_shell(sid, signal="SIGINT", grace=2)["signal"] == "SIGINT"
    assert home.get_shell_status(sid)["exit_code"] == -signal.SIGINT


def test_kill_ended_shell(home: Supervisor) -> None:
    sid = home.start_shell("exit 2")
    home.wait_shell(sid, timeout=10)
    assert home.kill_shell(sid) == {"shell_id": sid, "status": "failed", "signal": None,
                                    "message": "Process already terminated"}


def test_kill_queued_shell(sup_factory: Callable[..., Supervisor]) -> None:
    sup = sup_factory(max_concurrent=1)
    blocker = sup.start_shell("sleep 30")
    queued = sup.start_shell("echo should-not-run", queue=True)
    assert sup.get_shell_status(queued)["status"] == "queued"
    assert sup.kill_shell(queued) == {"shell_id": queued, "status": "killed", "signal": None,
                                      "message": "Removed from queue"}
    sup.kill_shell(blocker, grace=1)
    status = sup.get_shell_status(queued)
    assert status["status"] == "killed" and status["pid"] is None and status["exit_code"] is None
    assert sup.get_shell_output(queued)["stdout"] == ""


def test_output_of_one_stream(home: Supervisor) -> None:
    sid = home.start_shell("printf 'out1\\nout2\\n'; printf 'err1\\nerr2\\n' >&2")
    home.wait_shell(sid, timeout=10)
    only_err = home.get_shell_output(sid, stream="stderr", tail_lines=1)
    assert only_err.keys() >= OUTPUT_KEYS
    assert (only_err["stderr"], only_err["stderr_next_offset"], only_err["stderr_remaining_bytes"]) == ("err2\n", 10, 0)
    assert all(only_err[key] is None for key in ("stdout", "stdout_next_offset", "stdout_truncated",
                                                  "stdout_remaining_bytes"))
    page = home.get_shell_output(sid, stream="stdout", max_bytes=5)
    assert (page["stdout"], page["stdout_next_offset"], page["stdout_remaining_bytes"]) == ("out1\n", 5, 5)
    assert page["stdout_truncated"] is True and page["stderr"] is None
    both = home.get_shell_output(sid)
    assert (both["stdout"], both["stderr"]) == ("out1\nout2\n", "err1\nerr2\n")
    with pytest.raises(InvalidRequest, match="unknown stream 'both': use 'stdout' or 'stderr'"):
        home.get_shell_output(sid, stream="both")


def test_wait_shell_timeout(home: Supervisor) -> None:
    sid = home.start_shell("sleep 30")
    with pytest.raises(TimeoutError, match=f"{sid} is still running after 0.2 s"):
        home.wait_shell(sid, timeout=0.2)
    assert home.get_shell_status(sid)["status"] == "running"


@pytest.mark.parametrize("call", [
    lambda s, i: s.get_shell_status(i), lambda s, i: s.get_shell_output(i), lambda s, i: s.kill_shell(i),
    lambda s, i: s.wait_shell(i, timeout=1),
])
@pytest.mark.parametrize("shell_id", ["shell_00000000", "nope", "../shells", ""])
def test_unknown_shell(home: Supervisor, call: Callable[[Supervisor, str], object], shell_id: str) -> None:
    with pytest.raises(ShellNotFound, match=re.escape(f"no shell {shell_id!r}")) as info:
        call(home, shell_id)
    assert isinstance(info.value, KeyError)
    assert str(info.value).startswith("no shell")


def _nothing_written(home: Supervisor) -> bool:
    shells = home.home / "shells"
    return not shells.exists() or not any(shells.iterdir())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"command": ""}, "command is empty"),
    ({"command": []}, "command is empty"),
    ({"command": "true", "cwd": "/no/such/dir"}, "cwd does not exist: '/no/such/dir'"),
    ({"command": "true", "env": {"A": 1}}, "env value for 'A' must be a string, got int"),
    ({"command": "true", "timeout": -1}, "timeout must be more than zero seconds, got -1"),
    ({"command": "true", "name": "bad name"}, "invalid name 'bad name'"),
    ({"command": ["no-such-program-mgsup"]}, "command not found: 'no-such-program-mgsup'"),
])
def test_bad_input_starts_and_writes_nothing(home: Supervisor, kwargs: dict[str, Any], message: str) -> None:
    before = home.list_shells()
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        home.start_shell(**kwargs)
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        start_shell(**kwargs)
    assert _nothing_written(home)
    assert home.list_shells() == before == []


def test_isolate_rejects_a_relative_program(home: Supervisor, tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    message = (f"an isolated job runs in a new, empty workspace where './run.sh' does not exist: "
               f"give the program's absolute path ({str(script)!r}) or a command on PATH")
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        home.start_shell(["./run.sh"], cwd=tmp_path, isolate=True)
    assert _nothing_written(home) and not (tmp_path / ".mgsup").exists()
    sid = home.start_shell([str(script)], cwd=tmp_path, isolate=True)
    assert home.wait_shell(sid, timeout=10)["status"] == "stopped"
    assert home.get_shell_output(sid)["stdout"] == "hi\n"


def test_isolate_where_no_workspace_can_be_made(sup_factory: Callable[..., Supervisor], tmp_path: Path) -> None:
    sup = sup_factory(max_concurrent=1)
    (tmp_path / ".mgsup").write_text("a file where the workspaces folder would go")
    with pytest.raises(InvalidRequest, match=re.escape(f"cannot create the isolated workspace under "
                                                       f"{str(tmp_path / '.mgsup')!r}")):
        sup.start_shell("true", cwd=tmp_path, isolate=True)
    assert _nothing_written(sup)
    # No slot is left taken: the next shell starts at once.
    assert sup.get_shell_status(sup.start_shell("sleep 5"))["status"] == "running"
    # At the limit, an isolated shell leaves no workspace behind either.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(LimitReached):
        sup.start_shell("true", cwd=elsewhere, isolate=True)
    assert list(elsewhere.iterdir()) == []


def test_bad_max_concurrent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in (0, -1, True, 1.5, 100_001, 10**30):
        with pytest.raises(InvalidRequest, match="max_concurrent must be a whole number from 1 to 100000"):
            Supervisor(tmp_path, max_concurrent=bad)  # type: ignore[arg-type]
    for raw in ("ten", "0", "1e9", "99999999999999999999"):
        monkeypatch.setenv("MGSUP_MAX_CONCURRENT", raw)
        with pytest.raises(InvalidRequest, match="MGSUP_MAX_CONCURRENT must be a whole number from 1 to 100000"):
            Supervisor(tmp_path)
    monkeypatch.setenv("MGSUP_MAX_CONCURRENT", "3")
    assert Supervisor(tmp_path).max_concurrent == 3
    monkeypatch.delenv("MGSUP_MAX_CONCURRENT")
    assert Supervisor(tmp_path).max_concurrent == 10


def test_command_that_cannot_execute(home: Supervisor, tmp_path: Path) -> None:
    script = tmp_path / "noexec.sh"
    script.write_text("echo hi\n")
    script.chmod(0o755)
    sid = home.start_shell([str(script)])
    final = home.wait_shell(sid, timeout=10)
    assert final["status"] == "failed" and final["exit_code"] in (126, 127)
    assert "Exec format error" in home.get_shell_output(sid)["stderr"] or final["message"]
