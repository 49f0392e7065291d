"""The `coordination` summary of a run: its status.json (mgcoord's or MassGen's), what it printed, how it ended.

Both runners share the core keys (`coordination.phase`, `completion_percentage`, `active_agent`,
`agents.<id>.status` and `.error`, `results.votes`, `.winner`, `.final_answer_preview`,
`meta.last_updated`). They differ in the rest:

- the end: mgcoord's last write has a final `coordination.phase`; MassGen leaves the phase at
  `presentation` (or where it stopped) and says `finish_reason` (`completed`, `timeout`, `error`,
  or `in_progress` when every backend failed), and says `completed` before its presentation ends;
- tokens: mgcoord `results.usage` / `agents.<id>.usage` (prompt/completion); MassGen
  `costs.total_input_tokens` / `total_output_tokens` / `total_estimated_cost` and
  `agents.<id>.token_usage`;
- where the file is: MassGen writes `<log>/turn_N/attempt_M/status.json` and an orchestration
  restart starts `attempt_M+1` while the printed STATUS still names the first: the newest is read;
- liveness: MassGen writes nothing to status.json while it presents the final answer, but keeps
  writing its log beside it.

Reading never raises and never blocks: the file may be missing, half-written, replaced while read,
or not a file at all (a job can print any `STATUS:` path).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from typing import Any

from . import files
from .phases import FINAL_PHASES, PRESENTATION
from .printed import Printed

DEFAULT_STALL_SECONDS = 60.0
MAX_STATUS_BYTES = 4 * 1024 * 1024
READ_ATTEMPTS = 3
# Enough for any run's log folder; a bound for a path a job made up.
MAX_SCAN_ENTRIES = 512
OUTCOMES = ("running", "answered", "no_answer", "timeout", "error", "interrupted")
# The final phase shown for an ended run that did not say its own, by its outcome.
_PHASE_OF = {"answered": "completed", "no_answer": "error", "timeout": "timeout", "error": "error",
             "interrupted": "interrupted"}
_ATTEMPT = re.compile(r"^(?P<log>.*)/turn_(?P<turn>\d+)/attempt_(?P<attempt>\d+)/status\.json$")
_ENDED = ("stopped", "failed", "killed", "lost")


def current_status_file(status_file: str) -> str:
    """The status.json to read for `status_file`: for MassGen's `turn_N/attempt_M/`, the newest attempt.

    >>> current_status_file("/l/log_1/turn_1/attempt_1/status.json")   # attempt_2 exists
    '/l/log_1/turn_1/attempt_2/status.json'
    """
    match = _ATTEMPT.match(status_file)
    if match is None:
        return status_file
    log = match.group("log")
    best = (int(match.group("turn")), int(match.group("attempt")))
    for turn, turn_dir in _numbered(log, "turn_"):
        for attempt, attempt_dir in _numbered(turn_dir, "attempt_"):
            if (turn, attempt) > best and os.path.isfile(os.path.join(attempt_dir, "status.json")):
                best = (turn, attempt)
    return os.path.join(log, f"turn_{best[0]}", f"attempt_{best[1]}", "status.json")


def _numbered(folder: str, prefix: str) -> Iterable[tuple[int, str]]:
    try:
        with os.scandir(folder) as entries:
            for n, entry in enumerate(entries):
                if n >= MAX_SCAN_ENTRIES:
                    return
                number = entry.name[len(prefix):]
                if entry.name.startswith(prefix) and number.isdigit():
                    yield int(number), entry.path
    except (OSError, ValueError):
        return


def summarize(status_file: str | None, *, shell_status: str, timed_out: bool = False,
              printed: Printed | None = None, coordination_run: bool = False,
              stall_seconds: float = DEFAULT_STALL_SECONDS, now: float,
              activity: Iterable[str] = ()) -> dict[str, Any] | None:
    """The `coordination` summary of a shell, or None when it is not (yet) a coordination run.

    `status_file` is read as given (see `current_status_file`). `shell_status` and `timed_out`
    come from the shell's record; `printed` from its output.
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
    snapshot = _read(path) if path else None
    if snapshot is None and not (ended and (coordination_run or printed.log_dir or printed.status_file)):
        return None
    data, mtime = snapshot if snapshot is not None else ({}, None)
    coordination = _mapping(data.get("coordination"))
    results = _mapping(data.get("results"))
    agents = {str(k): _mapping(v) for k, v in _mapping(data.get("agents")).items()}
    meta = _mapping(data.get("meta"))
    phase = _text(coordination.get("phase"))
    winner = _text(results.get("winner"))
    final = _final_phase(data, phase)
    outcome = decide_outcome(shell_status, timed_out=timed_out, final_phase=final,
                             answered=bool(printed.answer_file or (final == "completed" and winner)))
    percentage = coordination.get("completion_percentage")
    presenting = phase == PRESENTATION or coordination.get("is_final_presentation") is True
    last_updated = _number(meta.get("last_updated"))
    return {
        "phase": _ended_phase(shell_status, final, outcome) if ended else phase,
        "completion_percentage": 100 if outcome == "answered" else _count(percentage),
        "winner": winner,
        "active_agent": None if ended else _text(coordination.get("active_agent")),
        "agents": {aid: _text(a.get("status")) for aid, a in agents.items()},
        "errors": {aid: a["error"] for aid, a in agents.items() if a.get("error")},
        "votes": {str(k): v for k, v in _mapping(results.get("votes")).items() if _count(v) is not None},
        "final_answer_preview": _text(results.get("final_answer_preview")),
        "tokens": _tokens(data, results, agents),
        "cost_usd": _cost(data, agents),
        "last_updated": mtime if last_updated is None else last_updated,
        "stalled": bool(shell_status == "running" and mtime is not None and not presenting
                        and _idle(path, mtime, activity, now, stall_seconds)),
        "answer_file": printed.answer_file,
        "error": printed.error,
        "outcome": outcome,
    }


def decide_outcome(shell_status: str, *, timed_out: bool, final_phase: str | None, answered: bool) -> str:
    """How a coordination run went, from the shell's end and the runner's own last word.

    A run is `answered` only when it ended by itself with a final answer; a runner that exits 0
    without one (MassGen, when every backend failed) is `no_answer`, never a success.

    >>> decide_outcome("stopped", timed_out=False, final_phase=None, answered=False)
    'no_answer'
    """
    if shell_status not in _ENDED:
        return "running"
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


def _read(path: str) -> tuple[dict[str, Any], float] | None:
    """The parsed document and the modification time of that same version of the file."""
    for _ in range(READ_ATTEMPTS):
        content = files.read_regular(path, MAX_STATUS_BYTES)
        if content is None:
            return None
        raw, mtime = content
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            # A writer that truncates and rewrites in place: the next read usually sees it whole.
            continue
        return (data, mtime) if isinstance(data, dict) else None
    return None


def _tokens(data: dict[str, Any], results: dict[str, Any], agents: dict[str, dict[str, Any]]) -> dict[str, int] | None:
    """Input, output and total tokens of the whole run, as the runner reports them; None when it does not."""
    run = (_usage(_mapping(data.get("costs")), "total_input_tokens", "total_output_tokens")
           or _usage(_mapping(results.get("usage")), "prompt_tokens", "completion_tokens"))
    if run is None:
        per_agent = [u for a in agents.values() if (u := (
            _usage(_mapping(a.get("token_usage")), "input_tokens", "output_tokens")
            or _usage(_mapping(a.get("usage")), "prompt_tokens", "completion_tokens"))) is not None]
        if not per_agent:
            return None
        run = (sum(u[0] for u in per_agent), sum(u[1] for u in per_agent), sum(u[2] for u in per_agent))
    return {"input_tokens": run[0], "output_tokens": run[1], "total_tokens": run[2]}


def _cost(data: dict[str, Any], agents: dict[str, dict[str, Any]]) -> float | None:
    """The run's cost in USD when the runner reports one (MassGen's estimate), else None."""
    total = _number(_mapping(data.get("costs")).get("total_estimated_cost"))
    if total is not None:
        return total
    reported = [c for a in agents.values() if (c := _number(_mapping(a.get("token_usage")).get("estimated_cost")))
                is not None]
    return sum(reported) if reported else None


def _usage(mapping: dict[str, Any], input_key: str, output_key: str) -> tuple[int, int, int] | None:
    """(input, output, total) from one usage record; the total is the reported one, else the sum."""
    tokens_in, tokens_out = _count(mapping.get(input_key)), _count(mapping.get(output_key))
    if tokens_in is None or tokens_out is None:
        return None
    total = _count(mapping.get("total_tokens"))
    return tokens_in, tokens_out, tokens_in + tokens_out if total is None else total


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
