"""The gate every tool call passes on both surfaces (MCP and `dispatch`): the policy's decision, the audit line.

`guarded` decides a call with the session's `Policy` (None: everything is allowed), holds a place
in the session's shell count while a start runs, and appends one line to `<home>/audit.jsonl` when
the call has ended, whatever its end. A refused call raises `policy.Denied`, whose message quotes
the rule (the registry reports it as a tool error). `rejected` records a call whose arguments did
not fit the tool's schema (nothing ran).

    with guarded(spec.name, arguments, sup, policy, surface="dispatch") as passage:
        return passage.returns(spec.run(sup, passage.arguments))
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

from pydantic import BaseModel

from .. import audit
from ..core import Supervisor
from ..errors import InvalidRequest, SupervisorError
from ..models import iso
from .policy import START_TOOLS, Denied, Policy

log = logging.getLogger(__name__)
ERROR_CHARS = 300
# Arguments a policy may set; the result tells the model when it did.
_APPLIED = ("timeout", "budget", "isolate")


class Passage:
    """An allowed call: the arguments to run with, and what the policy changed in them."""

    def __init__(self, arguments: BaseModel, applied: dict[str, Any]) -> None:
        self.arguments = arguments
        self.applied = applied
        self.result: dict[str, Any] | None = None

    def returns(self, result: dict[str, Any]) -> dict[str, Any]:
        """`result`, recorded for the audit line, with a `policy` note when the policy changed the arguments."""
        if self.applied:
            result = {**result, "policy": "set by the policy: " + ", ".join(
                f"{key}={value!r}" for key, value in self.applied.items())}
        self.result = result
        return result


@contextmanager
def guarded(tool: str, arguments: BaseModel, sup: Supervisor, policy: Policy | None, *,
            surface: str) -> Iterator[Passage]:
    """Decide the call `tool(arguments)`, let the body run it, and audit it (see the module docstring)."""
    # The arguments that differ from the tool's defaults: what the caller asked for.
    record = _record(tool, audit.redact(arguments.model_dump(exclude_defaults=True)), policy, surface)
    began = time.monotonic()
    try:
        passage = _decide(tool, arguments, policy)
    except Denied as exc:
        _write(sup.home, record | {"decision": "denied", "rule": exc.rule, "result": "error", "error": str(exc)})
        raise
    record["decision"] = "allowed"
    if passage.applied:
        record["applied"] = audit.redact(passage.applied)
    try:
        with policy.start() if policy is not None and tool in START_TOOLS else nullcontext():
            yield passage
    except Denied as exc:
        _write(sup.home, record | {"decision": "denied", "rule": exc.rule, "result": "error", "error": str(exc)})
        raise
    except BaseException as exc:
        _write(sup.home, record | {"result": "error", "error": _cut(str(exc) or type(exc).__name__),
                                   "duration_seconds": round(time.monotonic() - began, 3)})
        raise
    _write(sup.home, record | {"result": "ok", **_touched(passage.result),
                               "duration_seconds": round(time.monotonic() - began, 3)})


def rejected(name: str, arguments: Any, supervisor: Callable[[], Supervisor], policy: Policy | None, *,
             surface: str, error: str) -> None:
    """Audit a call refused before it could be decided: unknown tool, or arguments that do not fit."""
    try:
        home = supervisor().home
    except SupervisorError:
        return  # the server cannot reach its state directory; the call's error says so
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            pass
    # Text that is not a JSON object may hold an environment value anywhere: only its size is kept.
    shown = audit.redact(arguments) if isinstance(arguments, Mapping) else f"<{len(str(arguments))} characters>"
    _write(home, _record(str(name), shown, policy, surface) | {"decision": "invalid", "result": "error",
                                                             "error": _cut(error)})


def _decide(tool: str, arguments: BaseModel, policy: Policy | None) -> Passage:
    if policy is None:
        return Passage(arguments, {})
    given = arguments.model_dump()
    checked = policy.check(tool, given)
    applied = {key: _set(checked[key]) for key in _APPLIED if key in checked and checked[key] != given.get(key)}
    return Passage(type(arguments).model_validate(checked), applied)


def _set(value: Any) -> Any:
    """A value as the policy set it, without the keys it leaves unset."""
    return {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else value


def _record(tool: str, arguments: Any, policy: Policy | None, surface: str) -> dict[str, Any]:
    return {"time": iso(time.time()), "tool": tool, "surface": surface, "pid": os.getpid(),
            "session": policy.session if policy is not None else None, "arguments": arguments}


def _touched(result: dict[str, Any] | None) -> dict[str, Any]:
    if not result:
        return {}
    return {key: result[key] for key in ("shell_id", "status") if isinstance(result.get(key), str)}


def _write(home: Any, record: dict[str, Any]) -> None:
    try:
        audit.append(home, record)
    except (OSError, InvalidRequest) as exc:
        # The call has run (or was refused) already; its outcome stands, the server's log says what is missing.
        log.warning("could not append to the audit log in %s: %s; record: %s", home, exc, record)


def _cut(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else f"{text[:ERROR_CHARS]}…"
