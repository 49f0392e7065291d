"""A/B comparison of two coordination configs over a set of questions.

    python scripts/ab_test.py configs/demo.yaml configs/demo_solo.yaml --out results/ab \
        -q "What is 17 * 23?" -q "What is 6 * 7?" --repeat 3 --plot
    python scripts/ab_test.py configs/demo.yaml configs/demo_solo.yaml --out results/ab \
        --questions configs/batches/questions.txt

Both configs run on every question (labels A and B). The verdict names a better config only when
a test says the difference is clear (p < 0.05): first the success rates (Fisher's exact test),
then the durations of successful runs (Mann-Whitney U test); otherwise it says "no clear
difference". Rerun with the same `--out` to resume.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from supervisor.experiments import (
    Experiment,
    RunOptions,
    ab_plan,
    cli_options,
    compare,
    load_results,
    run_and_report,
)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config_a", type=click.Path(exists=True, dir_okay=False))
@click.argument("config_b", type=click.Path(exists=True, dir_okay=False))
@click.option("-q", "--question", "questions", multiple=True, help="A question (repeatable).")
@click.option("--questions", "questions_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file with one question per line.")
@click.option("--repeat", type=int, default=1, show_default=True, help="Runs of each config on each question.")
@cli_options
def main(run: RunOptions, config_a: str, config_b: str, questions: tuple[str, ...], questions_file: Path | None,
         repeat: int) -> None:
    """Compare CONFIG_A and CONFIG_B on the same questions."""

    def plan() -> list[Experiment]:
        asked = list(questions)
        if questions_file:
            asked += [line.strip() for line in questions_file.read_text().splitlines() if line.strip()]
        return ab_plan(config_a, config_b, asked, repeat=repeat)

    title = f"A/B test: A = {Path(config_a).name}, B = {Path(config_b).name}"
    code = run_and_report(plan, run, title=title)
    if code == 0:
        verdict = compare(load_results(run.out))
        click.echo(f"verdict: {verdict['verdict']}")
        if verdict["better"]:
            click.echo(f"better: {verdict['better']} ({config_a if verdict['better'] == 'A' else config_b})")
    sys.exit(code)


if __name__ == "__main__":
    main()
