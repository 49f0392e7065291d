"""Scripts for mgcoord's `command` backend that answer at once, for tests of batches.

Each call of the script is one turn: it reads the turn's request on stdin and prints a reply (an
answer first, then a vote for the first option, the final text when presenting) with the token
usage given. With a path as its argument, it holds while that file exists: before every turn
(`HOLD_EVERY_TURN`), or only once it has answered (`HOLD_AFTER_ANSWER`: the first answer is given,
the rest of the run waits).
"""

from __future__ import annotations

HOLD_EVERY_TURN = "every turn"
HOLD_AFTER_ANSWER = "after its answer"

_WAIT = """while len(sys.argv) > 1 and os.path.exists(sys.argv[1]):
    time.sleep(0.05)
"""


def agent_script(*, prompt_tokens: int, completion_tokens: int, hold: str = HOLD_EVERY_TURN) -> str:
    """The source of the agent's script."""
    wait_first = _WAIT if hold == HOLD_EVERY_TURN else ""
    wait_after = ""
    if hold == HOLD_AFTER_ANSWER:
        indented = "".join(f"    {line}\n" for line in _WAIT.splitlines())
        wait_after = f'if answered or req["phase"] == "present":\n{indented}'
    return f"""import json, os, sys, time
{wait_first}req = json.load(sys.stdin)
answered = any(a["anon_id"] == req["anon_id"] for a in req["answers"])
{wait_after}if req["phase"] == "present":
    reply = {{"content": "final: 4"}}
elif req["can_answer"] and not answered:
    reply = {{"action": "new_answer", "content": "4"}}
else:
    reply = {{"action": "vote", "agent_id": req["vote_options"][0], "reason": "fine"}}
reply["usage"] = {{"prompt_tokens": {prompt_tokens}, "completion_tokens": {completion_tokens}}}
print(json.dumps(reply))
"""
