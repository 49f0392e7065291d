"""Memory: the PSS of an idle mgsup monitor, against what the other designs pay per job.

PSS (proportional set size) charges each process its private pages plus its share of pages it
shares with others, so N monitors cost N × PSS. The baseline manager pays inside the caller's
process: two reader threads and two ring buffers per job, measured as the growth of the caller's
PSS per job, idle and with full buffers. GNU parallel and task-spooler are measured while they
run one idle job.
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
from collections.abc import Iterator

import psutil
from baseline_manager import RING_LINES, BaselineManager
from bench_common import (
    MODES,
    Result,
    Table,
    TaskSpooler,
    alive,
    at_most,
    kill_all,
    main,
    mib,
    parallel_path,
    poll,
    pss,
    start_mode,
    temp_home,
    tree,
    tsp_path,
    warm_launcher,
)

from supervisor import Supervisor, launch

TARGET = 1_500_000
IDLE = ["sleep", "300"]
# Fills both ring buffers: RING_LINES lines of 77 bytes on each stream, then idles.
FILL = (f"i=0; while [ $i -lt {RING_LINES} ]; do echo {'x' * 76}; echo {'y' * 76} >&2; i=$((i+1)); done; "
        "exec sleep 300")


def run(quick: bool) -> Result:
    """PSS of an idle monitor vs the baseline's per-job cost and a parallel / task-spooler process."""
    jobs = 2 if quick else 10
    result = Result("memory", "Memory per supervised job (PSS)")
    table = Table(["process", "what it pays for", "PSS", "USS", "RSS"], text_columns=(0, 1))
    per_job: dict[str, float] = {}
    for mode in MODES:
        with temp_home(max_concurrent=jobs + 1) as sup, start_mode(mode):
            if mode == "launcher":
                warm_launcher(sup)
            first = _monitor(sup, sup.start_shell(IDLE))
            table.rows.append([f"mgsup monitor, {mode} (the only one running)", "one job", *_row(_usage(first))])
            others = [_monitor(sup, sup.start_shell(IDLE)) for _ in range(jobs - 1)]
            shared = [pss(pid) for pid in [first, *others]]
            mean = sum(shared) / len(shared)
            table.rows.append([f"mgsup monitor, {mode} (mean of {jobs} running)", "one job", mib(mean), "—", "—"])
            per_job[mode] = mean
            if mode == "launcher":
                # The launcher and its spare (the process forked in advance to become the next monitor).
                helpers = [p for p in _launcher_processes(sup.home) if p.pid not in [first, *others]]
                usage = tuple(map(sum, zip(*(_usage(p.pid) for p in helpers), strict=True)))
                table.rows.append([f"mgsup launcher and its spare ({len(helpers)} processes per home; they exit "
                                   f"after {launch.IDLE_SECONDS:g} s idle)",
                                   f"every start on the home; 1/{jobs} of it per job here", *_row(usage)])
                per_job[mode] += usage[0] / jobs
    table.rows.append(["mgsup, in the caller's process", "per job", "0 (no thread, no buffer)", "—", "—"])
    idle_cost = _baseline_cost(jobs, " ".join(IDLE))
    table.rows.append([f"baseline manager, caller's PSS growth / {jobs} idle jobs", "2 threads + empty rings",
                       mib(idle_cost), "—", "—"])
    full_cost = _baseline_cost(max(1, jobs // 2), FILL)
    table.rows.append(["baseline manager, caller's PSS growth / job with full rings",
                       f"2 threads + 2 × {RING_LINES:,} lines", mib(full_cost), "—", "—"])
    parallel = parallel_path()
    if parallel is not None:
        table.rows.append(["GNU parallel (perl)", "a whole batch (up to -j jobs)", *_row(_parallel(parallel))])
    else:
        result.notes.append("GNU parallel is not installed: its row is left out.")
    tsp = tsp_path()
    if tsp is not None:
        server, runner = _tsp(tsp)
        table.rows += [["task-spooler server", "the whole queue", *_row(server)],
                       ["task-spooler job runner (a `tsp` process per running job)", "one job", *_row(runner)]]
    else:
        result.notes.append("task-spooler is not installed: its rows are left out.")
    result.tables.append(table)
    for mode in MODES:
        result.verdicts.append(at_most(f"monitor PSS ≤ {TARGET / 1e6:g} MB per running job ({mode})", per_job[mode],
                                       TARGET, lambda b: f"{b / 1e6:.2f} MB",
                                       f"mean of {jobs} running" + (", launcher's share included"
                                                                       if mode == "launcher" else "")))
    result.notes.append(
        "A monitor started directly is a stdlib-only interpreter of its own (`-I -S`); one forked by the "
        "launcher shares the launcher's pages and owns only those it writes to, so the mean drops as more run "
        "and it is smaller still. PSS divides each shared page among the processes that map it. The "
        "baseline's threads and buffers live in the caller, so they die with it (and so does the record of "
        "the job).")
    return result


Usage = tuple[int, int, int]


def _usage(pid: int) -> Usage:
    """(PSS, USS, RSS) of `pid` in bytes."""
    info = psutil.Process(pid).memory_full_info()
    return int(info.pss), int(info.uss), int(info.rss)


def _row(usage: Usage) -> list[str]:
    return [mib(value) for value in usage]


def _launcher_processes(home: object) -> list[psutil.Process]:
    found = []
    for p in alive(list(psutil.process_iter())):
        with contextlib.suppress(psutil.Error):
            cmdline = p.cmdline()
            if launch.LAUNCHER_FILE in cmdline and str(home) in cmdline:
                found.append(p)
    return found


def _monitor(sup: Supervisor, shell_id: str) -> int:
    monitor = sup.store.state(shell_id).monitor_pid
    if monitor is None:
        raise RuntimeError(f"{shell_id} has no monitor on record")
    return monitor


def _baseline_cost(jobs: int, command: str) -> float:
    """Growth of this process's PSS per job while the baseline manager runs `jobs` copies of `command`."""
    gc.collect()
    before = pss(os.getpid())
    manager = BaselineManager(max_concurrent=jobs)
    try:
        ids = [manager.start_shell(command) for _ in range(jobs)]
        poll(lambda: all(manager.ring_usage(i)[0] >= _expected_lines(command) for i in ids), 60,
             "the baseline's ring buffers to fill")
        gc.collect()
        return (pss(os.getpid()) - before) / jobs
    finally:
        # The jobs' sleeps outlive a kill of their shells and would hold the readers' pipes open.
        kill_all([p for i in ids for p in tree(int(manager.get_shell_status(i)["pid"]))])
        manager.close()


def _expected_lines(command: str) -> int:
    return 2 * RING_LINES if command == FILL else 0


def _parallel(path: str) -> Usage:
    process = subprocess.Popen([path, "-j1", "-N0", *IDLE, ":::", "1"], stdin=subprocess.DEVNULL)
    try:
        # parallel runs short helper processes of its own: wait for the job itself.
        poll(lambda: any(_cmdline(p) == IDLE for p in tree(process.pid)[1:]), 20, "GNU parallel's job")
        return _usage(process.pid)
    finally:
        family = tree(process.pid)
        kill_all(family)
        process.wait()


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _tsp(path: str) -> tuple[Usage, Usage]:
    with TaskSpooler(path, slots=1) as spooler:
        job = spooler(*IDLE)
        poll(lambda: spooler.pid(job) > 0, 20, "task-spooler's job")
        runner = psutil.Process(spooler.pid(job)).ppid()
        servers = [p for p in _spooler_processes(spooler) if p.pid != runner and p.ppid() != runner]
        return _usage(servers[0].pid), _usage(runner)


def _spooler_processes(spooler: TaskSpooler) -> Iterator[psutil.Process]:
    for p in alive(list(psutil.process_iter())):
        with contextlib.suppress(psutil.Error):
            if p.name() in ("tsp", "ts") and p.environ().get("TS_SOCKET") == spooler.env["TS_SOCKET"]:
                yield p


if __name__ == "__main__":
    main(run)
