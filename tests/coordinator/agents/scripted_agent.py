"""A command-backend agent with scripted behaviour, for the coordinator's integration tests.

    scripted_agent.py MODE [--text T] [--delay S] [--marker M]

MODE: answer (answer once, then vote for the first option), answer_then_sleep, crash, garbage,
sleep, unknown_vote, spawn_and_sleep (leaves a detached grandchild), present_crash.
``--marker`` is unused; it only makes the process findable by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("--text", default="scripted answer")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--marker", default="")
    args = parser.parse_args()
    request = json.load(sys.stdin)
    time.sleep(args.delay)
    mine = [a for a in request.get("answers", []) if a["anon_id"] == request["anon_id"]]
    mode = args.mode
    if mode == "crash":
        print("scripted crash", file=sys.stderr)
        sys.exit(3)
    if mode == "garbage":
        print("this is not json {")
        return
    if mode == "sleep" or (mode == "answer_then_sleep" and mine and request["phase"] == "coordinate"):
        time.sleep(3600)
    if mode == "spawn_and_sleep":
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(3600)", "--marker", args.marker],
            start_new_session=True,
        )
        time.sleep(3600)
    if mode == "unknown_vote":
        reply = {"action": "vote", "agent_id": "agent99", "reason": "no such agent"}
    elif request["phase"] == "present":
        if mode == "present_crash":
            sys.exit(5)
        reply = {"content": f"final: {mine[0]['content'] if mine else args.text}"}
    elif not mine and request["can_answer"]:
        reply = {"action": "new_answer", "content": args.text, "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    else:
        reply = {"action": "vote", "agent_id": request["vote_options"][0], "reason": f"first option ({os.getpid()})"}
    json.dump(reply, sys.stdout)


if __name__ == "__main__":
    main()
