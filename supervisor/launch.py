"""Starting a shell's monitor: through the home's launcher when it answers, else directly.

The launcher (`launcher.py`) is one process per home with the monitor's code already loaded; it
forks a monitor per request, so a start costs a fork instead of an interpreter start. It only
accelerates: it holds no state and takes no lock, and whatever goes wrong with it (absent, dead,
hung, refusing) ends in the direct start of `proc.spawn_monitor`. The first start on a home
starts it in the background (and starts its own monitor directly); it exits after IDLE_SECONDS
without a request. `MGSUP_LAUNCHER=0` turns it off.

Exactly one monitor is started per call: the caller falls back only when the launcher has not
forked for the request. A launcher that does not answer within ANSWER_SECONDS is killed first,
and whatever it forked before it died still answers on the connection.

The monitor of a launcher is a fork, so what a process inherits is passed with each request and
applied to the fork: the environment (in memory, never on disk), the umask, resource limits,
niceness, CPU affinity and OOM score. What cannot be changed afterwards (user, groups,
capabilities, cgroup, namespaces, security label) must be the launcher's own, or it refuses.

Stdlib only, and C modules only at import: monitors use this when they hand their slot on.
"""

from __future__ import annotations

import _socket
import fcntl
import os
import select
import time

from . import layout as lay
from . import proc

# Annotations only, as everywhere the monitor imports; `_signal` is the C module behind `signal`.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from typing import Any
else:
    import _signal

SOCKET = "launcher.sock"
LOCK = "launcher.lock"
LOG = "launcher.log"
ENABLE_VAR = "MGSUP_LAUNCHER"
LAUNCHER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.py")
# The launcher is started with this one variable, as long as the longest monitor variable it will
# show (see `launcher.retitle`), and nothing of the caller's environment.
PAD_VAR = "MGSUP_LAUNCHER_PAD"
PAD = " " * (4096 + 64)
# The launcher's last argument, its idle time, is padded to this width: its command line then has
# room for a monitor's (a shell id and a reply fd of up to 4 digits in its place).
IDLE_WIDTH = 18
IDLE_SECONDS = 60.0
# A launcher that has not forked for a request this long after it was sent is taken to be hung.
ANSWER_SECONDS = 2.0
# How long the monitor has to answer once it exists (as for a monitor started directly).
REPLY_SECONDS = 30.0
MAX_REQUEST_BYTES = 16 * 1024 * 1024
RLIMITS = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
           "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS",
           "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK")
# What a fork cannot change: the launcher refuses a caller that differs in any of these.
STATUS_FIELDS = ("Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:",
                 "Seccomp:")
NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid_for_children", "time_for_children", "user", "uts")


def enabled() -> bool:
    """Whether starts go through the launcher (`MGSUP_LAUNCHER=0` turns it off)."""
    return os.environ.get(ENABLE_VAR, "1").strip() != "0"


def spawn_monitor(home: str, shell_id: str, env: dict[str, str] | None, log: str) -> int:
    """Start the monitor of `shell_id` and return the job's pid once it runs; see `proc.spawn_monitor`.

    Through the home's launcher when it is enabled and answers, else directly (starting a launcher
    for the next call when there is none).
    """
    if not enabled():
        return proc.spawn_monitor(home, shell_id, env, log)
    environ = env if env is not None else {"PATH": os.environ.get("PATH", os.defpath)}
    request = {"home": home, "shell_id": shell_id, "env": environ, "log": log, "context": context()}
    answer = _ask(home, lay.dumps(request).encode() + b"\n")
    if isinstance(answer, int):
        return answer
    starter = start(home) if answer == ABSENT else None
    try:
        return proc.spawn_monitor(home, shell_id, env, log)
    finally:
        if starter is not None:
            _reap(starter)


def context() -> dict[str, Any]:
    """What a monitor inherits from the calling thread, for the launcher to give its fork."""
    import resource

    status = _status_lines()
    umask = next((int(line.split()[1], 8) for line in status if line.startswith("Umask:")), None)
    if umask is None:  # a kernel without the Umask field: read it the racy way
        umask = os.umask(0o077)
        os.umask(umask)
    try:
        with open("/proc/self/oom_score_adj", "rb") as f:
            oom = int(f.read())
    except (OSError, ValueError):
        oom = None
    return {
        "umask": umask,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "rlimits": {name: list(resource.getrlimit(getattr(resource, name))) for name in RLIMITS
                    if hasattr(resource, name)},
        "cpus": sorted(os.sched_getaffinity(0)),
        "oom_score_adj": oom,
        "identity": identity(status),
    }


def identity(status: list[str] | None = None) -> str:
    """Who this process is, in what cannot be changed after a fork: equal for the launcher and its callers."""
    parts = [line for line in (_status_lines() if status is None else status) if line.startswith(STATUS_FIELDS)]
    for name in NAMESPACES:
        try:
            parts.append(os.readlink(f"/proc/self/ns/{name}"))
        except OSError:
            parts.append(f"{name}:?")
    for path in ("/proc/self/cgroup", "/proc/self/attr/current"):
        try:
            with open(path, "rb") as f:
                parts.append(f.read().decode(errors="replace"))
        except OSError:
            parts.append(f"{path}:?")
    return "\n".join(parts)


def _status_lines() -> list[str]:
    with open("/proc/self/status", "rb") as f:
        return f.read().decode(errors="replace").splitlines()


# -- talking to the launcher ---------------------------------------------------------------------

# What `_ask` says when the launcher did not fork a monitor for the request.
ABSENT = "absent"  # no launcher: start one
PASSED = "passed"  # one that refused, died or hung: the next start tries it (or its successor) again


def _ask(home: str, request: bytes) -> int | str:
    """The job's pid from a monitor the launcher forked, or ABSENT / PASSED when it did not fork one.

    RuntimeError when the launcher forked a monitor that failed (the monitor's reason, or that it died).
    """
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(ANSWER_SECONDS)
        try:
            _connect(sock, home)
        except (FileNotFoundError, ConnectionRefusedError):
            return ABSENT
        except OSError:
            return PASSED  # a launcher so busy that its backlog is full, or a home that is not one
        peer_pid, peer_uid = peer(sock)
        if peer_uid != os.geteuid():
            return PASSED  # not ours: never hand it a job
        peer_ticks = proc.start_ticks(peer_pid)
        reply = Reply(sock)
        try:
            sock.sendall(request)
        except TimeoutError:
            pass  # hung with a full buffer: found out below
        except OSError:
            return PASSED  # it closed on us without reading: it forked nothing
        if not reply.wait(ANSWER_SECONDS) and proc.is_alive(peer_pid, peer_ticks):
            # Hung: kill it, then hear whatever it forked before it died (that fork holds the
            # connection and answers; if there is none, the connection ends at once).
            proc.send([peer_pid], _signal.SIGKILL)
        return reply.outcome(REPLY_SECONDS)
    finally:
        sock.close()


def _connect(sock: _socket.socket, home: str) -> None:
    # Through the directory's fd: a unix socket address holds at most 107 bytes, a home path more.
    folder = os.open(home, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sock.connect(f"/proc/self/fd/{folder}/{SOCKET}")
    finally:
        os.close(folder)


def peer(sock: _socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a unix socket, as the kernel saw it connect or listen."""
    cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    return int.from_bytes(cred[0:4], "little"), int.from_bytes(cred[4:8], "little")


class Reply:
    """The lines that come back on a launcher connection: `forked`, `refused WHY`, `ok PID`, `error WHY`."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.lines: list[str] = []
        self.ended = False

    def wait(self, seconds: float) -> bool:
        """Whether a line (or the end of the connection) came within `seconds`."""
        self._read(time.monotonic() + seconds, until_line=True)
        return bool(self.lines) or self.ended

    def outcome(self, seconds: float) -> int | str:
        """The job's pid; PASSED when nothing was forked for the request; RuntimeError when the monitor failed."""
        deadline = time.monotonic() + seconds
        forked = False
        while True:
            while self.lines:
                word, _, rest = self.lines.pop(0).partition(" ")
                if word == "ok":
                    return int(rest)
                if word == "error":
                    raise RuntimeError(rest or "the monitor could not start the job")
                if word == "refused":
                    return PASSED  # said by the launcher or its fork before anything started
                forked = forked or word == "forked"
            if self.ended or time.monotonic() >= deadline:
                break
            self._read(deadline, until_line=True)
        if forked:
            raise RuntimeError("the monitor exited before starting the job (see its monitor.log)")
        return PASSED

    def _read(self, deadline: float, *, until_line: bool) -> None:
        while not self.ended and not (until_line and self.lines):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return
            try:
                chunk = self.sock.recv(4096)
            except (BlockingIOError, TimeoutError, InterruptedError):
                continue
            except OSError:
                chunk = b""  # reset: the launcher died with the request unread
            if not chunk:
                self.ended = True
                return
            self.buffer += chunk
            *complete, self.buffer = self.buffer.split(b"\n")
            self.lines += [line.decode(errors="replace") for line in complete]


# -- the launcher's life -------------------------------------------------------------------------

def start(home: str, idle: float = IDLE_SECONDS) -> int | None:
    """Start the launcher of `home` in the background; its first process's pid (to reap), or None.

    None when a launcher holds the home's launcher lock already (alive, or on its way up).
    """
    try:
        lock = os.open(os.path.join(home, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return None
    finally:
        os.close(lock)  # a launcher that starts meanwhile takes it and the later one gives up
    argv = proc.lean_argv(LAUNCHER_FILE, home, f"{float(idle):<{IDLE_WIDTH}}")
    try:
        return os.posix_spawn(argv[0], argv, {PAD_VAR: PAD}, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.path.join(home, LOG), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ])
    except OSError:
        return None


def _reap(pid: int) -> None:
    """Wait for the launcher's first process, which exits as soon as it has forked the launcher."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # reaped by someone else (SIGCHLD ignored, a wait(-1) elsewhere)


def launcher_pid(home: str) -> int | None:
    """The pid of the launcher that answers on `home`, or None when none does (or not as this user)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(ANSWER_SECONDS)
        try:
            _connect(sock, home)
        except OSError:
            return None
        pid, uid = peer(sock)
        return pid if uid == os.geteuid() else None
    finally:
        sock.close()


def stop(home: str, timeout: float = 5.0) -> None:
    """Stop the launcher of `home` if one runs (for tools that remove a home); running shells go on."""
    pid = launcher_pid(home)
    ticks = None if pid is None else proc.start_ticks(pid)
    if pid is None or ticks is None:
        return
    proc.stop(lambda: {pid} if proc.is_alive(pid, ticks) else set(), 15, timeout, time.sleep)
