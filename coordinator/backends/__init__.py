"""Agent backends: ``command`` (any program) and ``openai`` (OpenAI-compatible endpoints)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..config import AgentConfig, CommandBackendConfig
from .base import Backend, Transcript, Usage

__all__ = ["Backend", "Transcript", "Usage", "build_backend"]


def build_backend(
    agent: AgentConfig,
    *,
    workspace: Path,
    transcript: Transcript,
    timeout: float,
    environ: Mapping[str, str],
) -> Backend:
    """Build the backend an agent's config names; the openai client and the supervisor are imported only when used."""
    backend = agent.backend
    if isinstance(backend, CommandBackendConfig):
        from .command import CommandBackend

        return CommandBackend(
            backend.command,
            cwd=workspace,
            env=backend.env,
            environ=environ,
            transcript=transcript,
            max_output_bytes=backend.max_output_bytes,
        )
    from .openai import OpenAIBackend

    toolkit = None
    if backend.supervisor_tools:
        from .supervisor_tools import agent_policy, supervisor_toolkit

        policy = None
        if backend.supervisor_policy is not None:
            policy = agent_policy(backend.supervisor_policy, agent_id=agent.id, workspace=workspace)
        toolkit = supervisor_toolkit(backend.supervisor_tools, workspace=workspace, policy=policy)
    return OpenAIBackend.from_config(
        backend,
        system_message=agent.system_message,
        transcript=transcript,
        timeout=timeout,
        environ=environ,
        toolkit=toolkit,
    )
