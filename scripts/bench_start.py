"""Start latency: from the call to a running job process, p50/p95, and where mgsup's time goes.

mgsup is timed to the return of `Supervisor.start_shell` (the job process exists then), the
others to the return of `Popen`. Each job ends before the next start, so starts do not compete
with running jobs for the two cores.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from baseline_manager import BaselineManager
from bench_common import PY, REPO, Result, Table, TaskSpooler, at_most, main, ms, percentile, temp_home, tsp_path

import supervisor.admission
import supervisor.proc
import supervisor.store

TARGET = 0.015
JOB = "true"


def run(quick: bool) -> Result:
    """Start latency of one job: mgsup, the baseline manager, raw Popen, task-spooler."""
    starts = 5 if quick else 60
    result = Result("start", f"Start latency (call → job process running), {starts} starts each")
    table = Table(["method", "p50", "p95", "min", "max"])
    samples: dict[str, list[float]] = {}
    phases: dict[str, float] = {}
    floors: dict[str, list[float]] = {}

    samples["raw `subprocess.Popen`"] = _series(starts, _popen)
    manager = BaselineManager(max_concurrent=starts + 1)
    try:
        samples["baseline manager `start_shell`"] = _series(starts, lambda: _baseline(manager))
    finally:
        manager.close()
    with temp_home(max_concurrent=starts + 1) as sup:
        with _phase_timer(phases):
            samples["mgsup `Supervisor.start_shell`"] = _series(starts, lambda: _mgsup(sup, floors))
        cli = _mgsup_cli_command()
        if cli is not None:
            env = {**os.environ, "MGSUP_HOME": str(sup.home)}
            samples["mgsup CLI `mgsup start` (a new process)"] = _series(
                max(3, starts // 3), lambda: _command(cli, env))
    tsp = tsp_path()
    if tsp is not None:
        with TaskSpooler(tsp, slots=1) as spooler:
            spooler("-S", "1")
            samples["task-spooler `tsp true` (enqueue; the job starts later)"] = _series(
                starts, lambda: _spool(spooler))
    else:
        result.notes.append("task-spooler is not installed: its row is left out.")

    for name, values in samples.items():
        table.rows.append([name, ms(percentile(values, 50)), ms(percentile(values, 95)), ms(min(values)),
                           ms(max(values))])
    result.tables.append(table)
    mgsup = samples["mgsup `Supervisor.start_shell`"]
    result.verdicts.append(at_most("start latency p50 ≤ 15 ms", percentile(mgsup, 50), TARGET, ms,
                                   "mgsup `start_shell` p50"))
    breakdown, medians = _breakdown(phases, len(mgsup), floors, quick)
    bare, with_imports = medians.values()
    result.tables.append(breakdown)
    result.notes.append(
        "Where mgsup's time goes: `start_shell` launches the monitor (`python -I -S monitor.py`: one "
        "interpreter start plus its imports, then fork + setsid), and waits both for that intermediate "
        "process to exit and for the monitor's answer, which comes after the job was spawned and the "
        "`running` state was written. The baseline and raw Popen only fork/exec in-process.")
    if percentile(mgsup, 50) > TARGET:
        result.notes.append(
            f"Why the target is missed: the bare interpreter start takes {ms(bare)} here and {ms(with_imports)} "
            f"with the monitor's imports ({with_imports / TARGET:.0%} of the {ms(TARGET)} budget), and the "
            "caller waits for it on every start. Already done to get here: the monitor imports only C "
            "stdlib modules before it answers, becomes a subreaper after answering (ctypes costs ~5 ms), "
            "and the transient `starting`/`running` states and slot markers are written without fsync. "
            "Going below the interpreter floor needs a pre-started process per home that forks a monitor "
            "per shell; that is a daemon, which the design avoids on purpose (no single process whose "
            "death affects other shells), so the target is left unmet rather than traded for that.")
    if cli is not None:
        result.notes.append(
            "The CLI row is a whole new process per call: most of it is imports (see "
            "`python -X importtime -c 'import supervisor.cli'`: the pydantic models, rich, click).")
    return result


def _series(count: int, start: Callable[[], float]) -> list[float]:
    start()  # warm-up: page cache, imports, the first directory creations
    return [start() for _ in range(count)]


def _popen() -> float:
    began = time.perf_counter()
    process = subprocess.Popen([JOB])
    elapsed = time.perf_counter() - began
    process.wait()
    return elapsed


def _baseline(manager: BaselineManager) -> float:
    began = time.perf_counter()
    shell_id = manager.start_shell(JOB)
    elapsed = time.perf_counter() - began
    manager.wait_shell(shell_id, timeout=30)
    return elapsed


def _mgsup(sup: Any, floors: dict[str, list[float]]) -> float:
    """Time one start; time the interpreter floors right after it, so both see the same machine load."""
    began = time.perf_counter()
    shell_id = sup.start_shell([JOB])
    elapsed = time.perf_counter() - began
    sup.wait_shell(shell_id, timeout=30)
    for label, argv in FLOORS.items():
        began = time.perf_counter()
        subprocess.run(argv, check=True)
        floors.setdefault(label, []).append(time.perf_counter() - began)
    return float(elapsed)


def _command(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    return time.perf_counter() - began


def _spool(spooler: TaskSpooler) -> float:
    began = time.perf_counter()
    job = spooler(JOB)
    elapsed = time.perf_counter() - began
    spooler("-w", job)
    return elapsed


def _mgsup_cli_command() -> list[str] | None:
    """`mgsup start -- true` when the CLI is there (it is optional for this benchmark)."""
    if importlib.util.find_spec("supervisor.cli") is None:
        return None
    script = Path(PY).with_name("mgsup")
    program = [str(script)] if script.exists() else [PY, "-m", "supervisor"]
    return [*program, "start", "--", JOB]


# -- where the time goes ---------------------------------------------------------------------------

_IMPORTS = f"import sys; sys.path.insert(0, {str(REPO)!r}); from supervisor import layout, lifecycle, proc"
# What no monitor start can go under: the interpreter, and the interpreter with the monitor's imports.
FLOORS = {
    "floor: `python -I -S -c pass`": [PY, "-I", "-S", "-c", "pass"],
    "floor: `python -I -S` + the monitor's imports": [PY, "-I", "-S", "-c", _IMPORTS],
}
# The library functions whose time the breakdown reports (looked up by module attribute at call time).
TIMED = ((supervisor.store.Store, "create"), (supervisor.admission, "admit"), (supervisor.proc, "spawn_monitor"),
         (supervisor.proc, "_read_all"))


@contextlib.contextmanager
def _phase_timer(totals: dict[str, float]) -> Iterator[None]:
    """Add the time spent in a few library functions to `totals` (by function name) while active."""
    originals: list[tuple[Any, str, Any]] = []
    for owner, name in TIMED:
        original = getattr(owner, name)
        originals.append((owner, name, original))
        setattr(owner, name, _timing(original, name, totals))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _timing(function: Callable[..., Any], name: str, totals: dict[str, float]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - began

    return timed


def _breakdown(phases: dict[str, float], count: int, floors: dict[str, list[float]],
               quick: bool) -> tuple[Table, dict[str, float]]:
    """Mean time per start in each phase, and the interpreter start the monitor cannot go under."""
    table = Table(["where the time of one mgsup start goes (mean)", "time"],
                  caption="Start latency breakdown (mgsup, same run)")
    runs = count + 1  # the warm-up start is counted by the wrappers too
    spawn = phases.get("spawn_monitor", 0.0) / runs
    answer = phases.get("_read_all", 0.0) / runs
    table.rows += [
        ["write spec.json (mkdir + fsync'd JSON)", ms(phases.get("create", 0.0) / runs)],
        ["admission: flock, slot marker, `starting` state.json", ms(phases.get("admit", 0.0) / runs)],
        ["spawn monitor: Popen → intermediate exited (interpreter start, imports, fork, setsid)",
         ms(spawn - answer)],
        ["spawn monitor: → monitor's answer (read spec, posix_spawn job, `running` state.json)", ms(answer)],
    ]
    medians = {label: percentile(values, 50) for label, values in floors.items()}
    table.rows += [[f"{label} (p50, run between the starts)", ms(value)] for label, value in medians.items()]
    hyperfine = shutil.which("hyperfine")
    if hyperfine is not None:
        label, argv = next(iter(FLOORS.items()))
        table.rows.append([f"{label} (hyperfine median, after the starts)",
                           ms(_hyperfine(hyperfine, argv, 3 if quick else 30))])
    return table, medians


def _hyperfine(path: str, argv: list[str], runs: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "hyperfine.json")
        subprocess.run([path, "-N", "--warmup", "3", "--runs", str(max(runs, 2)), "--export-json", out,
                        "--style", "none", shlex.join(argv)], check=True, capture_output=True)
        with open(out) as f:
            return float(json.load(f)["results"][0]["median"])


if __name__ == "__main__":
    main(run)
