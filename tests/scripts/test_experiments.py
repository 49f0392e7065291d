"""Batch experiments: plans, the resumable runner and its results table, and the scripts over them."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from supervisor import InvalidRequest, Supervisor
from supervisor.experiments import (
    Result,
    RunOptions,
    ab_plan,
    batch_plan,
    compare,
    load_results,
    parse_override,
    run_and_report,
    run_experiments,
    set_dotted,
    sweep_plan,
    tick_label,
)

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.yaml"
SCRIPTS = REPO / "scripts"

# One turn per call, no waiting; reports token usage with every reply.
QUICK_AGENT = """
import json, sys
req = json.load(sys.stdin)
usage = {"prompt_tokens": 10, "completion_tokens": 5}
if req["phase"] == "present":
    reply = {"content": "final: 4"}
elif req["can_answer"] and not any(a["anon_id"] == req["anon_id"] for a in req["answers"]):
    reply = {"action": "new_answer", "content": "4"}
else:
    reply = {"action": "vote", "agent_id": req["vote_options"][0], "reason": "fine"}
reply["usage"] = usage
print(json.dumps(reply))
"""


@pytest.fixture(autouse=True)
def no_shell_left(home: Supervisor) -> Iterator[None]:
    """Every run a test started must have ended by its end (an ended shell has no process left)."""
    yield
    left = [s["shell_id"] for s in home.list_shells() if s["status"] in ("queued", "running")]
    for shell_id in left:
        home.kill_shell(shell_id, grace=1)
    assert not left, f"shells still running: {left}"


@pytest.fixture
def configs(tmp_path: Path) -> dict[str, Path]:
    """`quick`: one agent answering at once; `broken`: an agent that always fails."""
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "quick_agent.py").write_text(QUICK_AGENT)
    made = {}
    for name, command in (("quick", ["${python}", "${config_dir}/quick_agent.py"]),
                          ("broken", ["${python}", "-c", "import sys; sys.exit(1)"])):
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "agents": [{"id": "agent_a", "backend": {"type": "command", "command": command}}],
            "orchestrator": {"max_new_answers_per_agent": 1},
            "timeout_settings": {"agent_timeout_seconds": 20, "orchestrator_timeout_seconds": 40},
        }))
        made[name] = path
    return made


def run_script(name: str, *args: str, home: Supervisor) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPTS / name), *args, "--home", str(home.home)],
                          capture_output=True, text=True, timeout=90,
                          env={k: v for k, v in os.environ.items() if k != "COLUMNS"})


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


def test_plans_refuse_bad_input_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="config file not found"):
        batch_plan([(tmp_path / "missing.yaml", "q")])
    with pytest.raises(InvalidRequest, match="no questions given"):
        ab_plan(DEMO, DEMO, [])
    with pytest.raises(InvalidRequest, match="repeat must be a whole number >= 1"):
        batch_plan([(DEMO, "q")], repeat=0)
    with pytest.raises(InvalidRequest, match="a question is empty"):
        sweep_plan(DEMO, ["orchestrator.max_new_answers_per_agent=1"], [" "], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_plan_ids_and_labels() -> None:
    assert [(e.experiment_id, e.label) for e in batch_plan([(DEMO, "q")], repeat=2)] == [("e001", "demo"),
                                                                                        ("e002", "demo")]
    assert [e.experiment_id for e in ab_plan(DEMO, DEMO, ["q1", "q2"])] == ["q01-r1-A", "q01-r1-B", "q02-r1-A",
                                                                           "q02-r1-B"]


def test_sweep_writes_valid_variants(tmp_path: Path) -> None:
    # A base config that names its agents relative to its own folder: the variants live elsewhere.
    base_dir = tmp_path / "base"
    (base_dir / "agents").mkdir(parents=True)
    for agent in ("solver.py", "reviewer.py", "arith.py"):
        shutil.copy(REPO / "coordinator" / "agents" / agent, base_dir / "agents" / agent)
    base = base_dir / "demo.yaml"
    base.write_text(DEMO.read_text().replace("${agents}/", "${config_dir}/agents/"))
    plan = sweep_plan(base, ["orchestrator.max_new_answers_per_agent=1,2",
                             "timeout_settings.agent_timeout_seconds=5,9"], ["What is 2 + 3?"], tmp_path / "out")

    assert len(plan) == 4
    assert plan[0].label == "max_new_answers_per_agent=1 agent_timeout_seconds=5"
    variant = yaml.safe_load(Path(plan[3].config).read_text())
    assert variant["orchestrator"]["max_new_answers_per_agent"] == 2
    assert variant["timeout_settings"]["agent_timeout_seconds"] == 9
    assert variant["agents"][0]["backend"]["command"][1] == f"{base_dir}/agents/solver.py"
    check = subprocess.run([sys.executable, "-m", "coordinator", "--validate", plan[3].config],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr



def test_sweep_variants_have_absolute_paths_for_a_relative_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The runs work in --out, so a variant path relative to the caller's folder would not be found there.
    monkeypatch.chdir(tmp_path)
    plan = sweep_plan(DEMO, ["orchestrator.max_new_answers_per_agent=1"], ["q"], "results/sweep")

    assert plan[0].config == str(tmp_path / "results" / "sweep" / "configs" / "v01.yaml")
    assert Path(plan[0].config).is_file()


def test_plot_labels_are_cut_into_lines_that_fit_a_column() -> None:
    assert tick_label("max_new_answers_per_agent=1 agent_timeout_seconds=10") == (
        "max_new_answers_per_agent=1\nagent_timeout_seconds=10")
    assert tick_label("a_single_label_longer_than_one_line_of_the_plot") == (
        "a_single_label_longer_than_one_line_of_the_plot")
    assert tick_label("A") == "A"

# -- the runner -----------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_run_experiments_writes_the_table_and_resumes(home: Supervisor, tmp_path: Path,
                                                      configs: dict[str, Path]) -> None:
    plan = batch_plan([(configs["quick"], "What is 2 + 2?"), (configs["broken"], "What is 2 + 2?")])
    seen: list[Result] = []

    rows = run_experiments(plan, tmp_path / "out", supervisor=home, on_result=seen.append)

    assert sorted(r.experiment_id for r in seen) == ["e001", "e002"]
    ok, broken = rows
    assert (ok.status, ok.exit_code, ok.winner, ok.votes) == ("stopped", 0, "agent_a", {"agent1.1": 1})
    assert (ok.input_tokens, ok.output_tokens, ok.total_tokens, ok.outcome) == (30, 15, 45, "answered")
    assert ok.answer_file and Path(ok.answer_file).read_text().startswith("final: 4")
    assert Path(ok.log_dir or "").parent == tmp_path / "out" / ".massgen" / "massgen_logs"
    assert (broken.status, broken.exit_code, broken.winner, broken.answer_file) == ("failed", 2, None, None)
    assert broken.outcome == "error" and not broken.succeeded
    assert ok.duration_seconds and ok.duration_seconds > 0
    assert load_results(tmp_path / "out") == rows
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [(r["experiment_id"], r["status"], r["exit_code"], r["total_tokens"]) for r in table] == [
        ("e001", "stopped", "0", "45"), ("e002", "failed", "2", "")]
    assert json.loads(table[0]["votes"]) == {"agent1.1": 1}

    again = run_experiments(plan, tmp_path / "out", supervisor=home, on_result=seen.append)

    assert again == rows
    assert len(seen) == 2 and len(home.list_shells()) == 2  # nothing ran twice


@pytest.mark.timeout(60)
def test_resume_starts_again_a_run_whose_shell_is_unknown(home: Supervisor, tmp_path: Path,
                                                          configs: dict[str, Path]) -> None:
    plan = batch_plan([(configs["quick"], "What is 2 + 2?")])
    out = tmp_path / "out"
    out.mkdir()
    stale = Result(experiment_id="e001", label="quick", config=plan[0].config, question=plan[0].question,
                   shell_id="shell_00000000", status="running")
    (out / "results.json").write_text(json.dumps({"results": [stale.model_dump()]}))

    (row,) = run_experiments(plan, out, supervisor=home)

    assert row.status == "stopped" and row.shell_id != "shell_00000000"


def test_resume_refuses_a_folder_of_another_plan(home: Supervisor, tmp_path: Path, configs: dict[str, Path]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    other = Result(experiment_id="e001", label="demo", config=str(DEMO), question="Another question")
    before = json.dumps({"results": [other.model_dump()]})
    (out / "results.json").write_text(before)

    with pytest.raises(InvalidRequest, match=r"holds another experiment .e001. .*use a new output folder"):
        run_experiments(batch_plan([(configs["quick"], "What is 2 + 2?")]), out, supervisor=home)

    assert home.list_shells() == []
    assert (out / "results.json").read_text() == before


def test_compare_prefers_success_then_speed() -> None:
    def row(label: str, status: str, code: int, seconds: float) -> Result:
        return Result(experiment_id=f"{label}{seconds}", label=label, config="c", question="q", status=status,
                      exit_code=code, duration_seconds=seconds)

    verdict = compare([row("A", "stopped", 0, 5), row("B", "stopped", 0, 3), row("A", "failed", 2, 1),
                       row("B", "stopped", 0, 4)])
    assert verdict["better"] == "B"
    assert verdict["labels"]["A"]["outcomes"] == {"ok": 1, "failed 2": 1}
    assert verdict["labels"]["B"]["mean_duration"] == 3.5
    assert compare([row("A", "stopped", 0, 9), row("B", "stopped", 0, 3)])["better"] == "B"


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


# -- the scripts ----------------------------------------------------------------------------------

@pytest.mark.timeout(90)
def test_ab_test_script_compares_and_plots(home: Supervisor, tmp_path: Path, configs: dict[str, Path]) -> None:
    out = tmp_path / "ab"
    done = run_script("ab_test.py", str(configs["quick"]), str(configs["broken"]), "-q", "What is 2 + 2?",
                      "-q", "What is 3 + 1?", "--out", str(out), "--plot", home=home)

    assert done.returncode == 0, done.stdout + done.stderr
    rows = load_results(out)
    assert [(r.label, r.status) for r in rows] == [("A", "stopped"), ("B", "failed")] * 2
    assert f"better: A ({configs['quick']})" in done.stdout
    assert "per config" in done.stdout and "failed 2" in done.stdout
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(90)
def test_sweep_script_runs_every_variant(home: Supervisor, tmp_path: Path, configs: dict[str, Path]) -> None:
    out = tmp_path / "sweep"
    done = run_script("sweep.py", str(configs["quick"]), "--set", "orchestrator.max_new_answers_per_agent=1,2",
                      "-q", "What is 2 + 2?", "--out", str(out), home=home)

    assert done.returncode == 0, done.stdout + done.stderr
    rows = load_results(out)
    assert [(r.label, r.status, r.winner) for r in rows] == [
        ("max_new_answers_per_agent=1", "stopped", "agent_a"), ("max_new_answers_per_agent=2", "stopped", "agent_a")]
    assert sorted(p.name for p in (out / "configs").iterdir()) == ["v01.yaml", "v02.yaml"]
    # Read in a pipe: labels are printed whole, in the progress lines and in the tables.
    assert "done v01-q01-r1 [max_new_answers_per_agent=1]: stopped" in done.stdout
    assert "│ max_new_answers_per_agent=2 │" in done.stdout


def test_batch_script_reports_bad_input_with_its_exit_code(home: Supervisor, tmp_path: Path) -> None:
    done = run_script("batch.py", "--out", str(tmp_path / "out"), "--run", str(tmp_path / "nope.yaml"), "q",
                      home=home)

    assert done.returncode == 2
    assert "config file not found" in done.stdout
    assert home.list_shells() == []


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_batch_resumes(home: Supervisor, tmp_path: Path, wait_for: Callable[..., Any],
                                     sig: signal.Signals) -> None:
    out = tmp_path / "out"
    listing = tmp_path / "experiments.yaml"
    listing.write_text(yaml.safe_dump([{"config": str(DEMO), "question": f"What is {n} * 7?"} for n in (2, 3, 4)]))
    args = [sys.executable, str(SCRIPTS / "batch.py"), "--out", str(out), "--file", str(listing),
            "--home", str(home.home), "--max-concurrent", "1"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    if sig == signal.SIGINT:
        assert first.returncode == 130
        assert "interrupted" in text and "run the same command again to resume" in text

    again = subprocess.run(args, capture_output=True, text=True, timeout=90)

    assert again.returncode == 0, again.stdout + again.stderr
    rows = load_results(out)
    assert [r.status for r in rows] == ["stopped"] * 3
    assert [r.winner for r in rows] == ["reviewer"] * 3
    # Finished runs were kept and unfinished ones re-attached: every run started exactly once.
    assert [r.shell_id for r in rows] == [r.shell_id for r in at_interruption]
    assert len(home.list_shells()) == 3
    finished_before = {r.experiment_id for r in at_interruption if r.finished}
    assert not any(f"done {e}" in again.stdout for e in finished_before)
