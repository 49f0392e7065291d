"""Counts set through the environment ($MGSUP_...): read, checked and reported the same way everywhere."""

from __future__ import annotations

import os


def whole_number(name: str, default: int, given: int | None = None) -> int:
    """`given` when not None, else $`name` when set and not empty, else `default`: a whole number >= 1.

    Anything else is an InvalidRequest that names the setting, so that a mistyped value refuses to
    start rather than being taken as the default.
    """
    value: int | str = given if given is not None else os.environ.get(name) or default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        from .errors import InvalidRequest  # this module is read by the stdlib-only audit log too

        raise InvalidRequest(f"{name} must be a whole number >= 1, got {value!r}")
    return number
