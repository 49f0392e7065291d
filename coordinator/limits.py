"""Bounds on what agents, model endpoints and configs may send, and the text helpers that apply them.

Everything that reaches status.json, coordination_events.json, the log or the ``ERROR:`` line from
outside the coordinator (an agent's reply, a server's error body, an exception's text) passes
through :func:`clip` or :func:`quote` first, so one hostile reply cannot make those files or that
line grow without bound. The byte limits are defaults of the backend config keys
``max_output_bytes`` (command) and ``max_response_bytes`` (openai); the others are fixed.
docs/mgcoord.md lists them all.

>>> clip("x" * 5000, 40)
'xxxxxxx... [cut: 5000 characters in all]'
>>> quote("agent" * 1000)
"'agentagentagentagentagentagentagentagentagentagentagentagentagentagentagen'... (5000 characters)"
"""

from __future__ import annotations

MiB = 2**20
DEFAULT_MAX_OUTPUT_BYTES = 4 * MiB
"""stdout, and separately stderr, of one command-agent turn."""
DEFAULT_MAX_RESPONSE_BYTES = 4 * MiB
"""One chat-completions response body, counted both as received (compressed) and unpacked."""
MIN_BYTES_LIMIT = 1024
MAX_BYTES_LIMIT = 2**30

MAX_MESSAGE_CHARS = 1000
"""An error message in status.json, the events, the log, and the ``ERROR:`` line."""
MAX_REASON_CHARS = 2000
"""A vote's reason as recorded in vote.json and the events (status.json shows a shorter preview)."""
MAX_QUOTE_CHARS = 80
"""A value from outside (a vote target, a tool name) quoted inside a message."""
MAX_JSON_DEPTH = 64
"""Nesting of an agent's JSON reply; real replies need three or four levels."""
MAX_JSON_VALUES = 100_000
"""Values (numbers, strings, lists, ...) in one JSON reply; real replies hold a few dozen."""
MAX_CONFIG_VALUES = 100_000
"""Values of a config with every YAML alias expanded (the "billion laughs" bound)."""
MAX_CONFIG_DEPTH = 100


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` when at most ``limit`` characters, else its head with a note of what was cut (``limit`` in all)."""
    if len(text) <= limit:
        return text
    note = f"... [cut: {len(text)} characters in all]"
    if len(note) >= limit:
        return text[:limit]
    return text[: limit - len(note)] + note


def quote(value: object, limit: int = MAX_QUOTE_CHARS) -> str:
    """``repr(value)``, shortened for a long string (without building the whole repr first)."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[: max(limit - 6, 1)]!r}... ({len(value)} characters)"
    return clip(repr(value), limit)


def clean_text(text: str) -> str:
    """``text`` with each lone surrogate (e.g. ``"\\ud83d"``, an emoji cut in half) replaced by U+FFFD.

    JSON may escape such code points, but no file or stream can hold them as UTF-8.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 pairs surrogates that belong together and replaces the others.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
