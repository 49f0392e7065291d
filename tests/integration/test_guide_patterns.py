"""The automation guide's usage patterns, written against mgsup: only the import line and the command differ.

`run_massgen_automation` and `run_experiments_in_parallel` follow the guide step by step (start,
find LOG_DIR in the output, follow status.json, read the winner and the answer file), with
`from supervisor import ...` and `mgcoord` in place of the reference implementation.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from supervisor import Supervisor, get_shell_output, get_shell_status, kill_shell, start_shell

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.yaml"
MGCOORD = shlex.join([sys.executable, "-m", "coordinator"])
POLL = 0.1  # the guide polls every 2 s; the pattern is the same, only faster for a test


def run_massgen_automation(config_path: str, question: str, timeout_seconds: int = 60,
                           cwd: Path | None = None) -> dict[str, Any]:
    """The guide's recommended pattern for LLM agents, step by step."""
    # 1. Start the run in the background.
    shell_id = start_shell(f'{MGCOORD} --automation --config {config_path} "{question}"', cwd=cwd)
    # 2. Find the log directory in the first lines of output.
    log_dir = status_file = None
    start_time = time.time()
    while time.time() - start_time < 10:
        output = get_shell_output(shell_id)
        if "LOG_DIR:" in output["stdout"]:
            for line in output["stdout"].split("\n"):
                if line.startswith("LOG_DIR:"):
                    log_dir = Path(line.split(": ", 1)[1].strip())
                    status_file = log_dir / "status.json"
                    break
            break
        time.sleep(POLL)
    if not log_dir or not status_file:
        kill_shell(shell_id)
        return {"status": "error", "error": "Failed to retrieve log directory", "shell_id": shell_id}
    # 3. Follow status.json until the process ends.
    progress: list[int] = []
    while True:
        shell_status = get_shell_status(shell_id)
        if time.time() - start_time > timeout_seconds:
            kill_shell(shell_id)
            return {"status": "timeout", "log_dir": str(log_dir), "shell_id": shell_id}
        if status_file.exists():
            status_data = json.loads(status_file.read_text())
            completion = status_data["coordination"]["completion_percentage"]
            if not progress or completion > progress[-1]:
                progress.append(completion)
        if shell_status["status"] != "running":
            break
        time.sleep(POLL)
    # 4. Read the results.
    output = get_shell_output(shell_id)
    if output["exit_code"] != 0:
        return {"status": "error", "exit_code": output["exit_code"], "stderr": output["stderr"],
                "log_dir": str(log_dir)}
    final_status = json.loads(status_file.read_text())
    winner = final_status["results"]["winner"]
    answer_file = log_dir / f"final/{winner}/answer.txt"
    return {
        "status": "success", "answer": answer_file.read_text() if answer_file.exists() else None,
        "winner": winner, "log_dir": str(log_dir), "duration_seconds": shell_status["duration_seconds"],
        "exit_code": output["exit_code"], "shell_id": shell_id, "progress": progress, "stdout": output["stdout"],
    }


def run_experiments_in_parallel(configs_and_questions: list[tuple[str, str]], cwd: Path) -> list[dict[str, Any]]:
    """The guide's parallel-experiments pattern: start all, wait for all, collect."""
    experiments = [{"shell_id": start_shell(f'{MGCOORD} --automation --config {config} "{question}"', cwd=cwd),
                    "config": config, "question": question} for config, question in configs_and_questions]
    while any(get_shell_status(e["shell_id"])["status"] == "running" for e in experiments):
        time.sleep(POLL)
    results = []
    for exp in experiments:
        status = get_shell_status(exp["shell_id"])
        output = get_shell_output(exp["shell_id"])
        results.append({"config": exp["config"], "question": exp["question"], "exit_code": output["exit_code"],
                        "duration": status["duration_seconds"], "status": status["status"],
                        "log_dir": status["log_dir"], "stdout": output["stdout"]})
    return results


@pytest.mark.timeout(60)
def test_run_massgen_automation_pattern_succeeds(home: Supervisor, tmp_path: Path) -> None:
    result = run_massgen_automation(str(DEMO), "What is 17 * 23?", cwd=tmp_path)

    assert result["status"] == "success", result
    assert result["winner"] in ("solver", "reviewer")
    assert "391" in result["answer"]
    assert Path(result["log_dir"]).parent == tmp_path / ".massgen" / "massgen_logs"
    assert f"ANSWER_FILE: {result['log_dir']}/final/{result['winner']}/answer.txt" in result["stdout"]
    assert result["progress"] == sorted(result["progress"]) and result["progress"][-1] == 100
    # What the guide parses by hand, the supervisor already offers in the status.
    status = get_shell_status(result["shell_id"])
    assert status["log_dir"] == result["log_dir"]
    assert status["coordination"]["winner"] == result["winner"]
    assert status["coordination"]["phase"] == "completed"


@pytest.mark.timeout(60)
def test_parallel_experiments_pattern_isolates_runs(home: Supervisor, tmp_path: Path) -> None:
    questions = ["What is 17 * 23?", "What is 6 * 7?", "What is 12 + 30?"]
    results = run_experiments_in_parallel([(str(DEMO), q) for q in questions], tmp_path)

    assert [r["status"] for r in results] == ["stopped"] * 3, results
    assert [r["exit_code"] for r in results] == [0, 0, 0]
    log_dirs = {r["log_dir"] for r in results}
    assert len(log_dirs) == 3
    for r, expected in zip(results, ["391", "42", "42"], strict=True):
        assert expected in (Path(r["log_dir"]) / "final").joinpath(_winner(r["log_dir"]), "answer.txt").read_text()
    workspaces = sorted(p.name for p in (tmp_path / ".massgen" / "workspaces").glob("demo_solver_*"))
    assert len(workspaces) == 3, workspaces


@pytest.mark.timeout(60)
def test_start_coordination_names_workspaces_after_the_shell(home: Supervisor, tmp_path: Path) -> None:
    shell_ids = [home.start_coordination(DEMO, "What is 6 * 7?", cwd=tmp_path) for _ in range(2)]
    finals = [home.wait_shell(shell_id, timeout=45) for shell_id in shell_ids]

    assert [f["status"] for f in finals] == ["stopped", "stopped"]
    for shell_id, final in zip(shell_ids, finals, strict=True):
        assert (tmp_path / ".massgen" / "workspaces" / f"demo_solver_{shell_id[6:]}").is_dir()
        assert final["status_file"] == str(Path(final["log_dir"]) / "status.json")
        assert final["coordination"]["phase"] == "completed"
        assert final["coordination"]["stalled"] is False


def _winner(log_dir: str) -> str:
    return str(json.loads((Path(log_dir) / "status.json").read_text())["results"]["winner"])
