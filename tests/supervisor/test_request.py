"""Input validation: each bad request gets InvalidRequest (a ValueError) that says what is wrong."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest

from supervisor import InvalidRequest, request


def start(command: object = "true", **kwargs: object) -> request.StartRequest:
    args: dict[str, object] = {"cwd": None, "env": None, "inherit_env": True, "name": None, "timeout": None}
    return request.start_request(command, **(args | kwargs))


def test_string_runs_under_sh_and_list_runs_directly() -> None:
    assert start("echo $HOME").argv == ["/bin/sh", "-c", "echo $HOME"]
    assert start(["echo", "$HOME"]).argv == ["echo", "$HOME"]
    assert start(("echo", "x")).argv == ["echo", "x"]


def test_env_overlay_and_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGSUP_TEST_BASE", "base")
    req = start(env={"B": "2", "A": "1"})
    assert req.env["MGSUP_TEST_BASE"] == "base" and req.env["A"] == "1"
    assert req.env_names == ["A", "B"]
    bare = start(["/bin/true"], env={"A": "1"}, inherit_env=False)
    assert bare.env == {"A": "1"}


def test_cwd_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    assert start(cwd="sub").cwd == tmp_path / "sub"
    assert start().cwd == tmp_path


@pytest.mark.parametrize(("command", "message"), [
    ("", "command is empty"),
    ("   \n", "command is empty"),
    ([], "command is empty"),
    ([""], "program name (first argument) is empty"),
    (["echo", 3], "every argument of a command list must be a string"),
    (None, "command must be a string or a list of strings, got NoneType"),
    (42, "command must be a string or a list of strings, got int"),
    ("echo \0", "NUL character"),
    (["no-such-program-mgsup-test"], "command not found: 'no-such-program-mgsup-test' is not on the job's PATH"),
    (["./missing.sh"], "command not found or not executable"),
])
def test_bad_commands(command: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(message)) as info:
        start(command)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("cwd", "message"), [
    ("/no/such/dir/mgsup", "cwd does not exist: '/no/such/dir/mgsup'"),
    ("/etc/hostname", "cwd is not a directory: '/etc/hostname'"),
    (42, "cwd must be a path, got int"),
])
def test_bad_cwd(cwd: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        start(cwd=cwd)


@pytest.mark.parametrize(("env", "message"), [
    ({"A": 1}, "env value for 'A' must be a string, got int"),
    ({"A": None}, "env value for 'A' must be a string, got NoneType"),
    ({"A": b"x"}, "env value for 'A' must be a string, got bytes"),
    ({"A=B": "x"}, "invalid environment variable name 'A=B'"),
    ({"": "x"}, "invalid environment variable name ''"),
    ({1: "x"}, "invalid environment variable name 1"),
    ({"A": "x\0y"}, "env value for 'A' contains a NUL character"),
    (["A=1"], "env must be a mapping of names to strings, got list"),
])
def test_bad_env(env: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        start(env=env)


@pytest.mark.parametrize(("timeout", "message"), [
    (-1, "timeout must be more than zero seconds, got -1"),
    (0, "timeout must be more than zero seconds, got 0"),
    (math.nan, "timeout must be a number of seconds, got nan"),
    (math.inf, "timeout must be a number of seconds, got inf"),
    ("10", "timeout must be a number of seconds, got '10'"),
    (True, "timeout must be a number of seconds, got True"),
])
def test_bad_timeout(timeout: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        start(timeout=timeout)


@pytest.mark.parametrize("name", ["", "-lead", "has space", "a/b", "x" * 65, 3, "ünï"])
def test_bad_name(name: object) -> None:
    with pytest.raises(InvalidRequest, match="invalid name"):
        start(name=name)


def test_good_names_and_timeouts() -> None:
    assert start(name="build.v2_x-1").name == "build.v2_x-1"
    assert start(timeout=1).timeout == 1.0
    assert start(timeout=0.25).timeout == 0.25


def test_seconds_count_and_signal() -> None:
    assert request.seconds("grace", 0, allow_zero=True) == 0.0
    with pytest.raises(InvalidRequest, match=re.escape("grace must be zero or more seconds, got -0.5")):
        request.seconds("grace", -0.5, allow_zero=True)
    assert request.count("offset", 0) == 0
    with pytest.raises(InvalidRequest, match="tail_lines must be a whole number from 0 to 9223372036854775807, "
                                             "got -1"):
        request.count("tail_lines", -1)
    with pytest.raises(InvalidRequest, match="offset must be a whole number from 0"):
        request.count("offset", 2**63)
    with pytest.raises(InvalidRequest, match="whole number"):
        request.count("max_bytes", 1.5)
    assert request.signal_number("SIGKILL") == 9
    assert request.signal_number("term") == 15
    assert request.signal_number(2) == 2
    for bad in ("SIGNOPE", 0, 999, None, True):
        with pytest.raises(InvalidRequest, match="unknown signal"):
            request.signal_number(bad)


def test_relative_program_resolved_against_cwd(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    os.chmod(script, 0o755)
    assert start(["./run.sh"], cwd=tmp_path).argv == ["./run.sh"]
    os.chmod(script, 0o644)
    with pytest.raises(InvalidRequest, match="not executable"):
        start(["./run.sh"], cwd=tmp_path)
