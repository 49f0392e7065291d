"""How the tools show the library's results to a model: compact by default, everything with `detail`.

Compact means: no null values, no empty collections, no false flags; numbers rounded (seconds to
0.1, other numbers to 3 significant digits, all to whole numbers from 100 up); no file paths (`cwd`
and keys ending in `_path`, `_file`, `_dir`); no timestamps (the duration says enough); a command
cut to COMMAND_CHARS; a job's pid only while it runs (or is paused); `attempt` only with retries;
messages cut to MESSAGE_CHARS; the backend only for a cluster shell (`"ray"`, without the
cluster's address).
`detail=True` returns the library's dicts as they are (the Python API's keys, nulls included).
Pure functions: no I/O.

>>> shell_view({"shell_id": "shell_1a2b3c4d", "status": "stopped", "exit_code": 0, "pid": 41,
...             "timed_out": False, "duration_seconds": 2.0040739999, "stdout_path": "/h/out.log"})
{'shell_id': 'shell_1a2b3c4d', 'status': 'stopped', 'exit_code': 0, 'duration_seconds': 2.0}
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from ..automation.schema import escape_surrogates

COMMAND_CHARS = 100
MESSAGE_CHARS = 300
_TIMES = frozenset({"created_at", "start_time", "end_time", "last_updated", "timestamp"})
# Operating details a model has no use for; `detail=true` shows them.
_INTERNAL = frozenset({"resource_usage", "max_bytes"})


def as_text(result: dict[str, Any]) -> str:
    """A result as the model reads it: JSON without spaces after separators (every character is paid for)."""
    # A path's bytes that are not UTF-8 stay exact, as escapes (see `escape_surrogates`).
    return escape_surrogates(json.dumps(result, ensure_ascii=False, separators=(",", ":")))


def shell_view(status: dict[str, Any], *, detail: bool = False) -> dict[str, Any]:
    """A shell's status for a model (see the module docstring for what compact leaves out)."""
    if detail:
        return status
    view = dict(status)
    if view.get("status") not in ("running", "paused"):
        view.pop("pid", None)
    if not view.get("retries"):
        # Without retries there is one attempt: nothing to say.
        view.pop("retries", None)
        view.pop("attempt", None)
    if view.get("backend") == "local":
        view.pop("backend")
    view.pop("cluster", None)
    if "command" in view:
        view["command"] = _command(view["command"])
    view["message"] = _cut(view.get("message"), MESSAGE_CHARS)
    if isinstance(view.get("coordination"), dict):
        view["coordination"] = coordination_view(view["coordination"])
    return compact(view)


def wait_view(status: dict[str, Any], *, expired: bool, waited: float, detail: bool = False) -> dict[str, Any]:
    """What wait_shell returns: the status, how long it waited, and `wait_expired` when the shell outlived the wait."""
    if detail:
        return {**status, "wait_expired": expired, "waited_seconds": round(waited, 3)}
    return compact({**shell_view(status), "waited_seconds": waited, "wait_expired": expired})


def output_view(output: dict[str, Any], *, max_bytes: int, detail: bool = False) -> dict[str, Any]:
    """What get_shell_output returns: the text in a byte budget, and in `hint` the call that reads on."""
    hints = [f"{output[f'{stream}_remaining_bytes']} more bytes of {stream}: call get_shell_output with "
             f"stream='{stream}' and offset={output[f'{stream}_next_offset']}"
             for stream in ("stdout", "stderr") if output[f"{stream}_remaining_bytes"]]
    view = {**output, "max_bytes": max_bytes, "hint": "; ".join(hints) or None}
    if detail:
        return view
    # Text stays whole, empty included ("" says the stream was read): max_bytes bounds it already.
    return compact({key: value for key, value in view.items() if not key.endswith("_remaining_bytes")})


def coordination_view(summary: dict[str, Any]) -> dict[str, Any]:
    """A run's coordination summary, compact: agent errors become their messages."""
    view = dict(summary)
    view["error"] = _cut(view.get("error"), MESSAGE_CHARS)
    errors = view.get("errors")
    if isinstance(errors, dict):
        view["errors"] = {agent: _cut(str(error.get("message") if isinstance(error, dict) else error),
                                      MESSAGE_CHARS)
                          for agent, error in errors.items()}
    return compact(view)


def compact(record: dict[str, Any]) -> dict[str, Any]:
    """`record` without nulls, empty collections, false flags, paths and timestamps; its numbers rounded.

    Text is never cut here: what is bounded and how depends on the field (see the callers).
    """
    kept = {}
    for key, item in record.items():
        if _is_path_key(key) or key in _TIMES or key in _INTERNAL:
            continue
        item = _seconds(item) if key.endswith("_seconds") else _compact_value(item)
        if item is None or item is False or item == {} or item == []:
            continue
        kept[key] = item
    return kept


def _compact_value(value: Any) -> Any:
    if isinstance(value, dict):
        return compact(value)
    if isinstance(value, list):
        return [_compact_value(item) for item in value]
    if isinstance(value, float):
        return rounded(value)
    return value


def rounded(number: float) -> float | int:
    """3 significant digits; whole numbers from 100 up.

    >>> rounded(0.0040739999999999995), rounded(12.3456), rounded(1234.56)
    (0.00407, 12.3, 1235)
    """
    if abs(number) >= 100:
        return round(number)
    return float(f"{number:.3g}")


def _seconds(value: Any) -> Any:
    if isinstance(value, float):
        return round(value) if abs(value) >= 100 else round(value, 1)
    return value


def _is_path_key(key: str) -> bool:
    return key == "cwd" or key.endswith(("_path", "_file", "_dir"))


def _command(command: str | list[str]) -> str | None:
    return _cut(command if isinstance(command, str) else shlex.join(command), COMMAND_CHARS)


def _cut(value: str | None, limit: int) -> str | None:
    if value is not None and len(value) > limit:
        return f"{value[:limit]}… ({len(value) - limit} more characters)"
    return value
