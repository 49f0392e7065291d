"""The monitor: one small process per running shell (the conmon pattern).

Started as `python -I -S monitor.py HOME SHELL_ID READY_FD` (stdlib only, no site imports, so it
starts in a few milliseconds). It detaches from the caller (fork, setsid), becomes a child
subreaper so that everything the job leaves behind re-parents to it, starts the job in its own
process group with output appended to the log files, answers `ok PID` on READY_FD once the job
runs, then waits: for the job to end, for its timeout, or for a kill request (SIGTERM). Either
way it stops every descendant, records the outcome atomically and hands its slot to the queue.
Signal handlers only record the signal; the loop does the work.

Every import before the reply costs start latency, hence `_signal` rather than `signal`, and the
late import of the admission module.
"""

from __future__ import annotations

import os
import select
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
else:
    import _signal as signal

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from supervisor import layout as lay
from supervisor import lifecycle, proc

DEFAULT_GRACE = 5.0
# Descendants still running when the job's main process exits get this long to end on SIGTERM.
LEFTOVER_GRACE = 2.0
PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# Signals the job must start with at their default action, whatever this process inherited or set.
RESET_SIGNALS = {signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGQUIT, *STOP_SIGNALS}


class Monitor:
    def __init__(self, layout: lay.Layout, shell_id: str, ready_fd: int) -> None:
        self.layout = layout
        self.shell_id = shell_id
        self.ready_fd = ready_fd
        self.me = os.getpid()
        self.job = 0
        self.wait_status: int | None = None
        self.rusage: dict[str, float] | None = None
        self.received: list[int] = []
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def run(self) -> None:
        spec = lay.read_json(self.layout.file(self.shell_id, lay.SPEC))
        state = lay.read_json(self.layout.file(self.shell_id, lay.STATE))
        if state.get("status") != "starting":
            # Given up while this process came up (its launcher died): the slot is no longer ours.
            self._reply(f"error {self.shell_id} is {state.get('status')}, no longer waiting to start")
            return
        env = self._job_env()
        self._install_handlers()
        try:
            self.job = self._spawn(spec["argv"], spec["cwd"], env)
        except OSError as exc:
            self._write_stderr(f"mgsup: cannot run {spec['argv'][0]!r} in {spec['cwd']}: {exc.strerror}\n")
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            self._save(lifecycle.not_started(state, time.time(), f"cannot start: {exc.strerror}", exit_code=code))
            self._reply(f"error cannot run {spec['argv'][0]!r}: {exc.strerror}")
            self._hand_over_slot()
            return
        state = lifecycle.running(state, time.time(), pid=self.job, pid_start=proc.start_ticks(self.job),
                                  monitor_pid=self.me, monitor_start=proc.start_ticks(self.me))
        self._save(state, durable=False)
        self._reply(f"ok {self.job}")
        # After the reply: importing ctypes costs ~5 ms of start latency. A process the job orphans
        # in that window re-parents to init instead; the tag sweep at the end still finds it.
        _become_subreaper()
        killed, timed_out = self._supervise(spec.get("timeout"))
        assert self.wait_status is not None
        self._save(lifecycle.exited(state, time.time(), self.wait_status, killed=killed, timed_out=timed_out,
                                    rusage=self.rusage))
        self._hand_over_slot()

    def _supervise(self, timeout: float | None) -> tuple[bool, bool]:
        """Wait for the job to end; returns (killed on request, killed by timeout)."""
        deadline = time.monotonic() + timeout if timeout else None
        killed = timed_out = False
        while self.wait_status is None:
            if any(sig in STOP_SIGNALS for sig in self.received):
                killed = True
                request = self._kill_request()
                self._stop_tree(*request)
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                timed_out = True
                self._stop_tree(signal.SIGTERM, DEFAULT_GRACE)
                continue
            self._pause(left)
        # The main process is gone; whatever it started must not outlive the shell.
        self._stop_tree(signal.SIGTERM, LEFTOVER_GRACE)
        # A process can still escape the tree (a monitor restarted, a job that re-parents on purpose);
        # the tag in its environment finds it.
        proc.stop(lambda: proc.tagged(self.shell_id), signal.SIGTERM, LEFTOVER_GRACE, self._pause)
        return killed, timed_out

    def _stop_tree(self, sig: int, grace: float) -> None:
        self.received.clear()
        if self.wait_status is None:
            try:
                os.killpg(self.job, sig)
            except ProcessLookupError:
                pass
        proc.stop(lambda: proc.descendants(self.me), sig, grace, self._pause)
        while self.wait_status is None:
            self._pause(0.05)

    def _pause(self, seconds: float | None) -> None:
        """Sleep until a signal arrives or `seconds` pass, then reap every child that ended."""
        try:
            select.select([self.wake_r], [], [], seconds)
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass
        self._reap()

    def _reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.job:
                self.wait_status = status
                self.rusage = {"user_seconds": usage.ru_utime, "system_seconds": usage.ru_stime,
                               "max_rss_kb": float(usage.ru_maxrss)}

    def _kill_request(self) -> tuple[int, float]:
        try:
            request = lay.read_json(self.layout.file(self.shell_id, lay.KILL_REQUEST))
            return int(request["signal"]), float(request["grace"])
        except (OSError, ValueError, KeyError, TypeError):
            return signal.SIGTERM, DEFAULT_GRACE

    def _job_env(self) -> dict[str, str]:
        env_file = self.layout.file(self.shell_id, lay.ENV)
        try:
            env = dict(lay.read_json(env_file))
        except FileNotFoundError:
            env = _initial_environ()
        else:
            os.unlink(env_file)
        env.pop(proc.MONITOR_VAR, None)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env[proc.SHELL_ID_VAR] = self.shell_id
        return env

    def _spawn(self, argv: list[str], cwd: str, env: dict[str, str]) -> int:
        out = os.open(self.layout.file(self.shell_id, lay.STDOUT), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        err = os.open(self.layout.file(self.shell_id, lay.STDERR), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.chdir(cwd)
            return os.posix_spawnp(
                argv[0], argv, env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, out, 1),
                    (os.POSIX_SPAWN_DUP2, err, 2),
                ],
                setpgroup=0,
                setsigmask=(),
                setsigdef=RESET_SIGNALS,
            )
        finally:
            os.close(out)
            os.close(err)

    def _install_handlers(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        for sig in (signal.SIGCHLD, *STOP_SIGNALS):
            signal.signal(sig, self._record)

    def _record(self, signum: int, frame: object) -> None:
        self.received.append(signum)

    def _save(self, state: lifecycle.State, *, durable: bool = True) -> None:
        lay.write_json(self.layout.file(self.shell_id, lay.STATE), state, durable=durable)

    def _reply(self, message: str) -> None:
        try:
            os.write(self.ready_fd, message.encode() + b"\n")
            os.close(self.ready_fd)
        except OSError:
            pass  # The caller is gone; the job goes on regardless.

    def _write_stderr(self, text: str) -> None:
        with open(self.layout.file(self.shell_id, lay.STDERR), "a", encoding="utf-8") as f:
            f.write(text)

    def _hand_over_slot(self) -> None:
        from supervisor import admission

        admission.start_admitted(self.layout, admission.release(self.layout, self.shell_id))


def _initial_environ() -> dict[str, str]:
    """The environment this process was started with, as the caller gave it.

    Not `os.environ`: Python's start-up coerces a C locale by setting LC_CTYPE (PEP 538, even
    under -I), which the job must not inherit. /proc/self/environ still holds the original block.
    """
    with open("/proc/self/environ", "rb") as f:
        entries = f.read().split(b"\0")
    env = {}
    for entry in entries:
        name, sep, value = entry.partition(b"=")
        if sep and name:
            env[os.fsdecode(name)] = os.fsdecode(value)
    return env


def _become_subreaper() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def main() -> None:
    home, shell_id, ready_fd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.set_inheritable(ready_fd, False)
    if os.fork():
        os._exit(0)
    os.setsid()
    Monitor(lay.Layout(home), shell_id, ready_fd).run()


if __name__ == "__main__":
    main()
