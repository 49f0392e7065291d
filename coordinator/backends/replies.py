"""Reading what an agent or a model endpoint sends back: JSON that cannot hurt the run.

A reply may nest deeper than Python's recursion allows, pack a million values into a few
megabytes (each costs Python some sixty bytes), or escape a lone surrogate (an emoji cut in half by
a token limit) that no UTF-8 file can hold. :func:`parse_json` turns the first two into an
:class:`~coordinator.errors.AgentError` for that turn, before building anything, and repairs the
third, so a reply that parses is safe to keep and to write anywhere.

>>> parse_json(b'{"content": "cut \\\\ud83d"}', "reply")
{'content': 'cut \\ufffd'}
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import AgentError
from ..limits import MAX_JSON_DEPTH, MAX_JSON_VALUES, clean_text

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def parse_json(data: bytes | str, what: str) -> Any:
    """Decode ``data`` as JSON (``what`` names it in errors); invalid or too deep JSON is an AgentError.

    Bytes that are not UTF-8 are replaced, as everywhere in the coordinator.
    """
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if _values_at_most(text) > MAX_JSON_VALUES:
        raise AgentError(f"{what} holds more than {MAX_JSON_VALUES:,} JSON values")
    try:
        value = json.loads(text)
    except RecursionError:
        raise AgentError(f"{what} is nested too deeply (more than {MAX_JSON_DEPTH} levels)") from None
    except json.JSONDecodeError as exc:
        raise AgentError(f"invalid JSON in {what} ({exc.msg}): {clean_text(text.strip()[:120])!r}") from None
    return _cleaned(value, what, 0)


def _values_at_most(text: str) -> int:
    """An upper bound of the values in a JSON text: separators and openings outside strings."""
    skeleton = _STRING.sub("", text)
    return skeleton.count(",") + skeleton.count("[") + skeleton.count("{") + 1


def _cleaned(value: Any, what: str, depth: int) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if depth >= MAX_JSON_DEPTH and isinstance(value, (dict, list)):
        raise AgentError(f"{what} is nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    if isinstance(value, dict):
        return {clean_text(key): _cleaned(item, what, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_cleaned(item, what, depth + 1) for item in value]
    return value
