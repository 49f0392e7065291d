"""Throughput: N short jobs through a limit of 10 at once, total wall time from the first call
until every job has ended.

mgsup queues them (`queue=True`; monitors hand freed slots to the queue) and waits for each;
GNU parallel runs `-j10`; task-spooler a private server with 10 slots; the baseline manager and
raw Popen are driven by a pool of 10 threads.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from baseline_manager import BaselineManager
from bench_common import Result, Table, TaskSpooler, Verdict, at_most, main, ms, parallel_path, temp_home, tsp_path

LIMIT = 10
SLEEP = "0.01"
RATIO_TARGET = 1.5


def run(quick: bool) -> Result:
    """N short jobs through a limit of 10: mgsup queue, GNU parallel, task-spooler, baseline, Popen."""
    count = 20 if quick else 200
    result = Result("queue", f"{count} short jobs (`sleep {SLEEP}`) through a limit of {LIMIT}")
    table = Table(["method", "submit all", "total wall time", "per job", "vs GNU parallel"])
    totals: dict[str, tuple[float | None, float]] = {}

    submitted, total, queued = _mgsup(count)
    totals["mgsup `start_shell(queue=True)` + `wait_shell`"] = (submitted, total)
    totals[f"mgsup, pool of {LIMIT} threads each `start_shell` + `wait_shell`"] = (None, _mgsup_pool(count))
    parallel = parallel_path()
    if parallel is not None:
        totals[f"GNU parallel `-j{LIMIT}`"] = (None, _parallel(parallel, count))
    else:
        result.notes.append("GNU parallel is not installed: its row and the ratio are left out.")
    tsp = tsp_path()
    if tsp is not None:
        totals[f"task-spooler `-S {LIMIT}`"] = _tsp(tsp, count)
    else:
        result.notes.append("task-spooler is not installed: its row is left out.")
    totals[f"baseline manager, pool of {LIMIT} threads"] = (None, _baseline(count))
    totals[f"raw `subprocess.run`, pool of {LIMIT} threads"] = (None, _popen(count))

    reference = totals.get(f"GNU parallel `-j{LIMIT}`")
    for name, (submit, total) in totals.items():
        ratio = f"{total / reference[1]:.2f}×" if reference else "—"
        table.rows.append([name, ms(submit) if submit is not None else "—", ms(total), ms(total / count), ratio])
    result.tables.append(table)
    mgsup_total = totals["mgsup `start_shell(queue=True)` + `wait_shell`"][1]
    if reference:
        result.verdicts.append(at_most(f"within {RATIO_TARGET}× of GNU parallel -j{LIMIT}", mgsup_total / reference[1],
                                       RATIO_TARGET, lambda r: f"{r:.2f}×", "mgsup / GNU parallel ="))
    else:
        result.verdicts.append(Verdict(f"within {RATIO_TARGET}× of GNU parallel -j{LIMIT}", None,
                                       "GNU parallel is not installed"))
    result.notes.append(
        f"The ideal is {count // LIMIT} rounds of {float(SLEEP) * 1000:.0f} ms = "
        f"{ms(count // LIMIT * float(SLEEP))}; the rest is the cost of starting, recording and reaping jobs "
        "on two cores. Each mgsup job costs a monitor process (one interpreter start) and a few state "
        "writes; each queued job is started by the monitor of the job that ended before it. "
        f"In the queued run, {queued} of {count} jobs waited in the queue: one caller starting shells one "
        "after the other (each `start_shell` that gets a slot waits for its monitor's answer) is slower than "
        "10 ms jobs end, so slots are mostly free and the submitting loop is the bottleneck.")
    pool_total = totals[f"mgsup, pool of {LIMIT} threads each `start_shell` + `wait_shell`"][1]
    if reference and mgsup_total / reference[1] > RATIO_TARGET:
        result.notes.append(
            "Why the target is missed: a `start_shell` that finds a free slot returns only once the job runs "
            "(the contract: a returned running shell has a real pid), so one caller pays the full start "
            "latency per job, in series. Even when 10 threads submit in parallel mgsup is at "
            f"{pool_total / reference[1]:.2f}× GNU parallel: each job costs a fresh interpreter for its "
            "monitor, which bounds throughput on two cores. That per-job monitor is what makes a job "
            "outlive its caller with its output and exit code recorded, which parallel and the baseline do "
            "not offer; the cost only shows for jobs this short.")
    return result


def _mgsup(count: int) -> tuple[float, float, int]:
    """(submit time, total time, how many jobs waited in the queue)."""
    with temp_home(max_concurrent=LIMIT) as sup:
        began = time.perf_counter()
        ids = [sup.start_shell(["sleep", SLEEP], queue=True) for _ in range(count)]
        submitted = time.perf_counter() - began
        statuses = [sup.wait_shell(shell_id, timeout=300)["status"] for shell_id in ids]
        total = time.perf_counter() - began
        queued = sum(1 for shell_id in ids if sup.store.state(shell_id).queued_at is not None)
    _check(statuses, count)
    return submitted, total, queued


def _mgsup_pool(count: int) -> float:
    with temp_home(max_concurrent=LIMIT) as sup:
        statuses: list[str] = []

        def job() -> None:
            shell_id = sup.start_shell(["sleep", SLEEP], queue=True)
            statuses.append(sup.wait_shell(shell_id, timeout=300)["status"])

        total = _pool(count, job)
    _check(statuses, count)
    return total


def _check(statuses: list[str], count: int) -> None:
    if statuses.count("stopped") != count:
        raise RuntimeError(f"mgsup: not every job stopped cleanly: {sorted(set(statuses))}")


def _parallel(path: str, count: int) -> float:
    began = time.perf_counter()
    subprocess.run([path, f"-j{LIMIT}", "-N0", "sleep", SLEEP, ":::", *map(str, range(count))], check=True,
                   stdin=subprocess.DEVNULL, timeout=300)
    return time.perf_counter() - began


def _tsp(path: str, count: int) -> tuple[float, float]:
    with TaskSpooler(path, slots=LIMIT) as spooler:
        spooler("-S", str(LIMIT))
        began = time.perf_counter()
        jobs = [spooler("sleep", SLEEP) for _ in range(count)]
        submitted = time.perf_counter() - began
        for job in jobs:
            spooler("-w", job)
        total = time.perf_counter() - began
    return submitted, total


def _baseline(count: int) -> float:
    manager = BaselineManager(max_concurrent=LIMIT)

    def job() -> None:
        manager.wait_shell(manager.start_shell(f"sleep {SLEEP}"), timeout=60)

    try:
        return _pool(count, job)
    finally:
        manager.close()


def _popen(count: int) -> float:
    return _pool(count, lambda: subprocess.run(["sleep", SLEEP], check=True))


def _pool(count: int, job: Callable[[], object]) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(LIMIT) as pool:
        for future in [pool.submit(job) for _ in range(count)]:
            future.result()
    return time.perf_counter() - began


if __name__ == "__main__":
    main(run)
