"""A parameter sweep: one config variant per combination of overrides, each on every question.

    python scripts/sweep.py configs/demo.yaml --out results/sweep \
        --set orchestrator.max_new_answers_per_agent=1,2 \
        --set timeout_settings.agent_timeout_seconds=10,20 -q "What is 17 * 23?" --plot

Each `--set DOTTED.KEY=V1,V2` is one axis (numbers index lists: `agents.0.backend.model=a,b`);
values are read as YAML. The variants are written to `<out>/configs/`. With two axes, `--plot`
draws heatmaps of success and duration over the grid. Rerun with the same `--out` to resume.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from supervisor.experiments import Experiment, RunOptions, cli_options, run_and_report, sweep_plan


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("base_config", type=click.Path(exists=True, dir_okay=False))
@click.option("--set", "overrides", multiple=True, required=True, metavar="KEY=V1,V2", help="One axis of the sweep.")
@click.option("-q", "--question", "questions", multiple=True, required=True, help="A question (repeatable).")
@click.option("--repeat", type=int, default=1, show_default=True, help="Runs of each variant on each question.")
@cli_options
def main(run: RunOptions, base_config: str, overrides: tuple[str, ...], questions: tuple[str, ...],
         repeat: int) -> None:
    """Sweep BASE_CONFIG over the given overrides."""

    def plan() -> list[Experiment]:
        return sweep_plan(base_config, overrides, questions, run.out, repeat=repeat)

    axes = " × ".join(text.partition("=")[0].rsplit(".", 1)[-1] for text in overrides)
    sys.exit(run_and_report(plan, run, title=f"sweep of {Path(base_config).name} over {axes}"))


if __name__ == "__main__":
    main()
