"""What a waiting shell needs before it may start: a free slot in its group, and its dependencies' success.

Stdlib only: admission decides with it, and monitors run admission when they hand their slot on.
A shell's group and the shells it starts after (`after`) are in its spec.json; the per-group
limits of a home are in `<home>/groups.json`, changed only under the admission lock.
"""

from __future__ import annotations

from . import layout as lay
from . import lifecycle

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

WAIT = "wait"
GO = "go"
FAIL = "fail"


class Plan:
    """The scheduling part of a shell's spec: its group and the shells it starts after."""

    __slots__ = ("after", "group")

    def __init__(self, group: str | None, after: list[str]) -> None:
        self.group = group
        self.after = after


def plan_of(layout: lay.Layout, shell_id: str) -> Plan:
    """The group and dependencies in the spec of `shell_id` (none when its spec cannot be read)."""
    try:
        spec = lay.read_json(layout.file(shell_id, lay.SPEC))
    except (OSError, ValueError):
        return Plan(None, [])
    if not isinstance(spec, dict):
        return Plan(None, [])
    group, after = spec.get("group"), spec.get("after")
    return Plan(group if isinstance(group, str) else None,
                [dep for dep in after if lay.is_shell_id(dep)] if isinstance(after, list) else [])


def dependencies(layout: lay.Layout, after: list[str]) -> tuple[str, str | None]:
    """(GO, None) when every shell of `after` has ended successfully, (WAIT, None) while one has not
    ended, (FAIL, why) as soon as one ended otherwise or is no longer on record."""
    verdict = GO
    for dep in after:
        try:
            state = lay.read_json(layout.file(dep, lay.STATE))
        except FileNotFoundError:
            if not _on_record(layout, dep):
                return FAIL, f"not started: {dep}, which it was to start after, is no longer on record"
            verdict = WAIT  # being created: its state comes with its admission
            continue
        except (OSError, ValueError):
            return FAIL, f"not started: the record of {dep}, which it was to start after, is damaged"
        status = state.get("status") if isinstance(state, dict) else None
        if status == "stopped":
            continue
        if status in lifecycle.ENDED:
            return FAIL, f"not started: {dep}, which it was to start after, ended {_how(state)}"
        verdict = WAIT
    return verdict, None


def waiting_for(layout: lay.Layout, after: list[str]) -> list[str]:
    """The shells of `after` that have not ended yet."""
    left = []
    for dep in after:
        try:
            state = lay.read_json(layout.file(dep, lay.STATE))
        except (OSError, ValueError):
            continue
        if isinstance(state, dict) and state.get("status") not in lifecycle.ENDED:
            left.append(dep)
    return left


def _how(state: dict[str, Any]) -> str:
    status, code = state.get("status"), state.get("exit_code")
    if state.get("timed_out"):
        return f"{status} (timed out)"
    if state.get("signal"):
        return f"{status} ({state['signal']})"
    return f"{status} (exit {code})" if isinstance(code, int) else str(status)


def _on_record(layout: lay.Layout, shell_id: str) -> bool:
    try:
        lay.read_json(layout.file(shell_id, lay.SPEC))
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
    return True


def group_limits(layout: lay.Layout) -> dict[str, int]:
    """The per-group limits of the home: group name -> most shells of it running at once."""
    try:
        limits = lay.read_json(layout.groups)
    except (OSError, ValueError):
        return {}
    if not isinstance(limits, dict):
        return {}
    return {group: limit for group, limit in limits.items()
            if isinstance(group, str) and isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1}


def write_group_limit(layout: lay.Layout, group: str, limit: int | None) -> None:
    """Set (or, with None, remove) the limit of `group`; the caller holds the admission lock."""
    limits = group_limits(layout)
    if limit is None:
        limits.pop(group, None)
    else:
        limits[group] = limit
    lay.write_json(layout.groups, dict(sorted(limits.items())))
