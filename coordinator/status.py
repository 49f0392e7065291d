"""status.json: how it is built from the coordination state, and its writer.

The schema is the automation contract's (`supervisor.automation.schema`), which the supervisor
reads back. The writer replaces the file atomically on every state change and on a heartbeat while
the run lasts; :meth:`StatusWriter.finalize` makes the last write (phase final, 100 %,
``meta.exit_code``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from supervisor.automation.schema import (
    AgentErrorInfo,
    AgentInfo,
    FinalPhase,
    StatusCoordination,
    StatusDocument,
    StatusMeta,
    StatusResults,
    UsageInfo,
    VoteCast,
)
from supervisor.layout import atomic_write_text

from .backends.base import Usage
from .protocol.state import CoordinationState

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
PREVIEW_CHARS = 200
REASON_PREVIEW_CHARS = 100


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """First ``limit`` characters with newlines as spaces, ``...`` appended when cut."""
    flat = " ".join(text.splitlines())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _usage_info(usage: Usage | None) -> UsageInfo | None:
    if usage is None:
        return None
    return UsageInfo(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def build_status(
    state: CoordinationState,
    *,
    session_id: str,
    log_dir: Path,
    instance_id: str,
    start_time: float,
    now: float,
    usage: Mapping[str, Usage | None],
    completion_percentage: int,
    final_answer: str | None = None,
    exit_code: int | None = None,
    models: Mapping[str, str] | None = None,
) -> StatusDocument:
    """Describe ``state`` as a status document (pure); ``models`` names each agent's model, for pricing."""
    agents = {}
    total = Usage()
    reported = False
    for agent_id, agent in state.agents.items():
        vote = agent.vote
        agent_usage = usage.get(agent_id)
        if agent_usage is not None:
            reported = True
            total.add(agent_usage.prompt_tokens, agent_usage.completion_tokens, agent_usage.total_tokens)
        agents[agent_id] = AgentInfo(
            status=agent.status,
            answer_count=agent.answer_count,
            latest_answer_label=agent.latest.label if agent.latest else None,
            vote_cast=(
                VoteCast(
                    voted_for_agent=vote.target,
                    voted_for_label=vote.target_label,
                    reason_preview=preview(vote.reason, REASON_PREVIEW_CHARS),
                )
                if vote
                else None
            ),
            times_restarted=agent.times_restarted,
            last_activity=agent.last_activity,
            error=(
                AgentErrorInfo(type=agent.error.kind, message=agent.error.message, timestamp=agent.error.timestamp)
                if agent.error
                else None
            ),
            usage=_usage_info(agent_usage),
            model=(models or {}).get(agent_id),
        )
    return StatusDocument(
        meta=StatusMeta(
            last_updated=now,
            session_id=session_id,
            log_dir=str(log_dir),
            question=state.question,
            start_time=start_time,
            elapsed_seconds=round(now - start_time, 3),
            instance_id=instance_id,
            exit_code=exit_code,
        ),
        coordination=StatusCoordination(
            phase=state.phase,
            active_agent=state.active_agent,
            completion_percentage=completion_percentage,
            is_final_presentation=state.phase == "presentation",
        ),
        agents=agents,
        results=StatusResults(
            votes=state.tally(),
            winner=state.winner,
            final_answer_preview=preview(final_answer) if final_answer is not None else None,
            usage=_usage_info(total) if reported else None,
        ),
    )


class StatusWriter:
    """Writes status.json for one run: on demand, on a heartbeat, and once finally."""

    def __init__(
        self,
        path: Path,
        state: CoordinationState,
        *,
        session_id: str,
        instance_id: str,
        start_time: float,
        usage: Callable[[], Mapping[str, Usage | None]],
        models: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.path = path
        self._state = state
        self._session_id = session_id
        self._instance_id = instance_id
        self._start_time = start_time
        self._usage = usage
        self._models = models
        self._clock = clock
        self._heartbeat = heartbeat
        self._final = False
        self._task: asyncio.Task[None] | None = None

    def write(self) -> None:
        """Write the current state (ignored after the final write)."""
        if not self._final:
            self._write(None, None)

    def finalize(self, phase: FinalPhase, exit_code: int, *, final_answer: str | None, reason: str = "") -> None:
        """The last write: final phase, 100 %, the final answer preview and ``meta.exit_code``."""
        if self._final:
            return
        self._state.finish(phase, reason=reason)
        self._write(final_answer, exit_code)
        self._final = True

    def start_heartbeat(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat(), name="status-heartbeat")

    async def stop_heartbeat(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            # A refresh that fails (disk full for a moment) must neither stop the next ones nor
            # resurface when the run stops the heartbeat on its way out.
            try:
                self.write()
            except Exception:
                log.exception("heartbeat write of %s failed", self.path)

    def _write(self, final_answer: str | None, exit_code: int | None) -> None:
        document = build_status(
            self._state,
            session_id=self._session_id,
            log_dir=self.path.parent,
            instance_id=self._instance_id,
            start_time=self._start_time,
            now=self._clock(),
            usage=self._usage(),
            completion_percentage=self._state.completion_percentage(),
            final_answer=final_answer,
            exit_code=exit_code,
            models=self._models,
        )
        atomic_write_text(self.path, document.to_json())

