"""Demo agent "solver": answers at once by computing, then double-checks the others and votes.

Reads one request (JSON) on stdin and prints one reply (JSON) on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coordinator.agents.arith import evaluate, find_expression, show
else:
    # Run as a plain script by any python3: the helper sits beside this file.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from arith import evaluate, find_expression, show


def main() -> None:
    request = json.load(sys.stdin)
    question = request["question"]
    expr = find_expression(question)
    value = show(evaluate(expr)) if expr else None
    answers = request["answers"]
    if request["phase"] == "present":
        body = answers[-1]["content"] if answers else ""
        reply = {"content": f"{expr} = {value}\n\n{body}" if value else body}
    elif request["can_answer"] and not any(a["anon_id"] == request["anon_id"] for a in answers):
        time.sleep(0.2)
        content = f"{expr} = {value}." if value else f"No arithmetic expression found in: {question}"
        Path(request["workspace"], "work.txt").write_text(content + "\n")
        reply = {"action": "new_answer", "content": content}
    else:
        # Deliberately slow "double check": a new answer arriving meanwhile restarts this turn.
        time.sleep(0.8)
        checked = [a for a in answers if value and value in a["content"] and "Check" in a["content"]]
        choice = checked[0] if checked else next(a for a in answers if a["anon_id"] == request["anon_id"])
        reason = (
            f"agrees with my result {value} and adds an independent check"
            if checked
            else "my direct computation; no other answer adds a check"
        )
        reply = {"action": "vote", "agent_id": choice["anon_id"], "reason": reason}
    json.dump(reply, sys.stdout)


if __name__ == "__main__":
    main()
