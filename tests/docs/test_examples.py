"""The examples of README.md and docs/*.md run as printed.

A fenced block right after the line `<!-- runnable -->` is run: `sh`/`bash`/`shell` blocks by bash
(`set -e -o pipefail`), `console` blocks by the commands of their `$ ` lines (the output shown is
not compared: ids and times differ), `python` blocks by one Python process per file, in one
namespace, as a notebook would (a later block may use what an earlier one defined). The blocks of
one file run in order, like a reader following it, in one temporary working directory (with the
repository's `configs/` and `scripts/` beside them) and one temporary state directory; whatever
they leave running is killed afterwards, and the reaper checks that nothing of it survives.

Every shell and Python block is marked: runnable, or `<!-- not runnable: why -->` (an API key, a
network, a server that runs until stopped, a fragment). Mark every block that can run here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor import Supervisor

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARK = "<!-- runnable -->"
NOT_RUNNABLE = "<!-- not runnable:"
SHELLS = ("sh", "bash", "shell")
RUNS = (*SHELLS, "console", "python")
BLOCK_SECONDS = 120
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    code: str

    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(path: Path, *, marked: str = MARK) -> list[Block]:
    """The fenced blocks of `path` whose preceding line starts with `marked` ("" for every block)."""
    found = []
    lines = path.read_text().splitlines()
    previous = ""
    number = 0
    while number < len(lines):
        opening = _FENCE.match(lines[number])
        if not opening:
            if lines[number].strip():
                previous = lines[number].strip()
            number += 1
            continue
        indent, body, start = len(opening["indent"]), [], number + 1
        number += 1
        while number < len(lines) and not _FENCE.match(lines[number]):
            body.append(lines[number][indent:])
            number += 1
        number += 1
        if previous.startswith(marked):
            found.append(Block(path, start, opening["lang"], "\n".join(body) + "\n"))
        previous = "```"
    return found


def console_commands(code: str) -> str:
    """The commands of a console transcript: its `$ ` lines, with their `\\` continuations."""
    commands, continued = [], False
    for line in code.splitlines():
        if line.startswith("$ ") or continued:
            command = line[2:] if line.startswith("$ ") and not continued else line
            commands.append(command)
            continued = command.endswith("\\")
    return "\n".join(commands) + "\n"


# Runs the Python blocks of one file in one namespace: a block's code comes as one JSON line on
# stdin; the answer is one JSON line, null when it ran, else the traceback.
_NOTEBOOK = """
import json, sys, traceback
namespace = {"__name__": "__main__"}
for line in sys.stdin:
    try:
        exec(compile(json.loads(line), "<block>", "exec"), namespace)
        answer = None
    except BaseException:
        answer = traceback.format_exc()
    sys.stdout.flush(); sys.stderr.flush()
    print("\\n" + json.dumps(answer), file=sys.__stdout__, flush=True)
"""


class Notebook:
    """One Python process that runs the Python blocks of a file, one after the other, in one namespace."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", _NOTEBOOK], cwd=work, env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def run(self, code: str) -> str | None:
        """None when `code` ran; else what it printed and its traceback."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(code) + "\n")
        self.process.stdin.flush()
        printed = []
        for line in self.process.stdout:
            try:
                answer = json.loads(line)
            except ValueError:
                printed.append(line)
                continue
            if answer is None or isinstance(answer, str):
                return None if answer is None else "".join(printed) + answer
            printed.append(line)
        return "".join(printed) + f"the Python process ended (exit {self.process.wait()})"

    def close(self) -> None:
        try:
            self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


def _run_shell(block: Block, work: Path, env: dict[str, str]) -> str | None:
    """None when the block ran; else its exit code and output."""
    script = console_commands(block.code) if block.lang == "console" else block.code
    done = subprocess.run(["bash", "-c", "set -e -o pipefail\n" + script], cwd=work, env=env, capture_output=True,
                          text=True, timeout=BLOCK_SECONDS, check=False)
    if done.returncode == 0:
        return None
    return f"exit {done.returncode}\n--- stdout\n{done.stdout}--- stderr\n{done.stderr}"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", [doc for doc in DOCS if blocks(doc)], ids=lambda p: str(p.relative_to(REPO)))
def test_runnable_blocks_run_as_printed(path: Path, tmp_path: Path) -> None:
    marked = blocks(path)
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    for shared in ("configs", "scripts"):
        (work / shared).symlink_to(REPO / shared)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MGSUP_") and k not in ("COLUMNS", "FORCE_COLOR")}
    env |= {"MGSUP_HOME": str(home), "NO_COLOR": "1", "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}"}
    notebook = Notebook(work, env)
    try:
        for block in marked:
            assert block.lang in RUNS, f"{block.where()}: a runnable block must be one of {RUNS}, not {block.lang!r}"
            failure = notebook.run(block.code) if block.lang == "python" else _run_shell(block, work, env)
            assert failure is None, f"{block.where()} failed\n--- block\n{block.code}--- what happened\n{failure}"
    finally:
        notebook.close()
        if (home / "shells").is_dir():
            Supervisor(home).kill_many("all", grace=1.0)


def test_the_marker_is_read_as_documented(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(textwrap.dedent("""\
        Not marked:
        ```sh
        false
        ```
        <!-- runnable -->
        ```console
        $ echo one \\
            two
        one two
        $ echo three
        ```
        - in a list:
          <!-- runnable -->
          ```python
          print("indented")
          ```
        """))
    found = blocks(page)
    assert [(b.lang, b.line) for b in found] == [("console", 6), ("python", 14)]
    assert console_commands(found[0].code) == "echo one \\\n    two\necho three\n"
    assert found[1].code == 'print("indented")\n'


def test_every_example_is_marked() -> None:
    """Each shell or Python block says whether it runs here, and why not when it does not."""
    unmarked = []
    for path in DOCS:
        classified = {b.line for b in blocks(path)} | {b.line for b in blocks(path, marked=NOT_RUNNABLE)}
        unmarked += [b.where() for b in blocks(path, marked="") if b.lang in RUNS and b.line not in classified]
    assert unmarked == [], f"mark these blocks {MARK} or {NOT_RUNNABLE} why -->: {unmarked}"
