"""The price table that turns a run's tokens into USD when its runner does not report a cost.

prices.yaml maps each model to its USD per million input and output tokens, with an optional date:

    as_of: 2025-08-15
    gpt-4o-mini: {input: 0.15, output: 0.60}
    my-local-model: {input: 0, output: 0}

The package ships a dated default (`supervisor/data/prices.yaml`). The user's file overrides its
entries model by model: `$MGSUP_PRICES` when set, else `$XDG_CONFIG_HOME/mgsup/prices.yaml`
(`~/.config/mgsup/prices.yaml`) when it exists. The result is a plain table
(`{model: [input, output]}`) as `automation.usage` prices with it.

>>> table()["gpt-4o-mini"]
[0.15, 0.6]
"""

from __future__ import annotations

import datetime
import math
import os
from pathlib import Path
from typing import Any

from .errors import InvalidRequest

SHIPPED = Path(__file__).parent / "data" / "prices.yaml"
DATE_KEY = "as_of"
_cache: dict[tuple[str, float | None], dict[str, list[float]]] = {}


def user_file() -> Path | None:
    """The user's price file: `$MGSUP_PRICES` (which must exist), else the XDG one if it exists."""
    named = os.environ.get("MGSUP_PRICES")
    if named:
        return Path(named).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    candidate = Path(base) / "mgsup" / "prices.yaml"
    return candidate if candidate.is_file() else None


def table() -> dict[str, list[float]]:
    """The shipped table with the user's entries laid over it; InvalidRequest for a user file that cannot be used.

    Read again only when the user's file changes.
    """
    path = user_file()
    try:
        stamp = path.stat().st_mtime if path is not None else None
    except OSError as exc:
        raise InvalidRequest(f"price file {str(path)!r} ($MGSUP_PRICES) cannot be read: {exc.strerror}") from None
    key = (str(path), stamp)
    if key not in _cache:
        merged = read(SHIPPED)
        if path is not None:
            merged |= read(path)
        _cache.clear()
        _cache[key] = merged
    return dict(_cache[key])


def table_for_reading() -> dict[str, list[float]]:
    """`table()`, or the shipped one when the user's file is broken: showing a status never fails for it."""
    try:
        return table()
    except InvalidRequest:
        return read(SHIPPED)


def shipped_date() -> str | None:
    """The date of the shipped table's prices."""
    import yaml

    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    date = data.get(DATE_KEY)
    return str(date) if date is not None else None


def read(path: Path) -> dict[str, list[float]]:
    """The models and prices of one price file; InvalidRequest says which entry is wrong and how."""
    import yaml  # only when a table is needed: a command listing shells does without it

    where = f"price file {str(path)!r}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidRequest(f"{where} cannot be read: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"{where} is not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidRequest(f"{where} must map model names to {{input: USD, output: USD}} per million tokens")
    prices = {}
    for model, entry in data.items():
        if model == DATE_KEY:
            if not isinstance(entry, str | datetime.date):
                raise InvalidRequest(f"{where}: {DATE_KEY} must be a date such as 2025-08-15")
            continue
        prices[str(model)] = _entry(where, str(model), entry)
    return prices


def _entry(where: str, model: str, entry: Any) -> list[float]:
    if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
        raise InvalidRequest(f"{where}: {model} must be {{input: USD, output: USD}} (per million tokens), "
                             f"got {entry!r}")
    pair = []
    for side in ("input", "output"):
        value = entry[side]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise InvalidRequest(f"{where}: {model}.{side} must be a number of USD >= 0, got {value!r}")
        pair.append(float(value))
    return pair
