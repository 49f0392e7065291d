"""The options every batch script shares, in one place: a field of `RunOptions` and its click option.

To add one: a field below (with its default), its `click.option` in OPTIONS under the same name,
and its use in `supervisor()` or `run_arguments()`; every script then has it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import click

from ..automation import runners
from ..core import Supervisor
from .budget import BatchBudget
from .results import RESULTS_PLOT


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
    retry_failed: bool = False
    plot: bool = False
    runner: str | None = None
    cluster: str | None = None
    budget_tokens: int | None = None
    budget_usd: float | None = None

    def supervisor(self) -> Supervisor:
        """The supervisor the batch runs on."""
        return Supervisor(self.home, max_concurrent=self.max_concurrent, stall_seconds=self.stall_seconds,
                          cluster=self.cluster)

    def run_arguments(self) -> dict[str, Any]:
        """The keyword arguments of `run_experiments` that come from the options."""
        return {"cwd": self.cwd, "timeout": self.timeout, "kill_on_stall": self.kill_on_stall,
                "retry_failed": self.retry_failed, "runner": runners.parse(self.runner) if self.runner else None,
                "budget": self.budget()}

    def budget(self) -> BatchBudget | None:
        """The batch's budget, when one is given."""
        if self.budget_tokens is None and self.budget_usd is None:
            return None
        return BatchBudget(tokens=self.budget_tokens, usd=self.budget_usd)


_POSITIVE = click.FloatRange(min=0, min_open=True)

OPTIONS = [
    click.option("--out", required=True, type=click.Path(path_type=Path),
                 help="Results folder (results.json/csv; the runs' logs). Run again with it to resume."),
    click.option("--home", help="State directory of the supervisor (default: $MGSUP_HOME, ...)."),
    click.option("--cwd", type=click.Path(exists=True, file_okay=False), help="Run folder (default: --out)."),
    click.option("--timeout", type=_POSITIVE, metavar="S", help="Kill a run after S seconds (counts as failed)."),
    click.option("--max-concurrent", type=click.IntRange(min=1), metavar="N",
                 help="Limit of running shells (default: $MGSUP_MAX_CONCURRENT, else 10)."),
    click.option("--kill-on-stall", is_flag=True,
                 help="Kill a run whose status.json stops changing (counts as failed)."),
    click.option("--stall-seconds", type=_POSITIVE, metavar="S",
                 help="Stall threshold (default: $MGSUP_STALL_SECONDS or 60)."),
    click.option("--retry-failed", is_flag=True,
                 help="On resume, run failed, timed-out and stalled experiments again (killed ones always are)."),
    click.option("--plot", is_flag=True, help=f"Also write <out>/{RESULTS_PLOT} (needs matplotlib)."),
    click.option("--runner", metavar="R", help="Program that runs each config: mgcoord, massgen, or a command "
                                               "(default: $MGSUP_RUNNER, else mgcoord)."),
    click.option("--cluster", metavar="ADDRESS", help="Run on this Ray cluster (its dashboard URL, e.g. "
                 "http://127.0.0.1:8265; default: $MGSUP_CLUSTER); its scheduler decides how many run at once."),
    click.option("--budget-tokens", type=click.IntRange(min=1), metavar="N",
                 help="Tokens for the whole batch: once spent, no run starts and running ones are stopped "
                      "(a resumed batch counts what was spent)."),
    click.option("--budget-usd", type=_POSITIVE, metavar="USD",
                 help="USD for the whole batch, like --budget-tokens (a run's cost: its runner's figure, else "
                      "its tokens priced by prices.yaml)."),
]


def cli_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared options (click) to a script's command, which receives them as `run: RunOptions`."""
    names = [f.name for f in fields(RunOptions)]

    def wrapped(**given: Any) -> Any:
        run = RunOptions(**{name: given.pop(name) for name in names})
        if run.budget() is not None and (run.cluster or os.environ.get("MGSUP_CLUSTER")):
            raise click.UsageError("--budget-tokens and --budget-usd are not available on a cluster yet: the "
                                   "budget is held by each run's local monitor")
        return command(run=run, **given)

    wrapped.__name__, wrapped.__doc__ = command.__name__, command.__doc__
    for option in reversed(OPTIONS):
        wrapped = option(wrapped)
    return wrapped
