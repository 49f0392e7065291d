"""A command-backend agent that misbehaves in one way, for the tests and the limits benchmark.

    hostile_agent.py MODE [--bytes N] [--marker M]

MODE:
  surrogate          answers (and presents) a text ending in a lone surrogate, escaped as JSON allows
  big_stdout         answers with a valid reply of about N bytes, written in chunks
  endless_stdout     writes to stdout until stopped
  endless_stderr     writes to stderr until stopped
  deep_json          replies with an array nested N levels deep
  huge_vote          votes for an agent id of N characters
  huge_reason        answers, then votes with a reason of N characters
  answer_then_crash  answers once; every later coordination turn exits 1; presents normally
  absurd_usage       answers and reports negative, huge and boolean token counts
Otherwise it answers once and then votes for the first option.
``--marker`` is unused; it only makes the process findable by the tests.
"""

from __future__ import annotations

import argparse
import json
import sys

CHUNK = 1 << 16


def write_big_reply(size: int) -> None:
    out = sys.stdout
    out.write('{"action": "new_answer", "content": "')
    left = size
    while left > 0:
        out.write("x" * min(CHUNK, left))
        left -= CHUNK
    out.write('"}')


def endless(stream: str) -> None:
    target = sys.stdout if stream == "stdout" else sys.stderr
    block = "y" * CHUNK
    while True:
        target.write(block)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("--bytes", type=int, default=3 * 2**20)
    parser.add_argument("--marker", default="")
    args = parser.parse_args()
    request = json.load(sys.stdin)
    mode = args.mode
    mine = [a for a in request["answers"] if a["anon_id"] == request["anon_id"]]
    if request["phase"] == "present":
        text = "final \ud83d" if mode == "surrogate" else f"final: {mine[0]['content'] if mine else ''}"
        json.dump({"content": text}, sys.stdout)  # ensure_ascii: the surrogate travels as \ud83d
        return
    if mode == "big_stdout":
        write_big_reply(args.bytes)
        return
    if mode in ("endless_stdout", "endless_stderr"):
        endless(mode.removeprefix("endless_"))
    if mode == "deep_json":
        sys.stdout.write("[" * args.bytes + "]" * args.bytes)
        return
    if mode == "huge_vote":
        json.dump({"action": "vote", "agent_id": "a" * args.bytes, "reason": "?"}, sys.stdout)
        return
    if mode == "answer_then_crash" and mine:
        print("gave up after answering", file=sys.stderr)
        sys.exit(1)
    if not mine and request["can_answer"]:
        reply: dict[str, object] = {"action": "new_answer", "content": "42"}
        if mode == "surrogate":
            reply["content"] = "an emoji cut in half: \ud83d"
        if mode == "absurd_usage":
            reply["usage"] = {"prompt_tokens": -15, "completion_tokens": 3 * 10**30, "total_tokens": True}
        json.dump(reply, sys.stdout)
        return
    reason = "r" * args.bytes if mode == "huge_reason" else "first option"
    json.dump({"action": "vote", "agent_id": request["vote_options"][0], "reason": reason}, sys.stdout)


if __name__ == "__main__":
    main()
