"""Batch experiments: plans, the resumable runner and its results folder, verdicts, plots, and the scripts."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes.command_agent import agent_script
from rich.console import Console

from supervisor import InvalidRequest, Supervisor
from supervisor.experiments import (
    BatchFolder,
    Experiment,
    Result,
    RunOptions,
    ab_plan,
    batch_plan,
    compare,
    load_results,
    outcome,
    parse_override,
    plot,
    run_and_report,
    run_experiments,
    set_dotted,
    sweep_plan,
    tick_label,
)
from supervisor.experiments.plot import sweep_grid
from supervisor.experiments.results import ResultsTable
from supervisor.experiments.stats import fisher_exact, mann_whitney_u

# Every run a test started must have ended by its end.
pytestmark = pytest.mark.usefixtures("no_shell_left")
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.yaml"
SCRIPTS = REPO / "scripts"
MGSUP = Path(sys.executable).parent / "mgsup"
PNG = b"\x89PNG\r\n\x1a\n"

# One turn per call; with a path argument, it first waits while that file exists (a run held open).
QUICK_AGENT = agent_script(prompt_tokens=10, completion_tokens=5)



@pytest.fixture
def configs(tmp_path: Path, gate: Path) -> dict[str, Path]:
    """`quick`: one agent answering at once; `broken`: an agent that always fails; `gated`: quick
    once `gate` is removed."""
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "quick_agent.py").write_text(QUICK_AGENT)
    made = {}
    for name, command in (("quick", ["${python}", "${config_dir}/quick_agent.py"]),
                          ("broken", ["${python}", "-c", "import sys; sys.exit(1)"]),
                          ("gated", ["${python}", "${config_dir}/quick_agent.py", str(gate)])):
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "agents": [{"id": "agent_a", "backend": {"type": "command", "command": command}}],
            "orchestrator": {"max_new_answers_per_agent": 1},
            "timeout_settings": {"agent_timeout_seconds": 30, "orchestrator_timeout_seconds": 60},
        }))
        made[name] = path
    return made


def run_script(name: str, *args: str, home: Supervisor) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPTS / name), *args, "--home", str(home.home)],
                          capture_output=True, text=True, timeout=90, env=_pipe_env())


def _pipe_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "COLUMNS"}


def row(label: str, status: str = "stopped", code: int | None = 0, seconds: float | None = 1.0, *,
        n: int = 0, **more: Any) -> Result:
    return Result(experiment_id=f"{label}-{n}", label=label, config=f"/c/config_{label}.yaml", question="q",
                  status=status, exit_code=code, duration_seconds=seconds, **more)


def write_table(out: Path, rows: list[Result], batch: str = "batch-0000abcd") -> str:
    out.mkdir(parents=True, exist_ok=True)
    ResultsTable(out, {r.experiment_id: r for r in rows}, batch).save()
    return (out / "results.json").read_text()


# -- plans ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("orchestrator.max_new_answers_per_agent=1,2", ("orchestrator.max_new_answers_per_agent", [1, 2])),
    ("agents.0.backend.model=gpt-4o-mini, small", ("agents.0.backend.model", ["gpt-4o-mini", "small"])),
    ("timeout_settings.agent_timeout_seconds=2.5", ("timeout_settings.agent_timeout_seconds", [2.5])),
])
def test_parse_override(text: str, expected: tuple[str, list[Any]]) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["no_equals", "=1,2", "a..b=1", "a.b="])
def test_parse_override_refuses_bad_text(text: str) -> None:
    with pytest.raises(InvalidRequest, match=r"invalid override .*DOTTED\.KEY=V1,V2"):
        parse_override(text)


def test_set_dotted_walks_mappings_and_lists() -> None:
    doc: dict[str, Any] = {"agents": [{"id": "a", "backend": {"model": "x"}}]}
    set_dotted(doc, "agents.0.backend.model", "y")
    set_dotted(doc, "orchestrator.max_new_answers_per_agent", 1)
    assert doc == {"agents": [{"id": "a", "backend": {"model": "y"}}],
                   "orchestrator": {"max_new_answers_per_agent": 1}}
    with pytest.raises(InvalidRequest, match="agents is a list of 1; '3' is not an index"):
        set_dotted(doc, "agents.3.id", "b")
    with pytest.raises(InvalidRequest, match=r"agents\.0\.id is str, not a mapping or list"):
        set_dotted(doc, "agents.0.id.deeper", "b")


def test_plans_refuse_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="config file not found"):
        batch_plan([(tmp_path / "missing.yaml", "q")])
    with pytest.raises(InvalidRequest, match="no questions given"):
        ab_plan(DEMO, DEMO, [])
    with pytest.raises(InvalidRequest, match="repeat must be a whole number >= 1"):
        batch_plan([(DEMO, "q")], repeat=0)
    with pytest.raises(InvalidRequest, match="a question is empty"):
        sweep_plan(DEMO, ["orchestrator.max_new_answers_per_agent=1"], [" "], tmp_path / "out")
    with pytest.raises(InvalidRequest, match="an override key is given twice"):
        sweep_plan(DEMO, ["orchestrator.max_new_answers_per_agent=1", "orchestrator.max_new_answers_per_agent=2"],
                   ["q"], tmp_path / "out")


def test_plan_ids_and_labels() -> None:
    assert [(e.experiment_id, e.label) for e in batch_plan([(DEMO, "q")], repeat=2)] == [("e001", "demo"),
                                                                                        ("e002", "demo")]
    assert [e.experiment_id for e in ab_plan(DEMO, DEMO, ["q1", "q2"])] == ["q01-r1-A", "q01-r1-B", "q02-r1-A",
                                                                           "q02-r1-B"]


def test_sweep_makes_valid_variants_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A base config that names its agents relative to its own folder: the variants live elsewhere.
    base_dir = tmp_path / "base"
    (base_dir / "agents").mkdir(parents=True)
    for agent in ("solver.py", "reviewer.py", "arith.py"):
        shutil.copy(REPO / "coordinator" / "agents" / agent, base_dir / "agents" / agent)
    base = base_dir / "demo.yaml"
    base.write_text(DEMO.read_text().replace("${agents}/", "${config_dir}/agents/"))
    monkeypatch.chdir(tmp_path)

    plan = sweep_plan(base, ["orchestrator.max_new_answers_per_agent=1,2",
                             "timeout_settings.agent_timeout_seconds=5,9"], ["What is 2 + 3?"], "results/sweep")

    assert not (tmp_path / "results").exists()
    assert len(plan) == 4
    assert plan[0].label == "max_new_answers_per_agent=1 agent_timeout_seconds=5"
    assert plan[3].params == {"orchestrator.max_new_answers_per_agent": 2, "timeout_settings.agent_timeout_seconds": 9}
    # Absolute: the runs work in --out, where a path relative to the caller's folder means nothing.
    assert plan[3].config == str(tmp_path / "results" / "sweep" / "configs" / "v04.yaml")
    variant = yaml.safe_load(plan[3].config_text or "")
    assert variant["orchestrator"]["max_new_answers_per_agent"] == 2
    assert variant["timeout_settings"]["agent_timeout_seconds"] == 9
    assert variant["agents"][0]["backend"]["command"][1] == f"{base_dir}/agents/solver.py"
    written = tmp_path / "v04.yaml"
    written.write_text(plan[3].config_text or "")
    check = subprocess.run([sys.executable, "-m", "coordinator", "--validate", str(written)],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_run_experiments_refuses_bad_experiment_ids_before_touching_the_folder(home: Supervisor,
                                                                                tmp_path: Path) -> None:
    good = batch_plan([(DEMO, "q")])[0]
    for plan, message in (([Experiment("a b", "x", good.config, "q")], "invalid experiment id 'a b'"),
                          ([good, good], "experiment id 'e001' is used twice")):
        with pytest.raises(InvalidRequest, match=message):
            run_experiments(plan, tmp_path / "out", supervisor=home)
    assert not (tmp_path / "out").exists()
    assert home.list_shells() == []


# -- statistics and verdicts ----------------------------------------------------------------------

def test_fisher_exact_matches_known_values() -> None:
    # 2 x 2 tables with their textbook two-sided p-values.
    assert fisher_exact(1, 10, 11, 14).p_value == pytest.approx(0.0027594561852200836)
    assert fisher_exact(6, 6, 0, 6).p_value == pytest.approx(2 / 924)
    assert fisher_exact(3, 3, 3, 3).p_value == 1.0
    assert fisher_exact(2, 3, 1, 3).p_value == 1.0


def test_mann_whitney_is_exact_against_every_permutation() -> None:
    # With ties: U counts pairs a > b (a tie is half); p is the share of relabellings at least as extreme.
    def u(xs: list[float], ys: list[float]) -> float:
        return sum((x > y) + 0.5 * (x == y) for x in xs for y in ys)

    for a, b in (([1, 2, 2, 5], [2, 3, 7]), ([1.5, 1.5], [1.5, 2.0, 9.0]), ([3.0], [1.0, 2.0]),
                 ([2.906, 2.95, 3.1], [2.965, 2.9, 3.0])):
        pooled = a + b
        centre = len(a) * len(b) / 2
        observed = abs(u(a, b) - centre)
        splits = list(itertools.combinations(range(len(pooled)), len(a)))
        extreme = sum(abs(u([pooled[i] for i in pick], [pooled[i] for i in range(len(pooled)) if i not in pick])
                          - centre) >= observed - 1e-9 for pick in splits)
        result = mann_whitney_u(a, b)
        assert result.statistic == u(a, b)
        assert result.p_value == pytest.approx(extreme / len(splits))
        assert result.name == "Mann-Whitney U test, two-sided, exact"


def test_mann_whitney_uses_the_normal_approximation_for_large_samples() -> None:
    apart = mann_whitney_u([float(i) for i in range(40)], [float(i) + 100 for i in range(40)])
    mixed = mann_whitney_u([float(i) for i in range(0, 80, 2)], [float(i) for i in range(1, 80, 2)])

    assert apart.name.endswith("normal approximation") and apart.p_value < 1e-10
    assert mixed.p_value > 0.5


def test_compare_sees_no_clear_difference_in_close_small_samples() -> None:
    # The report that declared a winner on 2.906 s vs 2.965 s over 3 runs each.
    rows = [row("A", seconds=s, n=i) for i, s in enumerate((2.85, 2.906, 2.99))] + [
        row("B", seconds=s, n=i) for i, s in enumerate((2.88, 2.965, 3.02))]

    verdict = compare(rows)

    assert verdict["better"] is None
    assert verdict["verdict"].startswith("no clear difference between A and B at p < 0.05")
    assert "Fisher's exact test" in verdict["verdict"] and "Mann-Whitney U test" in verdict["verdict"]
    assert [t["compared"] for t in verdict["tests"]] == ["success rate", "duration of successful runs"]
    assert verdict["tests"][1]["p_value"] > 0.05


def test_compare_names_a_winner_only_with_a_clear_difference() -> None:
    reliable = [row("A", n=i) for i in range(6)] + [row("B", "failed", 2, n=i) for i in range(6)]
    faster = [row("A", seconds=3 + i / 10, n=i) for i in range(4)] + [row("B", seconds=1 + i / 10, n=i)
                                                                         for i in range(4)]
    few = [row("A", n=0), row("B", "failed", 2, n=0)]

    assert compare(reliable)["better"] == "A"
    assert compare(reliable)["verdict"].startswith("A is better: it succeeds more often (success 6/6 vs 0/6")
    assert compare(faster)["better"] == "B"
    assert "B is better: faster (median 3.15 s vs 1.15 s, Mann-Whitney U test" in compare(faster)["verdict"]
    assert compare(faster)["tests"][1]["p_value"] == pytest.approx(2 / 70)
    assert compare(few)["better"] is None


def test_compare_leaves_out_runs_killed_from_outside_and_needs_two_configs() -> None:
    # Four killed B runs would make B look unreliable; they say nothing about B.
    rows = [row("A", n=i) for i in range(4)] + [row("B", n=0)] + [
        row("B", "killed", -15, n=i) for i in range(1, 5)]

    assert compare(rows)["tests"][0]["p_value"] == 1.0
    assert compare([row("A")])["verdict"] == "no verdict: an A/B comparison needs exactly two configs, this table has 1"


@pytest.mark.parametrize(("result", "expected"), [
    (row("A"), "ok"),
    (row("A", "failed", 2), "failed (exit 2)"),
    (row("A", outcome="no_answer"), "no answer"),
    (row("A", outcome="answered"), "ok"),
    (row("A", "killed", -15, timed_out=True), "timed out"),
    (row("A", "killed", -15, stalled=True), "stalled"),
    (row("A", "killed", -15), "killed"),
    (row("A", "lost", None), "lost"),
    (row("A", "running", None, None), "running"),
])
def test_outcome_reads_as_people_say_it(result: Result, expected: str) -> None:
    assert outcome(result) == expected


def test_a_table_of_mgsup_0_1_still_loads(tmp_path: Path) -> None:
    old = {"experiment_id": "e001", "label": "demo", "config": str(DEMO), "question": "q", "shell_id": "shell_0a1b2c3d",
           "status": "killed", "exit_code": -15, "winner": None, "duration_seconds": 3.2, "votes": {},
           "prompt_tokens": None, "completion_tokens": None, "total_tokens": None, "log_dir": None,
           "answer_file": None, "message": "killed because it stalled"}
    (tmp_path / "results.json").write_text(json.dumps({"results": [old]}))

    (loaded,) = load_results(tmp_path)

    assert (loaded.experiment_id, loaded.status, loaded.reason) == ("e001", "killed", "killed because it stalled")


# -- plots ----------------------------------------------------------------------------------------

def test_plot_labels_are_cut_into_lines_and_name_their_config() -> None:
    assert tick_label("max_new_answers_per_agent=1 agent_timeout_seconds=10") == (
        "max_new_answers_per_agent=1\nagent_timeout_seconds=10")
    assert tick_label("A", "/repo/configs/demo.yaml") == "A\n(demo.yaml)"
    assert tick_label("demo", "/repo/configs/demo.yaml") == "demo"


def test_plot_colours_outcomes_counts_in_whole_runs_and_titles(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.colors import to_hex

    rows = [row("A", n=i, seconds=1.0) for i in range(3)] + [row("B", "failed", 2, 0.5, n=0),
                                                               row("B", n=1, seconds=2.0)]
    captured = []
    monkey = pytest.MonkeyPatch()
    monkey.setattr(pyplot, "close", captured.append)
    try:
        target = plot(rows, tmp_path / "results.png", title="A/B test: A = a.yaml, B = b.yaml")
    finally:
        monkey.undo()
    (figure,) = captured
    durations, outcomes = figure.axes

    assert target.read_bytes()[:8] == PNG
    assert figure.texts[0].get_text() == "A/B test: A = a.yaml, B = b.yaml"
    bars = {text.get_text(): {to_hex(p.get_facecolor()) for p in container}
            for container, text in zip(outcomes.containers, outcomes.get_legend().get_texts(), strict=True)}
    assert bars == {"ok": {"#2e9e44"}, "failed": {"#d62728"}}
    assert all(float(t).is_integer() for t in outcomes.get_yticks())
    ok_points = sorted(durations.collections[0].get_offsets()[:, 0])
    assert len(set(ok_points)) == 4, "jittered: no two points on one line"
    assert all(-0.2 < x < 0.2 for x in ok_points[:3]) and 0.8 < ok_points[3] < 1.2, "each around its column"
    assert [t.get_text() for t in durations.get_xticklabels()] == ["A\n(config_A.yaml)", "B\n(config_B.yaml)"]
    pyplot.close(figure)


def test_a_two_setting_sweep_is_drawn_as_heatmaps(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = [Result(experiment_id=f"v{i}", label=f"x={x} y={y}", config=f"/o/configs/v0{i}.yaml", question="q",
                   params={"a.x": x, "b.y": y}, status="stopped" if x == 1 else "failed", exit_code=0 if x == 1 else 2,
                   duration_seconds=1.0 + y) for i, (x, y) in enumerate(itertools.product((1, 2), (10, 20)))]
    captured = []
    monkey = pytest.MonkeyPatch()
    monkey.setattr(pyplot, "close", captured.append)
    try:
        plot(rows, tmp_path / "results.png")
    finally:
        monkey.undo()
    (figure,) = captured

    assert sweep_grid(rows) == ("a.x", [1, 2], "b.y", [10, 20])
    panels = {axes.get_title(): axes for axes in figure.axes}
    success, speed = panels["success rate"], panels["median duration of ok runs"]
    assert (success.get_xlabel(), success.get_ylabel()) == ("b.y", "a.x")
    assert [t.get_text() for t in success.texts] == ["1/1 ok", "1/1 ok", "0/1 ok", "0/1 ok"]
    assert [t.get_text() for t in speed.texts] == ["11.00 s", "21.00 s", "no ok run", "no ok run"]
    assert figure.texts[0].get_text() == "4 runs of v00.yaml, v01.yaml, v02.yaml, v03.yaml"
    pyplot.close(figure)


# -- the runner -----------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_run_experiments_writes_the_table_with_reasons_and_resumes(home: Supervisor, tmp_path: Path,
                                                                  configs: dict[str, Path]) -> None:
    plan = batch_plan([(configs["quick"], "What is 2 + 2?"), (configs["broken"], "What is 2 + 2?")])
    seen: list[Result] = []

    rows = run_experiments(plan, tmp_path / "out", supervisor=home, on_result=seen.append)

    assert sorted(r.experiment_id for r in seen) == ["e001", "e002"]
    ok, broken = rows
    assert (ok.status, ok.exit_code, ok.winner, ok.votes, ok.reason) == ("stopped", 0, "agent_a", {"agent1.1": 1}, None)
    assert (ok.prompt_tokens, ok.completion_tokens, ok.total_tokens, ok.outcome) == (30, 15, 45, "answered")
    assert ok.answer_file and Path(ok.answer_file).read_text().startswith("final: 4")
    assert Path(ok.log_dir or "").parent == tmp_path / "out" / ".massgen" / "massgen_logs"
    assert (broken.status, broken.exit_code, broken.winner, broken.answer_file) == ("failed", 2, None, None)
    assert broken.reason and broken.reason.startswith("ERROR: all agents failed (agent_a: ")
    assert broken.outcome == "error" and not broken.succeeded
    assert ok.duration_seconds and ok.duration_seconds > 0
    assert load_results(tmp_path / "out") == rows
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [(r["experiment_id"], r["status"], r["exit_code"], r["total_tokens"], r["attempt"]) for r in table] == [
        ("e001", "stopped", "0", "45", "1"), ("e002", "failed", "2", "", "1")]
    assert table[1]["reason"] == broken.reason
    assert json.loads(table[0]["votes"]) == {"agent1.1": 1}
    batch = json.loads((tmp_path / "out" / "results.json").read_text())["batch"]
    assert sorted(s["name"] for s in home.list_shells()) == [f"{batch}-e001", f"{batch}-e002"]

    again = run_experiments(plan, tmp_path / "out", supervisor=home, on_result=seen.append)

    assert again == rows
    assert len(seen) == 2 and len(home.list_shells()) == 2  # nothing ran twice, the failure was kept

    retried = run_experiments(plan, tmp_path / "out", supervisor=home, retry_failed=True)

    assert retried[0] == ok
    assert (retried[1].status, retried[1].attempt) == ("failed", 2)
    assert retried[1].shell_id != broken.shell_id and len(home.list_shells()) == 3


@pytest.mark.timeout(60)
def test_runs_killed_from_outside_are_run_again_on_resume(home: Supervisor, tmp_path: Path, gate: Path,
                                                         configs: dict[str, Path],
                                                         wait_for: Callable[..., Any]) -> None:
    plan = batch_plan([(configs["gated"], "What is 2 + 2?")])
    out = tmp_path / "out"
    done: list[list[Result]] = []
    batch = threading.Thread(target=lambda: done.append(run_experiments(plan, out, supervisor=home)))
    batch.start()
    try:
        running = wait_for(lambda: [s for s in home.list_shells() if s["status"] == "running"], timeout=30,
                           what="the gated run")
        home.kill_shell(running[0]["shell_id"], grace=2)
    finally:
        batch.join(timeout=30)
    ((killed,),) = done
    assert (outcome(killed), killed.attempt) == ("killed", 1)
    assert killed.reason == "killed by SIGTERM from outside this batch"
    gate.unlink()

    (rerun,) = run_experiments(plan, out, supervisor=home)

    assert (rerun.status, rerun.attempt, rerun.reason) == ("stopped", 2, None)
    assert rerun.shell_id != killed.shell_id


@pytest.mark.timeout(60)
def test_a_timed_out_run_counts_as_failed_and_is_retried_only_when_asked(home: Supervisor, tmp_path: Path,
                                                                         configs: dict[str, Path],
                                                                         gate: Path) -> None:
    plan = batch_plan([(configs["gated"], "What is 2 + 2?")])

    (first,) = run_experiments(plan, tmp_path / "out", supervisor=home, timeout=1)

    assert (outcome(first), first.timed_out) == ("timed out", True)
    assert first.reason and first.reason.startswith("timed out after 1 s")
    assert run_experiments(plan, tmp_path / "out", supervisor=home) == [first]
    gate.unlink()
    (retried,) = run_experiments(plan, tmp_path / "out", supervisor=home, timeout=30, retry_failed=True)
    assert (retried.status, retried.attempt, retried.timed_out) == ("stopped", 2, False)


@pytest.mark.timeout(60)
def test_resume_starts_again_a_run_whose_shell_is_unknown(home: Supervisor, tmp_path: Path,
                                                          configs: dict[str, Path]) -> None:
    plan = batch_plan([(configs["quick"], "What is 2 + 2?")])
    stale = Result(experiment_id="e001", label="quick", config=plan[0].config, question=plan[0].question,
                   shell_id="shell_00000000", status="running", attempt=1)
    write_table(tmp_path / "out", [stale])

    (row_,) = run_experiments(plan, tmp_path / "out", supervisor=home)

    assert row_.status == "stopped" and row_.shell_id != "shell_00000000"


@pytest.mark.timeout(60)
def test_resume_adopts_a_run_started_just_before_a_crash(home: Supervisor, tmp_path: Path,
                                                         configs: dict[str, Path]) -> None:
    # A batch that died between starting a run and recording it: the run's name gives it away.
    plan = batch_plan([(configs["quick"], "What is 2 + 2?")])
    pending = Result(experiment_id="e001", label="quick", config=plan[0].config, question=plan[0].question)
    write_table(tmp_path / "out", [pending], batch="batch-0badcafe")
    orphan = home.start_coordination(plan[0].config, plan[0].question, cwd=tmp_path / "out",
                                     name="batch-0badcafe-e001")

    (row_,) = run_experiments(plan, tmp_path / "out", supervisor=home)

    assert (row_.shell_id, row_.status, row_.attempt) == (orphan, "stopped", 1)
    assert len(home.list_shells()) == 1


def test_a_folder_of_another_plan_is_refused_and_left_as_it_was(home: Supervisor, tmp_path: Path) -> None:
    # The CLI A/B example's folder (4 rows, a plot), then the Python snippet with one question of it.
    out = tmp_path / "ab"
    earlier = [Result(experiment_id=e.experiment_id, label=e.label, config=e.config, question=e.question,
                      status="stopped", exit_code=0, attempt=1, shell_id="shell_0000000" + str(i))
               for i, e in enumerate(ab_plan(DEMO, REPO / "configs" / "demo_solo.yaml", ["q1", "q2"]))]
    before = write_table(out, earlier)
    (out / "results.png").write_bytes(PNG)

    for plan in (ab_plan(DEMO, REPO / "configs" / "demo_solo.yaml", ["q1"]),  # would drop 2 rows
                 ab_plan(DEMO, DEMO, ["q1", "q2"]),  # same ids, another config
                 batch_plan([(DEMO, "q1")])):
        with pytest.raises(InvalidRequest, match=r"holds \d experiment\(s\) of another plan, e\.g\. 'q0.-r1-.' .*"
                                                 "use a new folder for a new plan"):
            run_experiments(plan, out, supervisor=home)

    assert home.list_shells() == []
    assert (out / "results.json").read_text() == before
    assert (out / "results.png").read_bytes() == PNG


@pytest.mark.timeout(60)
def test_a_plan_may_grow_and_a_changed_table_drops_its_stale_plot(home: Supervisor, tmp_path: Path,
                                                                 configs: dict[str, Path]) -> None:
    out = tmp_path / "ab"
    first = run_experiments(ab_plan(configs["quick"], configs["broken"], ["What is 2 + 2?"]), out, supervisor=home)
    (out / "results.png").write_bytes(PNG)

    grown = run_experiments(ab_plan(configs["quick"], configs["broken"], ["What is 2 + 2?"], repeat=2), out,
                            supervisor=home)

    assert grown[:2] == first  # kept as they were
    assert [r.experiment_id for r in grown] == ["q01-r1-A", "q01-r1-B", "q01-r2-A", "q01-r2-B"]
    assert len(home.list_shells()) == 4
    assert not (out / "results.png").exists(), "the plot showed the table before the new rows"


def test_a_sweep_folder_holding_other_variants_is_refused(home: Supervisor, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    (out / "configs").mkdir(parents=True)
    (out / "configs" / "v01.yaml").write_text("# another sweep's variant\n")

    with pytest.raises(InvalidRequest, match=r"v01\.yaml holds another config variant than this plan makes"):
        run_experiments(sweep_plan(DEMO, ["orchestrator.max_new_answers_per_agent=1"], ["q"], out), out,
                        supervisor=home)

    assert home.list_shells() == []
    assert (out / "configs" / "v01.yaml").read_text() == "# another sweep's variant\n"
    assert not (out / "results.json").exists()


def test_a_folder_held_by_another_batch_is_refused(home: Supervisor, tmp_path: Path) -> None:
    with BatchFolder(tmp_path / "out"), pytest.raises(
            InvalidRequest, match=rf"results folder '.*out' is in use by another batch \(pid {os.getpid()}: "):
        run_experiments(batch_plan([(DEMO, "q")]), tmp_path / "out", supervisor=home)

    assert home.list_shells() == []
    assert not (tmp_path / "out" / "results.json").exists()


def test_a_batch_folder_is_used_only_while_held(home: Supervisor, tmp_path: Path) -> None:
    folder = BatchFolder(tmp_path / "out")
    with pytest.raises(InvalidRequest, match="is not held: use `with BatchFolder"):
        run_experiments(batch_plan([(DEMO, "q")]), folder, supervisor=home)
    with folder:
        assert folder.held
    assert not folder.held
    assert home.list_shells() == []


def test_an_unusable_folder_is_refused_before_anything_starts(home: Supervisor, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    for out, message in ((tmp_path / "a-file", "results folder '.*a-file' is a file, not a folder"),
                         (tmp_path / "a-file" / "sub", "cannot create results folder '.*sub': Not a directory")):
        with pytest.raises(InvalidRequest, match=message):
            run_experiments(batch_plan([(DEMO, "q")]), out, supervisor=home)
    assert home.list_shells() == []


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """An existing folder on a read-only bind mount (root ignores permission bits; a mount it cannot)."""
    source, view = tmp_path / "source", tmp_path / "read-only"
    source.mkdir()
    view.mkdir()
    try:
        subprocess.run(["mount", "--bind", str(source), str(view)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot bind-mount here (needs CAP_SYS_ADMIN)")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True, capture_output=True)
        yield view
    finally:
        subprocess.run(["umount", str(view)], check=True, capture_output=True)


# -- the scripts ----------------------------------------------------------------------------------

@pytest.mark.timeout(90)
def test_ab_test_script_gives_a_tested_verdict_reasons_and_a_plot(home: Supervisor, tmp_path: Path,
                                                                 configs: dict[str, Path]) -> None:
    out = tmp_path / "ab"
    done = run_script("ab_test.py", str(configs["quick"]), str(configs["broken"]), "-q", "What is 2 + 2?",
                      "-q", "What is 3 + 1?", "--repeat", "2", "--out", str(out), "--plot", home=home)

    assert done.returncode == 0, done.stdout + done.stderr
    rows = load_results(out)
    assert [(r.label, r.status) for r in rows] == [("A", "stopped"), ("B", "failed")] * 4
    assert "verdict: A is better: it succeeds more often (success 4/4 vs 0/4, Fisher's exact test, two-sided: " \
           "p = 0.029)" in done.stdout
    assert f"better: A ({configs['quick']})" in done.stdout
    # Progress lines and tables: the question, the outcome as people read it, mgcoord's reason; no None.
    assert "q01-r1-B (B): failed (exit 2) in " in done.stdout and ": ERROR: all agents failed" in done.stdout
    assert "│ What is 3 + 1? │" in done.stdout and "per config" in done.stdout
    assert "None" not in done.stdout
    with open(out / "results.csv", newline="") as f:
        assert all(r["reason"].startswith("ERROR: all agents failed") for r in csv.DictReader(f) if r["label"] == "B")
    assert (out / "results.png").read_bytes()[:8] == PNG


@pytest.mark.timeout(90)
def test_sweep_script_runs_every_variant_of_a_grid(home: Supervisor, tmp_path: Path, configs: dict[str, Path]) -> None:
    out = tmp_path / "sweep"
    done = run_script("sweep.py", str(configs["quick"]), "--set", "orchestrator.max_new_answers_per_agent=1,2",
                      "--set", "timeout_settings.agent_timeout_seconds=20,30", "-q", "What is 2 + 2?",
                      "--out", str(out), "--plot", home=home)

    assert done.returncode == 0, done.stdout + done.stderr
    rows = load_results(out)
    assert [(r.label, r.status, r.winner) for r in rows] == [
        (f"max_new_answers_per_agent={n} agent_timeout_seconds={t}", "stopped", "agent_a")
        for n, t in itertools.product((1, 2), (20, 30))]
    assert rows[3].params == {"orchestrator.max_new_answers_per_agent": 2, "timeout_settings.agent_timeout_seconds": 30}
    assert sorted(p.name for p in (out / "configs").iterdir()) == ["v01.yaml", "v02.yaml", "v03.yaml", "v04.yaml"]
    # Read in a pipe: labels are printed whole, in the progress lines and in the tables.
    assert "v01-q01-r1 (max_new_answers_per_agent=1 agent_timeout_seconds=20): ok in " in done.stdout
    assert (out / "results.png").read_bytes()[:8] == PNG


def test_batch_script_reports_bad_input_in_one_line_with_its_exit_code(home: Supervisor, tmp_path: Path) -> None:
    done = run_script("batch.py", "--out", str(tmp_path / "out"), "--run", str(tmp_path / "nope.yaml"), "q",
                      home=home)

    assert done.returncode == 2
    assert done.stderr == f"batch.py: error: config file not found: '{tmp_path / 'nope.yaml'}'\n"
    assert home.list_shells() == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["read-only", "a file"])
def test_batch_script_refuses_an_unusable_out_in_one_line(home: Supervisor, tmp_path: Path, kind: str,
                                                          request: pytest.FixtureRequest) -> None:
    if kind == "read-only":
        out = request.getfixturevalue("read_only_folder")
        expected = f"batch.py: error: cannot write in results folder '{out}': Read-only file system; give --out " \
                   "a folder you can write to\n"
    else:
        out = tmp_path / "results.txt"
        out.write_text("not a folder")
        expected = f"batch.py: error: results folder '{out}' is a file, not a folder: give --out a folder (new or " \
                   "from an earlier run)\n"

    done = run_script("batch.py", "--out", str(out), "--run", str(DEMO), "What is 6 * 7?", home=home)

    assert (done.returncode, done.stderr, done.stdout) == (2, expected, "")
    assert home.list_shells() == []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("start", ["together", "staggered"])
def test_two_batches_on_one_folder_never_run_an_experiment_twice(home: Supervisor, tmp_path: Path, start: str,
                                                                 wait_for: Callable[..., Any]) -> None:
    out = tmp_path / "out"
    listing = tmp_path / "experiments.yaml"
    listing.write_text(yaml.safe_dump([{"config": str(DEMO), "question": f"What is {n} * 7?"} for n in (2, 3, 4)]))
    args = [sys.executable, str(SCRIPTS / "batch.py"), "--out", str(out), "--file", str(listing),
            "--home", str(home.home), "--max-concurrent", "2"]
    racing = []
    try:
        for _ in range(2):
            racing.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                           env=_pipe_env()))
            if start == "staggered" and len(racing) == 1:
                wait_for(lambda: any(r.shell_id for r in load_results(out)), timeout=30, interval=0.02,
                         what="the first batch's first run")
        ended = [p.communicate(timeout=90) for p in racing]
    finally:
        for p in racing:
            p.kill()
            p.wait()

    codes = [p.returncode for p in racing]
    assert sorted(codes) == [0, 2], ended
    if start == "staggered":
        assert codes == [0, 2]
    _, refusal = ended[codes.index(2)]
    assert refusal.count("\n") == 1
    assert refusal.startswith(f"batch.py: error: results folder '{out}' is in use by another batch (pid "
                              f"{racing[codes.index(0)].pid}: ")
    rows = load_results(out)
    assert [r.status for r in rows] == ["stopped"] * 3
    assert sorted(s["shell_id"] for s in home.list_shells()) == sorted(r.shell_id or "" for r in rows)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_batch_resumes(home: Supervisor, tmp_path: Path, wait_for: Callable[..., Any],
                                     sig: signal.Signals) -> None:
    out = tmp_path / "out"
    listing = tmp_path / "experiments.yaml"
    listing.write_text(yaml.safe_dump([{"config": str(DEMO), "question": f"What is {n} * 7?"} for n in (2, 3, 4)]))
    args = [sys.executable, str(SCRIPTS / "batch.py"), "--out", str(out), "--file", str(listing),
            "--home", str(home.home), "--max-concurrent", "1"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_pipe_env())
    try:
        wait_for(lambda: any(r.finished for r in load_results(out)), timeout=60, interval=0.05,
                 what="the first finished experiment")
        first.send_signal(sig)
        text, _ = first.communicate(timeout=30)
    finally:
        first.kill()
        first.wait()
    at_interruption = load_results(out)
    assert not all(r.finished for r in at_interruption), "the batch ended before it could be interrupted"

    again = subprocess.run(args, capture_output=True, text=True, timeout=90, env=_pipe_env())

    assert again.returncode == 0, again.stdout + again.stderr
    rows = load_results(out)
    assert [(r.status, r.winner, r.attempt) for r in rows] == [("stopped", "reviewer", 1)] * 3
    # Finished runs were kept and unfinished ones re-attached: every run started exactly once.
    assert [r.shell_id for r in rows] == [r.shell_id for r in at_interruption]
    assert len(home.list_shells()) == 3
    finished_before = {r.experiment_id for r in at_interruption if r.finished}
    assert not any(f" {e} (demo)" in again.stdout for e in finished_before)
    if sig == signal.SIGINT:
        assert first.returncode == 130
        assert "interrupted: " in text and "Run the same command again to resume" in text


@pytest.mark.timeout(120)
def test_the_ctrl_c_hint_stops_only_this_batch_and_a_resume_reruns_those_runs(
        home: Supervisor, tmp_path: Path, configs: dict[str, Path], gate: Path, wait_for: Callable[..., Any]) -> None:
    bystander = home.start_shell("sleep 60", name="not-in-the-batch")
    out = tmp_path / "out"
    args = [sys.executable, str(SCRIPTS / "batch.py"), "--out", str(out), "--home", str(home.home),
            "--run", str(configs["gated"]), "What is 2 + 2?", "--repeat", "3", "--max-concurrent", "3"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_pipe_env())
    try:
        wait_for(lambda: len([r for r in load_results(out) if r.shell_id]) == 3, timeout=30, interval=0.05,
                 what="three runs started")
        first.send_signal(signal.SIGINT)
        text, _ = first.communicate(timeout=30)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 130, text
    started = load_results(out)
    (hint,) = [line for line in text.splitlines() if "to stop them (and only them): " in line]
    command = hint.split("to stop them (and only them): ", 1)[1]
    assert shlex.split(command) == ["mgsup", "--home", str(home.home), "kill", *sorted(
        (r.shell_id or "" for r in started), key=lambda s: home.get_shell_status(s)["status"] != "queued")]

    stopped = subprocess.run([str(MGSUP), *shlex.split(command)[1:]], capture_output=True, text=True, timeout=60)

    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert {home.get_shell_status(r.shell_id or "")["status"] for r in started} == {"killed"}
    assert home.get_shell_status(bystander)["status"] == "running"
    home.kill_shell(bystander, grace=1)
    gate.unlink()

    again = subprocess.run(args, capture_output=True, text=True, timeout=90, env=_pipe_env())

    assert again.returncode == 0, again.stdout + again.stderr
    rows = load_results(out)
    assert [(r.status, r.attempt) for r in rows] == [("stopped", 2)] * 3
    assert not {r.shell_id for r in rows} & {r.shell_id for r in started}


@pytest.mark.timeout(60)
def test_plot_is_skipped_with_a_message_without_matplotlib(home: Supervisor, tmp_path: Path,
                                                           configs: dict[str, Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    text = io.StringIO()
    options = RunOptions(out=tmp_path / "out", home=str(home.home), plot=True)

    code = run_and_report(lambda: batch_plan([(configs["quick"], "What is 2 + 2?")]), options,
                          Console(file=text, width=200))

    assert code == 0
    assert "plot skipped: matplotlib is not installed" in text.getvalue()
    assert not (tmp_path / "out" / "results.png").exists()


def test_the_documented_batch_examples_name_files_that_ship() -> None:
    section = (REPO / "docs" / "coordination.md").read_text().split("## Batch experiments", 1)[1]
    named = set(re.findall(r"(?:configs|scripts)/[\w./-]*\w", section))
    assert {"configs/demo_solo.yaml", "configs/batches/demo_batch.yaml", "scripts/ab_test.py"} <= named
    assert sorted(n for n in named if not (REPO / n).is_file()) == []
