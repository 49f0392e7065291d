"""Acting on many shells at once: which a listing selects, the kill policy (`kill_many`), what `clean`
removes, the groups' counts.

The order matters and lives here, once, for the CLI, the agent tools and the dashboard: queued
shells are taken out of the queue first (killing a running one first would hand its slot to
one of them), then the others are killed in parallel, each with its whole tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from . import lifecycle
from .errors import InvalidRequest, ShellNotFound

if TYPE_CHECKING:
    from .core import Supervisor

# Kills run in parallel: each waits for its own tree, so they overlap instead of adding up.
KILL_THREADS = 16
Outcome = Literal["dequeued", "killed", "already_ended"]


class KillResult(TypedDict):
    """What `Supervisor.kill_many` did to one shell.

    `outcome`: `dequeued` (it was queued and will never run), `killed` (this call ended its job),
    or `already_ended` (it had ended, whatever ended it); `status` is its status after.
    """

    shell_id: str
    outcome: Outcome
    status: str
    signal: str | None
    message: str | None


def selected(shell: dict[str, Any], *, status: str | None, group: str | None, name: str | None) -> bool:
    """Whether a status dict is one of those a listing asks for: its status, its group, its name or name pattern."""
    return ((status is None or shell["status"] == status) and (group is None or shell.get("group") == group)
            and (name is None or (shell["name"] is not None and _matches(shell["name"], name))))


def _matches(name: str, pattern: str) -> bool:
    import fnmatch  # a listing without --name imports nothing for it

    return fnmatch.fnmatchcase(name, pattern)


def kill_many(sup: Supervisor, targets: Iterable[str] | Literal["all"], sig: str | int,
              grace: float) -> list[KillResult]:
    """Kill `targets` (references, or "all": every shell not ended yet); queued ones first."""
    if targets == "all":
        chosen = [s for s in sup.list_shells() if s["status"] in lifecycle.LIVE]
    else:
        ids = list(dict.fromkeys(sup.resolve(ref) for ref in targets))
        chosen = [sup.get_shell_status(shell_id) for shell_id in ids]
    queued = [s["shell_id"] for s in chosen if s["status"] == "queued"]
    others = [s["shell_id"] for s in chosen if s["status"] != "queued"]
    results = [_kill(sup, shell_id, sig, grace) for shell_id in queued]
    if others:
        from concurrent.futures import ThreadPoolExecutor  # for kills only: reading shells does without it

        with ThreadPoolExecutor(max_workers=min(len(others), KILL_THREADS)) as pool:
            results += pool.map(lambda shell_id: _kill(sup, shell_id, sig, grace), others)
    return results


def _kill(sup: Supervisor, shell_id: str, sig: str | int, grace: float) -> KillResult:
    answer = sup.kill_shell(shell_id, signal=sig, grace=grace)
    outcome: Outcome
    if answer.get("message") == "Removed from queue":
        outcome = "dequeued"
    elif answer["status"] == "killed" and answer.get("signal"):
        outcome = "killed"
    else:
        outcome = "already_ended"
    return KillResult(shell_id=shell_id, outcome=outcome, status=answer["status"], signal=answer.get("signal"),
                      message=answer.get("message"))


def clean(sup: Supervisor, refs: list[str] | None, *, everything: bool, older_than: float | None,
          settle: Callable[[str], dict[str, Any]], remove: Callable[[str], None]) -> list[str]:
    """Remove (with `remove`) the shells `refs` names (all when None) that `Supervisor.clean` may remove;
    their ids.

    Every reference is resolved and every shell settled (with `settle`, which returns its status)
    before anything is removed.
    """
    ids = list(sup.store.ids()) if refs is None else list(dict.fromkeys(sup.resolve(r) for r in refs))
    chosen: dict[str, dict[str, Any]] = {}
    for shell_id in ids:
        try:
            chosen[shell_id] = settle(shell_id)
        except ShellNotFound:
            continue  # removed meanwhile
    if older_than is not None:
        cutoff = sup.clock() - older_than
        chosen = {i: s for i, s in chosen.items() if _ended_before(s, cutoff)}
    live = [i for i, s in chosen.items() if s["status"] in lifecycle.LIVE]
    if live and not everything:
        if refs is not None:
            named = ", ".join(f"{i} ({chosen[i]['status']})" for i in live)
            raise InvalidRequest(f"not ended: {named}; kill first, or clean with everything=True (mgsup clean "
                                 "--all); nothing was removed")
        chosen = {i: s for i, s in chosen.items() if i not in live}
    if live and everything:
        kill_many(sup, live, "SIGTERM", lifecycle.DEFAULT_GRACE)
    for shell_id in chosen:
        remove(shell_id)
    return list(chosen)


def _ended_before(status: dict[str, Any], cutoff: float) -> bool:
    """Whether `status` ended (or, never started, was created) before the epoch time `cutoff`."""
    when = status.get("end_time") or status.get("created_at")
    return when is not None and datetime.fromisoformat(when).timestamp() < cutoff


def groups(shells: list[dict[str, Any]], limits: dict[str, int]) -> list[dict[str, Any]]:
    """Each group with a limit or shells: its limit, how many of its shells run (or are paused), wait, exist."""
    def empty(group: str, limit: int | None) -> dict[str, Any]:
        return {"group": group, "max_concurrent": limit, "running": 0, "queued": 0, "shells": 0}

    found = {group: empty(group, limit) for group, limit in limits.items()}
    for shell in shells:
        if shell["group"] is None:
            continue
        entry = found.setdefault(shell["group"], empty(shell["group"], None))
        entry["shells"] += 1
        if shell["status"] in lifecycle.SUPERVISED:
            entry["running"] += 1
        elif shell["status"] == "queued":
            entry["queued"] += 1
    return sorted(found.values(), key=lambda g: g["group"])
