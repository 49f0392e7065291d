"""Budgets of coordination runs, held by the shell's monitor after the caller has gone: tokens and cost
reported by a fake OpenAI-compatible server on 127.0.0.1 (mgcoord's openai agents), duration, and a cost
reported by the runner itself (a small runner that follows the automation contract)."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.openai_server import OpenAIServer

from supervisor import Supervisor

from .conftest import Mgsup

pytestmark = pytest.mark.timeout(120)
KEY = "BUDGET_TEST_KEY"
QUESTION = "What is 17 * 23?"
RUN_TIMEOUT = 90.0


def openai_config(path: Path, base_url: str, model: str = "gpt-4o-mini") -> Path:
    """Two mgcoord agents on the fake server."""
    agents = [{"id": f"agent_{c}", "backend": {"type": "openai", "model": model, "base_url": base_url,
                                                "api_key_env": KEY}} for c in "ab"]
    path.write_text(yaml.safe_dump({"agents": agents}))
    return path


def final_status_json(status: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(status["status_file"]).read_text())
    return data


def test_a_token_budget_stops_a_run_whose_caller_has_exited(mgsup: Mgsup) -> None:
    gate = threading.Event()
    # Every reply reports 6,000 tokens; after the two first answers the model never answers again.
    with OpenAIServer(prompt_tokens=5000, completion_tokens=1000, gate=gate, stall_after=2) as server:
        config = openai_config(mgsup.work / "c.yaml", server.base_url)
        started = mgsup.run("start", "--config", str(config), "--max-tokens", "1000", QUESTION, env={KEY: "k"})
        # The caller has exited (with the shell id) before the model has said a word.
        assert started.code == 0, started
        shell_id = started.out.strip()
        assert server.requests == [] or len(server.requests) <= 2
        gate.set()
        waited = mgsup.run("wait", shell_id, "--json", timeout=RUN_TIMEOUT)
    assert waited.code == 123, waited
    final = json.loads(waited.out)
    summary = final["coordination"]
    assert final["status"] == "killed" and final["budget"] == {"max_tokens": 1000}
    assert summary["outcome"] == "budget_exceeded"
    exceeded = summary["budget_exceeded"]
    # The tokens status.json reported when the monitor looked: one or both first answers (a turn that a
    # new answer restarts loses its reply).
    assert (exceeded["limit"], exceeded["budget"], exceeded["used"] in (6000, 12000)) == ("max_tokens", 1000, True)
    # Interrupted first: mgcoord recorded its own end (phase interrupted, exit code 4) before it was stopped.
    assert (final["exit_code"], summary["phase"]) == (4, "interrupted")
    assert final_status_json(final)["meta"]["exit_code"] == 4
    assert len(server.requests) <= 4
    table = mgsup.ok("status")
    assert f"${summary['cost_usd']:.4f}" in table.splitlines()[1] and summary["cost_usd"] > 0


def test_a_duration_budget_stops_a_run_that_would_go_on(home: Supervisor, tmp_path: Path) -> None:
    with OpenAIServer(stall_after=0) as server:
        config = openai_config(tmp_path / "c.yaml", server.base_url)
        shell_id = home.start_coordination(config, QUESTION, cwd=tmp_path, env={KEY: "k"},
                                           budget={"max_duration_seconds": 1.5})
        final = home.wait_shell(shell_id, timeout=RUN_TIMEOUT)
    exceeded = final["coordination"]["budget_exceeded"]
    assert final["status"] == "killed" and final["coordination"]["outcome"] == "budget_exceeded"
    assert (exceeded["limit"], exceeded["budget"]) == ("max_duration_seconds", 1.5)
    assert 1.5 < exceeded["used"] < final["duration_seconds"] + 0.1
    assert final["timed_out"] is False


def test_cost_is_priced_by_the_table_when_the_runner_reports_none(home: Supervisor, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("lab-model: {input: 2.0, output: 10.0}\n")
    monkeypatch.setenv("MGSUP_PRICES", str(prices))
    with OpenAIServer(prompt_tokens=1000, completion_tokens=100) as server:
        config = openai_config(tmp_path / "c.yaml", server.base_url, model="lab-model-2025-01-01")
        answered = home.wait_shell(home.start_coordination(config, QUESTION, cwd=tmp_path, env={KEY: "k"}),
                                   timeout=RUN_TIMEOUT)
    summary = answered["coordination"]
    tokens = summary["tokens"]
    assert summary["outcome"] == "answered" and tokens["input_tokens"] >= 4000
    # Tokens x USD per million tokens of the table's entry the dated model name extends.
    expected = tokens["input_tokens"] * 2.0 / 1e6 + tokens["output_tokens"] * 10.0 / 1e6
    assert (summary["cost_usd"], summary["cost_source"]) == (pytest.approx(expected), "prices")

    # The same run held to a cost budget that its first answer passes ($0.003 each).
    with OpenAIServer(prompt_tokens=1000, completion_tokens=100, stall_after=2) as server:
        config = openai_config(tmp_path / "c.yaml", server.base_url, model="lab-model")
        shell_id = home.start_coordination(config, QUESTION, cwd=tmp_path, env={KEY: "k"},
                                           budget={"max_cost_usd": 0.002})
        stopped = home.wait_shell(shell_id, timeout=RUN_TIMEOUT)
    exceeded = stopped["coordination"]["budget_exceeded"]
    assert (exceeded["limit"], exceeded["budget"], exceeded["source"]) == ("max_cost_usd", 0.002, "prices")
    assert exceeded["used"] in (0.003, 0.006)
    # The table the run started with holds it, whatever the file says later.
    assert home.store.spec(shell_id).prices == {**home.store.spec(shell_id).prices, "lab-model": [2.0, 10.0]}


RUNNER = """
import json, os, signal, sys, time
# A runner of the automation contract that reports its own cost (as MassGen does), priced differently
# from what the table would say for its tokens.
log = os.path.abspath("runner-log")
os.makedirs(log, exist_ok=True)
status = os.path.join(log, "status.json")
print(f"LOG_DIR: {log}", flush=True)
print(f"STATUS: {status}", flush=True)
print("[Coordination in progress - monitor status.json for real-time updates]", flush=True)
stopped = []
signal.signal(signal.SIGINT, lambda *_: stopped.append(1))

def write(n, reason):
    data = {"finish_reason": reason, "coordination": {"phase": "initial_answer", "completion_percentage": 10},
            "agents": {"a": {"status": "streaming", "model": "lab-model",
                             "token_usage": {"input_tokens": 100 * n, "output_tokens": 10 * n}}},
            "costs": {"total_input_tokens": 100 * n, "total_output_tokens": 10 * n,
                      "total_estimated_cost": 0.01 * n},
            "results": {"votes": {}, "winner": None}}
    with open(status + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(status + ".tmp", status)

n = 0
while not stopped and n < 600:
    n += 1
    write(n, "in_progress")
    time.sleep(0.1)
write(n, "interrupted")
print("ERROR: interrupted", flush=True)
"""


def test_a_cost_the_runner_reports_wins_and_is_held_to_the_budget(home: Supervisor, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("lab-model: {input: 1000.0, output: 1000.0}\n")
    monkeypatch.setenv("MGSUP_PRICES", str(prices))
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    config = tmp_path / "c.yaml"
    config.write_text("agents: []\n")
    shell_id = home.start_coordination(config, QUESTION, runner=[sys.executable, str(runner)], cwd=tmp_path,
                                       budget={"max_cost_usd": 0.25})
    final = home.wait_shell(shell_id, timeout=RUN_TIMEOUT)
    exceeded = final["coordination"]["budget_exceeded"]
    assert (exceeded["limit"], exceeded["budget"], exceeded["source"]) == ("max_cost_usd", 0.25, "runner")
    assert 0.25 < exceeded["used"] < 1.0
    # The runner heard the interrupt and wrote its end; its own figure is the one shown.
    written = final_status_json(final)
    assert written["finish_reason"] == "interrupted"
    assert final["coordination"]["cost_source"] == "runner"
    assert final["coordination"]["cost_usd"] == pytest.approx(written["costs"]["total_estimated_cost"])
    assert final["exit_code"] == 0 and final["status"] == "killed"


def test_budget_options_need_a_coordination_run_and_valid_numbers(mgsup: Mgsup) -> None:
    for args, message in ((["--max-tokens", "10", "--", "true"], "--max-tokens, --max-cost and --max-duration "
                                                                  "need --config"),
                          (["--config", "c.yaml", "--max-tokens", "0", "q"], "0 is not in the range x>=1"),
                          (["--config", "c.yaml", "--max-cost", "-1", "q"], "--max-cost"),
                          (["--config", "c.yaml", "--max-duration", "0", "q"], "--max-duration")):
        result = mgsup.run("start", *args)
        assert result.code == 2 and message in result.error_line(), (args, result)
    assert not (mgsup.home / "shells").exists() or not any((mgsup.home / "shells").iterdir())


def test_a_bad_budget_from_python_starts_nothing(home: Supervisor, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("agents: []\n")
    for budget, message in (({"max_tokens": 1.5}, "max_tokens must be a whole number >= 1, got 1.5"),
                            ({"max_cost": 1}, "unknown budget key 'max_cost'"),
                            ({"max_duration_seconds": -1}, "max_duration_seconds must be a number > 0"),
                            ([1000], "a budget must be a mapping")):
        with pytest.raises(ValueError, match=message):
            home.start_coordination(config, QUESTION, cwd=tmp_path, budget=budget)  # type: ignore[arg-type]
    assert home.list_shells() == []
