"""Start latency: from the call to a running job process, p50/p95, and where mgsup's time goes.

mgsup is timed to the return of `Supervisor.start_shell` (the job process exists then), the
others to the return of `Popen`. Each job ends before the next start, so starts do not compete
with running jobs for the two cores. mgsup's two ways to start a monitor (through the home's
launcher, directly) alternate start by start, and a bare interpreter start is timed after each
pair: the target is a ratio to that floor, measured under the same load.
"""

from __future__ import annotations

import contextlib
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
from bench_common import (
    MODES,
    PY,
    Result,
    Table,
    TaskSpooler,
    at_most,
    main,
    ms,
    percentile,
    start_mode,
    temp_home,
    tsp_path,
    warm_launcher,
)

import supervisor.admission
import supervisor.launch
import supervisor.proc
import supervisor.store
from supervisor import Supervisor

# A start may take at most this share of a bare interpreter start (the floor a monitor of its own pays).
TARGET_RATIO = 0.5
JOB = "true"
FLOOR = "`python -I -S -c pass`"


def run(quick: bool) -> Result:
    """Start latency of one job: mgsup (launcher, direct), the baseline manager, raw Popen, task-spooler."""
    starts = 5 if quick else 60
    result = Result("start", f"Start latency (call → job process running), {starts} starts each")
    table = Table(["method", "p50", "p95", "min", "max"])
    samples: dict[str, list[float]] = {}
    phases: dict[str, float] = {}
    floor: list[float] = []

    samples["raw `subprocess.Popen`"] = _series(starts, _popen)
    manager = BaselineManager(max_concurrent=starts + 1)
    try:
        samples["baseline manager `start_shell`"] = _series(starts, lambda: _baseline(manager))
    finally:
        manager.close()
    with temp_home(max_concurrent=2 * starts + 10) as sup:
        warm_launcher(sup)
        with _phase_timer(phases):
            by_mode = _alternating(sup, starts, floor)
        for mode, values in by_mode.items():
            samples[f"mgsup `Supervisor.start_shell`, {mode}"] = values
        samples[f"floor: {FLOOR} (after each pair of starts)"] = floor
        program = _mgsup_program()
        for mode in MODES:
            env = {**os.environ, "MGSUP_HOME": str(sup.home), supervisor.launch.ENABLE_VAR: MODES[mode]}
            samples[f"mgsup CLI `mgsup start` (a new process), {mode}"] = _series(
                max(3, starts // 3), lambda env=env: _command([*program, "start", "--", JOB], env))
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
    bare = percentile(floor, 50)
    for mode in MODES:
        p50 = percentile(by_mode[mode], 50)
        result.verdicts.append(at_most(f"start p50 ≤ {TARGET_RATIO}× {FLOOR} ({mode})", p50 / bare, TARGET_RATIO,
                                       lambda r: f"{r:.2f}×", f"`start_shell` p50 {ms(p50)} / floor {ms(bare)} ="))
    result.tables.append(_breakdown(phases, {mode: len(values) for mode, values in by_mode.items()}, quick))
    result.notes.append(
        "Where mgsup's time goes: `start_shell` validates the request, writes the shell's record and takes a "
        "slot under the admission lock, then has the monitor started and waits for its answer, which comes "
        "once the job runs and its `running` state is written. Through the launcher that is a request on a "
        "unix socket to a process that has the monitor's code loaded and hands it to its spare, a process "
        "it forked in advance (twice, so the monitor is nobody's child); directly it is a new interpreter "
        "(`python -I -S monitor.py`). The baseline and raw Popen only fork/exec in-process. What is left is "
        "mostly the file system: a start creates or renames about a dozen files (the record and its "
        "reserves, the slot marker, the `starting` and `running` states, the logs), each a journalled "
        "metadata change on ext4.")
    result.notes.append(
        "The CLI rows are a whole new process per call: `mgsup start` is answered without click, rich or "
        "pydantic (`supervisor/verbs.py`), so most of it is the interpreter and the library's imports.")
    return result


def _series(count: int, start: Callable[[], float]) -> list[float]:
    start()  # warm-up: page cache, imports, the first directory creations
    return [start() for _ in range(count)]


def _alternating(sup: Supervisor, count: int, floor: list[float]) -> dict[str, list[float]]:
    """`count` starts in each mode, alternating; a bare interpreter start is timed after each pair."""
    found: dict[str, list[float]] = {mode: [] for mode in MODES}
    for mode in MODES:
        with start_mode(mode):
            _mgsup(sup)  # warm-up
    for _ in range(count):
        for mode in MODES:
            with start_mode(mode):
                found[mode].append(_mgsup(sup))
        began = time.perf_counter()
        subprocess.run([PY, "-I", "-S", "-c", "pass"], check=True)
        floor.append(time.perf_counter() - began)
    return found


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


def _mgsup(sup: Supervisor) -> float:
    began = time.perf_counter()
    shell_id = sup.start_shell([JOB])
    elapsed = time.perf_counter() - began
    sup.wait_shell(shell_id, timeout=30)
    return elapsed


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


def _mgsup_program() -> list[str]:
    """The `mgsup` console script next to this Python, else `python -m supervisor`."""
    script = Path(PY).with_name("mgsup")
    return [str(script)] if script.exists() else [PY, "-m", "supervisor"]


# -- where the time goes ---------------------------------------------------------------------------

# The library functions whose time the breakdown reports (looked up by module attribute at call time).
TIMED = ((supervisor.store.Store, "create"), (supervisor.admission, "admit"), (supervisor.launch, "spawn_monitor"),
         (supervisor.launch, "_ask"), (supervisor.proc, "spawn_monitor"))


@contextlib.contextmanager
def _phase_timer(totals: dict[str, float]) -> Iterator[None]:
    """Add the time spent in a few library functions to `totals` (by start mode and name) while active."""
    originals: list[tuple[Any, str, Any]] = []
    for owner, name in TIMED:
        original = getattr(owner, name)
        originals.append((owner, name, original))
        label = f"{owner.__name__.rpartition('.')[2]}.{name}"
        setattr(owner, name, _timing(original, label, totals))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _timing(function: Callable[..., Any], name: str, totals: dict[str, float]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        mode = "launcher" if supervisor.launch.enabled() else "direct"
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            key = f"{mode}:{name}"
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - began

    return timed


def _breakdown(phases: dict[str, float], counts: dict[str, int], quick: bool) -> Table:
    """Mean time per start in each phase, for each mode."""
    table = Table(["where the time of one mgsup start goes (mean)", *MODES],
                  caption="Start latency breakdown (mgsup, same run)")
    rows = [("write the record: spec.json and the space the monitor reserves", "Store.create"),
            ("admission: flock, slot marker, `starting` state.json", "admission.admit"),
            ("start the monitor and wait for its answer (all of it)", "launch.spawn_monitor"),
            ("… of which: launcher request → monitor's answer", "launch._ask"),
            ("… of which: `python -I -S monitor.py` → monitor's answer", "proc.spawn_monitor")]
    for label, key in rows:
        # Each mode had one warm-up start the wrappers counted too.
        cells = [ms(phases.get(f"{mode}:{key}", 0.0) / (counts[mode] + 1)) for mode in MODES]
        table.rows.append([label, *cells])
    hyperfine = shutil.which("hyperfine")
    if hyperfine is not None:
        floor = _hyperfine(hyperfine, [PY, "-I", "-S", "-c", "pass"], 3 if quick else 30)
        table.rows.append([f"floor: {FLOOR} (hyperfine median, after the starts)", ms(floor), ms(floor)])
    return table


def _hyperfine(path: str, argv: list[str], runs: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "hyperfine.json")
        subprocess.run([path, "-N", "--warmup", "3", "--runs", str(max(runs, 2)), "--export-json", out,
                        "--style", "none", shlex.join(argv)], check=True, capture_output=True)
        with open(out) as f:
            return float(json.load(f)["results"][0]["median"])


if __name__ == "__main__":
    main(run)
