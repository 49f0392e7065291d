"""Throughput: N jobs of `true` through a limit of 10 at once, total wall time from the first call
until every job has ended.

mgsup queues them (`queue=True`; monitors hand freed slots to the queue) and waits for each,
through the home's launcher and directly (`MGSUP_LAUNCHER=0`); GNU parallel runs `-j10`;
task-spooler a private server with 10 slots; the baseline manager and raw Popen are driven by a
pool of 10 threads.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from baseline_manager import BaselineManager
from bench_common import (
    MODES,
    Result,
    Table,
    TaskSpooler,
    Verdict,
    at_most,
    main,
    ms,
    parallel_path,
    start_mode,
    temp_home,
    tsp_path,
    warm_launcher,
)

LIMIT = 10
JOB = "true"
RATIO_TARGET = 1.0
REPS = 3


def run(quick: bool) -> Result:
    """N jobs of `true` through a limit of 10: mgsup (launcher, direct), GNU parallel, task-spooler, baseline, Popen."""
    count = 20 if quick else 200
    reps = 1 if quick else REPS
    result = Result("queue", f"{count} jobs (`{JOB}`) through a limit of {LIMIT}, the median of {reps} "
                             f"round{'s' if reps > 1 else ''}")
    table = Table(["method", "submit all", "total wall time", "per job", "vs GNU parallel"])
    queued: dict[str, int] = {}
    parallel, tsp = parallel_path(), tsp_path()
    if parallel is None:
        result.notes.append("GNU parallel is not installed: its row and the ratio are left out.")
    if tsp is None:
        result.notes.append("task-spooler is not installed: its row is left out.")
    # The methods compared by the targets run in rounds, one after the other, so that a change in the
    # machine's load between them shows in every method rather than in one.
    rounds: dict[str, list[tuple[float | None, float]]] = {}
    for _ in range(reps):
        for mode in MODES:
            submitted, total, queued[mode] = _mgsup(count, mode)
            rounds.setdefault(f"mgsup `start_shell(queue=True)` + `wait_shell`, {mode}", []).append(
                (submitted, total))
        if parallel is not None:
            rounds.setdefault(f"GNU parallel `-j{LIMIT}`", []).append((None, _parallel(parallel, count)))
        if tsp is not None:
            rounds.setdefault(f"task-spooler `-S {LIMIT}`", []).append(_tsp(tsp, count))
    totals: dict[str, tuple[float | None, float]] = {name: _median(values) for name, values in rounds.items()}
    for mode in MODES:
        totals[f"mgsup, pool of {LIMIT} threads each `start_shell` + `wait_shell`, {mode}"] = (
            None, _mgsup_pool(count, mode))
    totals[f"baseline manager, pool of {LIMIT} threads"] = (None, _baseline(count))
    totals[f"raw `subprocess.run`, pool of {LIMIT} threads"] = (None, _popen(count))

    reference = totals.get(f"GNU parallel `-j{LIMIT}`")
    for name, (submit, total) in totals.items():
        ratio = f"{total / reference[1]:.2f}×" if reference else "—"
        table.rows.append([name, ms(submit) if submit is not None else "—", ms(total), ms(total / count), ratio])
    result.tables.append(table)
    spooler = totals.get(f"task-spooler `-S {LIMIT}`")
    for mode in MODES:
        mgsup_total = totals[f"mgsup `start_shell(queue=True)` + `wait_shell`, {mode}"][1]
        target = f"{count} × `{JOB}`, limit {LIMIT}: ≤ {RATIO_TARGET}× GNU parallel -j{LIMIT} ({mode})"
        if reference:
            result.verdicts.append(at_most(target, mgsup_total / reference[1], RATIO_TARGET, lambda r: f"{r:.2f}×",
                                           "mgsup / GNU parallel ="))
        else:
            result.verdicts.append(Verdict(target, None, "GNU parallel is not installed"))
        if spooler and mode == "launcher":
            result.verdicts.append(at_most(f"moonshot: ≤ task-spooler -S {LIMIT} ({mode})", mgsup_total / spooler[1],
                                           1.0, lambda r: f"{r:.2f}×", "mgsup / task-spooler ="))
    result.notes.append(
        f"The jobs themselves take no time: the wall time is the cost of starting, recording and reaping "
        f"{count} jobs on two cores. Each mgsup job is a record on disk, an admission under the home's lock, "
        "a monitor (a fork of the launcher, or an interpreter of its own when started directly) that "
        "records the end and hands its slot to the next queued shell, and a `wait_shell`. In the queued "
        f"runs, {queued['launcher']} (launcher) and {queued['direct']} (direct) of {count} jobs waited in the "
        "queue; the others found a free slot and started at once.")
    return result


def _median(values: list[tuple[float | None, float]]) -> tuple[float | None, float]:
    """The round with the median total time."""
    ordered = sorted(values, key=lambda value: value[1])
    return ordered[len(ordered) // 2]


def _mgsup(count: int, mode: str) -> tuple[float, float, int]:
    """(submit time, total time, how many jobs waited in the queue)."""
    with temp_home(max_concurrent=LIMIT) as sup:
        warm_launcher(sup)
        with start_mode(mode):
            began = time.perf_counter()
            ids = [sup.start_shell([JOB], queue=True) for _ in range(count)]
            submitted = time.perf_counter() - began
            statuses = [sup.wait_shell(shell_id, timeout=300)["status"] for shell_id in ids]
            total = time.perf_counter() - began
        queued = sum(1 for shell_id in ids if sup.store.state(shell_id).queued_at is not None)
    _check(statuses, count)
    return submitted, total, queued


def _mgsup_pool(count: int, mode: str) -> float:
    with temp_home(max_concurrent=LIMIT) as sup:
        warm_launcher(sup)
        statuses: list[str] = []

        def job() -> None:
            shell_id = sup.start_shell([JOB], queue=True)
            statuses.append(sup.wait_shell(shell_id, timeout=300)["status"])

        with start_mode(mode):
            total = _pool(count, job)
    _check(statuses, count)
    return total


def _check(statuses: list[str], count: int) -> None:
    if statuses.count("stopped") != count:
        raise RuntimeError(f"mgsup: not every job stopped cleanly: {sorted(set(statuses))}")


def _parallel(path: str, count: int) -> float:
    began = time.perf_counter()
    subprocess.run([path, f"-j{LIMIT}", "-N0", JOB, ":::", *map(str, range(count))], check=True,
                   stdin=subprocess.DEVNULL, timeout=300)
    return time.perf_counter() - began


def _tsp(path: str, count: int) -> tuple[float, float]:
    with TaskSpooler(path, slots=LIMIT) as spooler:
        spooler("-S", str(LIMIT))
        began = time.perf_counter()
        jobs = [spooler(JOB) for _ in range(count)]
        submitted = time.perf_counter() - began
        for job in jobs:
            spooler("-w", job)
        total = time.perf_counter() - began
    return submitted, total


def _baseline(count: int) -> float:
    manager = BaselineManager(max_concurrent=LIMIT)

    def job() -> None:
        manager.wait_shell(manager.start_shell(JOB), timeout=60)

    try:
        return _pool(count, job)
    finally:
        manager.close()


def _popen(count: int) -> float:
    return _pool(count, lambda: subprocess.run([JOB], check=True))


def _pool(count: int, job: Callable[[], object]) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(LIMIT) as pool:
        for future in [pool.submit(job) for _ in range(count)]:
            future.result()
    return time.perf_counter() - began


if __name__ == "__main__":
    main(run)
