"""Summaries of a results table: per label, the A/B comparison, and the plot of durations and outcomes."""

from __future__ import annotations

import os
import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .results import Result

# Characters per line of a label under a plot column (2.8 inches at 100 dpi, 9-point text).
TICK_WIDTH = 28


def summarize_by_label(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Per label: runs, successes, success rate, mean duration and tokens, outcome counts, winners."""
    summary = []
    for label in dict.fromkeys(r.label for r in results):
        rows = [r for r in results if r.label == label]
        durations = [r.duration_seconds for r in rows if r.finished and r.duration_seconds is not None]
        tokens = [r.total_tokens for r in rows if r.total_tokens is not None]
        ok = sum(r.succeeded for r in rows)
        summary.append({
            "label": label, "config": rows[0].config, "runs": len(rows), "succeeded": ok,
            "success_rate": ok / len(rows), "mean_duration": _mean(durations), "mean_tokens": _mean(tokens),
            "outcomes": dict(Counter(outcome(r) for r in rows)),
            "winners": dict(Counter(r.winner for r in rows if r.winner)),
        })
    return summary


def outcome(result: Result) -> str:
    """`ok` for a run that ended with a final answer, else how it ended (`no_answer`, `failed 2`)."""
    if result.succeeded:
        return "ok"
    if result.status == "stopped" and result.outcome:
        return result.outcome
    return result.status if result.exit_code is None else f"{result.status} {result.exit_code}"


def compare(results: Sequence[Result]) -> dict[str, Any]:
    """Summaries per label and the `better` one: the higher success rate, then the shorter mean duration."""
    summary = summarize_by_label(results)
    ranked = sorted(summary, key=lambda s: (-s["success_rate"], s["mean_duration"] or float("inf")))
    return {"labels": {s["label"]: s for s in summary}, "better": ranked[0]["label"] if ranked else None}


def tick_label(label: str) -> str:
    """A label cut into lines that fit under one column of the plot (a sweep's overrides one per line).

    >>> tick_label("max_new_answers_per_agent=1 agent_timeout_seconds=10")
    'max_new_answers_per_agent=1\\nagent_timeout_seconds=10'
    """
    return textwrap.fill(label, TICK_WIDTH, break_long_words=False, break_on_hyphens=False)


def plot(results: Sequence[Result], path: str | os.PathLike[str]) -> Path:
    """Write a PNG of durations and outcomes per label; ImportError when matplotlib is not installed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize_by_label(results)
    labels = [s["label"] for s in summary]
    # One above the other, so each plot has the whole width for its labels.
    fig, (durations, outcomes) = plt.subplots(2, 1, figsize=(max(6.0, 2.8 * len(labels)), 8))
    for x, label in enumerate(labels):
        points = [r.duration_seconds for r in results if r.label == label and r.duration_seconds is not None]
        durations.scatter([x] * len(points), points, alpha=0.7)
        if points:
            durations.hlines(sum(points) / len(points), x - 0.3, x + 0.3, colors="black")
    durations.set_title("duration per run (line: mean)")
    durations.set_ylabel("seconds")
    # Headroom, so the top points are not cut and the legend does not cover the bars.
    durations.set_ylim(0, 1.15 * max((r.duration_seconds or 0 for r in results), default=0) or 1)
    bottom = [0] * len(labels)
    for kind in sorted({outcome(r) for r in results}):
        counts = [s["outcomes"].get(kind, 0) for s in summary]
        outcomes.bar(range(len(labels)), counts, bottom=bottom, label=kind)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    outcomes.set_ylim(0, 1.3 * max(bottom, default=0) or 1)
    outcomes.set_title("outcomes")
    outcomes.set_ylabel("runs")
    outcomes.legend()
    for axes in (durations, outcomes):
        axes.set_xticks(range(len(labels)), [tick_label(label) for label in labels], fontsize=9)
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None
