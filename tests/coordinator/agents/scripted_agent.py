"""A command-backend agent with scripted behaviour, for the coordinator's integration tests.

    scripted_agent.py MODE [--text T] [--delay S] [--marker M]

MODE: answer (answer once, then vote for the first option), answer_then_sleep, crash, garbage,
sleep, unknown_vote, spawn_and_sleep (leaves a detached grandchild), present_crash,
respawner (like answer, but its first turn leaves a detached child that, told to stop, starts a new
detached process and exits).
``--marker`` is unused; it only makes the process findable by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

RESPAWNER = """
import signal, subprocess, sys, time
def respawn(signum, frame):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", "--marker", sys.argv[2]],
                     start_new_session=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, respawn)
open(sys.argv[1], "w").close()
time.sleep(3600)
"""


def leave_respawner(marker: str) -> None:
    """Start the respawning child and return once its SIGTERM handler is in place."""
    ready = f"{marker}/respawner.ready"
    if os.path.exists(ready):
        return
    subprocess.Popen([sys.executable, "-c", RESPAWNER, ready, marker], start_new_session=True)
    deadline = time.monotonic() + 10
    while not os.path.exists(ready) and time.monotonic() < deadline:
        time.sleep(0.01)


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
    if mode == "respawner":
        leave_respawner(args.marker)
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
