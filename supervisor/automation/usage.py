"""A run's status.json read leniently, and the token usage and cost in it (mgcoord's or MassGen's).

- tokens: MassGen's `costs.total_input_tokens` / `total_output_tokens` (or `agents.<id>.token_usage`),
  mgcoord's `results.usage` (or `agents.<id>.usage`), prompt/completion;
- cost: the runner's own figure when it reports one (MassGen's `costs.total_estimated_cost`, which
  is 0 for a model it has no price for), else each agent's tokens priced by a price table for the
  model the runner names (`agents.<id>.model`, which mgcoord writes); None when neither is known.

Stdlib only (no pydantic, no yaml): the monitor imports it to hold a run to its budget. A price
table here is `{model: [USD per million input tokens, USD per million output tokens]}`; reading
prices.yaml into one is `supervisor.prices`' job.

>>> data = {"agents": {"a": {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 1000000,
...                                                          "completion_tokens": 0}}}}
>>> cost(data, {"gpt-4o-mini": [0.15, 0.6]})
(0.15, 'prices')
"""

from __future__ import annotations

import json
import math

from . import files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Prices = dict[str, list[float]]

READ_ATTEMPTS = 3
PER_TOKENS = 1_000_000


def read_status(path: str) -> tuple[dict[str, Any], float] | None:
    """The parsed document and the modification time of that same version of the file.

    Never raises and never blocks: the file may be missing, half-written, replaced while read,
    or not a file at all (a job can print any `STATUS:` path).
    """
    for _ in range(READ_ATTEMPTS):
        content = files.read_regular(path, files.MAX_STATUS_BYTES)
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


def tokens(data: dict[str, Any]) -> dict[str, int] | None:
    """Input, output and total tokens of the whole run, as the runner reports them; None when it does not."""
    run = (_usage(mapping(data.get("costs")), "total_input_tokens", "total_output_tokens")
           or _usage(mapping(mapping(data.get("results")).get("usage")), "prompt_tokens", "completion_tokens"))
    if run is None:
        per_agent = [u for u in map(_agent_usage, _agents(data)) if u is not None]
        if not per_agent:
            return None
        run = (sum(u[0] for u in per_agent), sum(u[1] for u in per_agent), sum(u[2] for u in per_agent))
    return {"input_tokens": run[0], "output_tokens": run[1], "total_tokens": run[2]}


def cost(data: dict[str, Any], prices: Prices | None = None) -> tuple[float | None, str | None]:
    """The run's cost in USD and where it comes from: `runner`, `prices`, or (None, None) when unknown."""
    reported = reported_cost(data)
    if reported is not None:
        return reported, "runner"
    priced = priced_cost(data, prices or {})
    return (priced, "prices") if priced is not None else (None, None)


def reported_cost(data: dict[str, Any]) -> float | None:
    """The run's cost in USD when the runner reports one (MassGen's estimate), else None."""
    total = number(mapping(data.get("costs")).get("total_estimated_cost"))
    if total is not None:
        return total
    reported = [c for a in _agents(data) if (c := number(mapping(a.get("token_usage")).get("estimated_cost")))
                is not None]
    return sum(reported) if reported else None


def priced_cost(data: dict[str, Any], prices: Prices) -> float | None:
    """Each agent's tokens × the price of its model; None when an agent that used tokens has no known price."""
    total = 0.0
    priced = False
    for agent in _agents(data):
        used = _agent_usage(agent)
        if used is None or used[2] == 0:
            continue
        model = agent.get("model")
        price = price_of(model, prices) if isinstance(model, str) else None
        if price is None:
            return None
        total += (used[0] * price[0] + used[1] * price[1]) / PER_TOKENS
        priced = True
    return round(total, 6) if priced else None


def price_of(model: str, prices: Prices) -> tuple[float, float] | None:
    """The (input, output) price of `model`: its own entry, else without a provider prefix
    (`openai/gpt-4o` → `gpt-4o`), else the longest entry it extends by `-` (a dated version).

    >>> price_of("gpt-4o-mini-2024-07-18", {"gpt-4o": [2.5, 10], "gpt-4o-mini": [0.15, 0.6]})
    (0.15, 0.6)
    """
    for name in dict.fromkeys((model, model.rsplit("/", 1)[-1])):
        if name in prices:
            return _pair(prices[name])
        extended = [key for key in prices if name.startswith(key + "-")]
        if extended:
            return _pair(prices[max(extended, key=len)])
    return None


def _pair(entry: list[float]) -> tuple[float, float]:
    return float(entry[0]), float(entry[1])


def _agents(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [mapping(a) for a in mapping(data.get("agents")).values()]


def _agent_usage(agent: dict[str, Any]) -> tuple[int, int, int] | None:
    return (_usage(mapping(agent.get("token_usage")), "input_tokens", "output_tokens")
            or _usage(mapping(agent.get("usage")), "prompt_tokens", "completion_tokens"))


def _usage(record: dict[str, Any], input_key: str, output_key: str) -> tuple[int, int, int] | None:
    """(input, output, total) from one usage record; the total is the reported one, else the sum."""
    tokens_in, tokens_out = count(record.get(input_key)), count(record.get(output_key))
    if tokens_in is None or tokens_out is None:
        return None
    total = count(record.get("total_tokens"))
    return tokens_in, tokens_out, tokens_in + tokens_out if total is None else total


def mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
