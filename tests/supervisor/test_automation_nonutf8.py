"""A coordination run in a directory whose name is not UTF-8, seen from the supervisor: the paths it
announced are read back with their exact bytes, so its status.json and answer file are found, and
every way of showing the status (Python, CLI, tools, dashboard) shows them without failing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from supervisor import Supervisor
from supervisor.dashboard.routes import JSONResponse
from supervisor.tools import views

pytestmark = pytest.mark.timeout(90)

DEMO = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def _mgsup(*args: str) -> bytes:
    # Wide enough that no path is wrapped.
    done = subprocess.run([sys.executable, "-m", "supervisor", *args], capture_output=True, timeout=60, check=False,
                          env={**os.environ, "COLUMNS": "500"})
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def cwd(tmp_path: Path) -> bytes:
    path = os.fsencode(tmp_path) + b"/runs\xe9"
    os.mkdir(path)
    return path


def _assert_found(status: dict[str, Any], cwd: bytes) -> None:
    log_dir = os.fsencode(status["log_dir"])
    assert log_dir.startswith(cwd + b"/.massgen/massgen_logs/log_")
    assert os.fsencode(status["status_file"]) == log_dir + b"/status.json"
    summary = status["coordination"]
    # Read from the run's status.json: the agents and the winner are only there.
    assert summary["agents"] == {"solver": "completed", "reviewer": "completed"}
    assert summary["winner"] in ("solver", "reviewer") and summary["outcome"] == "answered"
    assert os.fsencode(summary["answer_file"]) == log_dir + b"/final/" + summary["winner"].encode() + b"/answer.txt"
    assert os.path.isfile(summary["answer_file"])


def test_start_coordination_in_a_directory_that_is_not_utf8(home: Supervisor, cwd: bytes) -> None:
    run = home.start_coordination(DEMO, "What is 2+2?", cwd=os.fsdecode(cwd))
    final = home.wait_shell(run, timeout=60)
    assert final["exit_code"] == 0
    _assert_found(final, cwd)
    # The monitor's record of what the run printed keeps the bytes too.
    _assert_found(home.get_shell_status(run), cwd)
    # JSON for a model or a browser: the byte as an escape, read back as the same path.
    for text in (views.as_text(views.shell_view(final, detail=True)), JSONResponse(final).body.decode("utf-8")):
        assert json.loads(text)["coordination"]["answer_file"] == final["coordination"]["answer_file"]


def test_mgsup_start_in_a_directory_that_is_not_utf8(home: Supervisor, cwd: bytes) -> None:
    run = _mgsup("start", "--config", str(DEMO), "--cwd", os.fsdecode(cwd), "What is 2+2?").decode().strip()
    home.wait_shell(run, timeout=60)
    shown = json.loads(_mgsup("status", run, "--json"))
    _assert_found(shown, cwd)
    text = _mgsup("status", run)
    assert b"answer file: " + os.fsencode(shown["coordination"]["answer_file"]) + b"\n" in text


def test_printed_paths_keep_their_bytes_and_an_error_is_shown_as_text(home: Supervisor, tmp_path: Path) -> None:
    log_dir = os.fsencode(tmp_path) + b"/log\xe9"
    printed = os.fsdecode(b"LOG_DIR: " + log_dir + b"\nERROR: bad \xe9\n")
    job = home.start_shell([sys.executable, "-c", "import os, sys; sys.stdout.buffer.write(os.fsencode(sys.argv[1]))",
                            printed])
    final = home.wait_shell(job, timeout=10)
    assert os.fsencode(final["log_dir"]) == log_dir and os.fsencode(final["status_file"]) == log_dir + b"/status.json"
    assert final["coordination"]["error"] == "bad \ufffd"
