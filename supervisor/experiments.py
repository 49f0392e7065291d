"""Batch experiments over coordination runs: plans, a resumable runner, results tables, reports.

A plan is a list of `Experiment`s (a config and a question, under a label that groups runs of one
config). `run_experiments` starts them all as coordination shells with `queue=True`, so the
supervisor's limit decides how many run at once, waits for them by file watching, and rewrites the
results table (`results.json` and `results.csv`, each replaced atomically) after every start and
every finished run. Run again with the same folder, it skips finished experiments and re-attaches
to runs that are still going, so an interrupted batch loses nothing.

>>> plan = ab_plan("configs/fast.yaml", "configs/thorough.yaml", ["What is 2 + 2?"])
>>> results = run_experiments(plan, Path("results/ab"))
>>> compare(results)["better"]
'A'
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import queue
import re
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from . import lifecycle, progress
from .core import Supervisor
from .errors import InvalidRequest, ShellNotFound, SupervisorError

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
CONFIGS_DIR = "configs"
PLOT_FILE = "results.png"
# Characters per line of a label under a plot column (2.8 inches at 100 dpi, 9-point text).
TICK_WIDTH = 28


@dataclass(frozen=True)
class Experiment:
    """One run to make: `config` (an absolute path) on `question`; `label` groups runs of one config."""

    experiment_id: str
    label: str
    config: str
    question: str


class Result(BaseModel):
    """One row of the results table."""

    experiment_id: str
    label: str
    config: str
    question: str
    shell_id: str | None = None
    status: str = "pending"
    exit_code: int | None = None
    winner: str | None = None
    duration_seconds: float | None = None
    votes: dict[str, int] = {}
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    log_dir: str | None = None
    answer_file: str | None = None
    message: str | None = None

    @property
    def finished(self) -> bool:
        return lifecycle.is_ended({"status": self.status})

    @property
    def succeeded(self) -> bool:
        return self.status == "stopped" and self.exit_code == 0


COLUMNS = list(Result.model_fields)


# -- plans ----------------------------------------------------------------------------------------

def batch_plan(pairs: Iterable[tuple[str | os.PathLike[str], str]], *, repeat: int = 1) -> list[Experiment]:
    """Experiments for (config, question) pairs, each `repeat` times; labelled by the config's file name.

    >>> [e.experiment_id for e in batch_plan([("configs/demo.yaml", "What is 2 + 2?")], repeat=2)]
    ['e001', 'e002']
    """
    _check_repeat(repeat)
    runs = [(_config_path(config), question) for config, question in pairs for _ in range(repeat)]
    return [Experiment(f"e{i:03d}", Path(config).stem, config, _question(question))
            for i, (config, question) in enumerate(runs, 1)]


def ab_plan(config_a: str | os.PathLike[str], config_b: str | os.PathLike[str], questions: Sequence[str], *,
            repeat: int = 1) -> list[Experiment]:
    """Both configs (labels `A` and `B`) on every question, `repeat` times, interleaved A, B, A, B.

    >>> [e.experiment_id for e in ab_plan("a.yaml", "b.yaml", ["q1"])]
    ['q01-r1-A', 'q01-r1-B']
    """
    _check_repeat(repeat)
    configs = {"A": _config_path(config_a), "B": _config_path(config_b)}
    return [Experiment(f"q{qi:02d}-r{r}-{label}", label, config, _question(question))
            for qi, question in enumerate(_nonempty(questions), 1) for r in range(1, repeat + 1)
            for label, config in configs.items()]


def sweep_plan(base_config: str | os.PathLike[str], overrides: Sequence[str], questions: Sequence[str],
               out_dir: str | os.PathLike[str], *, repeat: int = 1) -> list[Experiment]:
    """One config variant per combination of `overrides` (`dotted.key=v1,v2`), each on every question.

    The variants are written to `<out_dir>/configs/`; `${config_dir}` in the base config keeps
    meaning the base config's folder. Values are read as YAML (`2` is a number, `a b` a string).

    >>> plan = sweep_plan("configs/demo.yaml", ["orchestrator.max_new_answers_per_agent=1,2"],
    ...                   ["What is 17 * 23?"], "results/sweep")
    >>> sorted({e.label for e in plan})
    ['max_new_answers_per_agent=1', 'max_new_answers_per_agent=2']
    """
    _check_repeat(repeat)
    base_path = Path(_config_path(base_config))
    axes = [parse_override(text) for text in overrides]
    if not axes:
        raise InvalidRequest("no overrides given: use at least one KEY=V1,V2 to sweep over")
    base = _load_yaml(base_path)
    questions = _nonempty(questions)
    folder = Path(out_dir).expanduser().absolute() / CONFIGS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    plan = []
    for vi, values in enumerate(itertools.product(*(vals for _, vals in axes)), 1):
        document = _substitute(base, "${config_dir}", str(base_path.parent))
        for (key, _), value in zip(axes, values, strict=True):
            set_dotted(document, key, value)
        label = " ".join(f"{key.rsplit('.', 1)[-1]}={_show(value)}" for (key, _), value in zip(axes, values,
                                                                                                  strict=True))
        path = folder / f"v{vi:02d}.yaml"
        _write_atomic(path, f"# {label}\n# from {base_path}\n" + yaml.safe_dump(document, sort_keys=False))
        plan += [Experiment(f"v{vi:02d}-q{qi:02d}-r{r}", label, str(path), question)
                 for qi, question in enumerate(questions, 1) for r in range(1, repeat + 1)]
    return plan


def parse_override(text: str) -> tuple[str, list[Any]]:
    """`orchestrator.max_new_answers_per_agent=1,2` -> ('orchestrator.max_new_answers_per_agent', [1, 2])."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(r"[\w-]+(\.[\w-]+)*", key) or not raw.strip():
        raise InvalidRequest(f"invalid override {text!r}: write DOTTED.KEY=V1,V2 (e.g. "
                             "orchestrator.max_new_answers_per_agent=1,2)")
    return key, [yaml.safe_load(part.strip()) for part in raw.split(",")]


def set_dotted(document: dict[str, Any], key: str, value: Any) -> None:
    """Set `a.b.0.c` in nested mappings and lists (numbers index lists); missing mappings are created."""
    node: Any = document
    parts = key.split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth]) or "the top level"
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise InvalidRequest(f"override {key!r}: {where} is a list of {len(node)}; {part!r} is not an index")
            index: int | str = int(part)
        elif isinstance(node, dict):
            index = part
            if not last and index not in node:
                node[index] = {}
        else:
            raise InvalidRequest(f"override {key!r}: {where} is {type(node).__name__}, not a mapping or list")
        if last:
            node[index] = value
        else:
            node = node[index]


# -- running --------------------------------------------------------------------------------------

def run_experiments(plan: Sequence[Experiment], out_dir: str | os.PathLike[str], *,
                    supervisor: Supervisor | None = None, cwd: str | os.PathLike[str] | None = None,
                    timeout: float | None = None, kill_on_stall: bool = False,
                    on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Run `plan`, writing the results table in `out_dir` after every change; the rows in plan order.

    Runs start in `cwd` (default: `out_dir`, so their `.massgen/` logs sit beside the table) with
    `queue=True`. A previous table in `out_dir` is resumed: finished experiments are kept, runs
    still going are re-attached, and the rest start. `on_result` sees each row as it finishes.

    >>> rows = run_experiments(batch_plan([("configs/demo.yaml", "What is 6 * 7?")]), "results/b1")
    >>> rows[0].winner
    'reviewer'
    """
    sup = supervisor or Supervisor()
    folder = Path(out_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    run_cwd = folder if cwd is None else Path(cwd)
    rows = _resume(plan, load_results(folder))
    table = ResultsTable(folder, rows)
    experiments = {e.experiment_id: e for e in plan}
    pending: list[tuple[str, str]] = []
    for exp in plan:
        row = rows[exp.experiment_id]
        if row.finished:
            continue
        status = _reattach(sup, row.shell_id)
        if status is None:
            shell_id = sup.start_coordination(exp.config, exp.question, cwd=run_cwd, timeout=timeout, queue=True,
                                              name=exp.experiment_id)
            status = sup.get_shell_status(shell_id)
        rows[exp.experiment_id] = result_from_status(exp, status)
        table.save()
        pending.append((exp.experiment_id, status["shell_id"]))
    finished: queue.Queue[tuple[str, dict[str, Any] | BaseException]] = queue.Queue()
    for experiment_id, shell_id in pending:
        # Daemon threads: an interrupted batch must not wait for runs that carry on without it.
        threading.Thread(target=_wait, args=(sup, experiment_id, shell_id, kill_on_stall, finished),
                         daemon=True, name=f"wait-{experiment_id}").start()
    for _ in pending:
        experiment_id, outcome = finished.get()
        if isinstance(outcome, BaseException):
            raise outcome
        rows[experiment_id] = result_from_status(experiments[experiment_id], outcome)
        table.save()
        if on_result is not None:
            on_result(rows[experiment_id])
    return [rows[e.experiment_id] for e in plan]


def _wait(sup: Supervisor, experiment_id: str, shell_id: str, kill_on_stall: bool,
          finished: queue.Queue[tuple[str, dict[str, Any] | BaseException]]) -> None:
    try:
        finished.put((experiment_id, sup.wait_shell(shell_id, kill_on_stall=kill_on_stall)))
    except BaseException as exc:  # handed to the main thread, which raises it
        finished.put((experiment_id, exc))


def _resume(plan: Sequence[Experiment], previous: list[Result]) -> dict[str, Result]:
    known = {row.experiment_id: row for row in previous}
    rows = {}
    for exp in plan:
        row = known.get(exp.experiment_id)
        if row is not None and (row.config, row.question) != (exp.config, exp.question):
            raise InvalidRequest(f"the results folder holds another experiment {exp.experiment_id!r} "
                                 f"({row.config}, {row.question!r}): use a new output folder for a new plan")
        rows[exp.experiment_id] = row or Result(experiment_id=exp.experiment_id, label=exp.label,
                                                config=exp.config, question=exp.question)
    return rows


def _reattach(sup: Supervisor, shell_id: str | None) -> dict[str, Any] | None:
    """The status of a run started by an earlier, interrupted batch; None when it must start anew."""
    if shell_id is None:
        return None
    try:
        return sup.get_shell_status(shell_id)
    except ShellNotFound:
        return None


def result_from_status(exp: Experiment, status: dict[str, Any]) -> Result:
    """The results row of `exp` from its shell's status (final or not)."""
    summary = status.get("coordination") or {}
    usage = summary.get("usage") or {}
    return Result(
        experiment_id=exp.experiment_id, label=exp.label, config=exp.config, question=exp.question,
        shell_id=status["shell_id"], status=status["status"], exit_code=status.get("exit_code"),
        winner=summary.get("winner"),
        duration_seconds=status.get("duration_seconds"), votes=summary.get("votes") or {},
        prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"),
        total_tokens=usage.get("total_tokens"), log_dir=status.get("log_dir"), answer_file=summary.get("answer_file"),
        message=status.get("message"),
    )


# -- the results table ----------------------------------------------------------------------------

class ResultsTable:
    """`results.json` and `results.csv` in a folder, both rewritten atomically from the rows."""

    def __init__(self, folder: Path, rows: dict[str, Result]) -> None:
        self.folder = folder
        self.rows = rows

    def save(self) -> None:
        records = [row.model_dump(mode="json") for row in self.rows.values()]
        _write_atomic(self.folder / RESULTS_JSON, json.dumps({"results": records}, indent=2) + "\n")
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS)
        writer.writeheader()
        for record in records:
            writer.writerow({**record, "votes": json.dumps(record["votes"], sort_keys=True)})
        _write_atomic(self.folder / RESULTS_CSV, text.getvalue())


def load_results(folder: str | os.PathLike[str]) -> list[Result]:
    """The rows of the results table in `folder` (none when there is no table yet)."""
    path = Path(folder) / RESULTS_JSON
    try:
        data = json.loads(path.read_text())
        return [Result.model_validate(record) for record in data["results"]]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidRequest(f"{path} is not a results table ({exc}): move it away or use another folder") from None


# -- summaries ------------------------------------------------------------------------------------

def summarize_by_label(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Per label: runs, successes, success rate, mean duration and tokens, outcome counts, winners."""
    summary = []
    for label in dict.fromkeys(r.label for r in results):
        rows = [r for r in results if r.label == label]
        durations = [r.duration_seconds for r in rows if r.finished and r.duration_seconds is not None]
        tokens = [r.total_tokens for r in rows if r.total_tokens is not None]
        ok = sum(r.succeeded for r in rows)
        summary.append({
            "label": label, "config": rows[0].config, "runs": len(rows), "succeeded": ok,
            "success_rate": ok / len(rows), "mean_duration": _mean(durations), "mean_tokens": _mean(tokens),
            "outcomes": dict(Counter(outcome(r) for r in rows)),
            "winners": dict(Counter(r.winner for r in rows if r.winner)),
        })
    return summary


def outcome(result: Result) -> str:
    """`ok` for a run that completed with exit code 0, else its status and exit code (`failed 2`)."""
    if result.succeeded:
        return "ok"
    return result.status if result.exit_code is None else f"{result.status} {result.exit_code}"


def compare(results: Sequence[Result]) -> dict[str, Any]:
    """Summaries per label and the `better` one: the higher success rate, then the shorter mean duration."""
    summary = summarize_by_label(results)
    ranked = sorted(summary, key=lambda s: (-s["success_rate"], s["mean_duration"] or float("inf")))
    return {"labels": {s["label"]: s for s in summary}, "better": ranked[0]["label"] if ranked else None}


def tick_label(label: str) -> str:
    """A label cut into lines that fit under one column of the plot (a sweep's overrides one per line).

    >>> tick_label("max_new_answers_per_agent=1 agent_timeout_seconds=10")
    'max_new_answers_per_agent=1\\nagent_timeout_seconds=10'
    """
    return textwrap.fill(label, TICK_WIDTH, break_long_words=False, break_on_hyphens=False)


def plot(results: Sequence[Result], path: str | os.PathLike[str]) -> Path:
    """Write a PNG of durations and outcomes per label; ImportError when matplotlib is not installed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize_by_label(results)
    labels = [s["label"] for s in summary]
    # One above the other, so each plot has the whole width for its labels.
    fig, (durations, outcomes) = plt.subplots(2, 1, figsize=(max(6.0, 2.8 * len(labels)), 8))
    for x, label in enumerate(labels):
        points = [r.duration_seconds for r in results if r.label == label and r.duration_seconds is not None]
        durations.scatter([x] * len(points), points, alpha=0.7)
        if points:
            durations.hlines(sum(points) / len(points), x - 0.3, x + 0.3, colors="black")
    durations.set_title("duration per run (line: mean)")
    durations.set_ylabel("seconds")
    # Headroom, so the top points are not cut and the legend does not cover the bars.
    durations.set_ylim(0, 1.15 * max((r.duration_seconds or 0 for r in results), default=0) or 1)
    bottom = [0] * len(labels)
    for kind in sorted({outcome(r) for r in results}):
        counts = [s["outcomes"].get(kind, 0) for s in summary]
        outcomes.bar(range(len(labels)), counts, bottom=bottom, label=kind)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    outcomes.set_ylim(0, 1.3 * max(bottom, default=0) or 1)
    outcomes.set_title("outcomes")
    outcomes.set_ylabel("runs")
    outcomes.legend()
    for axes in (durations, outcomes):
        axes.set_xticks(range(len(labels)), [tick_label(label) for label in labels], fontsize=9)
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target


# -- reports and the command-line glue of scripts/ --------------------------------------------------

def print_report(results: Sequence[Result], console: Console | None = None) -> None:
    """Print the results (one row per experiment) and a summary per label as rich tables."""
    console = console or Console()
    runs = Table(title="experiments")
    for column in ("id", "label", "outcome", "winner", "seconds", "votes", "tokens"):
        runs.add_column(column)
    for r in results:
        runs.add_row(r.experiment_id, r.label, outcome(r), _cell(r.winner), _cell(r.duration_seconds),
                     _counts({k: v for k, v in r.votes.items() if v}), _cell(r.total_tokens))
    console.print(runs)
    per_label = Table(title="per config")
    for column in ("label", "ok", "mean s", "mean tokens", "outcomes", "winners"):
        per_label.add_column(column)
    for s in summarize_by_label(results):
        per_label.add_row(s["label"], f"{s['succeeded']}/{s['runs']}", _cell(s["mean_duration"]),
                          _cell(s["mean_tokens"]), _counts(s["outcomes"]), _counts(s["winners"]))
    console.print(per_label)


@dataclass(frozen=True)
class RunOptions:
    """What every batch script accepts besides its plan."""

    out: Path
    home: str | None = None
    cwd: str | None = None
    timeout: float | None = None
    kill_on_stall: bool = False
    stall_seconds: float | None = None
    max_concurrent: int | None = None
    plot: bool = False


def run_and_report(make_plan: Callable[[], list[Experiment]], options: RunOptions,
                   console: Console | None = None) -> int:
    """Build the plan, run it, print the report (and plot); the exit code of a batch script.

    0: every experiment finished (whatever its outcome); 130: interrupted (rerun to resume); a
    SupervisorError's own code when the plan or the supervisor refused.
    """
    console = console or progress.console()
    try:
        plan = make_plan()
        sup = Supervisor(options.home, max_concurrent=options.max_concurrent, stall_seconds=options.stall_seconds)
        console.print(f"{len(plan)} experiments; results in {options.out}", markup=False, highlight=False)
        results = run_experiments(
            plan, options.out, supervisor=sup, cwd=options.cwd, timeout=options.timeout,
            kill_on_stall=options.kill_on_stall,
            on_result=lambda r: console.print(f"done {r.experiment_id} [{r.label}]: {r.status} "
                                              f"exit={r.exit_code} winner={r.winner} {r.duration_seconds}s",
                                              markup=False, highlight=False),
        )
    except SupervisorError as exc:
        console.print(f"error: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        done = sum(r.finished for r in load_results(options.out))
        console.print(f"interrupted: {done} finished, results in {options.out}. Runs still going carry on; "
                      "run the same command again to resume (it re-attaches to them), or stop them with "
                      "`mgsup kill --all`.")
        return 130
    print_report(results, console)
    if options.plot:
        try:
            console.print(f"plot: {plot(results, options.out / PLOT_FILE)}", markup=False, highlight=False)
        except ImportError:
            console.print("plot skipped: matplotlib is not installed (pip install 'mgsup[plot]')")
    return 0


def cli_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every batch script shares (click); the command receives them as `RunOptions` in `run`."""
    options = [
        click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Results folder (results.json/csv; runs' logs). Rerun with it to resume."),
        click.option("--home", help="State directory of the supervisor (default: $MGSUP_HOME, ...)."),
        click.option("--cwd", type=click.Path(exists=True, file_okay=False), help="Run folder (default: --out)."),
        click.option("--timeout", type=float, help="Kill a run after this many seconds."),
        click.option("--max-concurrent", type=int,
                     help="Limit of running shells (default: $MGSUP_MAX_CONCURRENT, else 10)."),
        click.option("--kill-on-stall", is_flag=True, help="Kill a run whose status.json stops changing."),
        click.option("--stall-seconds", type=float, help="Stall threshold (default: $MGSUP_STALL_SECONDS or 60)."),
        click.option("--plot", is_flag=True, help=f"Also write <out>/{PLOT_FILE} (needs matplotlib)."),
    ]

    def wrapped(*, out: Path, home: str | None, cwd: str | None, timeout: float | None,
                max_concurrent: int | None, kill_on_stall: bool, stall_seconds: float | None, plot: bool,
                **rest: Any) -> Any:
        run = RunOptions(out=out, home=home, cwd=cwd, timeout=timeout, kill_on_stall=kill_on_stall,
                         stall_seconds=stall_seconds, max_concurrent=max_concurrent, plot=plot)
        return command(run=run, **rest)

    wrapped.__name__, wrapped.__doc__ = command.__name__, command.__doc__
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k}:{v}" for k, v in counter.items())


# -- helpers --------------------------------------------------------------------------------------

def _config_path(config: str | os.PathLike[str]) -> str:
    path = Path(config).expanduser().resolve()
    if not path.is_file():
        raise InvalidRequest(f"config file not found: {str(config)!r}")
    return str(path)


def _question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InvalidRequest("a question is empty: give every experiment the question the agents should answer")
    return question


def _nonempty(questions: Sequence[str]) -> list[str]:
    if isinstance(questions, str) or not questions:
        raise InvalidRequest("no questions given: pass at least one question")
    return [_question(q) for q in questions]


def _check_repeat(repeat: int) -> None:
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise InvalidRequest(f"repeat must be a whole number >= 1, got {repeat!r}")


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidRequest(f"cannot read config {str(path)!r}: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidRequest(f"config {str(path)!r} is not a YAML mapping")
    return document


def _substitute(value: Any, placeholder: str, replacement: str) -> Any:
    if isinstance(value, str):
        return value.replace(placeholder, replacement)
    if isinstance(value, list):
        return [_substitute(v, placeholder, replacement) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, placeholder, replacement) for k, v in value.items()}
    return value


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
