"""Killing a 10-process tree: latency of the kill call and the processes that survive it.

The job is a shell that starts 9 sleeping descendants: two children, two sub-shells with two
children each, and one child that calls `setsid` (its own session and process group). The
latency runs from the kill call until the call returns (for task-spooler, whose `-k` returns at
once, until the job's main process is gone). Survivors are counted after a short settling time,
then killed by pid so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable

import psutil
from baseline_manager import BaselineManager
from bench_common import (
    MODES,
    Result,
    Table,
    TaskSpooler,
    Verdict,
    alive,
    kill_all,
    main,
    ms,
    parallel_path,
    percentile,
    poll,
    start_mode,
    temp_home,
    tree,
    tsp_path,
)

from supervisor import Supervisor

TREE = ('sleep 300 & sleep 300 & sh -c "sleep 300 & sleep 300 & wait" & '
        'sh -c "sleep 300 & sleep 300 & wait" & setsid sleep 300 & wait')
SIZE = 10
SETTLE = 0.5

# One method: start the tree and return (its root pid, a function that kills it and returns when it says done).
Method = Callable[[], tuple[int, Callable[[], None]]]


def run(quick: bool) -> Result:
    """Kill latency and survivors of a 10-process tree (one descendant in its own session)."""
    reps = 1 if quick else 5
    result = Result("kill", f"Kill a {SIZE}-process tree (one descendant called setsid), {reps} kills each")
    table = Table(["method", "kill latency p50", "max", "survivors per kill", "which survived"],
                  text_columns=(0, 4))
    mgsup_survivors: dict[str, list[int]] = {}
    with contextlib.ExitStack() as stack:
        sup = stack.enter_context(temp_home())
        methods: dict[str, Method] = {
            "raw `Popen.terminate()` + `wait()`": _popen,
            "raw Popen in own session, `killpg` + `wait()`": _popen_group,
            "baseline manager `kill_shell`": _baseline,
            **{f"mgsup `kill_shell`, {mode}": lambda mode=mode: _mgsup(sup, mode) for mode in MODES},
        }
        parallel = parallel_path()
        if parallel is not None:
            methods["GNU parallel, SIGTERM to parallel"] = lambda: _parallel(parallel)
        else:
            result.notes.append("GNU parallel is not installed: its row is left out.")
        tsp = tsp_path()
        if tsp is not None:
            spooler = stack.enter_context(TaskSpooler(tsp, slots=1))
            methods["task-spooler `tsp -k` (signals the job's group)"] = lambda: _tsp(spooler)
        else:
            result.notes.append("task-spooler is not installed: its row is left out.")
        for name, method in methods.items():
            latencies, survivors, kinds = _measure(method, reps)
            if name.startswith("mgsup"):
                mgsup_survivors[name.rpartition(", ")[2]] = survivors
            table.rows.append([name, ms(percentile(latencies, 50)), ms(max(latencies)),
                               f"{sum(survivors) / reps:g} of {SIZE}", ", ".join(sorted(kinds)) or "none"])
    result.tables.append(table)
    for mode, survivors in mgsup_survivors.items():
        worst = max(survivors)
        result.verdicts.append(Verdict(f"0 survivors after kill ({mode})", worst == 0,
                                       f"mgsup left {worst} process(es) in the worst of {reps} kills"))
    result.notes.append(
        "mgsup's `kill_shell` returns only when no process of the job is left: its monitor (a child "
        "subreaper) signals the job's group and every descendant, including the one in its own session, "
        "and reaps them. Killing the direct child only (raw Popen, the baseline) orphans all 9 "
        "descendants; a process-group kill misses the one that called setsid.")
    return result


def _measure(method: Method, reps: int) -> tuple[list[float], list[int], set[str]]:
    latencies: list[float] = []
    survivors: list[int] = []
    kinds: set[str] = set()
    for _ in range(reps):
        root, kill = method()
        members = _whole_tree(root)
        began = time.perf_counter()
        kill()
        latencies.append(time.perf_counter() - began)
        deadline = time.monotonic() + SETTLE
        left = alive(members)
        while left and time.monotonic() < deadline:
            time.sleep(0.01)
            left = alive(members)
        survivors.append(len(left))
        kinds.update(_kind(p) for p in left)
        kill_all(members)
    return latencies, survivors, kinds


def _whole_tree(root: int) -> list[psutil.Process]:
    """The processes of the job's tree, once all of them have started."""
    poll(lambda: len(alive(tree(root))) >= SIZE, 20, f"the {SIZE}-process tree")
    return alive(tree(root))


def _kind(p: psutil.Process) -> str:
    try:
        return "setsid child" if os.getsid(p.pid) == p.pid else "descendants"
    except (ProcessLookupError, psutil.Error):
        return "descendants"


def _popen() -> tuple[int, Callable[[], None]]:
    process = subprocess.Popen(["/bin/sh", "-c", TREE], stdin=subprocess.DEVNULL)

    def kill() -> None:
        process.terminate()
        process.wait()

    return process.pid, kill


def _popen_group() -> tuple[int, Callable[[], None]]:
    process = subprocess.Popen(["/bin/sh", "-c", TREE], stdin=subprocess.DEVNULL, start_new_session=True)

    def kill() -> None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()

    return process.pid, kill


def _baseline() -> tuple[int, Callable[[], None]]:
    manager = BaselineManager()
    shell_id = manager.start_shell(TREE)

    def kill() -> None:
        manager.kill_shell(shell_id)

    return int(manager.get_shell_status(shell_id)["pid"]), kill


def _mgsup(sup: Supervisor, mode: str) -> tuple[int, Callable[[], None]]:
    with start_mode(mode):
        shell_id = sup.start_shell(TREE)

    def kill() -> None:
        sup.kill_shell(shell_id, grace=5.0)

    return int(sup.get_shell_status(shell_id)["pid"]), kill


def _parallel(path: str) -> tuple[int, Callable[[], None]]:
    process = subprocess.Popen([path, "-j1", "-N0", TREE, ":::", "1"], stdin=subprocess.DEVNULL)
    roots: list[int] = []

    def started() -> bool:
        # parallel runs helpers of its own too: the job is the child with the whole tree below it.
        roots[:] = [c.pid for c in alive(psutil.Process(process.pid).children()) if len(alive(tree(c.pid))) >= SIZE]
        return bool(roots)

    poll(started, 20, "GNU parallel to start the job")

    def kill() -> None:
        process.terminate()
        process.wait()

    return roots[0], kill


def _tsp(spooler: TaskSpooler) -> tuple[int, Callable[[], None]]:
    job = spooler("sh", "-c", TREE)
    poll(lambda: spooler.pid(job) > 0, 20, "task-spooler to start the job")
    pid = spooler.pid(job)
    root = psutil.Process(pid)

    def kill() -> None:
        spooler("-k", job)
        poll(lambda: not alive([root]), 20, "the task-spooler job to end", interval=0.001)
        spooler("-w", job)

    return pid, kill


if __name__ == "__main__":
    main(run)
