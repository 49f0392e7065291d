"""``mgcoord``: the command line. Thin: it parses arguments, validates, and hands over to :class:`Run`.

    mgcoord --automation --config CONFIG [--instance-id HEX8] [--log-dir DIR]
            [--orchestrator-timeout S] [--agent-timeout S] [--debug] "QUESTION"
    mgcoord --validate CONFIG [--json]

Every error is mapped to an exit code here, in one place (see :class:`coordinator.errors.ExitCode`).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click

from . import signals
from .config import load_config, runtime_problems
from .errors import ConfigError, CoordinatorError, ExitCode
from .limits import clean_text, clip
from .report import one_line
from .run import Run, RunRequest
from .workspaces import INSTANCE_ID_PATTERN, new_instance_id


def _positive(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise click.BadParameter("must be greater than 0")
    return value


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--automation", is_flag=True,
              help="Print only the short, parseable summary (LOG_DIR, STATUS, ..., COMPLETED); use it from scripts.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), help="Config (YAML).")
@click.option("--instance-id", help="8 lowercase hex characters suffixing every per-run folder.")
@click.option("--log-dir", type=click.Path(file_okay=False, path_type=Path), help="Log directory to use.")
@click.option("--orchestrator-timeout", type=float, callback=_positive, help="Seconds; overrides the config.")
@click.option("--agent-timeout", type=float, callback=_positive, help="Seconds per turn; overrides the config.")
@click.option("--debug", is_flag=True, help="Log to stderr as well.")
@click.option(
    "--validate",
    "validate_path",
    is_flag=False,
    flag_value="",
    metavar="CONFIG",
    help="Validate CONFIG and exit (1 when invalid); `--validate --config CONFIG` works too.",
)
@click.option("--json", "as_json", is_flag=True, help="With --validate: one JSON document.")
@click.argument("question", required=False)
def command(
    automation: bool,
    config_path: Path | None,
    instance_id: str | None,
    log_dir: Path | None,
    orchestrator_timeout: float | None,
    agent_timeout: float | None,
    debug: bool,
    validate_path: str | None,
    as_json: bool,
    question: str | None,
) -> int:
    """Run a multi-agent coordination on QUESTION, or validate a config.

    Without --automation the same run prints the same summary followed by the full final answer.
    """
    if validate_path is not None:
        # `--validate` without a value takes the --config one: the automation guide writes it that way.
        if validate_path and config_path is not None:
            raise click.UsageError("give one config: mgcoord --validate CONFIG")
        target = Path(validate_path) if validate_path else config_path
        if automation or question is not None or target is None:
            raise click.UsageError("--validate takes only a config path (and --json): mgcoord --validate CONFIG")
        return _validate(target, as_json)
    if config_path is None:
        raise click.UsageError("--config is required (or use --validate CONFIG)")
    if not question or not question.strip():
        raise click.UsageError("a non-empty QUESTION is required")
    if instance_id is not None and not INSTANCE_ID_PATTERN.match(instance_id):
        raise click.UsageError(f"--instance-id must be 8 lowercase hex characters, got {instance_id!r}")
    run_cwd = Path.cwd()
    report = load_config(config_path, run_cwd=run_cwd)
    problems = report.errors if report.config is None else report.errors + runtime_problems(report.config)
    if problems or report.config is None:
        for issue in problems:
            click.echo(f"mgcoord: {config_path}: {issue.location}: {issue.message}", err=True)
        first = problems[0]
        raise ConfigError(f"invalid config {config_path}: {first.location}: {first.message}")
    request = RunRequest(
        config=report.config,
        raw_config=report.raw,
        config_path=config_path,
        # Bytes of an argument that are not UTF-8 reach Python as lone surrogates, which no file takes.
        question=clean_text(question),
        run_cwd=run_cwd,
        instance_id=instance_id or new_instance_id(),
        log_dir=log_dir,
        orchestrator_timeout=orchestrator_timeout,
        agent_timeout=agent_timeout,
        cli_args=sys.argv[1:],
        debug=debug,
        print_answer=not automation,
    )
    return asyncio.run(Run(request, process_start=_PROCESS_START).execute())


def _validate(path: Path, as_json: bool) -> int:
    report = load_config(path, run_cwd=Path.cwd())
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        count = len(report.errors)
        click.echo(f"{path}: valid" if report.valid else f"{path}: invalid ({count} error{'s' * (count != 1)})")
        for issue in report.errors:
            click.echo(f"error: {issue.location}: {issue.message}")
        for issue in report.warnings:
            click.echo(f"warning: {issue.location}: {issue.message}")
    return ExitCode.SUCCESS if report.valid else ExitCode.CONFIG_ERROR


_PROCESS_START = time.time()


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point; exits with the run's exit code."""
    # Until the run installs its own handlers, an ending signal must still end with exit 4, not a bare
    # signal death.
    for sig in signals.catchable():
        signal.signal(sig, _interrupted)
    try:
        code = command.main(args=argv, prog_name="mgcoord", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = ExitCode.CONFIG_ERROR
    except CoordinatorError as exc:
        click.echo(f"ERROR: {clip(one_line(str(exc)))}")
        click.echo(f"mgcoord: {exc}", err=True)
        code = exc.exit_code
    except OSError as exc:
        # Raised before the run could start (e.g. the log directory cannot be created).
        click.echo(f"ERROR: {clip(one_line(str(exc)))}")
        click.echo(f"mgcoord: {exc}", err=True)
        code = ExitCode.EXECUTION_ERROR
    except (KeyboardInterrupt, click.Abort):
        click.echo("mgcoord: interrupted", err=True)
        code = ExitCode.INTERRUPTED
    sys.exit(int(code or 0))
