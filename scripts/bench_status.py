"""Reading status with 1,000 shells on record: `get_shell_status` of one shell and `list_shells`.

The 1,000 ended shells are written with the library itself (`Store.create` for spec.json and the
monitor's own lifecycle transitions for state.json, plus small log files), so they are real
records read by the real code path; 10 more shells really run (`sleep`) so that the listing also
checks live monitors. The baseline manager holds the same number of records in memory.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

from baseline_manager import BaselineManager
from bench_common import PY, Result, Table, at_most, call_times, main, ms, percentile, temp_home

from supervisor import Supervisor, lifecycle
from supervisor import layout as lay
from supervisor.models import Spec

STATUS_TARGET = 0.005
LIST_TARGET = 0.200
RUNNING = 10
CLI_RECORDS = 200
CLI_RATIO = 3.0


def run(quick: bool) -> Result:
    """get_shell_status and list_shells with 1,000 shells on record, against the baseline."""
    records = 20 if quick else 1000
    calls, listings = (20, 2) if quick else (300, 7)
    result = Result("status", f"Status with {records:,} ended + {RUNNING} running shells on record")
    table = Table(["call", "p50", "p95", "max", "calls"])
    with temp_home(max_concurrent=RUNNING + 1) as sup:
        ended = _write_records(sup, records)
        running = [sup.start_shell(["sleep", "120"]) for _ in range(RUNNING)]
        picks = random.Random(7)
        status_times = call_times(calls, lambda: sup.get_shell_status(picks.choice(ended)))
        running_times = call_times(calls, lambda: sup.get_shell_status(picks.choice(running)))
        list_times = call_times(listings, lambda: _check_count(sup.list_shells(), records + RUNNING))
        running_list = call_times(listings, lambda: _check_count(sup.list_shells("running"), RUNNING))
        for shell_id in running:
            sup.kill_shell(shell_id, grace=1.0)
    rows = {
        "mgsup `get_shell_status` (an ended shell)": status_times,
        "mgsup `get_shell_status` (a running shell: liveness check)": running_times,
        f"mgsup `list_shells()` ({records + RUNNING:,} shells)": list_times,
        "mgsup `list_shells('running')`": running_list,
    }
    rows.update(_baseline(records, calls, listings))
    for name, values in rows.items():
        table.rows.append([name, ms(percentile(values, 50)), ms(percentile(values, 95)), ms(max(values)),
                           str(len(values))])
    result.tables.append(table)
    result.verdicts += [
        at_most("get_shell_status < 5 ms", percentile(status_times + running_times, 95), STATUS_TARGET, ms,
                "p95 over ended and running shells"),
        at_most(f"list_shells < 200 ms with {records:,} shells", percentile(list_times, 50), LIST_TARGET, ms,
                "p50"),
    ]
    result.verdicts[-1].detail += f" (p95 {ms(percentile(list_times, 95))})"
    _commands(result, 30 if quick else CLI_RECORDS, 3 if quick else 20)  # more than the table shows by default
    result.notes.append(
        "Every mgsup call reads the state directory afresh (spec.json, state.json, what the job printed "
        "(LOG_DIR/STATUS lines), and /proc for a running shell's monitor), so answers are shared across "
        "processes and survive restarts; `list_shells` is one such read per shell, each record checked "
        "against its typed shape. The baseline answers from its own memory only: its records vanish with "
        "the process that started the jobs.")
    result.notes.append(
        "The commands are new processes: `mgsup list` and `mgsup status` in a pipe are answered without "
        "importing click, rich or pydantic (`supervisor/verbs.py`); the last row goes through the click "
        "application, as every verb did before, and shows what click and rich add. Starting no shell, these "
        "commands are the same with and without the launcher.")
    return result


def _commands(result: Result, records: int, runs: int) -> None:
    """`mgsup list` and `mgsup status` as commands, against a bare `python -c pass`, interleaved."""
    script = Path(PY).with_name("mgsup")
    program = [str(script)] if script.exists() else [PY, "-m", "supervisor"]
    commands = {
        "`python -c pass` (the same interpreter, with site)": [PY, "-c", "pass"],
        "`mgsup list`": [*program, "list"],
        # --limit 0: every shell, as `list` prints them (the table shows the newest 20 by default).
        "`mgsup status` (the table, in a pipe)": [*program, "status", "--limit", "0"],
        "`mgsup list` through the click application": [PY, "-c", "import sys; from supervisor.cli import main; "
                                                               "sys.exit(main(['list']))"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    with temp_home() as sup:
        _write_records(sup, records)
        env = {**os.environ, "MGSUP_HOME": str(sup.home)}
        for _ in range(runs + 1):  # the first round warms the page cache up
            for name, argv in commands.items():
                began = time.perf_counter()
                done = subprocess.run(argv, env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
                times[name].append(time.perf_counter() - began)
                if done.returncode != 0 or (argv[-1] != "pass" and len(done.stdout.splitlines()) < records):
                    raise RuntimeError(f"{name} failed: {done.stderr.decode()[-500:]}")
    bare = percentile(times["`python -c pass` (the same interpreter, with site)"][1:], 50)
    table = Table(["command", "p50", "min", "vs `python -c pass`"],
                  caption=f"Commands with {records:,} ended shells on record, {runs} runs each")
    for name, values in times.items():
        table.rows.append([name, ms(percentile(values[1:], 50)), ms(min(values[1:])),
                           f"{percentile(values[1:], 50) / bare:.2f}×"])
    result.tables.append(table)
    for name in ("`mgsup list`", "`mgsup status` (the table, in a pipe)"):
        result.verdicts.append(at_most(f"{name.split(' (')[0]} with {records:,} ended shells ≤ {CLI_RATIO}× "
                                       "`python -c pass`", percentile(times[name][1:], 50) / bare, CLI_RATIO,
                                       lambda r: f"{r:.2f}×", "p50 ratio"))


def _write_records(sup: Supervisor, count: int) -> list[str]:
    """`count` ended shells recorded exactly as a monitor records them."""
    ids = []
    base = time.time() - count
    for i in range(count):
        shell_id = f"shell_{i:08x}"
        created = base + i
        sup.store.create(Spec(shell_id=shell_id, command=["true"], argv=["true"], cwd=str(sup.home),
                              max_concurrent=sup.max_concurrent, created=created))
        state = lifecycle.new(created, queued=False)
        state = lifecycle.running(state, created + 0.01, pid=100000 + i, pid_start=1, monitor_pid=200000 + i,
                                  monitor_start=1)
        state = lifecycle.exited(state, created + 0.02, 0, killed=False, timed_out=False,
                                 rusage={"user_seconds": 0.0, "system_seconds": 0.0, "max_rss_kb": 1024.0})
        lay.write_json(sup.layout.file(shell_id, lay.STATE), state)
        with open(sup.layout.file(shell_id, lay.STDOUT), "w") as f:
            f.write(f"job {i} done\n")
        open(sup.layout.file(shell_id, lay.STDERR), "w").close()
        ids.append(shell_id)
    return ids



def _check_count(shells: list[dict[str, object]], expected: int) -> None:
    if len(shells) != expected:
        raise RuntimeError(f"list_shells returned {len(shells)} shells, expected {expected}")


def _baseline(records: int, calls: int, listings: int) -> dict[str, list[float]]:
    manager = BaselineManager(max_concurrent=records + 1)
    try:
        ids: list[str] = []
        batch = 50
        while len(ids) < records:
            started = [manager.start_shell("true") for _ in range(min(batch, records - len(ids)))]
            for shell_id in started:
                manager.wait_shell(shell_id, timeout=30)
            ids += started
        picks = random.Random(7)
        return {
            "baseline `get_shell_status` (in memory)": call_times(calls, lambda: manager.get_shell_status(
                picks.choice(ids))),
            f"baseline `list_shells()` ({records:,} in memory)": call_times(listings, manager.list_shells),
        }
    finally:
        manager.close()


if __name__ == "__main__":
    main(run)
