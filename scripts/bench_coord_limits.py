"""mgcoord's memory and liveness when agents and endpoints send too much.

    python scripts/bench_coord_limits.py            # print the table
    python scripts/bench_coord_limits.py --quick    # tiny sizes: checks the script, not the limits
    python scripts/bench_coord_limits.py --write    # also put the section into docs/benchmarks.md

Each scenario is one real `mgcoord --automation` run with default limits: an openai agent pointed
at the misbehaving server of tests/coordinator/hostile_server.py (a gzip bomb, a huge body, a
reply dense with tiny JSON values) or a hostile command agent (100 MB of stdout, an endless
writer), beside a well-behaved command agent that wins. Measured: mgcoord's peak RSS (its own
VmHWM, read at exit: agents are not counted), the run's wall time, the longest gap
between two status.json writes (the contract says at most 2 s), and the size of the hostile
agent's agent_outputs file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from bench_common import PY, REPO, Result, Table, at_most, mib, timed, write_section

sys.path.append(str(REPO / "tests" / "coordinator"))
import itertools

from hostile_server import HostileServer

MiB = 2**20
RSS_LIMIT = 200 * 10**6
TITLE = "mgcoord under hostile agents and endpoints"
SCRIPTED = REPO / "tests" / "coordinator" / "agents" / "scripted_agent.py"
HOSTILE = REPO / "tests" / "coordinator" / "agents" / "hostile_agent.py"
# Runs mgcoord in this interpreter and writes its peak RSS (bytes) to argv[1] when it exits. VmHWM,
# not ru_maxrss: Linux carries ru_maxrss over exec, so it would count the forking benchmark's memory.
DRIVER = """
import atexit, re, sys
out = sys.argv.pop(1)
def peak():
    status = open("/proc/self/status").read()
    open(out, "w").write(str(int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024))
atexit.register(peak)
sys.argv[0] = "mgcoord"
from coordinator.cli import main
main()
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    server_mode: str | None = None
    agent_mode: str | None = None
    size: int = 0
    counts_for_target: bool = True


def scenarios(quick: bool) -> list[Scenario]:
    big = 8 * MiB if quick else 256 * MiB
    return [
        Scenario("baseline", "two well-behaved command agents", counts_for_target=False),
        Scenario("gzip bomb", f"openai reply: gzip unpacking to {mib(big)}", "gzip_bomb", size=big),
        Scenario("gzip bomb", f"openai reply: gzip unpacking to {mib(4 * big)}", "gzip_bomb", size=4 * big),
        Scenario("huge body", f"openai reply: {mib(big)} uncompressed, no Content-Length", "huge", size=big),
        Scenario("dense reply", "openai reply: 4 MiB (the limit) of empty JSON lists", "dense", size=4 * MiB - 4096),
        Scenario("big output", f"command agent: {mib(big // 2 if quick else 100 * MiB)} of stdout", None,
                 "big_stdout", size=big // 2 if quick else 100 * MiB),
        Scenario("endless output", "command agent: writes to stdout until stopped", None, "endless_stdout"),
    ]


def run(quick: bool) -> Result:
    """Peak RSS of mgcoord under gzip bombs, huge replies and floods of agent output."""
    table = Table(["scenario", "what", "exit", "wall", "mgcoord peak RSS", "longest status.json gap",
                   "hostile agent's output file", "hostile agent's error"], text_columns=(0, 1, 7))
    worst = 0
    for scenario in scenarios(quick):
        measured = measure(scenario)
        if scenario.counts_for_target:
            worst = max(worst, measured["rss"])
        table.rows.append([
            scenario.name, scenario.what, str(measured["exit"]), f"{measured['wall']:.1f} s", mib(measured["rss"]),
            f"{measured['gap']:.2f} s", mib(measured["output_bytes"]) if scenario.counts_for_target else "-",
            measured["error"],
        ])
    verdict = at_most("mgcoord peak RSS < 200 MB under the gzip and big-output scenarios", worst, RSS_LIMIT,
                      lambda value: f"{value / 10**6:.0f} MB", "worst")
    notes = ["Default limits (docs/mgcoord.md): `backend.max_response_bytes` and `backend.max_output_bytes` are "
             "4 MiB, a reply holds at most 100,000 JSON values. A turn that passes a limit fails and is retried "
             "(`max_turn_retries`); the agent's output file keeps the first 64 KiB of each attempt. Reported before "
             "these limits: a 256 MB gzip reply drove mgcoord to 2.4 GB RSS (a 1 GB one to 8.3 GB) with a 7.1 s "
             "gap between status.json writes, 100 MB of agent stdout to 637 MB RSS and a 300 MB output file."]
    if quick:
        notes.append("**--quick run: tiny sizes, the numbers mean nothing.**")
    return Result("coord_limits", TITLE, tables=[table], verdicts=[verdict], notes=notes)


def measure(scenario: Scenario) -> dict[str, Any]:
    with _folder() as folder, _server(scenario) as server:
        agents = [_agent("plain", [PY, str(SCRIPTED), "answer", "--text", "42"])]
        if server is not None:
            agents.insert(0, {"id": "hostile", "backend": {"type": "openai", "model": "m",
                                                           "base_url": server.base_url, "api_key_env": "BENCH_KEY"}})
        elif scenario.agent_mode is not None:
            agents.insert(0, _agent("hostile", [PY, str(HOSTILE), scenario.agent_mode, "--bytes", str(scenario.size)]))
        else:
            agents.insert(0, _agent("other", [PY, str(SCRIPTED), "answer", "--text", "41"]))
        config = folder / "config.yaml"
        config.write_text(yaml.safe_dump({
            "agents": agents,
            "timeout_settings": {"agent_timeout_seconds": 120, "orchestrator_timeout_seconds": 300},
        }))
        rss_file = folder / "rss"
        env = {**os.environ, "PYTHONPATH": str(REPO), "BENCH_KEY": "k"}
        began = time.monotonic()
        process = subprocess.Popen(
            [PY, "-c", DRIVER, str(rss_file), "--automation", "--config", str(config), "What is 6 * 7?"],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            gap, status_path = _watch_status(process)
            stdout = process.communicate(timeout=300)[0]
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        wall = time.monotonic() - began
        log_dir = status_path.parent if status_path else None
        output = log_dir / "agent_outputs" / "hostile.txt" if log_dir else None
        error = ""
        if status_path is not None and status_path.is_file():
            info = json.loads(status_path.read_text())["agents"].get("hostile") or {}
            error = ((info.get("error") or {}).get("message") or "")[:110]
        if not rss_file.is_file():
            raise RuntimeError(f"{scenario.name}: mgcoord wrote no peak RSS; its output:\n{stdout}")
        return {
            "exit": process.returncode,
            "wall": wall,
            "rss": int(rss_file.read_text()),
            "gap": gap,
            "output_bytes": output.stat().st_size if output is not None and output.is_file() else 0,
            "error": error.replace("|", "/"),
        }


def _watch_status(process: subprocess.Popen[str]) -> tuple[float, Path | None]:
    """The longest gap between two status.json writes (by their `last_updated`) while `process` runs."""
    assert process.stdout is not None
    process.stdout.readline()  # LOG_DIR
    line = process.stdout.readline()
    if not line.startswith("STATUS: "):
        return 0.0, None
    path = Path(line.removeprefix("STATUS: ").strip())
    stamps: list[float] = []
    while True:
        ended = process.poll() is not None
        with contextlib.suppress(OSError, ValueError, KeyError):
            stamp = json.loads(path.read_text())["meta"]["last_updated"]
            if not stamps or stamp != stamps[-1]:
                stamps.append(stamp)
        if ended:
            break
        time.sleep(0.02)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    return max(gaps, default=0.0), path


def _agent(agent_id: str, argv: list[str]) -> dict[str, Any]:
    return {"id": agent_id, "backend": {"type": "command", "command": argv}}


@contextlib.contextmanager
def _folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="mgsup-bench-coord-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _server(scenario: Scenario) -> Iterator[HostileServer | None]:
    if scenario.server_mode is None:
        yield None
        return
    with HostileServer(scenario.server_mode, size=scenario.size) as server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description="mgcoord's memory when agents and endpoints send too much.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script, not the limits")
    parser.add_argument("--write", action="store_true", help="also write the section into the report (-o)")
    parser.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    result = timed(run, args.quick)
    print(result.markdown())
    if args.write:
        write_section(args.output, result)
        print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
