"""The phases of a coordination run and the states of its agents, as the automation contract names them.

Apart from `schema.py` (pydantic models for mgcoord, which writes the file) so that the supervisor's
reader (`summary.py`) needs no pydantic: `mgsup list` and `status` read every shell's summary.
"""

from __future__ import annotations

from typing import Literal

AgentStatus = Literal["streaming", "answered", "voted", "restarting", "error", "timeout", "completed"]
Phase = Literal["initial_answer", "enforcement", "presentation", "completed", "timeout", "error", "interrupted"]
FinalPhase = Literal["completed", "timeout", "error", "interrupted"]
FINAL_PHASES: tuple[FinalPhase, ...] = ("completed", "timeout", "error", "interrupted")
PRESENTATION: Phase = "presentation"
