"""The asyncio engine driven by scripted in-memory agents (no processes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from coordinator.backends.base import Usage
from coordinator.errors import AgentError, ExecutionError
from coordinator.protocol.engine import Engine, EngineEvent, Limits
from coordinator.protocol.messages import Action, CoordinateRequest, NewAnswer, PresentRequest, Vote
from coordinator.protocol.state import AgentSpec

pytestmark = pytest.mark.timeout(10)

Policy = Callable[[CoordinateRequest], Action]


@dataclass
class Scripted:
    """An in-memory agent: ``policy`` decides, ``delay`` seconds (per call) simulate work."""

    policy: Policy
    delays: Sequence[float] = (0.0,)
    final: str = "final"
    calls: int = 0
    cancelled: int = 0
    requests: list[CoordinateRequest] = field(default_factory=list)
    present_requests: list[PresentRequest] = field(default_factory=list)

    @property
    def usage(self) -> Usage | None:
        return None

    async def coordinate(self, request: CoordinateRequest) -> Action:
        delay = self.delays[min(self.calls, len(self.delays) - 1)]
        self.calls += 1
        self.requests.append(request)
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return self.policy(request)

    async def present(self, request: PresentRequest) -> str:
        self.present_requests.append(request)
        return self.final

    async def aclose(self) -> None:
        return None


def answer_then_vote(text: str, vote_for: str | None = None) -> Policy:
    def policy(request: CoordinateRequest) -> Action:
        if request.can_answer and request.anon_id not in request.vote_options:
            return NewAnswer(text)
        return Vote(vote_for or request.vote_options[0], "best")

    return policy


def fails(message: str = "boom") -> Policy:
    def policy(request: CoordinateRequest) -> Action:
        raise AgentError(message)

    return policy


def _engine(backends: dict[str, Scripted], **limits: float) -> tuple[Engine, list[EngineEvent]]:
    events: list[EngineEvent] = []
    engine = Engine(
        [AgentSpec(agent_id) for agent_id in backends],
        backends,
        question="q?",
        limits=Limits(**limits),  # type: ignore[arg-type]
        observer=events.append,
    )
    return engine, events


def test_two_agents_answer_vote_and_the_winner_presents() -> None:
    a = Scripted(answer_then_vote("A", vote_for="agent2"), delays=(0.0, 0.2, 0.0))
    b = Scripted(answer_then_vote("B", vote_for="agent2"), delays=(0.05, 0.0))
    engine, events = _engine({"a": a, "b": b})

    async def scenario() -> tuple[str, str]:
        winner = await engine.run()
        return winner, await engine.present(winner, time_limit=1)

    winner, final = asyncio.run(scenario())
    assert (winner, final) == ("b", "final")
    assert engine.state.tally() == {"agent1.1": 0, "agent2.1": 2}
    # a's (slow) vote turn was running when b answered: it was cancelled and redone.
    assert engine.state.agents["a"].times_restarted == 1
    assert a.cancelled == 1
    assert b.present_requests[0].votes == {"agent1": 0, "agent2": 2}
    kinds = [e.kind for e in events]
    assert kinds.count("new_answer") == 2 and "restart" in kinds and kinds[-1] == "final_answer"


def test_requests_show_every_current_answer_anonymised() -> None:
    a = Scripted(answer_then_vote("A"))
    b = Scripted(answer_then_vote("B"), delays=(0.05, 0.0))
    engine, _ = _engine({"a": a, "b": b})
    asyncio.run(engine.run())
    last = b.requests[-1]
    assert [(v.anon_id, v.label, v.content) for v in last.answers] == [
        ("agent1", "agent1.1", "A"),
        ("agent2", "agent2.1", "B"),
    ]
    assert last.vote_options == ("agent1", "agent2")


def test_answer_bound_forces_votes() -> None:
    def always_answer(request: CoordinateRequest) -> Action:
        return NewAnswer("again") if request.can_answer else Vote(request.vote_options[0], "")

    eager = Scripted(always_answer)
    other = Scripted(answer_then_vote("B"))
    engine, _ = _engine({"eager": eager, "other": other}, max_new_answers=2)
    assert asyncio.run(engine.run()) in ("eager", "other")
    assert engine.state.agents["eager"].answer_count == 2


def test_erroring_agent_is_retried_then_left_out() -> None:
    good = Scripted(answer_then_vote("A"))
    bad = Scripted(fails("bad reply"))
    engine, events = _engine({"good": good, "bad": bad}, max_retries=2)
    assert asyncio.run(engine.run()) == "good"
    assert engine.state.agents["bad"].status == "error"
    errors = [e for e in events if e.kind == "agent_error" and e.agent_id == "bad"]
    # Restarts reset the retry count, so at least 1 + max_retries attempts were made.
    assert errors[-1].details["given_up"] is True and bad.calls >= 3


def test_vote_for_unknown_id_is_an_agent_error() -> None:
    good = Scripted(answer_then_vote("A"))
    rogue = Scripted(lambda request: Vote("agent42", "?"), delays=(0.02,))
    engine, _ = _engine({"good": good, "rogue": rogue}, max_retries=0)
    assert asyncio.run(engine.run()) == "good"
    error = engine.state.agents["rogue"].error
    assert error is not None and "agent42" in error.message


def test_turn_timeout_marks_the_agent_timeout() -> None:
    good = Scripted(answer_then_vote("A"))
    slow = Scripted(answer_then_vote("S"), delays=(5.0,))
    engine, _ = _engine({"good": good, "slow": slow}, agent_timeout=0.2)
    assert asyncio.run(engine.run()) == "good"
    agent = engine.state.agents["slow"]
    assert agent.status == "timeout" and agent.error is not None and agent.error.kind == "timeout"


def test_all_agents_failing_is_an_execution_error() -> None:
    engine, _ = _engine({"a": Scripted(fails()), "b": Scripted(fails())}, max_retries=1)
    with pytest.raises(ExecutionError, match="all agents failed"):
        asyncio.run(engine.run())


def test_cancelling_the_run_cancels_every_turn() -> None:
    a = Scripted(answer_then_vote("A"), delays=(10.0,))
    b = Scripted(answer_then_vote("B"), delays=(10.0,))
    engine, _ = _engine({"a": a, "b": b})

    async def scenario() -> None:
        task = asyncio.create_task(engine.run())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert (a.cancelled, b.cancelled) == (1, 1)


def test_presentation_failure_is_an_execution_error() -> None:
    class BadPresenter(Scripted):
        async def present(self, request: PresentRequest) -> str:
            raise AgentError("cannot present")

    a = BadPresenter(answer_then_vote("A"))
    engine, _ = _engine({"a": a}, max_retries=1)

    async def scenario() -> None:
        winner = await engine.run()
        await engine.present(winner, time_limit=1)

    with pytest.raises(ExecutionError, match="cannot present"):
        asyncio.run(scenario())


@dataclass
class SlowToStop(Scripted):
    """An agent whose turns take a while to stop when cancelled (a process that ignores SIGTERM)."""

    stop_delay: float = 0.3
    active: int = 0
    overlaps: int = 0

    async def coordinate(self, request: CoordinateRequest) -> Action:
        self.active += 1
        if self.active > 1:
            self.overlaps += 1
        try:
            return await super().coordinate(request)
        except asyncio.CancelledError:
            await asyncio.sleep(self.stop_delay)
            raise
        finally:
            self.active -= 1


def test_a_restarted_turn_begins_only_after_the_replaced_one_stopped() -> None:
    slow = SlowToStop(answer_then_vote("late"), delays=(0.5, 0.0))
    backends = {"a": Scripted(answer_then_vote("quick"), delays=(0.05, 0.0)), "b": slow}
    engine, _ = _engine(backends)
    asyncio.run(engine.run())
    assert slow.cancelled >= 1, "b's first turn must have been restarted by a's answer"
    assert slow.overlaps == 0


def test_an_answer_given_before_every_agent_failed_is_the_result() -> None:
    # a answers "42" and then errors on every later turn; b never manages a turn.
    def answer_then_fail(request: CoordinateRequest) -> Action:
        if request.anon_id not in request.vote_options:
            return NewAnswer("42")
        raise AgentError("gave up after answering")

    a = Scripted(answer_then_fail, final="final: 42")
    engine, events = _engine({"a": a, "b": Scripted(fails(), delays=(0.05,))}, max_retries=1)

    async def scenario() -> tuple[str, str]:
        winner = await engine.run()
        return winner, await engine.present(winner, time_limit=1)

    assert asyncio.run(scenario()) == ("a", "final: 42")
    assert {agent.status for agent in engine.state.agents.values()} >= {"error"}
    selected = next(e for e in events if e.kind == "winner_selected")
    assert selected.details["after"] == "every agent failed"
    assert a.present_requests[0].answers[0].content == "42"


def test_a_failure_that_no_retry_can_fix_leaves_the_agent_out_at_once() -> None:
    def unauthorized(request: CoordinateRequest) -> Action:
        raise AgentError("HTTP 401: bad key", retry=False)

    locked_out = Scripted(unauthorized)
    engine, events = _engine({"good": Scripted(answer_then_vote("A"), delays=(0.05,)), "out": locked_out},
                             max_retries=3)
    assert asyncio.run(engine.run()) == "good"
    assert locked_out.calls == 1
    assert engine.state.agents["out"].status == "error"
    assert [e.details["given_up"] for e in events if e.kind == "agent_error"] == [True]


def test_text_from_agents_is_repaired_and_bounded() -> None:
    huge = "agent" + "9" * (3 * 2**20)

    def talker(request: CoordinateRequest) -> Action:
        if request.anon_id not in request.vote_options:
            return NewAnswer("cut \ud83d")
        return Vote(request.vote_options[0], "because " * 10**5)

    rogue = Scripted(lambda request: Vote(huge, "?"), delays=(0.05,))
    engine, events = _engine({"a": Scripted(talker), "rogue": rogue}, max_retries=0)
    assert asyncio.run(engine.run()) == "a"
    state = engine.state.agents
    assert state["a"].latest is not None and state["a"].latest.content == "cut \ufffd"
    assert state["a"].vote is not None and len(state["a"].vote.reason) == 2000
    error = state["rogue"].error
    assert error is not None and len(error.message) < 300 and f"{len(huge)} characters" in error.message
    for event in events:
        assert len(repr(event.details)) < 5000
