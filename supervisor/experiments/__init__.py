"""Batch experiments over coordination runs: plans, a resumable runner, results tables, reports.

A plan is a list of `Experiment`s (a config and a question, under a label that groups runs of one
config). `run_experiments` starts them all as coordination shells with `queue=True`, so the
supervisor's limit decides how many run at once, waits for them by file watching, and rewrites the
results table (`results.json` and `results.csv`, each replaced atomically) after every start and
every finished run. Run again with the same folder, it skips finished experiments and re-attaches
to runs that are still going, so an interrupted batch loses nothing.

Where things live: `plans` (the experiments to make), `runner` (starting and waiting for them),
`results` (the table), `summary` (summaries, comparison, plot), `report` (printed report and the
batch scripts' command-line glue).

>>> plan = ab_plan("configs/fast.yaml", "configs/thorough.yaml", ["What is 2 + 2?"])
>>> results = run_experiments(plan, Path("results/ab"))
>>> compare(results)["better"]
'A'
"""

from __future__ import annotations

from .plans import Experiment, ab_plan, batch_plan, parse_override, set_dotted, sweep_plan
from .report import RunOptions, cli_options, run_and_report
from .results import Result, load_results
from .runner import run_experiments
from .summary import compare, tick_label

__all__ = [
    "Experiment",
    "Result",
    "RunOptions",
    "ab_plan",
    "batch_plan",
    "cli_options",
    "compare",
    "load_results",
    "parse_override",
    "run_and_report",
    "run_experiments",
    "set_dotted",
    "sweep_plan",
    "tick_label",
]
