"""Every operating-system call about processes: identity, trees, signals, spawning monitors.

Stdlib only (Linux /proc): the monitor process imports this module without site-packages.
A process is named by its pid *and* its start time (clock ticks since boot, from /proc), so a
recycled pid is never mistaken for the process we knew.
"""

from __future__ import annotations

import os
import select
import sys
import time

from . import layout

# Annotations only: importing `typing` (or `signal`, with its enums) at run time would slow the
# monitor's start; `_signal` is the C module behind `signal`.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from collections.abc import Callable, Iterable
else:
    import _signal

MONITOR_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "monitor.py")
SHELL_ID_VAR = "MGSUP_SHELL_ID"
# Set in a monitor's own environment (not its job's) to its shell's directory: a monitor and its
# tree belong to their own shell, so stopping another tree (a job that started nested shells, a
# coordination run's sweep) leaves them alone. Anyone can set a variable, so it only says where to
# look: a process is a monitor when that shell's state.json records it (pid and start time).
MONITOR_VAR = "MGSUP_MONITOR_OF"
PR_SET_CHILD_SUBREAPER = 36
# How long a lookup waits for a process inside execve to show its new environment (it takes
# microseconds once the process runs; this bounds a process stuck in the kernel).
EXEC_PATIENCE = 1.0
# What a monitor is sent to stop (SIGSTOP) or continue (SIGCONT) its job's whole tree: `pause`, `resume`.
PAUSE_SIGNAL = _signal.SIGUSR1
RESUME_SIGNAL = _signal.SIGUSR2


def start_ticks(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot, or None when there is no such process."""
    info = _stat(pid)
    return None if info is None else info.start


def is_alive(pid: object, ticks: object) -> bool:
    """True when the process `pid` that started at `ticks` still exists and is not a zombie.

    Anything but a positive pid and a tick count (a damaged record) names no process.
    """
    if not (_is_number(pid) and _is_number(ticks)):
        return False
    info = _stat(pid)  # type: ignore[arg-type]
    return info is not None and info.start == ticks and info.state != "Z"


def _is_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class _Stat:
    """The fields of /proc/<pid>/stat that process lookups use."""

    __slots__ = ("environ_pending", "group", "parent", "session", "start", "state")

    def __init__(self, stat: bytes) -> None:
        # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
        fields = stat[stat.rindex(b")") + 2 :].split()
        self.state = fields[0].decode()
        self.parent, self.group, self.session = int(fields[1]), int(fields[2]), int(fields[3])
        self.start = int(fields[19])
        # An address space (vsize) whose environment is not placed yet (env_end, Linux 3.5+): the
        # process is inside execve. Also 0 where /proc hides it from us, but then so is the environment.
        self.environ_pending = int(fields[20]) > 0 and len(fields) > 48 and fields[48] == b"0"


def exit_fd(pid: int | None, ticks: int | None) -> int | None:
    """A descriptor (a pidfd) that becomes readable when the process `pid` that started at `ticks` exits.

    None when that process is gone already. The caller closes it. Lets an event loop wait for a
    process to end without a thread or a polling loop.
    """
    if not pid:
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    # Checked after opening: the descriptor then refers to the process that was checked.
    if not is_alive(pid, ticks):
        os.close(fd)
        return None
    return fd


def _stat(pid: int) -> _Stat | None:
    try:
        return _Stat(_read(pid, "stat"))
    except (OSError, ValueError, IndexError):
        return None


def _read(pid: int, name: str) -> bytes:
    """The whole of /proc/`pid`/`name`, through bare descriptors: a buffered file object costs five more
    system calls per file, and the lookups here read one or two files of every process."""
    fd = os.open(f"/proc/{pid}/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(root: int, *, include_zombies: bool = False) -> set[int]:
    """Every process below `root` in the process tree, except monitors of other shells and their trees."""
    children: dict[int, list[int]] = {}
    zombies: set[int] = set()
    for pid in _all_pids():
        info = _stat(pid)
        if info is None:
            continue
        children.setdefault(info.parent, []).append(pid)
        if info.state == "Z":
            zombies.add(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and not _is_monitor(child):
                found.add(child)
                todo.append(child)
    return found if include_zombies else found - zombies


def _environ(pid: int) -> list[bytes]:
    """The environment of `pid` ([] when it cannot be read), once an execve in progress has placed it.

    The kernel lets the process that spawned a program (vfork, posix_spawn) go on before the new
    program's environment is in place; meanwhile it reads empty, and a tag lookup would miss a job
    whose monitor died right after spawning it.
    """
    deadline = time.monotonic() + EXEC_PATIENCE
    pending = True
    while True:
        try:
            env = _read(pid, "environ")
        except OSError:
            return []
        if env or not pending:
            return env.split(b"\0")
        info = _stat(pid)
        # Read again when the execve ended between the two reads, or after a moment while it goes on.
        pending = info is not None and info.environ_pending and info.state != "Z"
        if pending:
            if time.monotonic() > deadline:
                return env.split(b"\0")
            time.sleep(0.001)


def _is_monitor(pid: int, env: list[bytes] | None = None) -> bool:
    """Whether `pid` is the monitor its state.json records, as its MONITOR_VAR claims."""
    prefix = MONITOR_VAR.encode() + b"="
    for item in _environ(pid) if env is None else env:
        if item.startswith(prefix):
            return _recorded_monitor(pid, os.fsdecode(item[len(prefix):]))
    return False


def _recorded_monitor(pid: int, shell_dir: str) -> bool:
    try:
        state = layout.read_json(os.path.join(shell_dir, layout.STATE))
    except (OSError, ValueError):
        return False
    if not isinstance(state, dict) or state.get("monitor_pid") != pid:
        return False
    return is_alive(pid, state.get("monitor_start"))


def tagged(shell_id: str) -> set[int]:
    """Live processes whose environment names `shell_id` (jobs and what they started, even after setsid)."""
    return job_processes(shell_id, None, None)


def job_processes(shell_id: str, pid: object, pid_start: object) -> set[int]:
    """The live processes of a shell's job, as far as they can be found without its monitor.

    Those whose environment carries the shell's tag, and, when the job's main process is known
    (`pid` started at `pid_start`), that process, its process group and its session: a job that
    cleared its environment is still found there. A group or session is trusted only while its
    number is not a recycled pid (its leader is ours or gone: the kernel does not reuse a pid that
    still names a group), and only members started after the job count. Recorded monitors of
    other shells are never included.
    """
    needle = f"{SHELL_ID_VAR}={shell_id}".encode()
    leader = pid if _is_number(pid) and _is_number(pid_start) else None
    if leader is not None:
        info = _stat(leader)  # type: ignore[arg-type]
        if info is not None and info.start != pid_start:
            leader = None
    found: set[int] = set()
    for candidate in _all_pids():
        env = _environ(candidate)
        tagged = needle in env
        if not tagged and leader is None:
            continue
        info = _stat(candidate)
        if info is None or info.state == "Z":
            continue
        mine = tagged or (
            (candidate == leader or leader in (info.group, info.session))
            and info.start >= pid_start)  # type: ignore[operator]
        # A monitor inherits the tag of the shell whose job started it; it belongs to its own shell.
        if mine and not _is_monitor(candidate, env):
            found.add(candidate)
    return found


def monitors_of(shell_dir: str) -> set[int]:
    """Live processes started as the monitor of the shell in `shell_dir` (its short-lived intermediate included)."""
    needle = f"{MONITOR_VAR}={shell_dir}".encode()
    found: set[int] = set()
    for pid in _all_pids():
        if needle in _environ(pid):
            info = _stat(pid)
            if info is not None and info.state != "Z":
                found.add(pid)
    return found


def become_subreaper() -> None:
    """Adopt every orphaned descendant (Linux `PR_SET_CHILD_SUBREAPER`).

    Through `_ctypes` rather than `ctypes`: the monitor calls this before it starts the job, and
    the `ctypes` package costs several milliseconds to import where its C core costs a fraction.
    """
    import _ctypes

    class Int(_ctypes._SimpleCData):  # type: ignore[type-arg]
        _type_ = "i"

    class Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL
        _restype_ = Int

    prctl = Function(_ctypes.dlsym(_ctypes.dlopen(None), "prctl"))  # type: ignore[arg-type]  # None: this program
    if prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError("prctl(PR_SET_CHILD_SUBREAPER) failed")


def send(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop(find: Callable[[], set[int]], sig: int, grace: float, pause: Callable[[float], None]) -> None:
    """The one stop protocol: send `sig`, wait up to `grace` seconds, then SIGKILL until none is left.

    `find` lists the processes still to stop; `pause(seconds)` waits (and reaps, where we are the parent).
    """
    deadline = time.monotonic() + grace
    pids = find()
    send(pids, sig)
    if sig != _signal.SIGKILL:
        send(pids, _signal.SIGCONT)
    while pids and time.monotonic() < deadline:
        pause(min(0.05, max(0.0, deadline - time.monotonic())))
        pids = find()
    while pids:
        send(pids, _signal.SIGKILL)
        pause(0.01)
        pids = find()


def lean_argv(script: str, *args: str) -> list[str]:
    """How the monitor and the launcher are started: no site imports, frozen stdlib, UTF-8 file names
    whatever the locale."""
    return [sys.executable, "-I", "-S", "-X", "frozen_modules=on", "-X", "utf8", script, *args]


def monitor_argv(home: str, shell_id: str, ready_fd: int) -> list[str]:
    return lean_argv(MONITOR_FILE, home, shell_id, str(ready_fd))


def spawn_monitor(home: str, shell_id: str, env: dict[str, str] | None, log: str) -> int:
    """Start the monitor of `shell_id` and return the job's pid once it runs.

    `env=None` makes the monitor read the environment that a queued shell left in its env file.
    Raises RuntimeError with the monitor's reason when the job could not be started.
    """
    import subprocess

    read_end, write_end = os.pipe()
    argv = monitor_argv(home, shell_id, write_end)
    try:
        log_fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            intermediate = subprocess.Popen(
                argv,
                env={**(env if env is not None else {"PATH": os.environ.get("PATH", os.defpath)}),
                     MONITOR_VAR: layout.Layout(home).shell_dir(shell_id)},
                pass_fds=(write_end,),
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                cwd="/",
            )
        finally:
            os.close(log_fd)
        os.close(write_end)
        write_end = -1
        intermediate.wait()
        reply = _read_all(read_end, timeout=30.0)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    word, _, rest = reply.decode(errors="replace").strip().partition(" ")
    if word == "ok":
        return int(rest)
    raise RuntimeError(rest or f"the monitor of {shell_id} exited before starting the job (see {log})")


def _read_all(fd: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return b"".join(chunks)
        chunk = os.read(fd, 4096)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
