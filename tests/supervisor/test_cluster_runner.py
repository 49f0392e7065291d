"""The node-side runner on its own (no Ray): it runs the job under mgsup's monitor and reports through its log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor.cluster import framing

pytestmark = pytest.mark.timeout(60)
RESTARTING_RUNNER = Path(__file__).resolve().parents[1] / "fakes" / "restarting_runner.py"


def _spec(shell_id: str, argv: list[str], **extra: Any) -> str:
    return json.dumps({"shell_id": shell_id, "argv": argv, "workdir": "job", "timeout": None, "env_names": [],
                       "inherit_env": True, "grace": 1.0, "drop_env": [], **extra})


def _runner(tmp_path: Path, spec: str, **popen: Any) -> subprocess.Popen[bytes]:
    # As Ray ships it: the working directory `job` in a folder on PYTHONPATH.
    (tmp_path / "job").mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "supervisor.cluster.runner", spec], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def _read(log: bytes) -> framing.Piece:
    return framing.read("Ray's own line\n" + log.decode(), framing.Cursor())


def test_the_jobs_output_and_outcome_come_back_through_the_log(tmp_path: Path) -> None:
    runner = _runner(tmp_path, _spec("shell_0a1b2c3d", ["/bin/sh", "-c", "echo out; printf 'x\\377y' >&2; exit 3"]))
    log, _ = runner.communicate(timeout=30)
    assert runner.returncode == 3
    piece = _read(log)
    assert piece.output == "out\nx\ufffdy"
    [(kind, end)] = piece.records
    assert (kind, end["status"], end["exit_code"], end["signal"]) == ("end", "failed", 3, None)


def test_a_stop_kills_the_whole_tree(tmp_path: Path, wait_for: Callable[..., Any]) -> None:
    script = "trap '' TERM; setsid sh -c 'echo $$; exec sleep 300' & sleep 300"
    runner = _runner(tmp_path, _spec("shell_1a2b3c4d", ["/bin/sh", "-c", script]))
    assert runner.stdout is not None
    first = wait_for(lambda: runner.stdout.readline(), timeout=20)  # type: ignore[union-attr]
    assert first.startswith(framing.OPEN.encode())
    escaped = int(wait_for(lambda: runner.stdout.readline(), timeout=20))  # type: ignore[union-attr]
    runner.send_signal(signal.SIGTERM)
    rest, _ = runner.communicate(timeout=30)
    assert runner.returncode == 128 + 9  # the job ignored SIGTERM: SIGKILL after the grace
    assert not _alive(escaped)
    [(kind, end)] = _read(first + f"{escaped}\n".encode() + rest).records
    assert (kind, end["status"], end["exit_code"]) == ("end", "killed", -9)


def test_a_stop_that_came_before_the_job_started_starts_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    def stop_already_pending() -> None:
        # Blocked and pending across exec, as a stop Ray delivers while the runner is starting.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        os.kill(os.getpid(), signal.SIGTERM)

    runner = _runner(tmp_path, _spec("shell_2a2b3c4d", ["touch", str(marker)]), preexec_fn=stop_already_pending)
    log, _ = runner.communicate(timeout=30)
    assert runner.returncode == 128 + 15
    [(kind, end)] = _read(log).records
    assert (kind, end["status"], end["start_time"], end["message"]) == ("end", "killed", None,
                                                                      "stopped before the job started")
    assert not marker.exists()


def test_a_runs_newest_status_and_its_answer_come_back_through_the_log(tmp_path: Path) -> None:
    # The runner restarts into attempt_2 and prints an answer line that names no file before the real one.
    run = {"config": "run.yaml", "folder": None, "question": "What is 17 * 23?", "runner": "command",
           "program": [sys.executable, str(RESTARTING_RUNNER)]}
    runner = _runner(tmp_path, _spec("shell_3a3b3c3d", [], coordination=run))
    log, _ = runner.communicate(timeout=30)
    assert runner.returncode == 0, log
    piece = _read(log)
    assert "WINNER: agent_a" in piece.output
    kinds = [kind for kind, _ in piece.records]
    assert kinds[-2:] == ["answer", "end"] and set(kinds[:-2]) == {"status"}
    last_status = [data for kind, data in piece.records if kind == "status"][-1]
    assert (last_status["finish_reason"], last_status["results"]["winner"]) == ("completed", "agent_a")
    answer = piece.records[-2][1]
    assert answer["path"] == str(tmp_path / "job/.massgen/massgen_logs/log_1/turn_1/final/agent_a/answer.txt")
    assert (answer["text"], answer["truncated"]) == ("The answer is 391.\n", False)


def test_a_usage_error_says_how_to_call_it(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "supervisor.cluster.runner"], capture_output=True, text=True,
                          timeout=30, check=False)
    assert (done.returncode, done.stderr) == (2, "usage: python3 -m supervisor.cluster.runner SPEC_JSON\n")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
