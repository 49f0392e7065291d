"""Reports and the command-line glue of scripts/: shared options, run a plan, print its tables and plot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .. import progress
from ..core import Supervisor
from ..errors import SupervisorError
from .plans import Experiment
from .results import Result, load_results
from .runner import run_experiments
from .summary import outcome, plot, summarize_by_label

PLOT_FILE = "results.png"


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
    cluster: str | None = None


def run_and_report(make_plan: Callable[[], list[Experiment]], options: RunOptions,
                   console: Console | None = None) -> int:
    """Build the plan, run it, print the report (and plot); the exit code of a batch script.

    0: every experiment finished (whatever its outcome); 130: interrupted (rerun to resume); a
    SupervisorError's own code when the plan or the supervisor refused.
    """
    console = console or progress.console()
    try:
        plan = make_plan()
        sup = Supervisor(options.home, max_concurrent=options.max_concurrent, stall_seconds=options.stall_seconds,
                         cluster=options.cluster)
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
        click.option("--cluster", metavar="ADDRESS", help="Run on this Ray cluster (its dashboard URL, e.g. "
                     "http://127.0.0.1:8265; default: $MGSUP_CLUSTER); the cluster's scheduler decides how many "
                     "run at once."),
    ]

    def wrapped(*, out: Path, home: str | None, cwd: str | None, timeout: float | None,
                max_concurrent: int | None, kill_on_stall: bool, stall_seconds: float | None, plot: bool,
                cluster: str | None, **rest: Any) -> Any:
        run = RunOptions(out=out, home=home, cwd=cwd, timeout=timeout, kill_on_stall=kill_on_stall,
                         stall_seconds=stall_seconds, max_concurrent=max_concurrent, plot=plot, cluster=cluster)
        return command(run=run, **rest)

    wrapped.__name__, wrapped.__doc__ = command.__name__, command.__doc__
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k}:{v}" for k, v in counter.items())
