"""The dashboard's live picture of a home: every shell's status, kept current by file watching.

One `Hub` per server. It reads every status once at start, then re-reads only the shells whose
files changed: the home's `shells/` folder is watched recursively (state, spec and logs), and the
folder of each running coordination run's status.json beside it. A slow tick re-reads the shells
that are still queued or running, so a monitor that died or a run that stalled is noticed although
no file changes, and picks up shells that appeared while a watcher restarted.

Subscribers (the server-sent event streams) wait on `changed()` and compare sequence numbers to
learn what is new for them: the list, one shell's status, or one shell's output.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
from watchfiles import awatch

from .. import lifecycle
from ..core import Supervisor
from ..errors import ShellNotFound, SupervisorError
from ..layout import is_shell_id
from .experiments import ExperimentFolders

StatusDict = dict[str, Any]
LIVENESS_SECONDS = 1.0
# watchfiles groups the events of a burst: it yields STEP_MS after the last one, at the latest
# DEBOUNCE_MS after the first, so a job that prints without pause still shows every 0.1 s.
STEP_MS = 10
DEBOUNCE_MS = 100
# Enough to see which agent was stuck when, without growing without bound on a long run.
TIMELINE_LIMIT = 500
LOGS = {"stdout.log", "stderr.log"}
# Keys that change on every read of a running shell without anything having happened.
_VOLATILE = ("duration_seconds",)


class Hub:
    """The statuses of one home, with sequence numbers that say what changed when."""

    def __init__(self, sup: Supervisor, *, experiment_dirs: Iterable[str | os.PathLike[str]] = (),
                 clock: Callable[[], float] = time.time) -> None:
        self.sup = sup
        self.clock = clock
        self.shells: dict[str, StatusDict] = {}
        self.timelines: dict[str, list[dict[str, Any]]] = {}
        self.experiments = ExperimentFolders(experiment_dirs)
        self.seq = 0
        self.list_seq = 0
        self.status_seq: dict[str, int] = {}
        self.output_seq: dict[str, int] = {}
        self.experiment_seq: dict[str, int] = {}
        self.ready = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._refreshing = asyncio.Lock()
        self._run_dirs: frozenset[str] = frozenset()
        self._run_dirs_changed = asyncio.Event()
        # Set by `stop`: the watchers' threads look at it every STEP_MS and return.
        self._stopping = anyio.Event()

    # -- what subscribers use ----------------------------------------------------------------------

    async def changed(self, seen: int, timeout: float | None = None) -> int:
        """The current sequence number, once it is past `seen` (or `timeout` seconds have passed)."""
        while self.seq <= seen:
            event = self._wakeup
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                break
        return self.seq

    def status(self, shell_id: str) -> StatusDict | None:
        return self.shells.get(shell_id)

    # -- running -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Load every status, then keep them current until cancelled."""
        await self.refresh(await anyio.to_thread.run_sync(self._ids))
        self.ready.set()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._watch_home)
            tasks.start_soon(self._watch_runs)
            tasks.start_soon(self._tick)

    def stop(self) -> None:
        """Let the watchers' threads end, so that cancelling `run` does not wait for them."""
        self._stopping.set()
        self._run_dirs_changed.set()

    async def refresh(self, shell_ids: Iterable[str]) -> None:
        """Read the status of `shell_ids` again and tell subscribers about what changed."""
        wanted = sorted(set(shell_ids))
        if not wanted:
            return
        async with self._refreshing:
            read = await anyio.to_thread.run_sync(self._read, wanted)
            self._apply(read)

    def _ids(self) -> list[str]:
        try:
            return list(self.sup.store.ids())
        except SupervisorError:
            return list(self.shells)  # unreadable for now: nothing came or went as far as we can tell

    def _read(self, shell_ids: list[str]) -> dict[str, StatusDict | None]:
        found: dict[str, StatusDict | None] = {}
        for shell_id in shell_ids:
            try:
                found[shell_id] = self.sup.get_shell_status(shell_id)
            except ShellNotFound:
                found[shell_id] = None
            except SupervisorError:
                continue  # the home cannot be read just now: keep what was known, look again later
        return found

    def _apply(self, read: dict[str, StatusDict | None]) -> None:
        changed = False
        for shell_id, status in read.items():
            old = self.shells.get(shell_id)
            if status is None:
                if old is None:
                    continue
                del self.shells[shell_id]
                self.timelines.pop(shell_id, None)
                self.output_seq.pop(shell_id, None)
            elif old is not None and not _differs(old, status):
                self.shells[shell_id] = status
                continue
            else:
                self.shells[shell_id] = status
                self._record_agents(shell_id, status)
            changed = True
            self.status_seq[shell_id] = self.seq + 1
        if changed:
            self.list_seq = self.seq + 1
            self.experiments.discover(s["cwd"] for s in self.shells.values())
            self._notify()
            self._update_run_dirs()

    def _record_agents(self, shell_id: str, status: StatusDict) -> None:
        """Append the agents' statuses to the shell's timeline when they differ from the last entry."""
        summary = status.get("coordination") or {}
        agents = summary.get("agents")
        if not isinstance(agents, dict) or not agents:
            return
        timeline = self.timelines.setdefault(shell_id, [])
        phase = summary.get("phase")
        if timeline and timeline[-1]["agents"] == agents and timeline[-1]["phase"] == phase:
            return
        when = summary.get("last_updated")
        timeline.append({"time": when if isinstance(when, int | float) else self.clock(), "phase": phase,
                         "agents": dict(agents)})
        del timeline[:-TIMELINE_LIMIT]

    def _notify(self) -> None:
        self.seq += 1
        event, self._wakeup = self._wakeup, asyncio.Event()
        event.set()

    # -- watching ----------------------------------------------------------------------------------

    async def _watch_home(self) -> None:
        shells = Path(self.sup.layout.shells)
        while not self._stopping.is_set():
            if not shells.is_dir():
                await asyncio.sleep(LIVENESS_SECONDS)
                continue
            try:
                # Shells that came or went while no watcher was in place are found here.
                await self.refresh(set(await anyio.to_thread.run_sync(self._ids)) | set(self.shells))
                async for changes in awatch(shells, watch_filter=None, step=STEP_MS, debounce=DEBOUNCE_MS,
                                            recursive=True, stop_event=self._stopping,
                                            ignore_permission_denied=True):
                    await self._on_home_changes(shells, [Path(path) for _, path in changes])
            except OSError:
                pass  # the home was removed or replaced: wait for it and watch it again
            await asyncio.sleep(LIVENESS_SECONDS)

    async def _on_home_changes(self, shells: Path, paths: list[Path]) -> None:
        dirty: set[str] = set()
        output: set[str] = set()
        for path in paths:
            try:
                parts = path.relative_to(shells).parts
            except ValueError:
                continue
            if not parts or not is_shell_id(parts[0]):
                continue
            shell_id = parts[0]
            name = parts[1] if len(parts) > 1 else ""
            if name in LOGS:
                output.add(shell_id)
                # Until a run has announced its status file, its output may be announcing it now.
                known = self.shells.get(shell_id)
                if known is None or (known["status"] == "running" and not known.get("status_file")):
                    dirty.add(shell_id)
            elif not name.startswith("."):
                dirty.add(shell_id)
        if output:
            for shell_id in output:
                self.output_seq[shell_id] = self.seq + 1
            self._notify()
        await self.refresh(dirty)

    async def _watch_runs(self) -> None:
        """Watch the folders of running runs' status.json and of the experiment folders (not recursively)."""
        while not self._stopping.is_set():
            self._run_dirs_changed.clear()
            folders = sorted(d for d in self._run_dirs if os.path.isdir(d))
            if not folders:
                await self._run_dirs_changed.wait()
                continue
            stop = anyio.Event()
            try:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(self._stop_on_change, stop)
                    async for changes in awatch(*folders, watch_filter=None, step=STEP_MS, debounce=DEBOUNCE_MS,
                                                recursive=False, stop_event=stop, ignore_permission_denied=True):
                        await self._on_run_changes({os.path.dirname(path) for _, path in changes})
                    tasks.cancel_scope.cancel()
            except OSError:
                await asyncio.sleep(LIVENESS_SECONDS)
            # Whatever changed while the watcher was being replaced is read now.
            await self._on_run_changes(set(folders))

    async def _stop_on_change(self, stop: anyio.Event) -> None:
        await self._run_dirs_changed.wait()
        stop.set()

    async def _on_run_changes(self, folders: set[str]) -> None:
        shell_ids = [sid for sid, s in self.shells.items() if _run_dir(s) in folders]
        touched = self.experiments.touched(folders)
        if touched:
            for key in touched:
                self.experiment_seq[key] = self.seq + 1
            self._notify()
        await self.refresh(shell_ids)

    def _update_run_dirs(self) -> None:
        wanted = frozenset({d for s in self.shells.values() if not lifecycle.is_ended(s) and (d := _run_dir(s))}
                           | {str(f) for f in self.experiments.folders.values()})
        if wanted != self._run_dirs:
            self._run_dirs = wanted
            self._run_dirs_changed.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(LIVENESS_SECONDS)
            on_disk = set(await anyio.to_thread.run_sync(self._ids))
            active = {sid for sid, s in self.shells.items() if not lifecycle.is_ended(s)}
            await self.refresh(active | (on_disk ^ set(self.shells)))
            if self.experiments.discover(s["cwd"] for s in self.shells.values()):
                self._update_run_dirs()
                self.list_seq = self.seq + 1
                self._notify()


def _run_dir(status: StatusDict) -> str | None:
    status_file = status.get("status_file")
    return os.path.dirname(status_file) if status_file else None


def _differs(old: StatusDict, new: StatusDict) -> bool:
    return any(old.get(k) != new.get(k) for k in old.keys() | new.keys() if k not in _VOLATILE)
