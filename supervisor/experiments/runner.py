"""The resumable runner: start a plan as queued coordination shells, wait for them, keep the table current."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core import Supervisor
from ..errors import InvalidRequest, ShellNotFound
from .plans import Experiment
from .results import Result, ResultsTable, load_results


def run_experiments(plan: Sequence[Experiment], out_dir: str | os.PathLike[str], *,
                    supervisor: Supervisor | None = None, cwd: str | os.PathLike[str] | None = None,
                    timeout: float | None = None, kill_on_stall: bool = False, runner: str | list[str] | None = None,
                    on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Run `plan`, writing the results table in `out_dir` after every change; the rows in plan order.

    Runs start in `cwd` (default: `out_dir`, so their `.massgen/` logs sit beside the table) with
    `queue=True`, run by `runner` (see `Supervisor.start_coordination`). A previous table in
    `out_dir` is resumed: finished experiments are kept, runs still going are re-attached, and the
    rest start. `on_result` sees each row as it finishes.

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
            shell_id = sup.start_coordination(exp.config, exp.question, runner=runner, cwd=run_cwd, timeout=timeout,
                                              queue=True, name=exp.experiment_id)
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
    tokens = summary.get("tokens") or {}
    return Result(
        experiment_id=exp.experiment_id, label=exp.label, config=exp.config, question=exp.question,
        shell_id=status["shell_id"], status=status["status"], exit_code=status.get("exit_code"),
        outcome=summary.get("outcome"), winner=summary.get("winner"),
        duration_seconds=status.get("duration_seconds"), votes=summary.get("votes") or {},
        input_tokens=tokens.get("input_tokens"), output_tokens=tokens.get("output_tokens"),
        total_tokens=tokens.get("total_tokens"), log_dir=status.get("log_dir"), answer_file=summary.get("answer_file"),
        message=status.get("message"),
    )
