"""Batch experiments over coordination runs: plans, a resumable runner, results tables, reports.

A plan is a list of `Experiment`s (a config and a question, under a label that groups runs of one
config). `run_experiments` holds the results folder (one batch at a time), starts the experiments
as coordination shells with `queue=True`, so the supervisor's limit decides how many run at once,
waits for them by file watching, and rewrites the results table (`results.json` and
`results.csv`, each replaced atomically) after every start and every finished run. Run again on
the same folder with the same plan, it keeps successful runs, re-attaches to runs still going,
and runs again those killed from outside (and, with `retry_failed`, the failed ones), so an
interrupted batch loses nothing. A folder that holds another plan is refused.

Where things live: `plans` (the experiments to make), `folder` (holding the results folder),
`runner` (starting and waiting), `results` (the table), `summary` (outcomes, summaries, the A/B
verdict), `stats` (its tests), `plot` (the picture), `options` and `report` (the batch scripts'
shared options, printed report and exit codes).

>>> plan = ab_plan("configs/demo.yaml", "configs/demo_solo.yaml", ["What is 2 + 2?"], repeat=4)
>>> results = run_experiments(plan, Path("results/ab"))
>>> compare(results)["verdict"]
'B is better: faster (median 1.52 s vs 1.21 s, Mann-Whitney U test, two-sided, exact: p = 0.029) ...'
"""

from __future__ import annotations

from .folder import BatchFolder
from .options import RunOptions, cli_options
from .plans import Experiment, ab_plan, batch_plan, parse_override, set_dotted, sweep_plan
from .plot import plot, tick_label
from .report import print_report, run_and_report
from .results import Result, load_results
from .runner import run_experiments
from .summary import compare, outcome

__all__ = [
    "BatchFolder",
    "Experiment",
    "Result",
    "RunOptions",
    "ab_plan",
    "batch_plan",
    "cli_options",
    "compare",
    "load_results",
    "outcome",
    "parse_override",
    "plot",
    "print_report",
    "run_and_report",
    "run_experiments",
    "set_dotted",
    "sweep_plan",
    "tick_label",
]
