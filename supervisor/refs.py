"""Which shell a caller means: a full id, a unique prefix of its 8 hex characters, a name, or `last`.

Resolution reads as little as it can: a full id is one existence check; anything else lists the
shells' directory and reads each shell's small spec.json (its name and creation time), never its
state, its processes or its output. A name means the newest shell with that name; `last` the
newest shell of all. A reference that fits several shells is an error that lists them; one that
fits none suggests the names and ids it is close to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from . import layout as lay
from .errors import AmbiguousReference, InvalidRequest, ShellNotFound
from .request import quoted

if TYPE_CHECKING:
    from .store import Store

LAST = "last"
_HEX = re.compile(r"[0-9a-f]{1,8}")
# How many candidates an ambiguity error lists, and how many suggestions a miss offers.
LISTED = 10
SUGGESTED = 3


class Entry(NamedTuple):
    """What resolution knows of one shell: its id, name and creation time (None when its spec is damaged)."""

    shell_id: str
    name: str | None
    created: float | None


def resolve(ref: object, store: Store, describe: Callable[[str], str]) -> str:
    """The id of the shell on record in `store` that `ref` stands for.

    `describe` says briefly what a candidate is, for the error that lists them.
    """
    if not isinstance(ref, str):
        raise InvalidRequest(f"shell_id must be a string (an id like 'shell_1a2b3c4d', a unique prefix of its hex "
                             f"digits, a name or 'last'), got {type(ref).__name__}")
    if lay.is_shell_id(ref):
        store.require(ref)
        return ref
    home = store.layout.home
    known = [_entry(store.layout, shell_id) for shell_id in store.ids()]
    if ref == LAST:
        dated = [e for e in known if e.created is not None]
        if not dated:
            raise ShellNotFound(f"no shell {ref!r}: there are no shells on record in {home}")
        return max(dated, key=lambda e: (e.created, e.shell_id)).shell_id
    digits = (ref[len("shell_"):] if ref.startswith("shell_") else ref).lower()
    by_prefix = [e for e in known if _HEX.fullmatch(digits) and e.shell_id[len("shell_"):].startswith(digits)]
    by_name = [] if ref.startswith("shell_") else [e for e in known if e.name == ref]
    if by_name:
        # A name means the newest shell with that name; a prefix that fits others too is ambiguous.
        newest = max(by_name, key=lambda e: (e.created or 0.0, e.shell_id))
        others = [e for e in by_prefix if e.shell_id != newest.shell_id]
        if not others:
            return newest.shell_id
        _ambiguous(ref, [newest, *others], describe, f"is the name of {newest.shell_id} and a prefix of other "
                                                     "shells' ids")
    if len(by_prefix) == 1:
        return by_prefix[0].shell_id
    if by_prefix:
        _ambiguous(ref, by_prefix, describe, f"is a prefix of {len(by_prefix)} shells' ids")
    close = _close(ref, known)
    hint = f"; did you mean {' or '.join(repr(word) for word in close)}?" if close else ""
    raise ShellNotFound(f"no shell {quoted(ref)} in {home}{hint} (a shell is named by its id, a unique prefix of its "
                        "hex digits, its name, or 'last'; 'mgsup list' shows the shells on record)", close)


def _ambiguous(ref: str, candidates: list[Entry], describe: Callable[[str], str], why: str) -> None:
    shown = sorted(candidates, key=lambda e: (-(e.created or 0.0), e.shell_id))
    listed = "; ".join(describe(e.shell_id) for e in shown[:LISTED])
    more = f"; and {len(shown) - LISTED} more" if len(shown) > LISTED else ""
    raise AmbiguousReference(f"{quoted(ref)} {why}: {listed}{more}. Give more of the id, or the full id",
                             [e.shell_id for e in shown])


def _close(ref: str, known: list[Entry]) -> list[str]:
    """The names and hex digits of shells on record that `ref` looks like a misspelling of."""
    words = {e.name for e in known if e.name} | {e.shell_id[len("shell_"):] for e in known}
    typed = ref[len("shell_"):] if ref.startswith("shell_") else ref
    import difflib  # only for a reference that names nothing: resolving one costs no import

    return difflib.get_close_matches(typed, sorted(words), n=SUGGESTED, cutoff=0.6)


def _entry(layout: lay.Layout, shell_id: str) -> Entry:
    """The name and creation time in the spec of `shell_id`; None for what is missing or damaged."""
    try:
        spec = lay.read_json(layout.file(shell_id, lay.SPEC))
    except (OSError, ValueError):
        return Entry(shell_id, None, None)
    if not isinstance(spec, dict):
        return Entry(shell_id, None, None)
    name, created = spec.get("name"), spec.get("created")
    return Entry(shell_id, name if isinstance(name, str) else None,
                 float(created) if isinstance(created, int | float) and not isinstance(created, bool) else None)
