"""The asyncio coordination engine: runs agent turns concurrently and applies their results.

The engine owns no files and no processes; backends do the talking and an observer hears about
every change (the run writes status.json, events and snapshots from it). Tests drive it with
scripted in-memory backends.

Example::

    engine = Engine(specs, backends, question="What is 17 * 23?", limits=Limits(agent_timeout=5))
    winner = await engine.run()                  # ExecutionError when every agent failed
    final_answer = await engine.present(winner, time_limit=5)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import Backend
from ..errors import AgentError, ExecutionError
from ..limits import MAX_REASON_CHARS, clean_text, clip
from .messages import Action, CoordinateRequest, NewAnswer, PresentRequest, Vote
from .state import AgentSpec, CoordinationState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Bounds that guarantee coordination ends."""

    agent_timeout: float = 180.0
    max_new_answers: int = 3
    max_retries: int = 2


@dataclass(frozen=True)
class EngineEvent:
    """Something happened; ``kind`` is the event type written to coordination_events.json."""

    kind: str
    agent_id: str | None
    details: dict[str, Any] = field(default_factory=dict)
    request: CoordinateRequest | PresentRequest | None = None


Observer = Callable[[EngineEvent], None]


class _TurnTimeout(Exception):
    pass


TurnOutcome = Action | AgentError | _TurnTimeout


def _ignore(event: EngineEvent) -> None:
    return None


class Engine:
    """Runs the coordination protocol of DESIGN §6 over a set of backends."""

    def __init__(
        self,
        agents: Sequence[AgentSpec],
        backends: Mapping[str, Backend],
        *,
        question: str,
        limits: Limits = Limits(),
        observer: Observer = _ignore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = CoordinationState(
            agents,
            question=question,
            max_new_answers=limits.max_new_answers,
            max_retries=limits.max_retries,
            clock=clock,
        )
        self._backends = backends
        self._limits = limits
        self._emit = observer
        self._turns: dict[str, asyncio.Task[None]] = {}
        self._requests: dict[str, CoordinateRequest] = {}
        self._generation: dict[str, int] = dict.fromkeys(self.state.agents, 0)
        self._finished: asyncio.Queue[tuple[str, int, TurnOutcome]] = asyncio.Queue()
        self._stopping: set[asyncio.Task[None]] = set()
        # The last cancelled turn of each agent, until its backend has finished stopping it.
        self._replaced: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> str:
        """Coordinate until every agent still taking part has voted; return the winner's agent id.

        When every agent has failed, the best answer given before is still the result (its author
        is asked to present it); only a run without any answer raises ExecutionError.
        Cancelling this coroutine cancels every turn (backends stop their processes).
        """
        try:
            for agent_id in self.state.agents:
                self._start_turn(agent_id)
            while True:
                if not self.state.active_ids():
                    return self._best_after_failures()
                if self.state.is_settled():
                    winner = self.state.select_winner()
                    assert winner is not None
                    self._emit(EngineEvent("winner_selected", winner, {"votes": self.state.tally()}))
                    return winner
                agent_id, generation, outcome = await self._finished.get()
                if generation != self._generation[agent_id]:
                    continue  # the turn was restarted after it finished; its result is void
                self._turns.pop(agent_id, None)
                self._apply(agent_id, outcome)
        finally:
            await self._stop_all_turns()

    async def present(self, winner: str, *, time_limit: float) -> str:
        """Ask the winner for the final answer, retrying an erroring presentation a few times."""
        self.state.begin_presentation(winner)
        request = self.state.present_request(winner)
        self._emit(EngineEvent("presentation_started", winner, {"votes": dict(request.votes)}, request))
        last_error = "no attempt"
        for attempt in range(1, self._limits.max_retries + 2):
            try:
                async with asyncio.timeout(time_limit):
                    content = await self._backends[winner].present(request)
            except TimeoutError:
                last_error = f"presentation timed out after {time_limit:g}s"
                break
            except AgentError as exc:
                last_error = clip(str(exc))
            except Exception as exc:
                log.exception("backend of %s failed unexpectedly", winner)
                last_error = clip(f"{type(exc).__name__}: {exc}")
            else:
                content = clean_text(content)
                if content.strip():
                    self.state.end_presentation()
                    self._emit(EngineEvent("final_answer", winner, {"content": content}, request))
                    return content
                last_error = "empty final answer"
            self._emit(EngineEvent("presentation_failed", winner, {"attempt": attempt, "error": last_error}))
        raise ExecutionError(f"final presentation by {winner} failed: {last_error}")

    # Turns --------------------------------------------------------------------------------------

    def _start_turn(self, agent_id: str) -> None:
        self._generation[agent_id] += 1
        self.state.begin_turn(agent_id)
        request = self.state.coordinate_request(agent_id)
        self._requests[agent_id] = request
        generation = self._generation[agent_id]
        self._turns[agent_id] = asyncio.create_task(
            self._turn(agent_id, generation, request), name=f"turn-{agent_id}-{generation}"
        )
        self._emit(
            EngineEvent(
                "turn_started",
                agent_id,
                {"answers": [a.label for a in request.answers], "can_answer": request.can_answer},
                request,
            )
        )

    async def _turn(self, agent_id: str, generation: int, request: CoordinateRequest) -> None:
        replaced = self._replaced.pop(agent_id, None)
        if replaced is not None:
            # The replaced turn's process may still be dying (an agent that ignores SIGTERM): the new
            # turn must not run beside it in the same workspace.
            await asyncio.wait([replaced])
        outcome: TurnOutcome
        try:
            async with asyncio.timeout(self._limits.agent_timeout):
                outcome = await self._backends[agent_id].coordinate(request)
        except TimeoutError:
            outcome = _TurnTimeout(f"agent timeout after {self._limits.agent_timeout:g}s")
        except AgentError as exc:
            outcome = exc
        except Exception as exc:
            log.exception("backend of %s failed unexpectedly", agent_id)
            outcome = AgentError(f"{type(exc).__name__}: {exc}")
        self._finished.put_nowait((agent_id, generation, outcome))

    def _cancel_turn(self, agent_id: str) -> None:
        self._generation[agent_id] += 1
        task = self._turns.pop(agent_id, None)
        if task is not None and not task.done():
            task.cancel()
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
            self._replaced[agent_id] = task

    async def _stop_all_turns(self) -> None:
        for agent_id in list(self._turns):
            self._cancel_turn(agent_id)
        if self._stopping:
            # Shielded so that a second cancellation cannot leave a backend half-way through its cleanup.
            await asyncio.shield(asyncio.gather(*self._stopping, return_exceptions=True))

    # Results ------------------------------------------------------------------------------------

    def _apply(self, agent_id: str, outcome: TurnOutcome) -> None:
        request = self._requests[agent_id]
        try:
            if isinstance(outcome, NewAnswer):
                self._apply_answer(agent_id, outcome, request)
            elif isinstance(outcome, Vote):
                reason = clip(clean_text(outcome.reason), MAX_REASON_CHARS)
                vote = self.state.record_vote(agent_id, outcome.agent_id, reason)
                self._emit(
                    EngineEvent(
                        "vote",
                        agent_id,
                        {
                            "voted_for": vote.target,
                            "voted_for_anon": outcome.agent_id,
                            "voted_for_label": vote.target_label,
                            "reason": vote.reason,
                            "vote_number": self.state.agents[agent_id].votes_cast,
                        },
                        request,
                    )
                )
            elif isinstance(outcome, _TurnTimeout):
                self.state.record_timeout(agent_id, str(outcome))
                self._emit(EngineEvent("agent_timeout", agent_id, {"message": str(outcome)}))
            else:
                raise outcome
        except AgentError as exc:
            self._apply_failure(agent_id, str(exc), retry=exc.retry)

    def _apply_answer(self, agent_id: str, answer: NewAnswer, request: CoordinateRequest) -> None:
        content = clean_text(answer.content)
        if not content.strip():
            raise AgentError("new_answer with empty content")
        recorded, to_restart = self.state.record_answer(agent_id, content)
        self._emit(
            EngineEvent(
                "new_answer",
                agent_id,
                {"label": recorded.label, "content": recorded.content},
                request,
            )
        )
        for other in to_restart:
            self._cancel_turn(other)
            self.state.restart(other)
            self._emit(EngineEvent("restart", other, {"reason": f"new answer {recorded.label}"}))
        for other in to_restart:
            self._start_turn(other)
        self._start_turn(agent_id)

    def _apply_failure(self, agent_id: str, message: str, *, retry: bool = True) -> None:
        # Messages carry what agents sent (a vote target, a server's error body): bounded here,
        # where they enter status.json, the events, the log and the run's ERROR line.
        message = clip(clean_text(message))
        given_up = self.state.record_failure(agent_id, message, final=not retry)
        failures = self.state.agents[agent_id].failures_in_turn
        self._emit(
            EngineEvent(
                "agent_error",
                agent_id,
                {"message": message, "attempt": failures, "given_up": given_up},
            )
        )
        if not given_up:
            self._start_turn(agent_id)

    def _best_after_failures(self) -> str:
        winner = self.state.select_winner()
        if winner is None:
            agents = self.state.agents.values()
            reasons = [f"{a.agent_id}: {a.error.message}" if a.error else a.agent_id for a in agents]
            raise ExecutionError(clip("all agents failed (" + "; ".join(reasons) + ")"))
        log.warning("every agent failed; presenting the best answer given before (%s)", winner)
        self._emit(
            EngineEvent("winner_selected", winner, {"votes": self.state.tally(), "after": "every agent failed"})
        )
        return winner
