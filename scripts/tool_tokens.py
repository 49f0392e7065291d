"""What the agent tools cost a model in tokens: a typical session over MCP, before and after a change.

    python scripts/tool_tokens.py                     # this checkout only
    python scripts/tool_tokens.py --before 8f19058    # side by side with the tools of an earlier commit
    python scripts/tool_tokens.py --before 8f19058 --write   # also replace the table in docs/tools.md

The session is what an agent typically does with a background job: `start_shell`, five
`get_shell_status` polls, one `get_shell_output`, `kill_shell`; then one `list_shells` in a home
that holds 200 ended shells. Each server is the real `python -m supervisor mcp` spoken to over
stdio with the SDK's client, and what is measured is the text a model reads back (the tool
result's text content). Arguments are the ones both versions accept, so the calls are the same.

Tokens: counted with tiktoken's `o200k_base` when tiktoken is installed and its encoding loads;
otherwise estimated as characters / 4, OpenAI's rule of thumb for English text (JSON's punctuation
makes real counts somewhat higher, whitespace runs somewhat lower: read the ratio more than the
digits). The output says which was used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from mcp import Client  # noqa: E402 - after making the checkout importable
from mcp.client.stdio import StdioServerParameters  # noqa: E402

from supervisor import Supervisor  # noqa: E402

DOC = REPO / "docs" / "tools.md"
BEGIN, END = "<!-- tool-tokens:begin -->", "<!-- tool-tokens:end -->"
ENDED_SHELLS = 200
POLLS = 5
# A job as agents start them: it prints a few dozen progress lines, then keeps running.
JOB = ("import time\nfor epoch in range(1, 31):\n    print(f'epoch {epoch}/30 loss {1 / epoch:.4f} acc "
       "{1 - 1 / (epoch + 1):.3f}', flush=True)\ntime.sleep(600)\n")
JOB_LINES = 30


def token_counter() -> tuple[Callable[[str], int], str]:
    """The token counter to use, and how to describe it."""
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("o200k_base")
        return (lambda text: len(encoding.encode(text))), "tiktoken o200k_base"
    except Exception:  # not installed, or its encoding cannot be downloaded here
        return (lambda text: (len(text) + 3) // 4), "estimate: characters / 4"


def export(rev: str, into: Path) -> Path:
    """The `supervisor` package as it was at `rev`, unpacked under `into` (to put on PYTHONPATH)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "supervisor"], capture_output=True, check=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def session(source: Path | None, home: Path, cwd: Path, ended: int) -> list[tuple[str, str]]:
    """Run the session against the server from `source` (None: this checkout); (call, text read) pairs."""
    env = {"MGSUP_HOME": str(home), "PATH": os.environ.get("PATH", ""), "TMPDIR": tempfile.gettempdir()}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    params = StdioServerParameters(command=sys.executable, args=["-m", "supervisor", "mcp"], cwd=str(cwd), env=env)
    seen: list[tuple[str, str]] = []
    async with Client(params) as client:
        tools = await client.list_tools()
        # What a host puts in front of the model: name, description and input schema of each tool.
        seen.append(("tool definitions (name, description, input schema)",
                     "".join(json.dumps({"name": t.name, "description": t.description, "parameters": t.input_schema},
                                        separators=(",", ":")) for t in tools.tools)))

        async def call(label: str, name: str, arguments: dict[str, Any]) -> str:
            result = await client.call_tool(name, arguments)
            assert not result.is_error, text_of(result)
            seen.append((label, text_of(result)))
            return text_of(result)

        started = await call("start_shell", "start_shell", {"command": [sys.executable, "-c", JOB], "name": "train"})
        shell_id = re.search(r"shell_[0-9a-f]{8}", started).group(0)  # type: ignore[union-attr]
        _until_printed(Supervisor(home), shell_id)
        for n in range(1, POLLS + 1):
            await call(f"get_shell_status ({n} of {POLLS})", "get_shell_status", {"shell_id": shell_id})
            await asyncio.sleep(0.2)
        await call("get_shell_output", "get_shell_output", {"shell_id": shell_id})
        await call("kill_shell", "kill_shell", {"shell_id": shell_id, "grace": 1})
        _add_ended(Supervisor(home), ended)
        await call(f"list_shells ({ended + 1} shells on record)", "list_shells", {})
    return seen


def _until_printed(sup: Supervisor, shell_id: str) -> None:
    deadline = time.monotonic() + 30
    while sup.get_shell_output(shell_id)["stdout"].count("\n") < JOB_LINES:
        if time.monotonic() > deadline:
            raise SystemExit(f"the job {shell_id} did not print its {JOB_LINES} lines within 30 s")
        time.sleep(0.05)


def _add_ended(sup: Supervisor, count: int) -> None:
    ids = [sup.start_shell(["true"], name=f"job{n}") for n in range(count)]
    for shell_id in ids:
        sup.wait_shell(shell_id, timeout=60)


def measure(source: Path | None, ended: int) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="mgsup-tokens-") as tmp:
        home, cwd = Path(tmp) / "home", Path(tmp)
        sup = Supervisor(home, max_concurrent=20)
        try:
            return asyncio.run(session(source, home, cwd, ended))
        finally:
            for shell in sup.list_shells():
                if shell["status"] in ("queued", "running"):
                    sup.kill_shell(shell["shell_id"], grace=1)


def table(before: list[tuple[str, str]] | None, after: list[tuple[str, str]], count: Callable[[str], int],
          method: str, compared: str | None) -> str:
    headers = ["call", "characters", "tokens"]
    if before is not None:
        headers = ["call", "characters before", "characters after", "tokens before", "tokens after", "after / before"]
    about = f"Tokens counted with: {method}." + (f" Before: the tools at {compared}." if compared else "")
    lines = [about, "", "| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
    session_totals = [0, 0, 0, 0]
    for index, (label, text) in enumerate(after):
        old = before[index][1] if before is not None else None
        in_session = index > 0 and not label.startswith("list_shells")
        cells = [label]
        if old is None:
            cells += [f"{len(text):,}", f"{count(text):,}"]
        else:
            cells += [f"{len(old):,}", f"{len(text):,}", f"{count(old):,}", f"{count(text):,}",
                      f"{count(text) / max(count(old), 1):.2f}"]
        if in_session:
            session_totals = [a + b for a, b in zip(session_totals, [len(old or ""), len(text), count(old or ""),
                                                                     count(text)], strict=True)]
        lines.append("| " + " | ".join(cells) + " |")
        if label == "kill_shell":
            total = ["**the session (start, 5 polls, output, kill)**"]
            if before is None:
                total += [f"**{session_totals[1]:,}**", f"**{session_totals[3]:,}**"]
            else:
                total += [f"**{v:,}**" for v in session_totals] + [
                    f"**{session_totals[3] / max(session_totals[2], 1):.2f}**"]
            lines.append("| " + " | ".join(total) + " |")
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOC.write_text(f"{doc[:start]}\n{text}\n{doc[end:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", metavar="REV", help="also measure the tools as they were at this git revision")
    parser.add_argument("--write", action="store_true", help=f"replace the table in {DOC.relative_to(REPO)}")
    parser.add_argument("--ended", type=int, default=ENDED_SHELLS, metavar="N",
                        help=f"ended shells on record for the list_shells call (default {ENDED_SHELLS})")
    args = parser.parse_args()
    count, method = token_counter()
    before, compared = None, None
    if args.before:
        compared = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.before], capture_output=True,
                                  text=True, check=True).stdout.strip()
        with tempfile.TemporaryDirectory(prefix="mgsup-before-") as old:
            before = measure(export(args.before, Path(old)), args.ended)
    after = measure(None, args.ended)
    text = table(before, after, count, method, compared)
    print(text)
    if args.write:
        write_doc(text)
        print(f"\nwritten to {DOC.relative_to(REPO)}")


if __name__ == "__main__":
    main()
