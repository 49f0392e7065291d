"""The pieces of budgets without a run: what a budget may hold, the monitor's watch over scripted status.json
files and a scripted clock, pricing tokens, the price files, and what a stopped run's status says."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from supervisor import budget, lifecycle, prices
from supervisor.automation import usage
from supervisor.automation.summary import summarize
from supervisor.errors import InvalidRequest
from supervisor.exitcodes import EXIT_BUDGET_EXCEEDED, job_exit_code

MASSGEN = Path(__file__).resolve().parents[1] / "data" / "massgen-0.1.97"
PRICES = {"lab-model": [2.0, 10.0]}


@pytest.mark.parametrize(("given", "problem"), [
    ({"max_tokens": 1000, "max_cost_usd": 0.5, "max_duration_seconds": 60}, None),
    ({}, "a budget must be a mapping with max_tokens, max_cost_usd or max_duration_seconds"),
    ({"max_tokens": True}, "max_tokens must be a whole number >= 1, got True"),
    ({"max_tokens": 0}, "max_tokens must be a whole number >= 1, got 0"),
    ({"max_cost_usd": float("nan")}, "max_cost_usd must be a number > 0, got nan"),
    ({"max_duration_seconds": "60"}, "max_duration_seconds must be a number > 0, got '60'"),
    ({"tokens": 5}, "unknown budget key 'tokens': use max_tokens, max_cost_usd, max_duration_seconds"),
])
def test_what_a_budget_may_hold(given: Any, problem: str | None) -> None:
    assert budget.problem(given) == problem


def write_status(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def mgcoord_status(prompt: int, completion: int, model: str | None = "lab-model") -> dict[str, Any]:
    agent = {"status": "streaming", "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                              "total_tokens": prompt + completion}, "model": model}
    return {"agents": {"a": agent}, "results": {"usage": agent["usage"]}}


def watch(tmp_path: Path, limits: dict[str, Any], *, stdout: str = "") -> budget.Watch:
    (tmp_path / "stdout.log").write_text(stdout)
    return budget.Watch(limits, PRICES, stdout_path=str(tmp_path / "stdout.log"), cwd=str(tmp_path),
                        status_file=None, started=100.0)


def test_the_watch_finds_status_json_where_the_run_announced_it_and_looks_once_a_second(tmp_path: Path) -> None:
    status = tmp_path / "log" / "status.json"
    watcher = watch(tmp_path, {"max_tokens": 1000})
    assert watcher.passed(100.0) is None  # nothing announced yet
    (tmp_path / "stdout.log").write_text("LOG_DIR: log\nSTATUS: log/status.json\n")
    write_status(status, mgcoord_status(900, 200))
    assert watcher.passed(100.5) is None, "looked again before LOOK_SECONDS"
    assert watcher.due(100.5) == pytest.approx(0.5)
    assert watcher.passed(101.0) == {"limit": "max_tokens", "budget": 1000, "used": 1100}
    assert watcher.status_file == str(status)


def test_the_watch_prices_tokens_and_prefers_the_runners_figure(tmp_path: Path) -> None:
    status = tmp_path / "status.json"
    watcher = watch(tmp_path, {"max_cost_usd": 0.01}, stdout=f"STATUS: {status}\n")
    write_status(status, mgcoord_status(3000, 300))  # $0.006 by the table
    assert watcher.passed(100.0) is None
    write_status(status, mgcoord_status(3000, 500))  # $0.011
    assert watcher.passed(101.0) == {"limit": "max_cost_usd", "budget": 0.01, "used": 0.011, "source": "prices"}
    reported = {**mgcoord_status(1, 1), "costs": {"total_input_tokens": 1, "total_output_tokens": 1,
                                                   "total_estimated_cost": 0.02}}
    write_status(status, reported)
    assert watcher.passed(102.0) == {"limit": "max_cost_usd", "budget": 0.01, "used": 0.02, "source": "runner"}
    write_status(status, mgcoord_status(10**9, 0, model="unknown-model"))
    assert watcher.passed(103.0) is None, "a cost that cannot be known never passes"


def test_the_watch_reads_massgens_newest_attempt(tmp_path: Path) -> None:
    first = tmp_path / "log" / "turn_1" / "attempt_1" / "status.json"
    data = json.loads((MASSGEN / "status-completed.json").read_text())
    write_status(first, {**data, "costs": {**data["costs"], "total_input_tokens": 10, "total_output_tokens": 0}})
    watcher = watch(tmp_path, {"max_tokens": 700}, stdout=f"LOG_DIR: {tmp_path}/log\nSTATUS: {first}\n")
    assert watcher.passed(100.0) is None
    write_status(tmp_path / "log" / "turn_1" / "attempt_2" / "status.json", data)
    assert watcher.passed(101.0) == {"limit": "max_tokens", "budget": 700, "used": 750}


def test_the_duration_passes_on_the_clock_alone(tmp_path: Path) -> None:
    watcher = watch(tmp_path, {"max_duration_seconds": 30})
    assert watcher.due(110.0) == pytest.approx(20.0)
    assert watcher.passed(130.0) is None
    assert watcher.passed(130.25) == {"limit": "max_duration_seconds", "budget": 30, "used": 30.25}


@pytest.mark.parametrize(("model", "expected"), [
    ("gpt-4o-mini", (0.15, 0.6)), ("gpt-4o-mini-2024-07-18", (0.15, 0.6)), ("openai/gpt-4o", (2.5, 10.0)),
    ("gpt-4o-2024-08-06", (2.5, 10.0)), ("o3-pro", (20.0, 80.0)), ("gemini-2.5-flash-lite", (0.1, 0.4)),
    ("gpt-4o-audio-preview", (2.5, 10.0)), ("gpt-4omini", None), ("local-llama", None),
])
def test_models_find_their_price_in_the_shipped_table(model: str, expected: tuple[float, float] | None) -> None:
    assert usage.price_of(model, prices.read(prices.SHIPPED)) == expected


def test_an_agent_without_a_known_price_leaves_the_cost_unknown() -> None:
    data = {"agents": {"a": mgcoord_status(1000, 0)["agents"]["a"],
                       "b": mgcoord_status(1000, 0, model=None)["agents"]["a"]}}
    assert usage.cost(data, PRICES) == (None, None)
    data["agents"]["b"]["usage"] = {"prompt_tokens": 0, "completion_tokens": 0}
    assert usage.cost(data, PRICES) == (0.002, "prices")


def test_the_users_price_file_overrides_the_shipped_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "prices.yaml"
    mine.write_text("as_of: 2026-01-01\ngpt-4o-mini: {input: 1, output: 2}\nlocal-llama: {input: 0, output: 0}\n")
    monkeypatch.setenv("MGSUP_PRICES", str(mine))
    table = prices.table()
    assert (table["gpt-4o-mini"], table["local-llama"], table["gpt-4o"]) == ([1.0, 2.0], [0.0, 0.0], [2.5, 10.0])
    assert prices.shipped_date() == "2025-08-15"
    monkeypatch.delenv("MGSUP_PRICES")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "mgsup").mkdir(parents=True)
    os.replace(mine, tmp_path / "xdg" / "mgsup" / "prices.yaml")
    assert prices.table()["gpt-4o-mini"] == [1.0, 2.0]


@pytest.mark.parametrize(("text", "message"), [
    ("gpt-x: 3\n", "gpt-x must be {input: USD, output: USD} (per million tokens), got 3"),
    ("gpt-x: {input: 1}\n", "gpt-x must be {input: USD, output: USD}"),
    ("gpt-x: {input: -1, output: 1}\n", "gpt-x.input must be a number of USD >= 0, got -1"),
    ("as_of: [1]\n", "as_of must be a date such as 2025-08-15"),
    ("- a\n", "must map model names to {input: USD, output: USD} per million tokens"),
    ("a: [\n", "is not valid YAML"),
])
def test_a_bad_price_file_refuses_a_cost_budget_and_leaves_reading_alone(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         text: str, message: str) -> None:
    mine = tmp_path / "prices.yaml"
    mine.write_text(text)
    monkeypatch.setenv("MGSUP_PRICES", str(mine))
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        prices.table()
    assert prices.table_for_reading() == prices.read(prices.SHIPPED)


def test_a_run_stopped_for_its_budget_says_so_whatever_the_runner_said(tmp_path: Path) -> None:
    status = tmp_path / "status.json"
    write_status(status, {**mgcoord_status(900, 200), "coordination": {"phase": "interrupted"}})
    figure = {"limit": "max_tokens", "budget": 1000, "used": 1100}
    state = lifecycle.exited(lifecycle.new(0.0, queued=False), 1.0, 4 << 8, killed=False, timed_out=False,
                             budget_exceeded=figure)
    assert (state["status"], state["exit_code"], state["budget_exceeded"]) == ("killed", 4, figure)
    summary = summarize(str(status), shell_status="killed", now=2.0, prices=PRICES, budget_exceeded=figure)
    assert summary is not None
    assert (summary["outcome"], summary["phase"], summary["budget_exceeded"]) == ("budget_exceeded", "interrupted",
                                                                                  figure)
    assert (summary["cost_usd"], summary["cost_source"]) == (0.0038, "prices")
    assert job_exit_code({"status": "killed", "exit_code": 4, "coordination": summary}) == EXIT_BUDGET_EXCEEDED
