"""Pure coordination state transitions."""

from __future__ import annotations

import itertools

import pytest

from coordinator.errors import AgentError
from coordinator.protocol.state import AgentSpec, CoordinationState

pytestmark = pytest.mark.timeout(10)


def _state(n: int = 3, **kwargs: int) -> CoordinationState:
    ticks = itertools.count(1000)
    specs = [AgentSpec(f"agent_{c}") for c in "abcdefg"[:n]]
    return CoordinationState(specs, question="q", clock=lambda: float(next(ticks)), **kwargs)


def test_labels_count_answers_per_agent_by_config_position() -> None:
    state = _state()
    first, restart = state.record_answer("agent_b", "one")
    second, _ = state.record_answer("agent_b", "two")
    assert (first.label, second.label) == ("agent2.1", "agent2.2")
    assert restart == ["agent_a", "agent_c"]
    assert state.vote_options() == ("agent2",)
    assert [a.content for a in state.current_answers()] == ["two"]


def test_new_answer_voids_every_vote_and_tally_counts_current_answers_only() -> None:
    state = _state()
    state.record_answer("agent_a", "x")
    state.record_vote("agent_b", "agent1", "good")
    assert state.tally() == {"agent1.1": 1}
    state.record_answer("agent_c", "y")
    assert all(a.vote is None for a in state.agents.values())
    assert state.tally() == {"agent1.1": 0, "agent3.1": 0}


def test_vote_for_unknown_or_unanswered_agent_is_an_agent_error() -> None:
    state = _state()
    state.record_answer("agent_a", "x")
    with pytest.raises(AgentError, match="agent2"):
        state.record_vote("agent_b", "agent2", "no answer yet")
    with pytest.raises(AgentError, match="agent99"):
        state.record_vote("agent_b", "agent99", "")


def test_answer_bound() -> None:
    state = _state(max_new_answers=1)
    state.record_answer("agent_a", "x")
    assert not state.can_answer("agent_a")
    assert not state.coordinate_request("agent_a").can_answer
    with pytest.raises(AgentError, match="max_new_answers_per_agent"):
        state.record_answer("agent_a", "y")


def test_winner_most_votes_then_config_order() -> None:
    state = _state()
    state.record_answer("agent_c", "c")
    state.record_answer("agent_b", "b")
    state.record_vote("agent_a", "agent3", "")
    state.record_vote("agent_b", "agent2", "")
    assert state.select_winner() == "agent_b"  # 1-1 tie: agent_b comes before agent_c
    state.record_vote("agent_c", "agent3", "")
    assert state.is_settled()
    assert state.select_winner() == "agent_c"


def test_settled_ignores_failed_agents_and_retries_are_bounded() -> None:
    state = _state(2, max_retries=1)
    state.record_answer("agent_a", "x")
    state.record_vote("agent_a", "agent1", "")
    assert not state.is_settled()
    assert state.record_failure("agent_b", "boom") is False
    assert state.agents["agent_b"].status == "streaming"
    assert state.record_failure("agent_b", "boom again") is True
    assert state.agents["agent_b"].status == "error"
    assert state.agents["agent_b"].error is not None
    assert state.is_settled()


def test_restart_counts_and_marks_restarting() -> None:
    state = _state(2)
    state.record_answer("agent_a", "x")
    state.record_vote("agent_b", "agent1", "")
    state.restart("agent_b")
    agent = state.agents["agent_b"]
    assert (agent.status, agent.times_restarted, agent.vote) == ("restarting", 1, None)


def test_phases_and_monotonic_completion() -> None:
    state = _state(2)
    seen = [state.completion_percentage()]
    state.record_answer("agent_a", "x")
    seen.append(state.completion_percentage())
    assert state.phase == "initial_answer"
    state.record_answer("agent_b", "y")
    assert state.phase == "enforcement"
    seen.append(state.completion_percentage())
    state.record_vote("agent_a", "agent1", "")
    seen.append(state.completion_percentage())
    state.record_answer("agent_b", "z")  # votes voided: the estimate falls, the percentage must not
    seen.append(state.completion_percentage())
    state.begin_presentation("agent_b")
    seen.append(state.completion_percentage())
    assert seen == sorted(seen) and max(seen) < 100
    state.end_presentation()
    state.finish("completed")
    assert state.completion_percentage() == 100
    assert {a.status for a in state.agents.values()} == {"completed"}


def test_finish_marks_agents_that_were_mid_turn() -> None:
    state = _state(2)
    state.record_answer("agent_a", "x")
    state.finish("timeout", reason="orchestrator timeout after 1s")
    assert state.agents["agent_a"].status == "answered"
    assert state.agents["agent_b"].status == "timeout"
    error = state.agents["agent_b"].error
    assert error is not None and error.kind == "timeout"
