"""What an agent is shown in a turn, and what it may reply."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AnswerView:
    """A current answer as other agents see it: anonymised by config position."""

    anon_id: str
    label: str
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"anon_id": self.anon_id, "label": self.label, "content": self.content}


@dataclass(frozen=True)
class _Turn:
    """What every turn shows the agent: the question, its own identity and the current answers."""

    agent_id: str
    anon_id: str
    question: str
    system_message: str | None
    workspace: str
    answers: tuple[AnswerView, ...]

    def _wire(self, phase: str) -> dict[str, Any]:
        return {
            "protocol": 1,
            "phase": phase,
            "agent_id": self.agent_id,
            "anon_id": self.anon_id,
            "question": self.question,
            "system_message": self.system_message,
            "workspace": self.workspace,
            "answers": [answer.as_dict() for answer in self.answers],
        }


@dataclass(frozen=True)
class CoordinateRequest(_Turn):
    """One coordination turn: answer anew or vote for one of ``vote_options``."""

    vote_options: tuple[str, ...]
    can_answer: bool

    def as_dict(self) -> dict[str, Any]:
        """The command-backend wire format (DESIGN §6)."""
        return {**self._wire("coordinate"), "vote_options": list(self.vote_options), "can_answer": self.can_answer}


@dataclass(frozen=True)
class PresentRequest(_Turn):
    """The winner's final turn: every answer and the vote results; the reply is the final answer."""

    votes: Mapping[str, int] = field(default_factory=dict)
    winner: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**self._wire("present"), "vote_results": {"votes": dict(self.votes), "winner": self.winner}}


@dataclass(frozen=True)
class NewAnswer:
    """Reply: a new answer to the question."""

    content: str


@dataclass(frozen=True)
class Vote:
    """Reply: a vote for the current answer of ``agent_id`` (an anonymous id such as ``agent2``)."""

    agent_id: str
    reason: str = ""


Action = NewAnswer | Vote
Request = CoordinateRequest | PresentRequest


def render_context(request: Request) -> str:
    """A plain-text rendering of what the agent was shown (``context.txt``, model prompts)."""
    lines = [f"Question: {request.question}", ""]
    if request.answers:
        lines.append("Current answers:")
        for answer in request.answers:
            lines += [f"<{answer.label}> ({answer.anon_id})", answer.content, f"</{answer.label}>", ""]
    else:
        lines += ["No answers yet.", ""]
    if isinstance(request, CoordinateRequest):
        lines.append(f"Vote options: {', '.join(request.vote_options) or '(none)'}")
        lines.append(f"May give a new answer: {'yes' if request.can_answer else 'no'}")
    else:
        votes = ", ".join(f"{anon}: {count}" for anon, count in request.votes.items()) or "(none)"
        lines.append(f"Votes: {votes}")
        lines.append(f"Winner: {request.winner}")
    return "\n".join(lines) + "\n"
