"""status.json as mgcoord writes it (DESIGN §6): the typed schema its writer validates against.

The supervisor's reader (`summary.py`) reads these keys, and MassGen's own variant of the file,
leniently; `tests/supervisor/test_automation_summary.py` writes documents with these models and
reads them back, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Part of the schema; named in `phases.py` so that the supervisor's reader needs no pydantic.
from .phases import AgentStatus as AgentStatus
from .phases import FinalPhase as FinalPhase
from .phases import Phase as Phase


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatusMeta(_Model):
    last_updated: float
    session_id: str
    log_dir: str
    question: str
    start_time: float
    elapsed_seconds: float
    instance_id: str
    exit_code: int | None = Field(default=None, description="present only in the final write")


class StatusCoordination(_Model):
    phase: Phase
    active_agent: str | None
    completion_percentage: int = Field(ge=0, le=100)
    is_final_presentation: bool


class VoteCast(_Model):
    voted_for_agent: str
    voted_for_label: str
    reason_preview: str


class AgentErrorInfo(_Model):
    type: Literal["timeout", "error"]
    message: str
    timestamp: float


class UsageInfo(_Model):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AgentInfo(_Model):
    status: AgentStatus
    answer_count: int = Field(ge=0)
    latest_answer_label: str | None
    vote_cast: VoteCast | None
    times_restarted: int = Field(ge=0)
    last_activity: float | None
    error: AgentErrorInfo | None
    usage: UsageInfo | None = None
    # The model the agent's tokens are priced by (its configured model; None for a command agent).
    model: str | None = None


class StatusResults(_Model):
    votes: dict[str, int]
    winner: str | None
    final_answer_preview: str | None
    usage: UsageInfo | None = None


class StatusDocument(_Model):
    """One version of status.json."""

    meta: StatusMeta
    coordination: StatusCoordination
    agents: dict[str, AgentInfo]
    results: StatusResults

    def to_json(self) -> str:
        data = self.model_dump(mode="json")
        if data["meta"]["exit_code"] is None:
            del data["meta"]["exit_code"]
        return escape_surrogates(json.dumps(data, indent=2, ensure_ascii=False))


def escape_surrogates(json_text: str) -> str:
    """``json_text`` (JSON written with ``ensure_ascii=False``) made fit for a UTF-8 file, losing no path byte.

    A path's bytes that are not UTF-8 reach Python as lone surrogates U+DC80..U+DCFF (``\\udce9``
    for the byte 0xE9, PEP 383). No UTF-8 file can hold them, but a JSON escape can, and a JSON
    reader gives back the same string, whose ``os.fsencode`` is the path's bytes: status.json keeps
    such a path exactly while the rest of its text stays readable UTF-8. Any other lone surrogate
    is broken text (an emoji cut in half) and becomes U+FFFD. Only a string can hold a surrogate,
    so each escape lands inside a JSON string.

    >>> escape_surrogates(json.dumps({"log_dir": "/tmp/d\\udce9/é", "cut": "\\ud83d"}, ensure_ascii=False))
    '{"log_dir": "/tmp/d\\\\udce9/é", "cut": "\ufffd"}'
    """
    try:
        json_text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(_escaped, json_text)
    return json_text


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if 0xDC80 <= code <= 0xDCFF else "\ufffd"
