"""What the benchmark scripts share: results as markdown tables, verdicts, temporary homes, the
external tools (GNU parallel, task-spooler), process trees, and a description of the machine.

Every bench script has a `run(quick: bool) -> Result` and runs on its own with `main(run)`;
`bench_all.py` runs them all and writes docs/benchmarks.md. `quick=True` uses tiny parameters
(the smoke test runs that); numbers are only worth reading from a full run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

# The real interpreter: `python3` on PATH may be a wrapper script (pyenv) that costs 60 ms a start.
PY = sys.executable
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from supervisor import Supervisor, launch, lifecycle  # noqa: E402 - after making the checkout importable

# The two ways a start can go, compared side by side: through the home's launcher, and directly.
MODES = {"launcher": "1", "direct": "0"}

# -- numbers ---------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, interpolated between the nearest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ms(seconds: float) -> str:
    value = seconds * 1000
    if value < 0.1:
        return f"{value * 1000:.1f} µs"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms" if value < 1000 else f"{value:,.0f} ms"


def mib(size: float) -> str:
    return f"{size / 2**20:.2f} MiB" if abs(size) < 10 * 2**20 else f"{size / 2**20:,.0f} MiB"


# -- results ---------------------------------------------------------------------------------------

@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str | None = None
    # Columns of text (left-aligned); the others hold numbers and are right-aligned.
    text_columns: tuple[int, ...] = (0,)

    def markdown(self) -> str:
        lines = [f"*{self.caption}*", ""] if self.caption else []
        lines.append("| " + " | ".join(self.headers) + " |")
        lines.append("|" + "|".join("---" if i in self.text_columns else "---:" for i in range(len(self.headers)))
                     + "|")
        lines.extend("| " + " | ".join(row) + " |" for row in self.rows)
        return "\n".join(lines)


@dataclass
class Verdict:
    target: str
    met: bool | None
    detail: str

    def line(self) -> str:
        word = "not measured" if self.met is None else "met" if self.met else "NOT met"
        return f"- **{self.target}**: {word} — {self.detail}"


def at_most(target: str, value: float, limit: float, show: Callable[[float], str], what: str) -> Verdict:
    """The verdict on `value` against an upper `limit`, saying by how much it is met or missed."""
    if value <= limit:
        detail = f"{what} {show(value)}, {100 * (1 - value / limit):.0f}% under the limit of {show(limit)}"
    else:
        detail = f"{what} {show(value)}, {value / limit:.2f}× the limit of {show(limit)}"
    return Verdict(target, value <= limit, detail)


@dataclass
class Result:
    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def markdown(self, heading: str = "##") -> str:
        parts = [f"{heading} {self.title}", ""]
        for table in self.tables:
            parts += [table.markdown(), ""]
        if self.verdicts:
            parts += [v.line() for v in self.verdicts] + [""]
        for note in self.notes:
            parts += [note, ""]
        return "\n".join(parts).rstrip() + "\n"


def main(run: Callable[[bool], Result]) -> None:
    """Command line of a bench script: run it (`--quick` for tiny parameters) and print its tables."""
    parser = argparse.ArgumentParser(description=(run.__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny parameters: checks the script, not the speed")
    args = parser.parse_args()
    print(timed(run, args.quick).markdown())


def call_times(count: int, call: Callable[[], object]) -> list[float]:
    """The wall time of `count` calls of `call`, each alone, after one unmeasured warm-up call."""
    call()
    values = []
    for _ in range(count):
        began = time.perf_counter()
        call()
        values.append(time.perf_counter() - began)
    return values


def timed(run: Callable[[bool], Result], quick: bool) -> Result:
    began = time.monotonic()
    result = run(quick)
    result.seconds = time.monotonic() - began
    return result


def write_section(path: Path, result: Result) -> None:
    """Put the result into the report at `path` (`--write` of a bench script): its section in place of
    an earlier one with its title (else before "## Reproducing", else at the end), and its verdicts
    into the Targets table when it has their rows. The rest of the report stays as it is."""
    text = path.read_text() if path.is_file() else "# mgsup benchmarks\n"
    section = result.markdown() + f"\n*({result.seconds:.1f} s)*\n"
    heading = f"## {result.title}"
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + ("\n" + text[end + 1:] if end >= 0 else "")
    elif "\n## Reproducing" in text:
        at = text.index("\n## Reproducing") + 1
        text = text[:at] + section + "\n" + text[at:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    lines = text.split("\n")
    for verdict in result.verdicts:
        word = "not measured" if verdict.met is None else "met" if verdict.met else "**not met**"
        row = f"| {verdict.target} | {word} | {verdict.detail} |"
        found = [i for i, line in enumerate(lines) if line.startswith(f"| {verdict.target} |")]
        if found:
            lines[found[0]] = row
        elif "## Targets" in lines:
            # After the last row of the Targets table.
            at = lines.index("## Targets") + 1
            while at < len(lines) and not lines[at].startswith("|"):
                at += 1
            while at < len(lines) and lines[at].startswith("|"):
                at += 1
            lines.insert(at, row)
    path.write_text("\n".join(lines))


# -- mgsup homes and processes ---------------------------------------------------------------------

@contextlib.contextmanager
def temp_home(max_concurrent: int = 10) -> Iterator[Supervisor]:
    """A Supervisor on a fresh temporary state directory; every shell of it is stopped afterwards."""
    home = Path(tempfile.mkdtemp(prefix="mgsup-bench-"))
    try:
        yield Supervisor(home, max_concurrent=max_concurrent)
    finally:
        sup = Supervisor(home, max_concurrent=max_concurrent)
        for shell in sup.list_shells():
            if shell["status"] in lifecycle.LIVE:
                sup.kill_shell(shell["shell_id"], grace=1.0)
        ids = {d.name for d in (home / "shells").iterdir()} if (home / "shells").is_dir() else set()
        kill_all(tagged(ids))
        launch.stop(str(home))
        # A monitor still hands its slot over (under the home's lock) after its shell has ended.
        poll(lambda: not monitors_of(home), 10, f"the monitors of {home} to exit")
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def start_mode(mode: str) -> Iterator[None]:
    """Starts go through the launcher (`launcher`) or directly (`direct`) while active."""
    before = os.environ.get(launch.ENABLE_VAR)
    os.environ[launch.ENABLE_VAR] = MODES[mode]
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(launch.ENABLE_VAR, None)
        else:
            os.environ[launch.ENABLE_VAR] = before


def warm_launcher(sup: Supervisor) -> None:
    """Start the home's launcher (one start) and wait until it answers."""
    with start_mode("launcher"):
        sup.wait_shell(sup.start_shell(["true"]), timeout=60)
    poll(lambda: launch.launcher_pid(str(sup.home)) is not None, 30, "the launcher to answer")


def monitors_of(home: Path) -> list[psutil.Process]:
    """Live monitor processes of the shells of `home` (their command line names the home)."""
    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if str(home) in p.cmdline() and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
    return found


def tagged(shell_ids: set[str]) -> list[psutil.Process]:
    """Live processes that belong to one of `shell_ids` (by the MGSUP_SHELL_ID tag in their environment)."""
    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if p.status() != psutil.STATUS_ZOMBIE and p.environ().get("MGSUP_SHELL_ID") in shell_ids:
                found.append(p)
    return found


def tree(pid: int) -> list[psutil.Process]:
    """The process `pid` and all its descendants (empty when it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of `processes` still running (psutil checks pid *and* start time; zombies do not count)."""
    left = []
    for p in processes:
        with contextlib.suppress(psutil.Error):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
    return left


def kill_all(processes: list[psutil.Process]) -> None:
    """SIGKILL each of `processes` that still runs and wait until they are gone."""
    for p in alive(processes):
        with contextlib.suppress(psutil.Error):
            p.kill()
    # Orphans are reaped by init in its own time: a zombie counts as gone.
    poll(lambda: not alive(processes), 5, "killed processes to end")


def poll(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def pss(pid: int) -> int:
    """Proportional set size of `pid` in bytes: its private pages plus its share of shared ones."""
    return int(psutil.Process(pid).memory_full_info().pss)


# -- external tools --------------------------------------------------------------------------------

def parallel_path() -> str | None:
    """GNU parallel, when installed (moreutils ships an unrelated `parallel`)."""
    path = shutil.which("parallel")
    if path is None:
        return None
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    return path if "GNU parallel" in version else None


def tsp_path() -> str | None:
    """task-spooler: `tsp` on Debian, `ts` elsewhere (moreutils also has a `ts`: check it is the spooler)."""
    for name in ("tsp", "ts"):
        path = shutil.which(name)
        if path is None:
            continue
        version = subprocess.run([path, "-V"], capture_output=True, text=True, check=False,
                                 stdin=subprocess.DEVNULL, timeout=5)
        if "Task Spooler" in version.stdout + version.stderr:
            return path
    return None


class TaskSpooler:
    """A private task-spooler server (own socket and output folder) with `slots` jobs at once."""

    def __init__(self, path: str, slots: int) -> None:
        self.path = path
        self.folder = tempfile.mkdtemp(prefix="mgsup-bench-tsp-")
        self.env = {**os.environ, "TS_SOCKET": os.path.join(self.folder, "socket"), "TMPDIR": self.folder,
                    "TS_SLOTS": str(slots), "TS_MAXFINISHED": "100000"}

    def __call__(self, *args: str) -> str:
        return subprocess.run([self.path, *args], env=self.env, capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL, timeout=60).stdout.strip()

    def pid(self, job: str) -> int:
        return int(self("-p", job))

    def close(self) -> None:
        """Stop the server and whatever it still runs, and remove its folder."""
        runners = [p for p in psutil.process_iter() if _env_of(p).get("TS_SOCKET") == self.env["TS_SOCKET"]]
        kill_all([q for p in runners for q in tree(p.pid)])
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> TaskSpooler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _env_of(p: psutil.Process) -> dict[str, str]:
    try:
        return p.environ()
    except psutil.Error:
        return {}


# -- the machine -----------------------------------------------------------------------------------

def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    return {
        "CPU": cpu,
        "cores": f"{os.cpu_count()} logical ({psutil.cpu_count(logical=False) or '?'} physical)",
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "kernel": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_version()} ({PY})",
        "state directory filesystem": _filesystem(tempfile.gettempdir()),
    }


def _filesystem(path: str) -> str:
    best = None
    for part in psutil.disk_partitions(all=True):
        if path.startswith(part.mountpoint) and (best is None or len(part.mountpoint) > len(best.mountpoint)):
            best = part
    return f"{best.fstype} at {best.mountpoint} (temporary homes in {path})" if best else path
