"""The picture of a results table: each run's duration (and cost, when runs report one) and the
outcomes per label, and for a sweep over two settings, heatmaps of success and duration over the
grid. Needs matplotlib (`mgsup[plot]`).

Colours say what happened, the same in every panel: green ok, red failed, orange ended by the
batch's timeout or stall kill, slate stopped (or not started) for a spent budget, purple killed
from outside or lost, grey not ended.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .results import Result
from .summary import CATEGORIES, category, summarize_by_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLOURS = {"ok": "#2e9e44", "failed": "#d62728", "timeout": "#f28e1c", "budget": "#4f6d8a", "killed": "#8e6bbf",
           "unfinished": "#a8a8a8"}
LEGEND = {"ok": "ok", "failed": "failed", "timeout": "timed out / stalled", "budget": "budget spent",
          "killed": "killed / lost", "unfinished": "not ended"}
# Characters per line of a label under a plot column (about 2 inches at 100 dpi, 9-point text).
TICK_WIDTH = 24
JITTER = 0.18


def plot(results: Sequence[Result], path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Write a PNG of `results`; ImportError when matplotlib is not installed.

    >>> plot(load_results("results/ab"), "results/ab/results.png", title="A/B: demo.yaml vs demo_solo.yaml")
    PosixPath('results/ab/results.png')
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [s["label"] for s in summarize_by_label(results)]
    grid = sweep_grid(results)
    width = max(7.0, 1.9 * len(labels) + 2.0)
    priced = any(r.cost_usd is not None for r in results)
    rows = 3 if priced else 2
    if grid is None:
        fig, panels = plt.subplots(rows, 1, figsize=(width, 4.25 * rows), layout="constrained")
        durations, costs = panels[0], panels[1] if priced else None
        _outcome_bars(panels[-1], results, labels)
    else:
        fig = plt.figure(figsize=(max(width, 11.0), 10.5 + (4.0 if priced else 0.0)), layout="constrained")
        shape = fig.add_gridspec(rows, 2, height_ratios=[1, 1.1, 1.1][:rows])
        _heatmaps(fig, (fig.add_subplot(shape[0, 0]), fig.add_subplot(shape[0, 1])), results, grid)
        durations = fig.add_subplot(shape[1, :])
        costs = fig.add_subplot(shape[2, :]) if priced else None
    _per_run(durations, results, labels, lambda r: r.duration_seconds, "duration of each run", "seconds")
    if costs is not None:
        spent = sum(r.spent_usd for r in results)
        _per_run(costs, results, labels, lambda r: r.cost_usd, f"cost of each run (every attempt: ${spent:,.4f})",
                 "USD")
    fig.suptitle(title or default_title(results), fontsize=13, fontweight="bold")
    target = Path(path)
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target


def default_title(results: Sequence[Result]) -> str:
    """`N runs of <config file names>`."""
    configs = list(dict.fromkeys(Path(r.config).name for r in results))
    shown = ", ".join(configs[:4]) + (f" and {len(configs) - 4} more" if len(configs) > 4 else "")
    return f"{len(results)} runs of {shown}"


def tick_label(label: str, config: str | None = None) -> str:
    """A label cut into lines that fit under one column, with the config's file name when the label
    does not already say it.

    >>> tick_label("max_new_answers_per_agent=1 agent_timeout_seconds=10")
    'max_new_answers_per_agent=1\\nagent_timeout_seconds=10'
    >>> tick_label("A", "/repo/configs/demo.yaml")
    'A\\n(demo.yaml)'
    """
    text = textwrap.fill(label, TICK_WIDTH, break_long_words=False, break_on_hyphens=False)
    if config is not None and Path(config).stem != label:
        text += f"\n({Path(config).name})"
    return text


def sweep_grid(results: Sequence[Result]) -> tuple[str, list[Any], str, list[Any]] | None:
    """(row key, its values, column key, its values) when every row sets the same two parameters."""
    keys = {tuple(r.params) for r in results}
    if len(keys) != 1 or len(first := next(iter(keys))) != 2:
        return None
    row_key, column_key = first
    return (row_key, _distinct(r.params[row_key] for r in results),
            column_key, _distinct(r.params[column_key] for r in results))


def _per_run(axes: Axes, results: Sequence[Result], labels: list[str], measure: Callable[[Result], float | None],
             title: str, unit: str) -> None:
    """One point per run (`measure` of it, coloured by its outcome) over each label, and the median of the ok runs."""
    shake = random.Random(0)
    points: dict[str, tuple[list[float], list[float]]] = {kind: ([], []) for kind in CATEGORIES}
    for x, label in enumerate(labels):
        for r in results:
            if r.label == label and (value := measure(r)) is not None:
                xs, ys = points[category(r)]
                xs.append(x + shake.uniform(-JITTER, JITTER))
                ys.append(value)
    for kind, (xs, ys) in points.items():
        if xs:
            axes.scatter(xs, ys, s=36, alpha=0.85, color=COLOURS[kind], edgecolors="white", linewidths=0.5,
                         label=LEGEND[kind], zorder=3)
    medians = [(x, statistics.median(ok)) for x, label in enumerate(labels)
               if (ok := [value for r in results
                          if r.label == label and r.succeeded and (value := measure(r)) is not None])]
    for i, (x, median) in enumerate(medians):
        # Labels starting with "_" stay out of the legend: one entry for all the lines.
        axes.hlines(median, x - 0.32, x + 0.32, colors="black", linewidths=1.5,
                    label="_median" if i else "median of ok runs", zorder=4)
    axes.set_title(title)
    axes.set_ylabel(unit)
    top = max((measure(r) or 0 for r in results), default=0)
    axes.set_ylim(0, 1.2 * top or 1)
    axes.set_xlim(-0.6, len(labels) - 0.4)
    axes.grid(axis="y", alpha=0.3)
    _label_columns(axes, results, labels)
    if any(xs for xs, _ in points.values()):
        axes.legend(loc="upper right", fontsize=8, ncols=3)


def _outcome_bars(axes: Axes, results: Sequence[Result], labels: list[str]) -> None:
    from matplotlib.ticker import MaxNLocator

    bottom = [0] * len(labels)
    for kind in CATEGORIES:
        counts = [sum(1 for r in results if r.label == label and category(r) == kind) for label in labels]
        if any(counts):
            bars = axes.bar(range(len(labels)), counts, bottom=bottom, color=COLOURS[kind], label=LEGEND[kind],
                            width=0.6)
            axes.bar_label(bars, labels=[str(c) if c else "" for c in counts], label_type="center", color="white")
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    axes.set_title("outcomes")
    axes.set_ylabel("runs")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(0, 1.3 * max(bottom, default=0) or 1)
    axes.set_xlim(-0.6, len(labels) - 0.4)
    _label_columns(axes, results, labels)
    axes.legend(loc="upper right", fontsize=8, ncols=3)


def _heatmaps(fig: Figure, panels: tuple[Axes, Axes], results: Sequence[Result],
              grid: tuple[str, list[Any], str, list[Any]]) -> None:
    row_key, row_values, column_key, column_values = grid
    rates: list[list[float]] = []
    medians: list[list[float]] = []
    notes: list[list[tuple[str, str]]] = []
    for row_value in row_values:
        rates.append([])
        medians.append([])
        notes.append([])
        for column_value in column_values:
            cell = [r for r in results if r.params[row_key] == row_value and r.params[column_key] == column_value]
            ok = [r.duration_seconds for r in cell if r.succeeded and r.duration_seconds is not None]
            ended = [r for r in cell if r.finished]
            rates[-1].append(sum(r.succeeded for r in ended) / len(ended) if ended else float("nan"))
            medians[-1].append(statistics.median(ok) if ok else float("nan"))
            notes[-1].append((f"{sum(r.succeeded for r in cell)}/{len(cell)} ok",
                              f"{statistics.median(ok):.2f} s" if ok else "no ok run"))
    success, speed = panels
    _heatmap(fig, success, rates, "RdYlGn", "success rate", (0.0, 1.0), [[n[0] for n in r] for r in notes])
    # From zero: the colours show how long runs take, not how much the slowest and fastest differ.
    slowest = max((v for line in medians for v in line if not math.isnan(v)), default=1.0)
    _heatmap(fig, speed, medians, "viridis_r", "median seconds (ok runs)", (0.0, slowest),
             [[n[1] for n in r] for r in notes])
    for axes, what in ((success, "success rate"), (speed, "median duration of ok runs")):
        axes.set_title(what)
        axes.set_xticks(range(len(column_values)), [_show(v) for v in column_values])
        axes.set_yticks(range(len(row_values)), [_show(v) for v in row_values])
        axes.set_xlabel(column_key)
        axes.set_ylabel(row_key)


def _heatmap(fig: Figure, axes: Axes, values: list[list[float]], colours: str, legend: str,
             limits: tuple[float, float], notes: list[list[str]]) -> None:
    import matplotlib

    scheme = matplotlib.colormaps[colours].with_extremes(bad="#e0e0e0")
    image = axes.imshow(values, cmap=scheme, vmin=limits[0], vmax=limits[1], aspect="auto")
    fig.colorbar(image, ax=axes, label=legend, shrink=0.85)
    for y, row in enumerate(notes):
        for x, note in enumerate(row):
            axes.text(x, y, note, ha="center", va="center", fontsize=10,
                      bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.75, "linewidth": 0})


def _label_columns(axes: Axes, results: Sequence[Result], labels: list[str]) -> None:
    keys = {tuple(r.params) for r in results}
    if len(keys) == 1 and (swept := next(iter(keys))):
        # A sweep: the values under each column, the keys once below the axis.
        first = {label: next(r for r in results if r.label == label) for label in labels}
        ticks = [" / ".join(_show(first[label].params[key]) for key in swept) + f"\n({Path(first[label].config).name})"
                 for label in labels]
        axes.set_xlabel(" / ".join(key.rsplit(".", 1)[-1] for key in swept))
    else:
        configs = {label: {r.config for r in results if r.label == label} for label in labels}
        ticks = [tick_label(label, next(iter(configs[label])) if len(configs[label]) == 1 else None)
                 for label in labels]
    axes.set_xticks(range(len(labels)), ticks, fontsize=9)


def _distinct(values: Any) -> list[Any]:
    found: list[Any] = []
    for value in values:
        if value not in found:
            found.append(value)
    try:
        return sorted(found)
    except TypeError:
        return found


def _show(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)
