"""Wall time of a 2-agent run of the real MassGen CLI, under mgsup and started by hand: the cost of supervision.

    python scripts/bench_massgen.py              # 5 runs each, interleaved; prints the table
    python scripts/bench_massgen.py --write      # ... and puts the row into docs/benchmarks.md

Both sides run the same command in a fresh folder (`massgen --automation --config C "Q"`, two
`chatcompletion` agents on the stateless fake server of tests/fakes, on 127.0.0.1): by hand is
`subprocess.run` until it exits; under mgsup is `start_coordination(runner=massgen)` until
`wait_shell` returns with the run's outcome. Needs MassGen installed (scripts/install_massgen.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import REPO, Result, Table, percentile, temp_home, timed, write_section

sys.path.insert(0, str(REPO / "tests"))
from fakes import massgen  # tests/ was made importable just above
from fakes.openai_server import OpenAIServer

QUESTION = "What is 17 * 23?"
TITLE = "The real MassGen under mgsup"
DOC = REPO / "docs" / "benchmarks.md"


def run(quick: bool) -> Result:
    """Wall time of a 2-agent MassGen run by hand and under mgsup (same command, interleaved)."""
    reps = 1 if quick else 5
    program = str(massgen.program())
    env = {**os.environ, "OPENAI_API_KEY": "sk-fake"}
    by_hand: list[float] = []
    supervised: list[float] = []
    load_before = os.getloadavg()[0]
    with OpenAIServer() as server, tempfile.TemporaryDirectory(prefix="mgsup-bench-massgen-") as scratch, \
            temp_home() as sup:
        config = massgen.write_config(Path(scratch) / "massgen.yaml", server.base_url)
        for rep in range(reps):
            folder = Path(scratch) / f"hand-{rep}"
            folder.mkdir()
            began = time.monotonic()
            subprocess.run([program, "--automation", "--config", str(config), QUESTION], cwd=folder, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            by_hand.append(time.monotonic() - began)

            folder = Path(scratch) / f"mgsup-{rep}"
            folder.mkdir()
            began = time.monotonic()
            shell_id = sup.start_coordination(config, QUESTION, runner=[program], cwd=folder, env=env)
            final = sup.wait_shell(shell_id, timeout=300)
            supervised.append(time.monotonic() - began)
            if (final["coordination"] or {}).get("outcome") != "answered":
                raise RuntimeError(f"the supervised run did not answer: {final}")
    hand, under = percentile(by_hand, 50), percentile(supervised, 50)
    result = Result("massgen", TITLE)
    result.tables.append(Table(
        ["run", "by hand p50", "under mgsup p50", "overhead p50", "runs each"],
        [["2-agent `massgen --automation` (0.1.97, fake LLM on 127.0.0.1)", f"{hand:.2f} s", f"{under:.2f} s",
          f"{under - hand:+.2f} s ({100 * (under - hand) / hand:+.1f}%)", str(reps)]],
        caption="from the call to the run's end (by hand: the process exits; under mgsup: `wait_shell` "
                "returns with its outcome)"))
    result.notes.append(f"Load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f} "
                        f"on {os.cpu_count()} cores.")
    result.notes.append("Reproduce with `python scripts/bench_massgen.py --write` (needs "
                        "`python scripts/install_massgen.py` once). Most of a run is MassGen's own start-up "
                        "(imports, about 7 s of CPU); the overhead is mgsup's start, its monitor and the "
                        "file-watching wait.")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(run.__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run each: checks the script, not the speed")
    parser.add_argument("--write", action="store_true", help=f"put the result into {DOC.relative_to(REPO)}")
    args = parser.parse_args()
    result = timed(run, args.quick)
    print(result.markdown())
    if args.write:
        write_section(DOC, result)
        print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
