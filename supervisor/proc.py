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
# Set in a monitor's own environment (not its job's): a monitor and its tree belong to their own
# shell, so stopping another tree (a job that started nested shells, a coordination run's sweep)
# leaves them alone.
MONITOR_VAR = "MGSUP_MONITOR_OF"


def start_ticks(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[19])


def is_alive(pid: int | None, ticks: int | None) -> bool:
    """True when the process `pid` that started at `ticks` still exists and is not a zombie."""
    if not pid or ticks is None:
        return False
    table = _stat(pid)
    return table is not None and table[2] == ticks and table[1] != "Z"


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


def _stat(pid: int) -> tuple[int, str, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[1]), fields[0].decode(), int(fields[19])


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
        children.setdefault(info[0], []).append(pid)
        if info[1] == "Z":
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
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _is_monitor(pid: int) -> bool:
    prefix = MONITOR_VAR.encode() + b"="
    return any(item.startswith(prefix) for item in _environ(pid))


def tagged(shell_id: str) -> set[int]:
    """Live processes whose environment names `shell_id` (jobs and what they started, even after setsid)."""
    needle = f"{SHELL_ID_VAR}={shell_id}".encode()
    monitor = MONITOR_VAR.encode() + b"="
    found: set[int] = set()
    for pid in _all_pids():
        env = _environ(pid)
        # A monitor inherits the tag of the shell whose job started it; it belongs to its own shell.
        if needle in env and not any(item.startswith(monitor) for item in env):
            info = _stat(pid)
            if info is not None and info[1] != "Z":
                found.add(pid)
    return found


def monitors_of(shell_id: str) -> set[int]:
    """Live processes started as the monitor of `shell_id` (its short-lived intermediate included)."""
    needle = f"{MONITOR_VAR}={shell_id}".encode()
    found: set[int] = set()
    for pid in _all_pids():
        if needle in _environ(pid):
            info = _stat(pid)
            if info is not None and info[1] != "Z":
                found.add(pid)
    return found


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


def spawn_monitor(home: str, shell_id: str, env: dict[str, str] | None, log: str) -> int:
    """Start the monitor of `shell_id` and return the job's pid once it runs.

    `env=None` makes the monitor read the environment that a queued shell left in its env file.
    Raises RuntimeError with the monitor's reason when the job could not be started.
    """
    import subprocess

    read_end, write_end = os.pipe()
    argv = [sys.executable, "-I", "-S", "-X", "frozen_modules=on", MONITOR_FILE, home, shell_id, str(write_end)]
    try:
        with open(log, "ab") as log_file:
            intermediate = subprocess.Popen(
                argv,
                env={**(env if env is not None else {"PATH": os.environ.get("PATH", os.defpath)}),
                     MONITOR_VAR: shell_id},
                pass_fds=(write_end,),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                cwd="/",
            )
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
