"""Run (config, question) pairs as coordination runs in parallel, within the supervisor's limit.

    python scripts/batch.py --out results/batch --run configs/demo.yaml "What is 17 * 23?" \
        --run configs/demo_solo.yaml "What is 6 * 7?" --repeat 2 --plot
    python scripts/batch.py --out results/batch-file --file configs/batches/demo_batch.yaml

`--file` holds a YAML (or JSON) list of `{config, question}` mappings; relative config paths are
taken from the file's folder. Rerun with the same `--out` to resume an interrupted batch.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml

from supervisor.errors import InvalidRequest
from supervisor.experiments import RunOptions, batch_plan, cli_options, run_and_report


def pairs_from_file(path: Path) -> list[tuple[str, str]]:
    """The (config, question) pairs listed in a YAML/JSON file."""
    try:
        entries: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidRequest(f"cannot read {str(path)!r}: {exc}") from None
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("config"), str) and isinstance(e.get("question"), str)
            for e in entries):
        raise InvalidRequest(f"{str(path)!r} must be a list of {{config, question}} mappings")
    return [(str(path.parent / e["config"]), e["question"]) for e in entries]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--run", "runs", nargs=2, multiple=True, metavar="CONFIG QUESTION", help="One experiment.")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A YAML/JSON list of {config, question}.")
@click.option("--repeat", type=int, default=1, show_default=True, help="Runs of each pair.")
@cli_options
def main(run: RunOptions, runs: tuple[tuple[str, str], ...], file: Path | None, repeat: int) -> None:
    """Run a batch of coordination experiments and tabulate the outcomes."""

    def plan() -> list[Any]:
        pairs = list(runs) + (pairs_from_file(file) if file else [])
        if not pairs:
            raise InvalidRequest("nothing to run: give --run CONFIG QUESTION or --file")
        return batch_plan(pairs, repeat=repeat)

    sys.exit(run_and_report(plan, run))


if __name__ == "__main__":
    main()
