"""Demo agent "reviewer": works slowly alone, but builds on another agent's answer as soon as one exists.

It verifies the other answer by an independent method, answers with the verified result, votes for
the answer that carries a check, and, when it wins, writes a final answer crediting both.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coordinator.agents.arith import check_by_parts, evaluate, find_expression, show
else:
    # Run as a plain script by any python3: the helper sits beside this file.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from arith import check_by_parts, evaluate, find_expression, show


def _verified(question: str, other: dict[str, str] | None) -> str:
    expr = find_expression(question)
    if expr is None:
        return f"Reviewed the question; no arithmetic to verify: {question}"
    value = show(evaluate(expr))
    parts = check_by_parts(expr)
    check = f"Check (by parts): {parts}." if parts else f"Check (exact fractions): {expr} = {value}."
    if other is None:
        return f"{expr} = {value}.\n{check}"
    verdict = "confirms" if value in other["content"] else "corrects"
    return f"{expr} = {value}.\n{check}\nThis {verdict} {other['anon_id']}'s answer ({other['label']})."


def main() -> None:
    request = json.load(sys.stdin)
    answers = request["answers"]
    mine = next((a for a in answers if a["anon_id"] == request["anon_id"]), None)
    others = [a for a in answers if a["anon_id"] != request["anon_id"]]
    if request["phase"] == "present":
        lines = [mine["content"] if mine else _verified(request["question"], None), "", "Built from:"]
        for answer in answers:
            content = answer["content"].splitlines()
            contribution = next((line for line in content if line.startswith("Check")), content[0])
            lines.append(f"- {answer['anon_id']} ({answer['label']}): {contribution}")
        votes = request["vote_results"]["votes"]
        lines.append("Votes: " + ", ".join(f"{anon} {count}" for anon, count in votes.items()))
        reply = {"content": "\n".join(lines)}
    elif mine is None and request["can_answer"]:
        if not others:
            # Thinking alone takes a while; an answer from another agent restarts this turn.
            time.sleep(2.0)
        else:
            time.sleep(0.2)
        content = _verified(request["question"], others[0] if others else None)
        Path(request["workspace"], "review.txt").write_text(content + "\n")
        reply = {"action": "new_answer", "content": content}
    else:
        checked = [a for a in answers if "Check" in a["content"]]
        choice = checked[0] if checked else answers[0]
        reply = {
            "action": "vote",
            "agent_id": choice["anon_id"],
            "reason": "the answer with an independent check",
        }
    json.dump(reply, sys.stdout)


if __name__ == "__main__":
    main()
