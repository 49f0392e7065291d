"""Reports and the command-line glue of scripts/: run a plan, print its progress, tables and plot."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .. import progress
from ..core import Supervisor
from ..errors import SupervisorError
from ..render import usd
from .budget import BatchBudget
from .folder import BatchFolder
from .options import RunOptions
from .plans import Experiment
from .results import RESULTS_PLOT, Result, load_results, one_line
from .runner import run_experiments
from .summary import category, outcome, summarize_by_label, totals

QUESTION_CHARS = 40


def print_report(results: Sequence[Result], console: Console | None = None, budget: BatchBudget | None = None) -> None:
    """Print the results (one row per experiment, with its cost), a summary per label as rich tables, and
    what the whole batch spent (against its `budget`, when it has one)."""
    console = console or Console()
    runs = Table(title="experiments")
    for column in ("id", "label", "question", "outcome", "winner", "seconds", "tokens", "cost", "reason"):
        runs.add_column(column, overflow="fold")
    for r in results:
        runs.add_row(r.experiment_id, r.label, one_line(r.question, QUESTION_CHARS), outcome(r), r.winner or "",
                     _seconds(r.duration_seconds), _cell(r.total_tokens), _usd(r.cost_usd), r.reason or "")
    console.print(runs)
    per_label = Table(title="per config")
    for column in ("label", "config", "ok", "median s (ok)", "mean tokens", "mean cost", "spent", "outcomes",
                   "winners"):
        per_label.add_column(column, overflow="fold")
    for s in summarize_by_label(results):
        per_label.add_row(s["label"], Path(s["config"]).name, f"{s['succeeded']}/{s['runs']}",
                          _seconds(s["median_duration"]), _cell(s["mean_tokens"]), _usd(s["mean_cost_usd"]),
                          f"{s['spent_tokens']:,} tokens, {usd(s['spent_usd'])}", _counts(s["outcomes"]),
                          _counts(s["winners"]))
    console.print(per_label)
    console.print(total_line(results, budget), markup=False, highlight=False)


def total_line(results: Sequence[Result], budget: BatchBudget | None = None) -> str:
    """What the batch spent, every attempt counted: `total: 12,000 tokens, $0.0027 (budget 50,000 tokens)`."""
    spent = totals(results)
    text = f"total: {spent['tokens']:,} tokens, {usd(spent['cost_usd'])}"
    if spent["unknown_cost"]:
        text += (f" ({spent['unknown_cost']} runs of unknown cost, counted as $0: add their models to "
                 "prices.yaml)")
    if budget is not None:
        text += f"; budget {budget.describe()}"
        if budget.spent_reason(results):
            text += ": spent"
    return text


def progress_line(row: Result, done: int, total: int) -> str:
    """One line per finished run: `[3/6] q02-r1-A (A): ok in 1.42 s, winner reviewer`."""
    text = f"[{done}/{total}] {row.experiment_id} ({row.label}): {outcome(row)}"
    if row.duration_seconds is not None:
        text += f" in {row.duration_seconds:.2f} s"
    if row.winner:
        text += f", winner {row.winner}"
    if row.cost_usd is not None:
        text += f", {usd(row.cost_usd)}"
    if row.reason:
        text += f": {row.reason}"
    return text


def stop_hint(going: Sequence[dict[str, Any]], options: RunOptions) -> str:
    """The exact command that stops the given runs of this batch (queued ones first)."""
    if not going:
        return "no run of this batch is left going"
    home = f" --home {shlex.quote(options.home)}" if options.home else ""
    ids = " ".join(s["shell_id"] for s in sorted(going, key=lambda s: s["status"] != "queued"))
    return f"{len(going)} runs of this batch carry on; to stop them (and only them): mgsup{home} kill {ids}"


def run_and_report(make_plan: Callable[[], list[Experiment]], options: RunOptions,
                   console: Console | None = None, *, title: str | None = None) -> int:
    """Build the plan, run it, print the report (and plot); the exit code of a batch script.

    0: every experiment ended (whatever its outcome: read the table); 130: interrupted (run the
    same command again to resume); a SupervisorError's own code when the plan, the folder or the
    supervisor refused (2 for bad input or an unusable or busy folder), 1 when the table cannot be
    written (a full disk); errors are one line on stderr.
    """
    console = console or progress.console()
    sup: Supervisor | None = None
    shown = _Progress(console, options)
    try:
        plan = make_plan()
        sup = options.supervisor()
        with BatchFolder(options.out) as folder:
            results = run_experiments(plan, folder, supervisor=sup, on_start=shown.start, on_result=shown.finished,
                                      **options.run_arguments())
            print_report(results, console, options.budget())
            if options.plot:
                _plot(results, folder.path / RESULTS_PLOT, title, console)
    except SupervisorError as exc:
        click.echo(f"{_prog()}: error: {exc}", err=True)
        return exc.exit_code
    except OSError as exc:
        # E.g. a full disk while the table is rewritten: the table on disk is still whole (atomic writes).
        click.echo(f"{_prog()}: error: cannot write in {options.out}: {exc.strerror or exc}; the runs started carry "
                   "on: run the same command again to resume", err=True)
        return 1
    except KeyboardInterrupt:
        console.print(_interrupted(sup, shown.batch, options), markup=False, highlight=False, soft_wrap=True)
        return 130
    return 0


def _interrupted(sup: Supervisor | None, batch: str | None, options: RunOptions) -> str:
    """What an interrupted batch leaves: how far it came, how to resume, how to stop its runs."""
    text = "interrupted"
    with contextlib.suppress(SupervisorError):
        rows = load_results(options.out)
        text += f": {sum(r.finished for r in rows)} of {len(rows)} ended; results in {options.out}"
    text += ". Run the same command again to resume (it re-attaches to the runs still going)."
    if sup is None or batch is None:
        return text
    # By name, not from the table: a run started just before the interrupt may not be recorded yet.
    going = [s for s in sup.list_shells() if (s.get("name") or "").startswith(f"{batch}-")
             and s["status"] in ("queued", "running")]
    return f"{text}\n{stop_hint(going, options)}"


class _Progress:
    """The lines a batch script prints as it goes: what it found, then one line per finished run."""

    def __init__(self, console: Console, options: RunOptions) -> None:
        self.console = console
        self.options = options
        self.batch: str | None = None
        self.done = 0
        self.total = 0

    def start(self, batch: str, rows: list[Result]) -> None:
        self.batch, self.total = batch, len(rows)
        kept = _kept(rows, self.options.retry_failed)
        self.done = len(kept)
        text = f"{len(rows)} experiments; results in {self.options.out}; runs are named {batch}-<experiment id>"
        if kept:
            failed = sum(r.failed for r in kept)
            text += f"\nresuming: {len(kept)} ended and kept"
            if failed:
                text += f" ({failed} failed: --retry-failed runs them again)"
        going = sum(category(r) == "unfinished" and r.shell_id is not None for r in rows)
        if going:
            text += f"\nre-attaching to {going} runs started earlier"
        budget = self.options.budget()
        if budget is not None:
            text += f"\nbudget for the batch: {budget.describe()}"
            if any(r.spent_tokens or r.spent_usd for r in rows):
                text += f" ({total_line(rows).removeprefix('total: ')} spent before)"
        self._print(text)

    def finished(self, row: Result) -> None:
        self.done += 1
        self._print(progress_line(row, self.done, self.total))

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)


def _kept(rows: Iterable[Result], retry_failed: bool) -> list[Result]:
    """The rows a resumed batch keeps as they are (`run_experiments` runs the others again)."""
    return [r for r in rows if r.succeeded or (r.failed and not retry_failed)]


def _plot(results: Sequence[Result], target: Path, title: str | None, console: Console) -> None:
    from .plot import plot

    try:
        console.print(f"plot: {plot(results, target, title=title)}", markup=False, highlight=False)
    except ImportError:
        console.print("plot skipped: matplotlib is not installed (pip install 'mgsup[plot]')")


def _prog() -> str:
    context = click.get_current_context(silent=True)
    return context.info_name if context and context.info_name else "batch"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def _usd(value: float | None) -> str:
    return "" if value is None else usd(value)


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counter.items())
