#!/usr/bin/env python3
"""A coordination runner that prints and writes what the real MassGen does, including a restart.

    restarting_runner.py --automation --config CONFIG QUESTION

It announces `STATUS: <log>/turn_1/attempt_1/status.json`, then restarts into `attempt_2/` (the
printed STATUS still names attempt 1), ends with MassGen's `finish_reason: completed`, its token
counts and cost, prints a relative `ANSWER_FILE` that names no file (as MassGen's may not) and the
absolute `ANSWER` of the answer it wrote, and a preview whose second line looks like an answer
line. Stdlib only: it runs on a cluster node as well.
"""

from __future__ import annotations

import json
import os
import sys
import time

ANSWER_TEXT = "The answer is 391."


def _write_status(path: str, document: dict[str, object]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(document, f)
    os.replace(path + ".tmp", path)


def _status(phase: str, agents: dict[str, str], **extra: object) -> dict[str, object]:
    return {"meta": {"last_updated": time.time()}, "coordination": {"phase": phase, "completion_percentage": 50},
            "agents": {agent: {"status": state, "error": None} for agent, state in agents.items()},
            "results": {"votes": {}, "winner": None, "final_answer_preview": None}, **extra}


def main() -> int:
    question = sys.argv[-1]
    log = os.path.abspath(os.path.join(".massgen", "massgen_logs", "log_1"))
    first = os.path.join(log, "turn_1", "attempt_1", "status.json")
    second = os.path.join(log, "turn_1", "attempt_2", "status.json")
    print(f"LOG_DIR: {log}\nSTATUS: {first}\nQUESTION: {question}", flush=True)
    print("[Coordination in progress - monitor status.json for real-time updates]", flush=True)
    _write_status(first, _status("initial_answer", {"agent_a": "streaming", "agent_b": "streaming"}))
    time.sleep(1.0)
    answer = os.path.join(log, "turn_1", "final", "agent_a", "answer.txt")
    os.makedirs(os.path.dirname(answer))
    with open(answer, "w") as f:
        f.write(ANSWER_TEXT + "\n")
    _write_status(second, {
        **_status("presentation", {"agent_a": "voted", "agent_b": "voted"}, finish_reason="completed",
                  is_complete=True, costs={"total_input_tokens": 600, "total_output_tokens": 150,
                                           "total_estimated_cost": 0.0012}),
        "results": {"votes": {"agent1.1": 2}, "winner": "agent_a", "final_answer_preview": ANSWER_TEXT},
    })
    time.sleep(1.0)  # at least one relay period: the restart's status is seen while the run goes on
    relative = os.path.join(".massgen", "massgen_logs", "log_1", "turn_1", "attempt_2", "final", "agent_a",
                            "answer.txt")
    print(f"\nWINNER: agent_a\nANSWER_FILE: {relative}\nDURATION: 2.0s\n"
          f"ANSWER_PREVIEW: {ANSWER_TEXT}\nANSWER: 391 (a preview line, not a path)\n\n"
          f"COMPLETED: 2 agents, 2.0s total\nANSWER: {answer}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
