"""The run's log directory (DESIGN §6): metadata, snapshots, agent outputs and the final answer."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from supervisor.automation.schema import escape_surrogates
from supervisor.layout import atomic_write_text


def timestamp_name(moment: float) -> str:
    """``YYYYMMDD_HHMMSS_ffffff`` in local time."""
    return datetime.fromtimestamp(moment).strftime("%Y%m%d_%H%M%S_%f")


class LogDir:
    """Creates and fills one run's log directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mappings: dict[str, dict[str, Any]] = {}
        (path / "agent_outputs").mkdir(parents=True, exist_ok=True)

    @classmethod
    def create(cls, run_cwd: Path, explicit: Path | None, clock: Callable[[], float]) -> LogDir:
        """``explicit`` (``--log-dir``), else a new ``<run_cwd>/.massgen/massgen_logs/log_<timestamp>``."""
        if explicit is not None:
            path = explicit.resolve()
            path.mkdir(parents=True, exist_ok=True)
            return cls(path)
        parent = run_cwd.resolve() / ".massgen" / "massgen_logs"
        parent.mkdir(parents=True, exist_ok=True)
        while True:
            # Parallel runs in one directory may share a microsecond; mkdir decides who owns a name.
            path = parent / f"log_{timestamp_name(clock())}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return cls(path)

    @property
    def session_id(self) -> str:
        return self.path.name

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def events_path(self) -> Path:
        return self.path / "coordination_events.json"

    @property
    def log_file(self) -> Path:
        return self.path / "massgen.log"

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        text = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)
        atomic_write_text(self.path / "execution_metadata.yaml", text, durable=False)

    def transcript(self, agent_id: str) -> Callable[[str], None]:
        """A writer appending to ``agent_outputs/<agent_id>.txt``."""
        path = self.path / "agent_outputs" / f"{agent_id}.txt"
        path.touch()

        def write(text: str) -> None:
            # A path's bytes that are not UTF-8 (lone surrogates) are written as escapes, never refused.
            with path.open("a", encoding="utf-8", errors="backslashreplace") as handle:
                handle.write(text if text.endswith("\n") else text + "\n")

        return write

    def snapshot(
        self,
        *,
        kind: str,
        label: str,
        agent_id: str,
        moment: float,
        files: dict[str, str],
        workspace: Path | None,
    ) -> Path:
        """Write ``<agent_id>/<timestamp>/`` with ``files`` and a copy of the workspace; map it by label."""
        base = self.path / agent_id
        base.mkdir(exist_ok=True)
        name = timestamp_name(moment)
        folder = base / name
        suffix = 1
        while folder.exists():
            suffix += 1
            folder = base / f"{name}_{suffix}"
        self._fill(folder, files, workspace)
        self._map(label, kind, agent_id, moment, folder)
        return folder

    def write_final(self, *, agent_id: str, moment: float, answer: str, context: str, workspace: Path | None) -> Path:
        """Write ``final/<agent_id>/`` and return the path of ``answer.txt``."""
        folder = self.path / "final" / agent_id
        self._fill(folder, {"answer.txt": answer, "context.txt": context}, workspace)
        self._map("final", "final_answer", agent_id, moment, folder)
        return folder / "answer.txt"

    def _fill(self, folder: Path, files: dict[str, str], workspace: Path | None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            # Readers learn of these files (status.json, snapshot_mappings.json) while they are written.
            atomic_write_text(folder / name, text)
        target = folder / "workspace"
        if workspace is not None and workspace.is_dir():
            shutil.copytree(workspace, target, symlinks=True, dirs_exist_ok=True)
        else:
            target.mkdir(exist_ok=True)

    def _map(self, label: str, kind: str, agent_id: str, moment: float, folder: Path) -> None:
        self._mappings[label] = {
            "type": kind,
            "label": label,
            "agent_id": agent_id,
            "timestamp": moment,
            "path": str(folder),
        }
        atomic_write_text(
            self.path / "snapshot_mappings.json",
            escape_surrogates(json.dumps(self._mappings, indent=2, ensure_ascii=False)),
            durable=False,
        )
