"""The last 100 lines of a huge log: time and peak memory of `get_shell_output(tail_lines=100)`.

The log is the stdout.log of a real finished shell, grown to the size under test by writing
base64 lines into it directly (as fast as the disk takes them). mgsup's cost must not depend on
the size; it is compared with reading the whole file (measured in a fresh interpreter, by its
peak RSS) and with the baseline manager, whose reader thread must ingest the whole output and keeps
only the last 10,000 lines.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
import tracemalloc
from pathlib import Path

from baseline_manager import RING_LINES, BaselineManager
from bench_common import PY, Result, Table, Verdict, at_most, main, mib, ms, percentile, temp_home

from supervisor import Supervisor

TAIL = 100
TIME_TARGET = 0.010
# Base64 text: 76 characters and a newline per line, like `head -c N /dev/urandom | base64`.
BLOCK = base64.encodebytes(os.urandom(3 * 2**18))

NAIVE = r"""
import resource, sys, time
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
began = time.perf_counter()
with open(sys.argv[1], "rb") as f:
    data = f.read()
tail = b"\n".join(data.rsplit(b"\n", int(sys.argv[2]) + 1)[1:]).decode("utf-8", errors="replace")
elapsed = time.perf_counter() - began
print(elapsed, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024, len(tail))
"""


def run(quick: bool) -> Result:
    """get_shell_output(tail_lines=100) on a 1 GiB log: time and peak memory, against whole-file reads."""
    sizes = [2**20, 8 * 2**20] if quick else [2**20, 2**30]
    calls = 5 if quick else 50
    big = sizes[-1]
    result = Result("output", f"`get_shell_output(tail_lines={TAIL})` on logs up to {mib(big)}")
    table = Table(["method", "log size", "time p50", "time p95", "peak memory", "lines kept"], text_columns=(0, 4, 5))
    mgsup_at: dict[int, tuple[float, int]] = {}
    with temp_home() as sup:
        shell_id = sup.start_shell(["true"])
        sup.wait_shell(shell_id, timeout=30)
        log = Path(sup.get_shell_status(shell_id)["stdout_path"])
        for size in sizes:
            _grow(log, size)
            times = _times(sup, shell_id, calls)
            peak = _peak(sup, shell_id)
            mgsup_at[size] = (percentile(times, 50), peak)
            table.rows.append([f"mgsup `get_shell_output(tail_lines={TAIL})`", mib(log.stat().st_size),
                               ms(percentile(times, 50)), ms(percentile(times, 95)),
                               f"{peak / 1024:,.0f} KiB (tracemalloc)", "all (on disk)"])
        naive_time, naive_peak = _naive(log)
        table.rows.append(["read the whole file (`f.read()`, `rsplit`)", mib(log.stat().st_size), ms(naive_time),
                           "—", f"{mib(naive_peak)} (RSS growth)", "all (on disk)"])
        ingest, ring_time, ring_bytes, dropped = _ring(log)
        table.rows.append([f"baseline ring buffer `get_shell_output` (after {ingest:.1f} s ingesting it)",
                           mib(log.stat().st_size), ms(ring_time), "—", f"{mib(ring_bytes)} (held for the job)",
                           f"last {RING_LINES:,}; {dropped:,} lines dropped"])
    result.tables.append(table)
    big_time, big_peak = mgsup_at[big]
    small_time, small_peak = mgsup_at[sizes[0]]
    result.verdicts += [
        at_most(f"tail of a {mib(big)} log < 10 ms", big_time, TIME_TARGET, ms, "p50"),
        Verdict("O(1) memory", big_peak <= 1.5 * small_peak,
                f"peak {big_peak / 1024:,.0f} KiB at {mib(big)} vs {small_peak / 1024:,.0f} KiB at {mib(sizes[0])} "
                f"({big_peak / max(small_peak, 1):.2f}×)"),
    ]
    result.notes.append(
        "mgsup reads the log backwards in 64 KiB blocks from the end until it has found the lines asked "
        f"for, so time and memory follow the size of the answer (here {TAIL} lines of 77 bytes), not the "
        f"size of the log ({small_time * 1000:.2f} ms at {mib(sizes[0])}, {big_time * 1000:.2f} ms at {mib(big)}).")
    return result


def _grow(log: Path, size: int) -> None:
    """Append whole base64 lines to `log` until it is (just under) `size` bytes."""
    with open(log, "ab") as f:
        while True:
            piece = BLOCK[: size - f.tell()]
            piece = piece[: piece.rfind(b"\n") + 1]
            if not piece:
                return
            f.write(piece)


def _times(sup: Supervisor, shell_id: str, calls: int) -> list[float]:
    sup.get_shell_output(shell_id, tail_lines=TAIL)
    values = []
    for _ in range(calls):
        began = time.perf_counter()
        out = sup.get_shell_output(shell_id, tail_lines=TAIL)
        values.append(time.perf_counter() - began)
    if out["stdout"].count("\n") != TAIL:
        raise RuntimeError(f"expected {TAIL} lines, got {out['stdout'].count(chr(10))}")
    return values


def _peak(sup: Supervisor, shell_id: str) -> int:
    """Peak Python memory allocated during one call."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        sup.get_shell_output(shell_id, tail_lines=TAIL)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _naive(log: Path) -> tuple[float, int]:
    """(time, peak RSS growth) of reading the whole file for its tail, in a fresh interpreter."""
    out = subprocess.run([PY, "-c", NAIVE, str(log), str(TAIL)], check=True, capture_output=True, text=True,
                         timeout=300).stdout.split()
    return float(out[0]), int(out[1])


def _ring(log: Path) -> tuple[float, float, int, int]:
    """(ingest time, tail time, bytes held by the ring, lines dropped) of the baseline manager."""
    manager = BaselineManager()
    try:
        began = time.perf_counter()
        shell_id = manager.start_shell(f"cat '{log}'")
        manager.wait_shell(shell_id, timeout=300)
        ingest = time.perf_counter() - began
        times = []
        for _ in range(20):
            began = time.perf_counter()
            manager.get_shell_output(shell_id, tail_lines=TAIL)
            times.append(time.perf_counter() - began)
        kept, held = manager.ring_usage(shell_id)
        lines = log.stat().st_size // len(BLOCK.split(b"\n", 1)[0] + b"\n")
        return ingest, percentile(times, 50), held, max(0, lines - kept)
    finally:
        manager.close()


if __name__ == "__main__":
    main(run)
