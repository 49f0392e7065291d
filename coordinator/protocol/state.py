"""Coordination state and its pure transitions (no I/O, no asyncio).

The engine calls these methods as turns finish; status.json is built from this state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from supervisor.automation.schema import AgentStatus, FinalPhase, Phase

from ..errors import AgentError
from ..limits import quote
from .messages import AnswerView, CoordinateRequest, PresentRequest


@dataclass(frozen=True)
class Answer:
    agent_id: str
    label: str
    content: str
    timestamp: float


@dataclass(frozen=True)
class VoteRecord:
    voter: str
    target: str
    target_label: str
    reason: str
    timestamp: float


@dataclass(frozen=True)
class TurnError:
    kind: Literal["timeout", "error"]
    message: str
    timestamp: float


@dataclass
class AgentState:
    """Everything status.json says about one agent."""

    agent_id: str
    anon_id: str
    system_message: str | None
    workspace: str
    status: AgentStatus = "streaming"
    answer_count: int = 0
    latest: Answer | None = None
    vote: VoteRecord | None = None
    votes_cast: int = 0
    times_restarted: int = 0
    last_activity: float | None = None
    error: TurnError | None = None
    failures_in_turn: int = 0
    acted: bool = False

    @property
    def failed(self) -> bool:
        return self.status in ("error", "timeout")


@dataclass(frozen=True)
class AgentSpec:
    """What the engine needs to know about an agent, in config order."""

    agent_id: str
    system_message: str | None = None
    workspace: str = "."


class CoordinationState:
    """Answers, votes and agent statuses of one coordination run.

    Example::

        state = CoordinationState([AgentSpec("a"), AgentSpec("b")], question="2+2?")
        state.record_answer("a", "4")       # returns the agents whose turns must restart: ["b"]
        state.record_vote("a", "agent1", "mine")
        state.record_vote("b", "agent1", "right")
        assert state.is_settled() and state.select_winner() == "a"
    """

    def __init__(
        self,
        agents: Sequence[AgentSpec],
        *,
        question: str,
        max_new_answers: int = 3,
        max_retries: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.question = question
        self.max_new_answers = max_new_answers
        self.max_retries = max_retries
        self._clock = clock
        self.agents: dict[str, AgentState] = {
            spec.agent_id: AgentState(spec.agent_id, f"agent{i}", spec.system_message, spec.workspace)
            for i, spec in enumerate(agents, start=1)
        }
        self.phase: Phase = "initial_answer"
        self.active_agent: str | None = None
        self.winner: str | None = None
        self._progress = 0

    # Queries ------------------------------------------------------------------------------------

    def agent_of(self, anon_id: str) -> str | None:
        return next((a.agent_id for a in self.agents.values() if a.anon_id == anon_id), None)

    def active_ids(self) -> list[str]:
        """Agents still taking part (not failed), in config order."""
        return [a.agent_id for a in self.agents.values() if not a.failed]

    def current_answers(self) -> list[Answer]:
        return [a.latest for a in self.agents.values() if a.latest is not None]

    def can_answer(self, agent_id: str) -> bool:
        return self.agents[agent_id].answer_count < self.max_new_answers

    def vote_options(self) -> tuple[str, ...]:
        return tuple(self.agents[answer.agent_id].anon_id for answer in self.current_answers())

    def answer_views(self) -> tuple[AnswerView, ...]:
        return tuple(AnswerView(self.agents[a.agent_id].anon_id, a.label, a.content) for a in self.current_answers())

    def tally(self) -> dict[str, int]:
        """Votes per current answer label; every current answer appears, with 0 when unvoted."""
        counts = {answer.label: 0 for answer in self.current_answers()}
        for agent in self.agents.values():
            if agent.vote is not None and agent.vote.target_label in counts:
                counts[agent.vote.target_label] += 1
        return counts

    def votes_by_agent(self) -> dict[str, int]:
        """Votes per agent id whose current answer they are for."""
        by_label = self.tally()
        return {a.agent_id: by_label[a.label] for a in self.current_answers()}

    def is_settled(self) -> bool:
        """Voting is over: every agent still taking part has a vote on the current answers."""
        active = [self.agents[agent_id] for agent_id in self.active_ids()]
        return bool(active) and all(agent.vote is not None for agent in active)

    def select_winner(self) -> str | None:
        """The agent whose current answer has the most votes; a tie goes to the earliest in config order."""
        best: str | None = None
        best_votes = -1
        for agent_id, votes in self.votes_by_agent().items():
            if votes > best_votes:
                best, best_votes = agent_id, votes
        return best

    def coordinate_request(self, agent_id: str) -> CoordinateRequest:
        return CoordinateRequest(
            **self._shown_to(agent_id),
            vote_options=self.vote_options(),
            can_answer=self.can_answer(agent_id),
        )

    def present_request(self, agent_id: str) -> PresentRequest:
        votes = {self.agents[a].anon_id: n for a, n in self.votes_by_agent().items()}
        return PresentRequest(**self._shown_to(agent_id), votes=votes, winner=self.agents[agent_id].anon_id)

    def _shown_to(self, agent_id: str) -> dict[str, Any]:
        agent = self.agents[agent_id]
        return {
            "agent_id": agent_id,
            "anon_id": agent.anon_id,
            "question": self.question,
            "system_message": agent.system_message,
            "workspace": agent.workspace,
            "answers": self.answer_views(),
        }

    def completion_percentage(self) -> int:
        """Progress estimate that never decreases and stays below 100 until :meth:`finish`."""
        if self.phase in ("completed", "timeout", "error", "interrupted"):
            return 100
        active = self.active_ids() or list(self.agents)
        if self.phase == "initial_answer":
            done = sum(1 for a in active if self.agents[a].acted)
            estimate = 5 + 45 * done // len(active)
        elif self.phase == "enforcement":
            done = sum(1 for a in active if self.agents[a].vote is not None)
            estimate = 50 + 40 * done // len(active)
        else:
            estimate = 95
        self._progress = max(self._progress, min(estimate, 99))
        return self._progress

    # Transitions --------------------------------------------------------------------------------

    def begin_turn(self, agent_id: str) -> None:
        agent = self.agents[agent_id]
        agent.status = "streaming"
        self._touch(agent)

    def record_answer(self, agent_id: str, content: str) -> tuple[Answer, list[str]]:
        """Store a new answer; void every vote. Returns the answer and the agents to restart."""
        agent = self.agents[agent_id]
        if not self.can_answer(agent_id):
            raise AgentError(
                f"new_answer refused: {agent_id} already gave {agent.answer_count} answers "
                f"(max_new_answers_per_agent); it may only vote"
            )
        agent.answer_count += 1
        answer = Answer(agent_id, f"{agent.anon_id}.{agent.answer_count}", content, self._clock())
        agent.latest = answer
        agent.status = "answered"
        agent.failures_in_turn = 0
        agent.acted = True
        self._touch(agent)
        for other in self.agents.values():
            other.vote = None
        self._update_phase()
        return answer, [a for a in self.active_ids() if a != agent_id]

    def restart(self, agent_id: str) -> None:
        """A new answer arrived: this agent's turn (or vote) is redone on the new answers."""
        agent = self.agents[agent_id]
        agent.times_restarted += 1
        agent.status = "restarting"
        agent.vote = None
        agent.failures_in_turn = 0
        self._touch(agent)

    def record_vote(self, agent_id: str, target_anon: str, reason: str) -> VoteRecord:
        """Store a vote for the current answer of ``target_anon``; an unknown target is an agent error."""
        options = self.vote_options()
        target = self.agent_of(target_anon)
        if target_anon not in options or target is None:
            raise AgentError(f"vote for unknown agent {quote(target_anon)}; options: {', '.join(options) or '(none)'}")
        target_answer = self.agents[target].latest
        assert target_answer is not None
        agent = self.agents[agent_id]
        agent.votes_cast += 1
        vote = VoteRecord(agent_id, target, target_answer.label, reason, self._clock())
        agent.vote = vote
        agent.status = "voted"
        agent.failures_in_turn = 0
        agent.acted = True
        self._touch(agent)
        self._update_phase()
        return vote

    def record_failure(self, agent_id: str, message: str, *, final: bool = False) -> bool:
        """A turn errored. Returns True when the agent is now left out (retries used up, or ``final``)."""
        agent = self.agents[agent_id]
        agent.failures_in_turn += 1
        agent.error = TurnError("error", message, self._clock())
        self._touch(agent)
        if final or agent.failures_in_turn > self.max_retries:
            agent.status = "error"
            self._update_phase()
            return True
        return False

    def record_timeout(self, agent_id: str, message: str) -> None:
        """A turn ran past ``agent_timeout_seconds``: the agent is left out."""
        agent = self.agents[agent_id]
        agent.status = "timeout"
        agent.error = TurnError("timeout", message, self._clock())
        self._touch(agent)
        self._update_phase()

    def begin_presentation(self, winner: str) -> None:
        self.winner = winner
        self.phase = "presentation"
        agent = self.agents[winner]
        if not agent.failed:
            agent.status = "streaming"
        self._touch(agent)

    def end_presentation(self) -> None:
        """The winner delivered the final answer."""
        if self.winner is not None:
            agent = self.agents[self.winner]
            agent.status = "completed"
            self._touch(agent)

    def finish(self, phase: FinalPhase, *, reason: str = "") -> None:
        """Enter a final phase; agents still mid-turn are marked so the last write tells the truth."""
        now = self._clock()
        for agent in self.agents.values():
            if phase == "completed" and not agent.failed:
                agent.status = "completed"
            elif agent.status in ("streaming", "restarting"):
                kind: Literal["timeout", "error"] = "timeout" if phase == "timeout" else "error"
                agent.status = kind
                agent.error = TurnError(kind, reason or f"turn stopped: run {phase}", now)
        self.phase = phase

    def _touch(self, agent: AgentState) -> None:
        agent.last_activity = self._clock()
        self.active_agent = agent.agent_id

    def _update_phase(self) -> None:
        if self.phase == "initial_answer":
            active = self.active_ids()
            if active and all(self.agents[a].acted for a in active):
                self.phase = "enforcement"
