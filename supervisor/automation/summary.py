"""The `coordination` summary of a run: its status.json (mgcoord's or MassGen's), what it printed, how it ended.

Both runners share the core keys (`coordination.phase`, `completion_percentage`, `active_agent`,
`agents.<id>.status` and `.error`, `results.votes`, `.winner`, `.final_answer_preview`,
`meta.last_updated`). They differ in the rest:

- the end: mgcoord's last write has a final `coordination.phase`; MassGen leaves the phase at
  `presentation` (or where it stopped) and says `finish_reason` (`completed`, `timeout`, `error`,
  or `in_progress` when every backend failed), and says `completed` before its presentation ends;
- tokens and cost: see `usage` (a cost the runner does not report is priced from a price table);
- where the file is: MassGen writes `<log>/turn_N/attempt_M/status.json` and an orchestration
  restart starts `attempt_M+1` while the printed STATUS still names the first: the newest is read;
- liveness: MassGen writes nothing to status.json while it presents the final answer, but keeps
  writing its log beside it.

Reading never raises and never blocks: the file may be missing, half-written, replaced while read,
or not a file at all (a job can print any `STATUS:` path).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import files
from .locate import MAX_SCAN_ENTRIES
from .phases import FINAL_PHASES, PRESENTATION
from .printed import Printed
from .usage import cost, count, mapping, number, read_status, tokens

if TYPE_CHECKING:
    from .usage import Prices

DEFAULT_STALL_SECONDS = 60.0
OUTCOMES = ("running", "answered", "no_answer", "timeout", "error", "interrupted", "budget_exceeded")
# The final phase shown for an ended run that did not say its own, by its outcome.
_PHASE_OF = {"answered": "completed", "no_answer": "error", "timeout": "timeout", "error": "error",
             "interrupted": "interrupted", "budget_exceeded": "interrupted"}
_ENDED = ("stopped", "failed", "killed", "lost")


def summarize(status_file: str | None, *, shell_status: str, timed_out: bool = False,
              printed: Printed | None = None, coordination_run: bool = False,
              stall_seconds: float = DEFAULT_STALL_SECONDS, now: float,
              activity: Iterable[str] = (), prices: Prices | None = None,
              budget_exceeded: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The `coordination` summary of a shell, or None when it is not (yet) a coordination run.

    `status_file` is read as given (see `locate.current_status_file`). `shell_status`, `timed_out`
    and `budget_exceeded` (the figure that passed the run's budget, when the monitor stopped it for
    that) come from the shell's record; `printed` from its output; `prices` price the tokens of a
    runner that does not report its cost.
    A running shell has a summary once its status.json can be read; an ended one also without
    it when it is a `coordination_run` or printed where it logs, so its `outcome` is never lost.
    `stalled`: running, not presenting, and neither status.json, the files beside it nor the
    `activity` files (the shell's own logs) changed for longer than `stall_seconds`.

    >>> summarize("/runs/x/status.json", shell_status="running", now=time.time())["phase"]
    'enforcement'
    """
    printed = printed or Printed()
    ended = shell_status in _ENDED
    path = status_file
    snapshot = read_status(path) if path else None
    if snapshot is None and not (ended and (coordination_run or printed.log_dir or printed.status_file)):
        return None
    data, mtime = snapshot if snapshot is not None else ({}, None)
    coordination = mapping(data.get("coordination"))
    results = mapping(data.get("results"))
    agents = {str(k): mapping(v) for k, v in mapping(data.get("agents")).items()}
    meta = mapping(data.get("meta"))
    phase = _text(coordination.get("phase"))
    winner = _text(results.get("winner"))
    final = _final_phase(data, phase)
    outcome = decide_outcome(shell_status, timed_out=timed_out, final_phase=final,
                             answered=bool(printed.answer_file or (final == "completed" and winner)),
                             over_budget=budget_exceeded is not None)
    cost_usd, cost_source = cost(data, prices)
    percentage = coordination.get("completion_percentage")
    presenting = phase == PRESENTATION or coordination.get("is_final_presentation") is True
    last_updated = number(meta.get("last_updated"))
    return {
        "phase": _ended_phase(shell_status, final, outcome) if ended else phase,
        "completion_percentage": 100 if outcome == "answered" else count(percentage),
        "winner": winner,
        "active_agent": None if ended else _text(coordination.get("active_agent")),
        "agents": {aid: _text(a.get("status")) for aid, a in agents.items()},
        "errors": {aid: a["error"] for aid, a in agents.items() if a.get("error")},
        "votes": {str(k): v for k, v in mapping(results.get("votes")).items() if count(v) is not None},
        "final_answer_preview": _text(results.get("final_answer_preview")),
        "tokens": tokens(data),
        "cost_usd": cost_usd,
        "cost_source": cost_source,
        "last_updated": mtime if last_updated is None else last_updated,
        "stalled": bool(shell_status == "running" and mtime is not None and not presenting
                        and _idle(path, mtime, activity, now, stall_seconds)),
        "answer_file": printed.answer_file,
        "error": printed.error,
        "outcome": outcome,
        "budget_exceeded": budget_exceeded,
    }


def decide_outcome(shell_status: str, *, timed_out: bool, final_phase: str | None, answered: bool,
                   over_budget: bool = False) -> str:
    """How a coordination run went, from the shell's end and the runner's own last word.

    A run is `answered` only when it ended by itself with a final answer; a runner that exits 0
    without one (MassGen, when every backend failed) is `no_answer`, never a success. A run its
    monitor stopped for passing its budget is `budget_exceeded`, whatever the runner said on its way out.

    >>> decide_outcome("stopped", timed_out=False, final_phase=None, answered=False)
    'no_answer'
    """
    if shell_status not in _ENDED:
        return "running"
    if over_budget:
        return "budget_exceeded"
    if shell_status == "killed":
        # Stopped from outside: whatever the runner wrote before (MassGen says `completed`
        # before its presentation ends), the run did not finish by itself.
        return "timeout" if timed_out or final_phase == "timeout" else "interrupted"
    if final_phase in ("timeout", "error", "interrupted"):
        return final_phase
    if shell_status in ("failed", "lost") and final_phase is None:
        return "error"
    return "answered" if answered else "no_answer"


def _ended_phase(shell_status: str, final: str | None, outcome: str) -> str:
    """The runner's own final phase; its outcome's when it said none, or was stopped from outside."""
    return final if final is not None and shell_status != "killed" else _PHASE_OF[outcome]


def _final_phase(data: dict[str, Any], phase: str | None) -> str | None:
    """The runner's own word on how the run ended: mgcoord's last phase, else MassGen's `finish_reason`."""
    if phase in FINAL_PHASES:
        return phase
    reason = data.get("finish_reason")
    return reason if reason in FINAL_PHASES else None


def _idle(path: str | None, mtime: float, activity: Iterable[str], now: float, stall_seconds: float) -> bool:
    """Whether nothing of the run changed for `stall_seconds` (status.json first: usually it is enough)."""
    if now - mtime <= stall_seconds:
        return False
    latest = max([mtime, *(m for m in map(files.modified, activity) if m is not None)])
    if path:
        latest = max(latest, _newest_beside(os.path.dirname(path)))
    return now - latest > stall_seconds


def _newest_beside(folder: str) -> float:
    """The newest modification time of the files in `folder` (its log, its event files)."""
    newest = 0.0
    try:
        with os.scandir(folder) as entries:
            for n, entry in enumerate(entries):
                if n >= MAX_SCAN_ENTRIES:
                    break
                try:
                    newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
                except OSError:
                    continue
    except (OSError, ValueError):
        pass
    return newest


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
