"""The resumable runner: start a plan as queued coordination shells, wait for them, keep the table current."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .. import lifecycle, request
from ..automation.printed import parse_closing
from ..core import Supervisor
from ..errors import InvalidRequest, ShellNotFound
from ..layout import atomic_write_text
from ..render import exceeded_text
from .budget import BatchBudget
from .folder import BatchFolder
from .plans import Experiment
from .results import Result, ResultsTable, one_line

# Experiment ids become part of shell names (`<batch>-<id>`), which allow 64 characters.
_EXPERIMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,48}")
_TAIL_LINES = 20
# A run stopped for the batch's budget gets this long to record its end after the interrupt.
BUDGET_STOP_GRACE = 10.0
# What a waiting thread hands back: a status, whether it was a stall kill and whether it is the final
# one (the others carry the run's usage so far), or its error.
_Event = tuple[dict[str, Any], bool, bool] | BaseException
_Events = queue.Queue[tuple[str, _Event]]


def run_experiments(plan: Sequence[Experiment], out_dir: str | os.PathLike[str] | BatchFolder, *,
                    supervisor: Supervisor | None = None, cwd: str | os.PathLike[str] | None = None,
                    timeout: float | None = None, kill_on_stall: bool = False, retry_failed: bool = False,
                    runner: str | list[str] | None = None, budget: BatchBudget | None = None,
                    on_start: Callable[[str, list[Result]], None] | None = None,
                    on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Run `plan`, writing the results table in `out_dir` after every change; the rows in plan order.

    The folder is held for the whole call (`BatchFolder`: a second batch on it is refused) and is
    bound to its plan: a table whose experiments the plan does not all hold (same id, label,
    config and question) is refused, so no row is ever dropped; a plan may add experiments.
    Runs start in `cwd` (default: `out_dir`, so their `.massgen/` logs sit beside the table) with
    `queue=True`, named `<batch>-<experiment id>`, run by `runner` (see
    `Supervisor.start_coordination`). Resuming a table: successful runs are kept, runs still going
    are re-attached, runs killed by someone else (or lost) start again, failed ones only with
    `retry_failed`. `budget` (see `BatchBudget`) bounds what all runs together may spend, what
    earlier batch processes on the table spent included: once spent, no run starts and the runs
    still going are interrupted and stopped (their rows say `budget_exceeded`). `on_start` sees the
    batch's name and the rows as found, before anything starts; `on_result` sees each row as it
    finishes (or as it is left out for the budget).

    >>> rows = run_experiments(batch_plan([("configs/demo.yaml", "What is 6 * 7?")]), "results/b1")
    >>> rows[0].winner
    'reviewer'
    """
    _check_ids(plan)
    request.seconds("timeout", timeout)
    sup = supervisor or Supervisor()
    with _held(out_dir) as folder:
        table = ResultsTable.load(folder.path)
        resuming = bool(table.rows)
        rows = _bind(plan, table.rows)
        _write_variants(plan, folder)
        table.rows = rows
        if not resuming:
            # The batch's name is on disk before its first run starts, so a crash cannot orphan that run.
            table.save()
        if on_start is not None:
            on_start(table.batch, list(rows.values()))
        run_cwd = folder.path if cwd is None else Path(cwd)
        named = _shells_by_name(sup, table.batch) if resuming else {}
        pending: list[tuple[str, str]] = []
        for exp in plan:
            recorded = rows[exp.experiment_id]
            row = _refresh(sup, exp, recorded, named.get(f"{table.batch}-{exp.experiment_id}"))
            if row != recorded:
                rows[exp.experiment_id] = row
                table.save()
            if row.status in ("queued", "running"):
                assert row.shell_id is not None
                pending.append((exp.experiment_id, row.shell_id))
            elif row.succeeded or (row.failed and not retry_failed):
                if row != recorded and on_result is not None:
                    on_result(row)  # it ended while no batch watched it
            elif budget is not None and (left_out := budget.spent_reason(rows.values())):
                # A run stopped for the budget before keeps saying so.
                reason = row.reason if row.over_budget and row.reason else f"not started: {left_out}"
                rows[exp.experiment_id] = row.model_copy(update={"outcome": "budget_exceeded", "reason": reason})
                table.save()
                if on_result is not None:
                    on_result(rows[exp.experiment_id])
            else:
                shell_id = sup.start_coordination(exp.config, exp.question, runner=runner, cwd=run_cwd,
                                                  timeout=timeout, queue=True,
                                                  name=f"{table.batch}-{exp.experiment_id}",
                                                  budget=budget.left(rows.values()) if budget else None)
                rows[exp.experiment_id] = result_from_status(exp, sup.get_shell_status(shell_id),
                                                             attempt=row.attempt + 1, earlier=_all_of(row))
                table.save()
                pending.append((exp.experiment_id, shell_id))
        experiments = {e.experiment_id: e for e in plan}
        events: _Events = queue.Queue()
        for experiment_id, shell_id in pending:
            # Daemon threads: an interrupted batch must not wait for runs that carry on without it.
            threading.Thread(target=_wait, args=(sup, experiment_id, shell_id, kill_on_stall, events),
                             daemon=True, name=f"wait-{experiment_id}").start()
        going = {experiment_id for experiment_id, _ in pending}
        spent: str | None = None
        while going:
            experiment_id, event = events.get()
            if isinstance(event, BaseException):
                raise event
            status, stalled, final = event
            before = rows[experiment_id]
            row = result_from_status(experiments[experiment_id], status, sup=sup if final else None, stalled=stalled,
                                     attempt=before.attempt, earlier=(before.earlier_tokens, before.earlier_cost_usd))
            if final and spent is not None and not (row.succeeded or row.over_budget):
                # Stopped here (its own monitor may have been first: then its figure says why).
                row = row.model_copy(update={"outcome": "budget_exceeded", "reason": f"stopped: {spent}"})
            rows[experiment_id] = row
            if final:
                going.discard(experiment_id)
                table.save()
                if on_result is not None:
                    on_result(row)
            if budget is not None and spent is None and (spent := budget.spent_reason(rows.values())):
                _stop([rows[e].shell_id for e in going if rows[e].shell_id], sup)
        return [rows[e.experiment_id] for e in plan]


@contextlib.contextmanager
def _held(out_dir: str | os.PathLike[str] | BatchFolder) -> Iterator[BatchFolder]:
    if isinstance(out_dir, BatchFolder):
        if not out_dir.held:
            raise InvalidRequest(f"{out_dir.given!r} is not held: use `with BatchFolder(...) as folder:` first")
        yield out_dir
    else:
        with BatchFolder(out_dir) as folder:
            yield folder


def _check_ids(plan: Sequence[Experiment]) -> None:
    seen: set[str] = set()
    for exp in plan:
        if not _EXPERIMENT_ID.fullmatch(exp.experiment_id):
            raise InvalidRequest(f"invalid experiment id {exp.experiment_id!r}: use 1-49 letters, digits, "
                                 "'.', '_' or '-', starting with a letter or digit")
        if exp.experiment_id in seen:
            raise InvalidRequest(f"experiment id {exp.experiment_id!r} is used twice in the plan")
        seen.add(exp.experiment_id)


def _bind(plan: Sequence[Experiment], recorded: dict[str, Result]) -> dict[str, Result]:
    """The rows of `plan`, from the table where it has them; refuses a table of another plan."""
    planned = {e.experiment_id: e for e in plan}
    foreign = [row for row in recorded.values() if not _same(planned.get(row.experiment_id), row)]
    if foreign:
        row = foreign[0]
        raise InvalidRequest(
            f"the results folder holds {len(foreign)} experiment(s) of another plan, e.g. {row.experiment_id!r} "
            f"({row.label}: {Path(row.config).name}, {one_line(row.question, 60)!r}): rerun the command that made "
            "it to resume, or use a new folder for a new plan")
    return {e.experiment_id: recorded.get(e.experiment_id)
            or Result(experiment_id=e.experiment_id, label=e.label, config=e.config, question=e.question,
                      params=e.params) for e in plan}


def _same(exp: Experiment | None, row: Result) -> bool:
    return exp is not None and (exp.label, exp.config, exp.question) == (row.label, row.config, row.question)


def _write_variants(plan: Sequence[Experiment], folder: BatchFolder) -> None:
    """Write the config variants the plan carries; one that differs from its file on disk is refused."""
    variants = {e.config: e.config_text for e in plan if e.config_text is not None}
    for path, text in variants.items():
        try:
            on_disk: str | None = Path(path).read_text()
        except FileNotFoundError:
            on_disk = None
        if on_disk is not None and on_disk != text:
            raise InvalidRequest(f"{path} holds another config variant than this plan makes (another sweep, or "
                                 "the base config changed): use a new folder for a new plan")
    for path, text in variants.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(path), text)


def _shells_by_name(sup: Supervisor, batch: str) -> dict[str, dict[str, Any]]:
    """This batch's shells by name, the newest of each: a run started just before a crash has no row yet."""
    found: dict[str, dict[str, Any]] = {}
    for status in sup.list_shells():
        name = status.get("name") or ""
        if name.startswith(f"{batch}-"):
            found[name] = status
    return found


def _refresh(sup: Supervisor, exp: Experiment, row: Result, named: dict[str, Any] | None) -> Result:
    """The row as the supervisor knows it now: a run that ended (or started) while no batch watched."""
    if named is not None and named["shell_id"] != row.shell_id:
        # Started by an earlier batch process that died before it could record the shell.
        return result_from_status(exp, named, sup=sup, attempt=row.attempt + 1, earlier=_all_of(row))
    if row.finished or row.shell_id is None:
        return row
    try:
        status = sup.get_shell_status(row.shell_id)
    except ShellNotFound:
        return row.model_copy(update={"status": "pending", "shell_id": None})
    return result_from_status(exp, status, sup=sup, attempt=row.attempt,
                              earlier=(row.earlier_tokens, row.earlier_cost_usd))


def _all_of(row: Result) -> tuple[int, float]:
    """What every attempt of the row's experiment used, to carry into its next attempt."""
    return row.spent_tokens, row.spent_usd


def _stop(shell_ids: Iterable[str | None], sup: Supervisor) -> None:
    """Interrupt and stop the given runs, from threads of their own: the batch keeps reading their ends."""
    def stop(shell_id: str) -> None:
        with contextlib.suppress(ShellNotFound):
            sup.kill_shell(shell_id, signal="SIGINT", grace=BUDGET_STOP_GRACE)

    for shell_id in shell_ids:
        if shell_id is not None:
            threading.Thread(target=stop, args=(shell_id,), daemon=True, name=f"stop-{shell_id}").start()


def _wait(sup: Supervisor, experiment_id: str, shell_id: str, kill_on_stall: bool, events: _Events) -> None:
    try:
        status, stalled = _final_status(sup, shell_id, kill_on_stall,
                                        lambda update: events.put((experiment_id, (update, False, False))))
        events.put((experiment_id, (status, stalled, True)))
    except BaseException as exc:  # handed to the main thread, which raises it
        events.put((experiment_id, exc))


def _final_status(sup: Supervisor, shell_id: str, kill_on_stall: bool,
                  progress: Callable[[dict[str, Any]], None]) -> tuple[dict[str, Any], bool]:
    """The run's final status, and whether it was killed here because it stalled; `progress` sees the others."""
    status: dict[str, Any] = {}
    for status in sup.watch(shell_id):
        if kill_on_stall and (status.get("coordination") or {}).get("stalled") \
                and sup.kill_shell(shell_id)["status"] == "killed":
            return sup.get_shell_status(shell_id), True
        if not lifecycle.is_ended(status):
            progress(status)
    return status, False


def result_from_status(exp: Experiment, status: dict[str, Any], *, sup: Supervisor | None = None,
                       stalled: bool = False, attempt: int = 1, earlier: tuple[int, float] = (0, 0.0)) -> Result:
    """The results row of `exp` from its shell's status (final or not); `sup` reads a failure's reason.

    `earlier`: the tokens and USD the experiment's earlier attempts used.
    """
    summary = status.get("coordination") or {}
    tokens = summary.get("tokens") or {}
    row = Result(
        experiment_id=exp.experiment_id, label=exp.label, config=exp.config, question=exp.question,
        params=exp.params, attempt=attempt, shell_id=status["shell_id"], status=status["status"],
        exit_code=status.get("exit_code"), outcome=summary.get("outcome"), timed_out=bool(status.get("timed_out")),
        stalled=stalled, winner=summary.get("winner"),
        duration_seconds=status.get("duration_seconds"), votes=summary.get("votes") or {},
        prompt_tokens=tokens.get("input_tokens"), completion_tokens=tokens.get("output_tokens"),
        total_tokens=tokens.get("total_tokens"), cost_usd=summary.get("cost_usd"), earlier_tokens=earlier[0],
        earlier_cost_usd=earlier[1], log_dir=status.get("log_dir"), answer_file=summary.get("answer_file"),
    )
    if row.finished and not row.succeeded:
        row.reason = one_line(failure_reason(status, sup, stalled=stalled))
    return row


def failure_reason(status: dict[str, Any], sup: Supervisor | None = None, *, stalled: bool = False) -> str:
    """Why an ended run did not succeed, in the words closest to the cause.

    What ended it first (the batch's stall kill, its budget or timeout, a removal from the queue, a
    lost monitor, a kill from outside the batch), then the run's own `ERROR:` line, an agent's error,
    and at least the exit code with the last line of stderr.
    """
    summary = status.get("coordination") or {}
    if stalled:
        return f"killed because it stalled: status.json stopped changing ({_progress(summary)})"
    if summary.get("budget_exceeded"):
        return f"stopped by its budget ({exceeded_text(summary['budget_exceeded'])})"
    if status.get("timed_out"):
        return f"timed out after {status.get('duration_seconds') or 0:.0f} s ({_progress(summary)})"
    if status.get("message"):
        return str(status["message"])
    if status["status"] == "killed":
        return f"killed by {_signal_name(status.get('exit_code'))} from outside this batch"
    tail = _output_tail(sup, status["shell_id"]) if sup is not None else {}
    printed_error = summary.get("error") or parse_closing(tail.get("stdout", "").splitlines()).get("ERROR")
    if printed_error:
        return f"ERROR: {printed_error}"
    for agent, error in (summary.get("errors") or {}).items():
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return f"agent {agent}: {message}"
    last = [line for line in tail.get("stderr", "").splitlines() if line.strip()]
    what = f"exit code {status.get('exit_code')}"
    if status["status"] == "stopped":
        what += f" without a final answer ({summary.get('outcome')})"
    return f"{what}: {last[-1]}" if last else what


def _signal_name(code: object) -> str:
    if isinstance(code, int) and code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
        return f"signal {-code}"
    return "a stop request"


def _output_tail(sup: Supervisor, shell_id: str) -> dict[str, Any]:
    try:
        return sup.get_shell_output(shell_id, tail_lines=_TAIL_LINES, max_bytes=16 * 1024)
    except ShellNotFound:
        return {}


def _progress(summary: dict[str, Any]) -> str:
    if not summary.get("phase"):
        return "no progress reported"
    return f"phase {summary['phase']}, {summary.get('completion_percentage') or 0}%"
