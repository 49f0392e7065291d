"""Batch experiment folders (the `--out` folders of scripts/batch.py, ab_test.py, sweep.py) as the dashboard shows them.

A folder is known when it was named on the command line (`mgsup dashboard --experiments DIR`) or
when a shell of the home runs in it and it holds a results table: the batch scripts start their
runs in the results folder unless told otherwise. Each folder gets a short key for its URL, so a
page can only ever read the folders found here. The table and its summaries come from
`supervisor.experiments`; the plot is that library's own, drawn again when the table changes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..experiments import compare, load_results, outcome, plot
from ..experiments.results import RESULTS_JSON


class PlotUnavailable(Exception):
    """The plot cannot be drawn here (matplotlib is missing, or the table has no rows yet)."""


class ExperimentFolders:
    """The experiment folders the dashboard knows, by key."""

    def __init__(self, named: Iterable[str | os.PathLike[str]] = ()) -> None:
        self.folders: dict[str, Path] = {}
        self._checked: set[str] = set()
        self._plots: dict[str, tuple[int, bytes]] = {}
        self._plot_lock = threading.Lock()
        for folder in named:
            self._add(Path(folder).expanduser().resolve())

    def discover(self, cwds: Iterable[str]) -> bool:
        """Add the folders among `cwds` that hold a results table; whether any was new."""
        added = False
        for cwd in set(cwds) - self._checked:
            self._checked.add(cwd)
            if os.path.isfile(os.path.join(cwd, RESULTS_JSON)):
                added = self._add(Path(cwd)) or added
        return added

    def _add(self, folder: Path) -> bool:
        key = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
        if key in self.folders:
            return False
        self.folders[key] = folder
        return True

    def touched(self, changed: set[str]) -> list[str]:
        """The keys of the folders among `changed` (folder paths)."""
        return [key for key, folder in self.folders.items() if str(folder) in changed]

    def listing(self) -> list[dict[str, Any]]:
        """Every folder with its counts, newest table first."""
        found: list[dict[str, Any]] = []
        updated: dict[str, float] = {}
        for key, folder in self.folders.items():
            table = folder / RESULTS_JSON
            try:
                rows = load_results(folder)
                mtime = table.stat().st_mtime
                problem = None
            except (OSError, ValueError) as exc:
                rows, mtime, problem = [], 0.0, str(exc)
            updated[key] = mtime
            found.append({"key": key, "folder": str(folder), "name": folder.name, "updated": mtime or None,
                          "runs": len(rows), "finished": sum(r.finished for r in rows),
                          "succeeded": sum(r.succeeded for r in rows), "error": problem})
        found.sort(key=lambda f: -updated[f["key"]])
        return found

    def report(self, key: str) -> dict[str, Any]:
        """The results table of folder `key`, its summary per label and the comparison; KeyError when unknown."""
        folder = self.folders[key]
        try:
            rows = load_results(folder)
            version = _version(folder)
        except (OSError, ValueError) as exc:
            return {"key": key, "folder": str(folder), "name": folder.name, "rows": [], "labels": [],
                    "better": None, "verdict": None, "version": 0, "error": str(exc)}
        comparison = compare(rows)
        return {
            "key": key, "folder": str(folder), "name": folder.name, "version": version, "error": None,
            "rows": [{**r.model_dump(mode="json"), "outcome": outcome(r), "finished": r.finished,
                      "succeeded": r.succeeded} for r in rows],
            "labels": list(comparison["labels"].values()),
            "better": comparison["better"],
            # The A/B verdict means something only for two configurations.
            "verdict": comparison["verdict"] if len(comparison["labels"]) == 2 else None,
        }

    def plot_png(self, key: str) -> bytes:
        """The plot of folder `key` as PNG, drawn by `supervisor.experiments` (cached until the table changes)."""
        folder = self.folders[key]
        with self._plot_lock:
            version = _version(folder)
            cached = self._plots.get(key)
            if cached is not None and cached[0] == version:
                return cached[1]
            rows = load_results(folder)
            if not rows:
                raise PlotUnavailable("the results table has no rows yet")
            with tempfile.TemporaryDirectory(prefix="mgsup-dashboard-") as scratch:
                try:
                    data = plot(rows, Path(scratch) / "plot.png").read_bytes()
                except ImportError:
                    raise PlotUnavailable("plots need matplotlib: pip install 'mgsup[plot]'") from None
            self._plots[key] = (version, data)
            return data


def _version(folder: Path) -> int:
    """Changes whenever the results table is replaced (the table is written by rename)."""
    try:
        return (folder / RESULTS_JSON).stat().st_mtime_ns
    except FileNotFoundError:
        return 0
