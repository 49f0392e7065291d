"""Per-run workspace isolation (DESIGN §6).

Every per-run folder named in a config becomes
``<run cwd>/.massgen/workspaces/<value>_<instance id>`` so that N copies of one config can run at
once without touching each other's files.
"""

from __future__ import annotations

import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from .config import CoordinationConfig

INSTANCE_ID_PATTERN = re.compile(r"^[0-9a-f]{8}$")


def new_instance_id() -> str:
    """Eight random lowercase hex characters."""
    return secrets.token_hex(4)


def isolated(value: str, run_cwd: Path, instance_id: str) -> Path:
    """The isolated location of a per-run folder named ``value`` in the config."""
    return run_cwd / ".massgen" / "workspaces" / f"{value}_{instance_id}"


@dataclass(frozen=True)
class RunPaths:
    """Where each agent works, and where snapshots and temporary workspaces go, for one run."""

    instance_id: str
    run_cwd: Path
    agent_workspaces: dict[str, Path]
    own_workspace: frozenset[str]
    snapshot_storage: Path | None
    temporary_workspace: Path | None

    @classmethod
    def plan(cls, config: CoordinationConfig, run_cwd: Path, instance_id: str) -> RunPaths:
        run_cwd = run_cwd.resolve()
        workspaces = {}
        owned = set()
        for agent in config.agents:
            if agent.backend.cwd is None:
                workspaces[agent.id] = run_cwd
            else:
                workspaces[agent.id] = isolated(agent.backend.cwd, run_cwd, instance_id)
                owned.add(agent.id)
        orch = config.orchestrator
        return cls(
            instance_id=instance_id,
            run_cwd=run_cwd,
            agent_workspaces=workspaces,
            own_workspace=frozenset(owned),
            snapshot_storage=isolated(orch.snapshot_storage, run_cwd, instance_id) if orch.snapshot_storage else None,
            temporary_workspace=(
                isolated(orch.agent_temporary_workspace, run_cwd, instance_id)
                if orch.agent_temporary_workspace
                else None
            ),
        )

    def create(self) -> None:
        """Create every isolated folder of the run."""
        for agent_id in self.own_workspace:
            self.agent_workspaces[agent_id].mkdir(parents=True, exist_ok=True)
        for folder in (self.snapshot_storage, self.temporary_workspace):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)

    def save_snapshot(self, agent_id: str) -> None:
        """Keep a copy of an agent's workspace as it was when it answered, for the others to read."""
        if self.snapshot_storage is None or agent_id not in self.own_workspace:
            return
        target = self.snapshot_storage / agent_id
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(self.agent_workspaces[agent_id], target, symlinks=True)

    def prepare_temporary(self, agent_id: str, others: dict[str, str]) -> Path | None:
        """Fill ``<temporary>/<agent_id>/<anon id>/`` with the latest snapshots of the other agents.

        ``others`` maps agent ids to the anonymous ids the agent knows them by.
        """
        if self.temporary_workspace is None:
            return None
        target = self.temporary_workspace / agent_id
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        if self.snapshot_storage is not None:
            for other_id, anon_id in others.items():
                source = self.snapshot_storage / other_id
                if source.is_dir():
                    shutil.copytree(source, target / anon_id, symlinks=True)
        return target
