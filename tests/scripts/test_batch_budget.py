"""A budget for a whole batch (--budget-tokens / --budget-usd): once spent, no run starts and the running
ones are stopped; a resumed batch counts what was spent; the tables show each run's cost and the total."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fakes.command_agent import HOLD_AFTER_ANSWER, agent_script
from fakes.openai_server import OpenAIServer

from supervisor import Supervisor
from supervisor.experiments import batch_plan, load_results, outcome, run_experiments
from supervisor.experiments.budget import BatchBudget

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_shell_left")]
REPO = Path(__file__).resolve().parents[2]

# Answers at once reporting 1,000 tokens; every later turn waits while the `gate` file exists.
SPENDER = agent_script(prompt_tokens=900, completion_tokens=100, hold=HOLD_AFTER_ANSWER)



def spender(tmp_path: Path, gate: Path) -> Path:
    (tmp_path / "spender.py").write_text(SPENDER)
    config = tmp_path / "spender.yaml"
    config.write_text(yaml.safe_dump({
        "agents": [{"id": "agent_a", "backend": {"type": "command",
                                                  "command": ["${python}", "${config_dir}/spender.py", str(gate)]}}],
        "orchestrator": {"max_new_answers_per_agent": 1},
        "timeout_settings": {"agent_timeout_seconds": 60, "orchestrator_timeout_seconds": 90}}))
    return config


def test_a_spent_batch_budget_stops_running_runs_starts_no_more_and_holds_on_resume(tmp_path: Path, gate: Path) -> None:
    home = Supervisor(tmp_path / "home", max_concurrent=2)
    plan = batch_plan([(spender(tmp_path, gate), "What is 2 + 2?")], repeat=4)
    out = tmp_path / "out"

    rows = run_experiments(plan, out, supervisor=home, budget=BatchBudget(tokens=1500))

    # Two runs ran and answered (1,000 tokens each): past 1,500, both were stopped and the two in line never ran.
    assert [r.outcome for r in rows] == ["budget_exceeded"] * 4
    started = [r for r in rows if r.total_tokens]
    assert len(started) == 2 and all(r.total_tokens == 1000 for r in started)
    for r in rows:
        assert r.reason == "stopped: the batch's budget of 1,500 tokens is spent: 2,000 used", r
    shells = {s["shell_id"]: s for s in home.list_shells()}
    assert sorted(s["message"] or "" for s in shells.values()) == ["", "", "Removed from queue", "Removed from queue"]
    assert all(s["start_time"] is None for s in shells.values() if s["message"] == "Removed from queue")
    assert {outcome(r) for r in rows} == {"budget spent"}

    # Resumed with the same budget: what was spent counts, nothing starts.
    gate.unlink()
    again = run_experiments(plan, out, supervisor=home, budget=BatchBudget(tokens=1500))
    assert [r.outcome for r in again] == ["budget_exceeded"] * 4 and len(home.list_shells()) == 4
    assert [r.reason for r in again] == [r.reason for r in rows]

    # With more budget, the runs stopped for it run again, each with what is left as its own budget; their
    # earlier tokens stay counted.
    more = run_experiments(plan, out, supervisor=home, budget=BatchBudget(tokens=100_000))
    assert [(r.outcome, r.attempt) for r in more] == [("answered", 2)] * 4
    assert [home.store.spec(r.shell_id or "").budget for r in more] == [{"max_tokens": 98_000}] * 4
    assert sum(r.spent_tokens for r in more) == 2000 + 4 * 3000
    assert load_results(out) == more


def test_batch_script_budget_usd_shows_each_runs_cost_and_the_total(home: Supervisor, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("lab-model: {input: 2.0, output: 10.0}\n")
    # The first run makes three requests; the second's first answer is the fourth. Later requests are held, so
    # the second run cannot go past its first answer before the batch sees what it spent, however fast it runs.
    with OpenAIServer(prompt_tokens=1000, completion_tokens=100, stall_after=4) as server:
        config = tmp_path / "paid.yaml"
        config.write_text(yaml.safe_dump({"agents": [
            {"id": "agent_a", "backend": {"type": "openai", "model": "lab-model", "base_url": server.base_url,
                                          "api_key_env": "BATCH_KEY"}}]}))
        done = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "batch.py"), "--out", str(tmp_path / "out"), "--run", str(config),
             "What is 17 * 23?", "--repeat", "3", "--max-concurrent", "1", "--budget-usd", "0.01",
             "--home", str(home.home)],
            capture_output=True, text=True, timeout=90,
            env={"PATH": "/usr/bin:/bin", "MGSUP_PRICES": str(prices), "BATCH_KEY": "k", "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    first, second, third = load_results(tmp_path / "out")
    # One answer, one vote, the presentation: $0.003 each, within the $0.01.
    assert (first.outcome, first.cost_usd) == ("answered", pytest.approx(0.009))
    # All three were queued at once, each with the whole budget as its own. The second ran after the first and
    # passed what was left with its first answer: the batch stopped it and took the third out of the queue.
    assert [home.store.spec(r.shell_id or "").budget for r in (first, second, third)] == [{"max_cost_usd": 0.01}] * 3
    assert (second.outcome, second.cost_usd) == ("budget_exceeded", pytest.approx(0.003))
    assert second.reason == third.reason == "stopped: the batch's budget of $0.0100 is spent: $0.0120 used"
    assert (third.outcome, third.cost_usd, third.status) == ("budget_exceeded", None, "killed")
    assert home.get_shell_status(third.shell_id or "")["start_time"] is None
    assert "$0.0090" in done.stdout and "budget for the batch: $0.0100" in done.stdout
    assert "total: 4,400 tokens, $0.0120; budget $0.0100: spent" in done.stdout
