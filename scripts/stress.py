"""A randomized stress campaign against one state directory, then a check of the supervisor's invariants.

Several worker processes start, kill, wait for, list and read shells at random on one home with a
small limit, while a chaos loop SIGKILLs monitors and workers, briefly SIGSTOPs monitors, SIGKILLs
the monitors of jobs that cleared their environment (no tag to find them by), and fills the disk
for a moment (the home is a tmpfs of its own when the campaign may mount one). Every
job registers with an observer process over a Unix socket and keeps the connection open in all of
its processes (children and setsid daemons inherit it), so the observer sees the moment the last
process of the job is gone: the real end of the job's tree, whoever ended it. After a final drain
the campaign checks:

1. concurrency: no more jobs alive at once than the limit (from the job start times and the
   observer's end times);
2. every shell ended (stopped/failed/killed/lost); `running/` and `queue/` are empty;
3. no process of the campaign's shells (tagged job or monitor) is left, and no zombie;
4. every shell that ended by itself recorded its exit code, and its whole output unless the disk
   was full while it ran;
5. no undocumented exception escaped an API call, and no monitor.log holds a traceback.

    python scripts/stress.py --seed 7 --duration 120
    python scripts/stress.py --seed 7 --duration 5 --no-worker-kills --keep   # keep the home to inspect

Exit status 0 when every invariant holds, 1 otherwise (the violations are printed).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from supervisor import (  # noqa: E402
    InvalidRequest,
    LimitReached,
    ShellNotFound,
    StateDirError,
    Supervisor,
    proc,
)

# StateDirError: a start or a kill request while the disk is full.
EXPECTED_ERRORS = (LimitReached, ShellNotFound, InvalidRequest, TimeoutError, StateDirError)
# The drain gives up when no shell ended for this long.
DRAIN_SECONDS = 60.0
MODES = ("plain", "plain", "children", "daemon", "stubborn", "fail", "scrubbed")
FILLER = ".filler"

# The job: registers with the observer, logs its start, prints a known output, maybe starts
# children or a setsid daemon (all inheriting the observer connection), logs its end, exits.
JOB = r'''
import os, signal, socket, sys, time
sock_path, log_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
seconds, lines, code = float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
if mode == "scrubbed" and len(sys.argv) == 7:
    # The same process again with an empty environment: no tag; only its pid, group and session say whose it is.
    os.execve(sys.executable, [sys.executable, "-S", *sys.argv, os.environ["MGSUP_SHELL_ID"]], {})
sid = sys.argv[7] if mode == "scrubbed" else os.environ["MGSUP_SHELL_ID"]
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.connect(sock_path)
start = time.monotonic()
conn.sendall(f"{sid} {start!r}\n".encode())
conn.recv(3)
os.set_inheritable(conn.fileno(), True)
def log(word):
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, f"{word} {sid} {time.monotonic()!r}\n".encode())
    os.close(fd)
log("start")
def emit(first, last):
    for i in range(first, last):
        sys.stdout.write(f"{sid} out {i}\n")
        if i % 7 == 0:
            sys.stderr.write(f"{sid} err {i}\n")
    sys.stdout.flush()
    sys.stderr.flush()
emit(0, lines // 2)
if mode in ("children", "stubborn", "scrubbed"):
    for _ in range(2):
        if os.fork() == 0:
            time.sleep(seconds * 1.5)
            os._exit(0)
if mode == "daemon":
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(60)
        os._exit(0)
    os.wait()
time.sleep(seconds)
emit(lines // 2, lines)
log("end")
sys.exit(code)
'''


def expected_output(shell_id: str, lines: int) -> tuple[str, str]:
    out = "".join(f"{shell_id} out {i}\n" for i in range(lines))
    err = "".join(f"{shell_id} err {i}\n" for i in range(lines) if i % 7 == 0)
    return out, err


# -- the observer ---------------------------------------------------------------------------------

def observe(sock_path: str, out_path: str) -> None:
    """Record `reg ID START` when a job registers and `eof ID T` when its last process is gone."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(256)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    names: dict[int, str] = {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(out_path, "a", buffering=1) as out:
        while True:
            for key, _ in sel.select():
                if key.data is None:
                    conn, _ = listener.accept()
                    sel.register(conn, selectors.EVENT_READ, "conn")
                    continue
                conn = key.fileobj  # type: ignore[assignment]
                now = time.monotonic()
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                if data and conn.fileno() not in names:
                    sid, _, start = data.decode().strip().partition(" ")
                    names[conn.fileno()] = sid
                    out.write(f"reg {sid} {start}\n")
                    with contextlib.suppress(OSError):
                        conn.sendall(b"ok\n")
                elif not data:
                    out.write(f"eof {names.pop(conn.fileno(), '?')} {now!r}\n")
                    sel.unregister(conn)
                    conn.close()


# -- the workers ----------------------------------------------------------------------------------

@dataclass
class Worker:
    sup: Supervisor
    rng: random.Random
    root: Path
    self_kill: bool
    ids: list[str] = field(default_factory=list)

    def note(self, name: str, line: str) -> None:
        with open(self.root / name, "a") as f:
            f.write(line + "\n")

    def start(self) -> str:
        mode = self.rng.choice(MODES)
        seconds = round(self.rng.choice((0.0, 0.05, 0.2, 0.5, 1.0, 2.0)) * self.rng.random(), 3)
        lines = self.rng.choice((0, 1, 10, 200, 3000))
        code = 3 if mode == "fail" else 0
        timeout = self.rng.choice((None, None, None, 0.3, 1.5))
        queue = self.rng.random() < 0.5
        argv = [sys.executable, "-S", str(self.root / "job.py"), str(self.root / "obs.sock"),
                str(self.root / "jobs.log"), mode, str(seconds), str(lines), str(code)]
        sid = self.sup.start_shell(argv, queue=queue, timeout=timeout)
        # Written before anything else can happen to this process: the checker needs every id.
        self.note("shells.jsonl", json.dumps({"id": sid, "mode": mode, "lines": lines, "code": code,
                                               "timeout": timeout, "queue": queue}))
        self.ids.append(sid)
        if self.self_kill and self.rng.random() < 0.03:
            os.kill(os.getpid(), signal.SIGKILL)
        return sid

    def kill(self, sid: str) -> None:
        sig = self.rng.choice(("SIGTERM", "SIGTERM", "SIGINT", "SIGKILL"))
        answer = self.sup.kill_shell(sid, signal=sig, grace=self.rng.choice((0.0, 0.2, 1.0)))
        if answer["status"] == "killed" and answer.get("message") != "Removed from queue":
            left = proc.tagged(sid)
            if left:
                self.note("violations.log", f"kill_shell({sid}) returned with processes left: {sorted(left)}")

    def step(self) -> None:
        op = self.rng.random()
        sid = self.rng.choice(self.ids) if self.ids else None
        if op < 0.35 or sid is None:
            new = self.start()
            if self.rng.random() < 0.15:
                self.kill(new)
        elif op < 0.5:
            self.kill(sid)
        elif op < 0.65:
            self.sup.wait_shell(sid, timeout=self.rng.choice((0, 0.05, 0.3)))
        elif op < 0.75:
            self.sup.list_shells(self.rng.choice((None, "running", "queued", "lost")))
        elif op < 0.9:
            self.sup.get_shell_output(sid, tail_lines=self.rng.choice((None, 1, 5)),
                                      offset=self.rng.choice((None, 0, 100)),
                                      max_bytes=self.rng.choice((None, 10, 4096)))
        else:
            self.sup.get_shell_status(sid)


def work(root: Path, home: Path, limit: int, seed: int, deadline: float, self_kill: bool) -> None:
    worker = Worker(Supervisor(home, max_concurrent=limit), random.Random(seed), root, self_kill)
    # A worker still busy well after the deadline is stuck in a call: its stack says where.
    stuck = open(root / "stuck.log", "a")  # noqa: SIM115 - open until the process exits
    faulthandler.dump_traceback_later(max(0.0, deadline - time.time()) + 5, file=stuck)
    while time.time() < deadline:
        try:
            worker.step()
        except EXPECTED_ERRORS:
            pass
        except Exception:
            worker.note("errors.log", f"worker {os.getpid()} (seed {seed}):\n{traceback.format_exc()}")
        time.sleep(worker.rng.random() * 0.05)


# -- chaos ----------------------------------------------------------------------------------------

def monitors_of(home: Path) -> list[tuple[int, str]]:
    """(pid, shell id) of the live monitors of shells in `home`."""
    try:
        ours = set(os.listdir(home / "shells"))
    except FileNotFoundError:
        return []
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            env = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(proc.MONITOR_VAR.encode() + b"="):
                sid = os.path.basename(item.partition(b"=")[2].decode())
                if sid in ours:
                    found.append((int(name), sid))
    return found


def mode_of(home: Path, shell_id: str) -> str | None:
    """The stress job mode a shell runs (from its spec), or None."""
    try:
        argv = json.loads((home / "shells" / shell_id / "spec.json").read_text())["argv"]
        return str(argv[5])
    except (OSError, ValueError, KeyError, IndexError):
        return None


def fill_disk(home: Path) -> None:
    """Write to the home's file system until it is full."""
    chunk = b"\0" * (1 << 20)
    with contextlib.suppress(OSError), open(home / FILLER, "ab") as f:
        while True:
            f.write(chunk)
            f.flush()


def chaos(rng: random.Random, home: Path, workers: list[subprocess.Popen[bytes]], record: Path,
          disk_full: bool) -> None:
    monitors = monitors_of(home)
    action = rng.random()
    with open(record, "a") as log:
        scrubbed = [(pid, sid) for pid, sid in monitors if mode_of(home, sid) == "scrubbed"]
        if action < 0.15 and scrubbed:
            pid, sid = rng.choice(scrubbed)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                log.write(f"{time.monotonic()!r} SIGKILL monitor {pid} of scrubbed {sid}\n")
        elif action < 0.2 and disk_full:
            log.write(f"{time.monotonic()!r} FULL begin\n")
            log.flush()
            try:
                fill_disk(home)
                time.sleep(rng.uniform(0.2, 1.5))
            finally:
                with contextlib.suppress(FileNotFoundError):
                    (home / FILLER).unlink()
                log.write(f"{time.monotonic()!r} FULL end\n")
        elif action < 0.3 and monitors:
            pid, sid = rng.choice(monitors)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                log.write(f"{time.monotonic()!r} SIGKILL monitor {pid} of {sid}\n")
        elif action < 0.6 and monitors:
            pid, sid = rng.choice(monitors)
            try:
                os.kill(pid, signal.SIGSTOP)
                log.write(f"{time.monotonic()!r} SIGSTOP monitor {pid} of {sid}\n")
                time.sleep(rng.uniform(0.02, 0.4))
            except ProcessLookupError:
                pass
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        elif action < 0.7 and workers:
            victim = rng.choice(workers)
            with contextlib.suppress(ProcessLookupError):
                victim.kill()
                log.write(f"{time.monotonic()!r} SIGKILL worker {victim.pid}\n")


# -- the campaign ---------------------------------------------------------------------------------

@dataclass
class Options:
    seed: int
    duration: float
    workers: int
    limit: int
    worker_kills: bool
    monitor_chaos: bool
    keep: bool
    tmpfs: str | None


def mount_home(home: Path, size: str) -> bool:
    """Make `home` a tmpfs of its own (so that filling it fills nothing else); False when this may not mount."""
    home.mkdir(mode=0o700)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(home)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"no disk-full chaos: cannot mount a tmpfs ({done.stderr.strip() or done.returncode})", flush=True)
    return done.returncode == 0


def campaign(opts: Options, root: Path) -> list[str]:
    """Run the campaign in `root` and return the violations found."""
    home = root / "home"
    mounted = bool(opts.tmpfs) and opts.monitor_chaos and mount_home(home, str(opts.tmpfs))
    try:
        return _campaign(opts, root, home, mounted)
    finally:
        if mounted:
            subprocess.run(["umount", "--lazy", str(home)], check=False)


def _campaign(opts: Options, root: Path, home: Path, disk_full: bool) -> list[str]:
    (root / "job.py").write_text(JOB)
    observer = subprocess.Popen([sys.executable, __file__, "--observe", str(root)])
    while not (root / "obs.sock").exists():
        time.sleep(0.01)
    rng = random.Random(opts.seed)
    deadline = time.time() + opts.duration
    me = [sys.executable, __file__, "--home", str(home), "--limit", str(opts.limit), "--deadline", str(deadline)]
    if opts.worker_kills:
        me.append("--self-kill")
    spawned = 0

    def spawn() -> subprocess.Popen[bytes]:
        nonlocal spawned
        spawned += 1
        return subprocess.Popen([*me, "--work", str(root), "--seed", str(opts.seed * 1000 + spawned)])

    workers = [spawn() for _ in range(opts.workers)]
    main_stuck = open(root / "main-stuck.log", "a")  # noqa: SIM115
    faulthandler.dump_traceback_later(opts.duration + 8, file=main_stuck)
    try:
        while time.time() < deadline:
            time.sleep(rng.uniform(0.05, 0.4))
            if opts.monitor_chaos:
                chaos(rng, home, workers if opts.worker_kills else [], root / "chaos.log", disk_full)
            for i, w in enumerate(workers):
                if w.poll() is not None and time.time() < deadline - 0.5:
                    workers[i] = spawn()
        hung = []
        for w in workers:
            try:
                w.wait(timeout=60)
            except subprocess.TimeoutExpired:
                hung.append(f"worker {w.pid} did not finish within 60 s of the deadline")
                w.kill()
                w.wait()
        violations = hung + drain_and_check(opts, root, home)
    finally:
        observer.terminate()
        observer.wait()
    return violations


def drain_and_check(opts: Options, root: Path, home: Path) -> list[str]:
    sup = Supervisor(home, max_concurrent=opts.limit)
    violations: list[str] = []
    records = [json.loads(line) for line in (root / "shells.jsonl").read_text().splitlines()] \
        if (root / "shells.jsonl").exists() else []
    on_record = {s["shell_id"] for s in sup.list_shells()}
    for rec in records:
        if rec["id"] not in on_record:
            violations.append(f"{rec['id']} was started but has no record")
    final: dict[str, dict[str, object]] = {}
    # A long queue drains slowly at a small limit: give up only when nothing ends for a while.
    stuck = time.monotonic() + DRAIN_SECONDS
    for status in sup.list_shells():
        sid = status["shell_id"]
        try:
            final[sid] = sup.wait_shell(sid, timeout=max(0.0, stuck - time.monotonic()))
            stuck = time.monotonic() + DRAIN_SECONDS
        except TimeoutError:
            final[sid] = sup.get_shell_status(sid)
            violations.append(f"{sid} still {final[sid]['status']} after the drain")
    for sub in ("running", "queue"):
        deadline = time.monotonic() + 10
        while os.listdir(home / sub) and time.monotonic() < deadline:
            time.sleep(0.05)
        if os.listdir(home / sub):
            violations.append(f"{sub}/ is not empty at the end: {sorted(os.listdir(home / sub))}")
    violations += _leftovers(home, set(on_record))
    violations += _outputs(sup, records, final, _full_periods(root), _job_times(root))
    violations += _concurrency(root, opts.limit, final)
    violations += _unexplained_losses(root, final)
    for name in ("errors.log", "violations.log", "stuck.log"):
        if (root / name).exists() and (root / name).stat().st_size:
            violations.append(f"{name}:\n{(root / name).read_text()}")
    for log in sorted((home / "shells").glob("*/monitor.log")):
        if "Traceback" in log.read_text(errors="replace"):
            violations.append(f"traceback in {log}:\n{log.read_text(errors='replace')[-2000:]}")
    statuses: dict[str, int] = {}
    for status in final.values():
        statuses[str(status["status"])] = statuses.get(str(status["status"]), 0) + 1
    print(f"seed {opts.seed}: {len(final)} shells {statuses}", flush=True)
    chaos_log = (root / "chaos.log").read_text().splitlines() if (root / "chaos.log").exists() else []
    kinds = {"monitor SIGKILL": " SIGKILL monitor ", "monitor SIGKILL, scrubbed job": " of scrubbed ",
             "monitor SIGSTOP": " SIGSTOP monitor ", "worker SIGKILL": " SIGKILL worker ", "disk full": " FULL begin"}
    counts = {kind: sum(needle in line for line in chaos_log) for kind, needle in kinds.items()}
    counts["monitor SIGKILL"] -= counts["monitor SIGKILL, scrubbed job"]
    print(f"chaos: {counts}", flush=True)
    return violations


def _unexplained_losses(root: Path, final: dict[str, dict[str, object]]) -> list[str]:
    """Shells that read `lost` because their monitor died, although the chaos never killed it.

    A full disk must not lose an outcome: the monitor records it in reserved space.
    """
    log = root / "chaos.log"
    killed = {line.split()[-1] for line in log.read_text().splitlines() if " SIGKILL monitor " in line} \
        if log.exists() else set()
    return [f"{sid} is lost ({status.get('message')}) but its monitor was not killed"
            for sid, status in final.items()
            if status["status"] == "lost" and "monitor process died" in str(status.get("message"))
            and sid not in killed]


def _full_periods(root: Path) -> list[tuple[float, float]]:
    """(begin, end) of each moment the disk was full, from chaos.log (monotonic seconds)."""
    periods: list[tuple[float, float]] = []
    begin = None
    log = root / "chaos.log"
    for line in log.read_text().splitlines() if log.exists() else []:
        t, _, what = line.partition(" ")
        if what == "FULL begin":
            begin = float(t)
        elif what == "FULL end" and begin is not None:
            periods.append((begin, float(t)))
            begin = None
    return periods


def _job_times(root: Path) -> dict[str, tuple[float, float]]:
    """(start, end) of each job that logged both, from jobs.log."""
    starts: dict[str, float] = {}
    times: dict[str, tuple[float, float]] = {}
    log = root / "jobs.log"
    for line in log.read_text().splitlines() if log.exists() else []:
        word, sid, t = line.split()
        if word == "start":
            starts[sid] = float(t)
        elif sid in starts:
            times[sid] = (starts[sid], float(t))
    return times


def _leftovers(home: Path, ids: set[str]) -> list[str]:
    deadline = time.monotonic() + 10
    while True:
        left, zombies = [], []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
                env = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] == "Z" and int(fields[1]) == os.getpid():
                zombies.append(name)
            for item in env:
                key, _, value = item.partition(b"=")
                if key in (proc.SHELL_ID_VAR.encode(), proc.MONITOR_VAR.encode()) and value.decode() in ids:
                    left.append(f"{name} ({key.decode()}={value.decode()}, state {fields[0]})")
        if not (left or zombies) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    found = [f"process left: {p}" for p in left] + [f"zombie child of the campaign: {z}" for z in zombies]
    for p in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(p.split()[0]), signal.SIGKILL)
    return found


def _outputs(sup: Supervisor, records: list[dict[str, object]], final: dict[str, dict[str, object]],
             full: list[tuple[float, float]], times: dict[str, tuple[float, float]]) -> list[str]:
    found = []
    for rec in records:
        sid = str(rec["id"])
        status = final.get(sid)
        if status is None or status["status"] not in ("stopped", "failed"):
            continue
        start, end = times.get(sid, (0.0, float("inf")))
        if any(begin <= end and start <= stop for begin, stop in full):
            continue  # the disk was full while it ran: the job itself may have failed on it
        if status["exit_code"] != rec["code"] or status["status"] != ("stopped" if rec["code"] == 0 else "failed"):
            found.append(f"{sid} ({rec['mode']}) ended {status['status']} with exit code {status['exit_code']}, "
                         f"expected {rec['code']}: {status.get('message')}")
            continue
        out, err = expected_output(sid, int(str(rec["lines"])))
        got = sup.get_shell_output(sid)
        if got["stdout"] != out or got["stderr"] != err:
            found.append(f"{sid} ({rec['mode']}) output incomplete: stdout {len(got['stdout'])}/{len(out)} "
                         f"chars, stderr {len(got['stderr'])}/{len(err)}")
    return found


def _concurrency(root: Path, limit: int, final: dict[str, dict[str, object]]) -> list[str]:
    """The largest number of jobs alive at once, from their start and the end of their last process."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    obs = root / "observer.log"
    for line in obs.read_text().splitlines() if obs.exists() else []:
        word, sid, t = line.split()
        (starts if word == "reg" else ends)[sid] = float(t)
    found = [f"{sid}: the observer saw no end of its job" for sid in starts if sid not in ends]
    events = sorted([(t, 1, sid) for sid, t in starts.items()] + [(t, -1, sid) for sid, t in ends.items()
                                                                   if sid in starts])
    alive: set[str] = set()
    worst = 0
    for t, delta, sid in sorted(events, key=lambda e: (e[0], e[1])):
        if delta > 0:
            alive.add(sid)
        else:
            alive.discard(sid)
        worst = max(worst, len(alive))
        if len(alive) > limit:
            who = ", ".join(f"{s} ({final.get(s, {}).get('status')}, alive {starts[s]:.3f}..{ends.get(s, 0):.3f})"
                            for s in sorted(alive))
            found.append(f"{len(alive)} jobs alive at {t:.3f} (limit {limit}): {who}")
    print(f"{len(starts)} jobs ran; at most {worst} at once (limit {limit})", flush=True)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of random operations")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--no-worker-kills", action="store_true", help="never SIGKILL a worker")
    parser.add_argument("--no-monitor-chaos", action="store_true", help="never SIGKILL or SIGSTOP a monitor")
    parser.add_argument("--keep", action="store_true", help="keep the campaign's folder")
    parser.add_argument("--tmpfs", default="64m", metavar="SIZE",
                        help="size of the tmpfs the home gets for the disk-full chaos (default 64m); '' for none")
    parser.add_argument("--dir", help="make the campaign's folder in DIR (default: the temporary directory)")
    parser.add_argument("--observe", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--self-kill", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.observe:
        observe(os.path.join(args.observe, "obs.sock"), os.path.join(args.observe, "observer.log"))
        return 0
    if args.work:
        work(Path(args.work), Path(args.home), args.limit, args.seed, args.deadline, args.self_kill)
        return 0
    opts = Options(seed=args.seed, duration=args.duration, workers=args.workers, limit=args.limit,
                   worker_kills=not args.no_worker_kills, monitor_chaos=not args.no_monitor_chaos, keep=args.keep,
                   tmpfs=args.tmpfs or None)
    root = Path(tempfile.mkdtemp(prefix="mgsup-stress-", dir=args.dir))
    try:
        violations = campaign(opts, root)
    finally:
        if opts.keep:
            print(f"kept {root}")
    for v in violations:
        print(f"VIOLATION: {v}", flush=True)
    if not opts.keep and not violations:
        shutil.rmtree(root, ignore_errors=True)
    elif not opts.keep:
        print(f"kept {root} for inspection")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
