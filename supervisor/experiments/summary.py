"""Summaries of a results table: each row's outcome, a summary per label, and the A/B verdict."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .results import Result
from .stats import Significance, fisher_exact, mann_whitney_u

# The kinds of outcome, in the order plots stack and list them.
CATEGORIES = ("ok", "failed", "timeout", "budget", "killed", "unfinished")
ALPHA = 0.05


def category(result: Result) -> str:
    """`ok`, `failed` (ended on its own without success), `timeout` (ended by the batch's timeout or
    stall kill), `budget` (stopped or never started because a budget was spent), `killed` (from
    outside the batch, or lost) or `unfinished`."""
    if result.over_budget:
        return "budget"
    if not result.finished:
        return "unfinished"
    if result.succeeded:
        return "ok"
    if result.interrupted:
        return "killed"
    return "timeout" if result.timed_out or result.stalled else "failed"


def outcome(result: Result) -> str:
    """How a run ended, as people read it: `ok`, `failed (exit 2)`, `no answer`, `timed out`, `stalled`,
    `killed`, `lost`, or `pending` / `queued` / `running` for a run that has not ended."""
    kind = category(result)
    if kind == "failed" and result.exit_code == 0 and result.outcome:
        return result.outcome.replace("_", " ")  # exit 0 without a final answer: `no answer`
    if kind == "failed":
        return "failed" if result.exit_code is None else f"failed (exit {result.exit_code})"
    if kind == "timeout":
        return "stalled" if result.stalled else "timed out"
    if kind == "killed":
        return result.status
    if kind == "budget":
        return "budget spent" if result.finished else "not started: budget spent"
    return "ok" if kind == "ok" else result.status


def summarize_by_label(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Per label: runs, successes, success rate, mean and median duration (of successful runs), mean
    tokens and cost (of the runs that report them), what all its attempts spent, outcome counts, winners."""
    summary = []
    for label in dict.fromkeys(r.label for r in results):
        rows = [r for r in results if r.label == label]
        durations = [r.duration_seconds for r in rows if r.succeeded and r.duration_seconds is not None]
        tokens = [r.total_tokens for r in rows if r.total_tokens is not None]
        costs = [r.cost_usd for r in rows if r.cost_usd is not None]
        ok = sum(r.succeeded for r in rows)
        summary.append({
            "label": label, "config": rows[0].config, "runs": len(rows), "succeeded": ok,
            "success_rate": ok / len(rows), "mean_duration": _mean(durations),
            "median_duration": round(statistics.median(durations), 3) if durations else None,
            "mean_tokens": _mean(tokens), "mean_cost_usd": _mean(costs, digits=6),
            "spent_tokens": sum(r.spent_tokens for r in rows), "spent_usd": round(sum(r.spent_usd for r in rows), 6),
            "outcomes": dict(Counter(outcome(r) for r in rows)),
            "winners": dict(Counter(r.winner for r in rows if r.winner)),
        })
    return summary


def compare(results: Sequence[Result], *, alpha: float = ALPHA) -> dict[str, Any]:
    """The A/B verdict over two labels: `better` is a label only when a test finds a clear difference.

    First the success rates (Fisher's exact test), then, among successful runs, the durations
    (Mann-Whitney U test); the first with p < `alpha` decides. Otherwise `better` is None and the
    verdict says "no clear difference". Runs that were killed from outside the batch, or have not
    ended, count in neither. Keys: `labels` (summaries), `better`, `verdict` (one sentence),
    `tests` (each test's name, what it compared, and p).

    >>> compare(rows)["verdict"]
    "no clear difference between A and B at p < 0.05 (success 3/3 vs 3/3, Fisher's exact test, ..."
    >>> compare(rows)["better"] is None
    True
    """
    summary = summarize_by_label(results)
    labels = [s["label"] for s in summary]
    found: dict[str, Any] = {"labels": {s["label"]: s for s in summary}, "better": None, "tests": []}
    if len(labels) != 2:
        found["verdict"] = f"no verdict: an A/B comparison needs exactly two configs, this table has {len(labels)}"
        return found
    counted = {label: [r for r in results if r.label == label and category(r) in ("ok", "failed", "timeout")]
               for label in labels}
    a, b = labels
    if not counted[a] or not counted[b]:
        found["verdict"] = f"no verdict yet: {a if not counted[a] else b} has no finished run"
        return found
    ok = {label: [r for r in counted[label] if r.succeeded] for label in labels}
    rate = fisher_exact(len(ok[a]), len(counted[a]), len(ok[b]), len(counted[b]))
    found["tests"].append(_described(rate, "success rate"))
    success = f"success {len(ok[a])}/{len(counted[a])} vs {len(ok[b])}/{len(counted[b])}, {_cite(rate)}"
    if rate.p_value < alpha:
        found["better"] = a if rate.statistic > 0 else b
        found["verdict"] = f"{found['better']} is better: it succeeds more often ({success})"
        return found
    unclear = f"no clear difference between {a} and {b} at p < {alpha:g}"
    seconds = {label: [r.duration_seconds for r in ok[label] if r.duration_seconds is not None] for label in labels}
    if not (seconds[a] and seconds[b]):
        found["verdict"] = f"{unclear} ({success}; durations not compared: a config has no successful run)"
        return found
    speed = mann_whitney_u(seconds[a], seconds[b])
    found["tests"].append(_described(speed, "duration of successful runs"))
    durations = (f"median {statistics.median(seconds[a]):.2f} s vs {statistics.median(seconds[b]):.2f} s, "
                 f"{_cite(speed)}")
    if speed.p_value < alpha:
        found["better"] = a if speed.statistic < len(seconds[a]) * len(seconds[b]) / 2 else b
        found["verdict"] = (f"{found['better']} is better: faster ({durations}) with no clear difference in "
                            f"success ({success})")
    else:
        found["verdict"] = f"{unclear} ({success}; {durations}); more runs (--repeat) can show a smaller one"
    return found


def _described(test: Significance, compared: str) -> dict[str, Any]:
    return {"test": test.name, "compared": compared, "statistic": test.statistic, "p_value": test.p_value}


def _cite(test: Significance) -> str:
    return f"{test.name}: p = {test.p_value:.2g}"


def totals(results: Sequence[Result]) -> dict[str, Any]:
    """What the whole table spent, every attempt counted: tokens, USD, and how many runs' cost is unknown.

    >>> totals(rows)
    {'tokens': 12000, 'cost_usd': 0.0027, 'unknown_cost': 0}
    """
    return {"tokens": sum(r.spent_tokens for r in results), "cost_usd": round(sum(r.spent_usd for r in results), 6),
            "unknown_cost": sum(r.cost_usd is None and (r.total_tokens or 0) > 0 for r in results)}


def _mean(values: Sequence[float], digits: int = 3) -> float | None:
    return round(sum(values) / len(values), digits) if values else None
