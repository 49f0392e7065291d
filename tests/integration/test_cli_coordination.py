"""`mgsup start --config`: a coordination run of the demo config, followed to its end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import DEMO_CONFIG, Mgsup

QUESTION = "What is 17 * 23?"


@pytest.mark.timeout(90)
def test_start_config_wait_shows_progress_and_the_outcome(mgsup: Mgsup) -> None:
    result = mgsup.run("start", "--name", "demo", "--config", str(DEMO_CONFIG), "--wait", QUESTION)
    assert result.code == 0, result
    lines = result.out.splitlines()
    shell_id = lines[0]
    assert any(f"{shell_id} running" in line and "phase=" in line and "progress=" in line for line in lines)
    assert any(line.startswith(f"{shell_id} stopped exit=0") and "progress=100%" in line for line in lines)
    winner = next(line.removeprefix("winner: ") for line in lines if line.startswith("winner: "))
    answer_file = Path(next(line.removeprefix("answer file: ") for line in lines if line.startswith("answer file: ")))
    assert answer_file.parent.name == winner and "391" in answer_file.read_text()
    assert any(line.startswith("answer: ") and "391" in line for line in lines)

    status = json.loads(mgsup.ok("status", "--json", shell_id))
    assert status["command"][-3:] == ["--instance-id", shell_id[6:], QUESTION]
    assert status["coordination"]["phase"] == "completed"
    assert status["coordination"]["completion_percentage"] == 100
    assert Path(status["log_dir"]).is_relative_to(mgsup.work)
    table = mgsup.ok("status")
    assert "completed 100%" in table and "demo" in table
    details = mgsup.ok("status", shell_id)
    assert f"winner: {winner}" in details and f"answer file: {answer_file}" in details


@pytest.mark.timeout(90)
def test_a_relative_config_is_found_from_the_current_directory_whatever_the_cwd(mgsup: Mgsup) -> None:
    (mgsup.work / "runs").mkdir()
    config = os.path.relpath(DEMO_CONFIG, mgsup.work)
    shell_id = mgsup.ok("start", "--cwd", "runs", "--config", config, QUESTION).strip()
    final = json.loads(mgsup.ok("wait", "--json", shell_id))
    assert (final["status"], final["command"][3]) == ("stopped", str(DEMO_CONFIG))
    assert Path(final["log_dir"]).is_relative_to(mgsup.work / "runs")


@pytest.mark.timeout(90)
def test_start_config_json_wait_is_one_document(mgsup: Mgsup) -> None:
    result = mgsup.run("start", "--config", str(DEMO_CONFIG), "--wait", "--json", QUESTION)
    assert result.code == 0, result
    final = json.loads(result.out)
    assert final["status"] == "stopped" and final["coordination"]["winner"]


def test_empty_question_is_bad_input(mgsup: Mgsup) -> None:
    result = mgsup.run("start", "--config", str(DEMO_CONFIG), "  ")
    assert result.code == 2 and "question is empty" in result.error_line()
    assert mgsup.shell_dirs() == []


# Announces its log directory, writes status.json once, then never again: a stalled run.
STALLING_RUN = "mkdir -p logs && echo '{}' > logs/status.json && echo LOG_DIR: $PWD/logs && exec sleep 60"


@pytest.mark.timeout(60)
def test_wait_and_start_wait_kill_a_stalled_run(mgsup: Mgsup) -> None:
    stall = {"MGSUP_STALL_SECONDS": "0.5"}
    shell_id = mgsup.start("--", STALLING_RUN)
    waited = mgsup.run("wait", "--kill-on-stall", "--json", shell_id, env=stall, timeout=30)
    final = json.loads(waited.out)
    assert (waited.code, final["status"]) == (143, "killed") and "stalled" in final["message"]

    started = mgsup.run("start", "--wait", "--kill-on-stall", "--", STALLING_RUN, env=stall, timeout=30)
    assert started.code == 143, started
    assert "message: killed because it stalled" in started.out

    refused = mgsup.run("start", "--kill-on-stall", "--", "true")
    assert refused.code == 2 and "--kill-on-stall needs --wait" in refused.error_line()


@pytest.mark.parametrize(("args", "message"), [
    (["--runner", "masgen"], "unknown runner 'masgen': use mgcoord or massgen"),
    (["--runner", "./nowhere/massgen"], "runner program not found"),
    (["--runner", "no-such-runner --flag"], "runner 'no-such-runner' not found on the job's PATH"),
])
def test_a_bad_runner_is_bad_input_and_starts_nothing(mgsup: Mgsup, args: list[str], message: str) -> None:
    result = mgsup.run("start", "--config", str(DEMO_CONFIG), *args, QUESTION)
    assert result.code == 2 and message in result.error_line()
    assert not mgsup.home.exists() and list(mgsup.work.iterdir()) == []


def test_runner_needs_config(mgsup: Mgsup) -> None:
    result = mgsup.run("start", "--runner", "massgen", "--", "true")
    assert result.code == 2 and "--runner needs --config" in result.error_line()
    assert mgsup.shell_dirs() == []


def test_mgsup_runner_names_a_runner_that_is_not_installed(mgsup: Mgsup) -> None:
    result = mgsup.run("start", "--config", str(DEMO_CONFIG), QUESTION,
                       env={"MGSUP_RUNNER": "massgen", "PATH": "/usr/bin:/bin"})
    assert result.code == 2 and "runner 'massgen' not found on the job's PATH (/usr/bin:/bin)" in result.error_line()
