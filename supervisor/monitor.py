"""The monitor: one small process per running shell (the conmon pattern).

Started as `python -I -S monitor.py HOME SHELL_ID READY_FD` (stdlib only, no site imports, so it
starts in a few milliseconds). It detaches from the caller (fork, setsid), becomes a child
subreaper so that everything the job leaves behind re-parents to it, starts the job in its own
process group with output appended to the log files, answers `ok PID` on READY_FD once the job
runs, then waits: for the job to end, for its timeout, for a kill request (SIGTERM), or for a
coordination run to pass its budget (see `budget`: then the run is interrupted first, so it can
record its end). Either way it stops every descendant, records the outcome atomically and hands
its slot to the queue.
Signal handlers only record the signal; the loop does the work.

The start and the outcome are written into space reserved when the shell was created, so a full
disk loses neither; should even that fail, the outcome is retried while the monitor stays alive.

Every import before the reply costs start latency, hence `_signal` rather than `signal`, and the
late import of the admission module.
"""

from __future__ import annotations

import functools
import os
import select
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal

    from supervisor import budget
else:
    import _signal as signal

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from supervisor import layout as lay
from supervisor import lifecycle, proc

# Descendants still running when the job's main process exits get this long to end on SIGTERM.
LEFTOVER_GRACE = 2.0
# How long an outcome that cannot be written (a full disk without its reserve) is retried, and how
# long a hand-off of the slot; the shell keeps its slot meanwhile.
RECORD_RETRY_SECONDS = 600.0
HANDOVER_RETRY_SECONDS = 30.0
RETRY_PAUSE = 1.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PAUSE_SIGNALS = (proc.PAUSE_SIGNAL, proc.RESUME_SIGNAL)
# Signals the job must start with at their default action, whatever this process inherited or set.
RESET_SIGNALS = {signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGQUIT, *STOP_SIGNALS}


class Monitor:
    """The monitor of one shell. `environ` is the environment it was started with (None: read from
    /proc, as a monitor started by exec finds it); a queued shell's own environment waits in its env file.
    """

    def __init__(self, layout: lay.Layout, shell_id: str, ready_fd: int,
                 environ: dict[str, str] | None = None) -> None:
        self.layout = layout
        self.shell_id = shell_id
        self.ready_fd = ready_fd
        self.environ = environ
        self.me = os.getpid()
        self.job = 0
        self.wait_status: int | None = None
        self.rusage: dict[str, float] | None = None
        self.received: list[int] = []
        self.switches: list[int] = []
        self.state: lifecycle.State = {}
        self.paused_since = 0.0
        self.watch: budget.Watch | None = None
        self.subreaper = False
        self.over_budget: dict[str, object] | None = None
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def run(self) -> None:
        state = lay.read_json(self.layout.file(self.shell_id, lay.STATE))
        if state.get("status") != "starting":
            # Given up while this process came up (its launcher died): the slot is no longer ours.
            self._reply(f"error {self.shell_id} is {state.get('status')}, no longer waiting to start")
            return
        self.state = state
        try:
            spec = lay.read_json(self.layout.file(self.shell_id, lay.SPEC))
            job = Job(spec)
        except (OSError, ValueError) as exc:
            self._not_started(f"spec.json is damaged: {exc}", 126)
            return
        env = self._job_env()
        self._install_handlers()
        # Before the job exists: whatever it detaches at once (setsid, double fork) re-parents here.
        try:
            proc.become_subreaper()
            self.subreaper = True
        except (OSError, AttributeError) as exc:
            self._log(f"not a subreaper ({exc}): only the tag finds what the job detaches\n")
        if not self._start_job(job, env):
            return
        self._reply(f"ok {self.job}")
        self.watch = self._budget_watch(spec, job.cwd)
        while True:
            killed, timed_out = self._supervise(job.timeout)
            assert self.wait_status is not None
            ended = lifecycle.exited(self.state, time.time(), self.wait_status, killed=killed, timed_out=timed_out,
                                     rusage=self.rusage, budget_exceeded=self.over_budget)
            if not lifecycle.should_retry(ended, job.retries):
                ended = lifecycle.last_attempt(ended, job.retries)
                break
            output_start = self._stdout_size()
            spent = self.watch.attempt_ended(time.time(), output_start) if self.watch is not None else None
            if spent is not None:
                ended = lifecycle.budget_spent(lifecycle.last_attempt(ended, job.retries), spent)
                break
            between = time.monotonic()
            self.state = lifecycle.retrying(ended, job.retries, job.retry_delay, output_start)
            self._log(f"mgsup: {self.state['message']}\n", lay.STDERR)
            self._try_save(self.state)
            if not self._delay(job.retry_delay):
                ended = lifecycle.stopped_between_attempts(self.state, time.time())
                break
            if self.watch is not None:
                # The budget's duration is the time the job runs: the wait between attempts is not spent.
                self.watch.shift(time.monotonic() - between)
            self.wait_status = self.rusage = None
            if not self._start_job(job, env):
                return
        if spec.get("runner") is not None:
            self._record_printed(job.cwd)
        self._record_end(ended)
        self._hand_over_slot()

    def _start_job(self, job: Job, env: dict[str, str]) -> bool:
        """Start (an attempt of) the job and record it running; False when it could not run (recorded)."""
        try:
            self.job = self._spawn(job, env)
        except OSError as exc:
            self._log(f"mgsup: cannot run {job.argv[0]!r} in {job.cwd}: {exc.strerror}\n", lay.STDERR)
            self._not_started(f"cannot start: {exc.strerror}", 127 if isinstance(exc, FileNotFoundError) else 126)
            return False
        state = lifecycle.running(self.state, time.time(), pid=self.job, pid_start=proc.start_ticks(self.job),
                                  monitor_pid=self.me, monitor_start=proc.start_ticks(self.me))
        try:
            self._save(state, durable=False, reserve=lay.RESERVE_RUNNING)
        except OSError as exc:
            # Unrecorded, the job would run without anyone knowing of it: it does not run at all.
            self._stop_tree(signal.SIGKILL, 0.0)
            self._not_started(f"cannot record the job's start: {exc.strerror}", 126)
            return False
        self.state = state
        return True

    def _record_printed(self, cwd: str) -> None:
        """What a coordination run printed (its answer file or error), kept for readers: they never write."""
        start = self.state.get("output_start", 0)
        file = functools.partial(self.layout.file, self.shell_id)
        try:
            from supervisor.automation import printed

            printed.record_printed(file(lay.PRINTED), file(lay.STDOUT), cwd=cwd, stderr_path=file(lay.STDERR),
                                   start=start if isinstance(start, int) else 0)
        except Exception as exc:  # nothing may keep the end from being recorded: readers read the output instead
            self._log(f"could not keep what the run printed: {exc!r}\n")

    def _not_started(self, message: str, code: int) -> None:
        self._record_end(lifecycle.not_started(self.state, time.time(), message, exit_code=code))
        self._reply(f"error {message}")
        self._hand_over_slot()

    def _record_end(self, state: lifecycle.State) -> None:
        """Record the outcome: into the reserved space, else retried while this process lives."""
        deadline = time.monotonic() + RECORD_RETRY_SECONDS
        while True:
            try:
                self._save(state, reserve=lay.RESERVE_END)
                return
            except FileNotFoundError:
                return  # the shell's record was removed (`clean` of a damaged record): nothing to write to
            except OSError as exc:
                if time.monotonic() > deadline:
                    self._log(f"gave up recording the outcome: {exc.strerror}\n")
                    return
            self._pause(RETRY_PAUSE)

    def _budget_watch(self, spec: dict[str, object], cwd: str) -> budget.Watch | None:
        """The watch over a coordination run's budget (checked by `Job`); None without one."""
        limits = spec.get("budget")
        if not isinstance(limits, dict):
            return None
        # Imported only for a run with a budget: the others do not pay for it.
        from supervisor import budget

        prices = spec.get("prices")
        status_file = spec.get("status_file")
        return budget.Watch(limits, prices if isinstance(prices, dict) else None,
                            stdout_path=self.layout.file(self.shell_id, lay.STDOUT), cwd=cwd,
                            status_file=status_file if isinstance(status_file, str) else None,
                            started=time.monotonic())

    def _stdout_size(self) -> int:
        """How much the job has written to stdout.log: where the output of an attempt that starts now begins."""
        try:
            return os.stat(self.layout.file(self.shell_id, lay.STDOUT)).st_size
        except OSError:
            return 0

    def _supervise(self, timeout: float | None) -> tuple[bool, bool]:
        """Wait for the job to end; returns (killed on request, killed by timeout).

        The timeout and the budget's duration do not run while the shell is paused.
        """
        deadline = time.monotonic() + timeout if timeout else None
        killed = timed_out = False
        while self.wait_status is None:
            # A job that already ended by itself was not killed on request, whatever arrives now.
            self._reap()
            if self.wait_status is not None:
                break
            if any(sig in STOP_SIGNALS for sig in self.received):
                killed = True
                request = self._kill_request()
                self._stop_tree(*request)
                continue
            deadline = self._pause_requests(deadline)
            if self.state["status"] == "paused":
                self._pause(None)
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                timed_out = True
                self._stop_tree(signal.SIGTERM, lifecycle.DEFAULT_GRACE)
                continue
            watch = self.watch
            if watch is not None and self.over_budget is None:
                self.over_budget = watch.passed(time.monotonic())
                if self.over_budget is not None:
                    self._interrupt(watch.interrupt_grace)
                    continue
                look = watch.due(time.monotonic())
                left = look if left is None else min(left, look)
            self._pause(left)
        # The main process is gone; whatever it started must not outlive the shell.
        self._stop_tree(signal.SIGTERM, LEFTOVER_GRACE)
        # A process can still escape the tree (a monitor restarted, a job that re-parents on purpose);
        # the tag in its environment finds it.
        proc.stop(lambda: proc.tagged(self.shell_id), signal.SIGTERM, LEFTOVER_GRACE, self._pause)
        return killed, timed_out

    def _delay(self, seconds: float) -> bool:
        """Wait `seconds` between attempts (not counting a pause); False when a stop request came first."""
        deadline: float | None = time.monotonic() + seconds
        while True:
            if any(sig in STOP_SIGNALS for sig in self.received):
                self.received.clear()
                return False
            deadline = self._pause_requests(deadline)
            assert deadline is not None
            left = None if self.state["status"] == "paused" else deadline - time.monotonic()
            if left is not None and left <= 0:
                return True
            self._pause(left)

    def _pause_requests(self, deadline: float | None) -> float | None:
        """Act on `pause` / `resume` requests, in order; returns `deadline` moved on by the time spent paused.

        The budget's duration is moved on too: a paused run spends nothing.
        """
        while self.switches:
            pause = self.switches.pop(0) == proc.PAUSE_SIGNAL
            if pause and self.state["status"] == "running":
                self._signal_tree(signal.SIGSTOP)
                self.paused_since = time.monotonic()
                self.state = lifecycle.paused(self.state, time.time())
                self._try_save(self.state)
            elif not pause and self.state["status"] == "paused":
                self._signal_tree(signal.SIGCONT)
                paused_for = time.monotonic() - self.paused_since
                if deadline is not None:
                    deadline += paused_for
                if self.watch is not None:
                    self.watch.shift(paused_for)
                self.state = lifecycle.resumed(self.state)
                self._try_save(self.state)
        return deadline

    def _signal_tree(self, sig: int) -> None:
        """Send `sig` to the job's process group (while its leader is unreaped) and to every descendant."""
        if self.wait_status is None and self.job:
            try:
                os.killpg(self.job, sig)
            except ProcessLookupError:
                pass
        proc.send(proc.descendants(self.me), sig)

    def _interrupt(self, grace: float) -> None:
        """Interrupt the job's process group (as Ctrl-C would) and give its main process `grace` seconds to
        end; then stop the tree. A runner records its end on an interrupt; not every one does on SIGTERM."""
        try:
            os.killpg(self.job, signal.SIGINT)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while self.wait_status is None and time.monotonic() < deadline:
            self._pause(deadline - time.monotonic())
        self._stop_tree(signal.SIGTERM, lifecycle.DEFAULT_GRACE)

    def _stop_tree(self, sig: int, grace: float) -> None:
        self.received.clear()
        if self.wait_status is None:
            try:
                os.killpg(self.job, sig)
            except ProcessLookupError:
                pass
        # A subreaper without children has no descendants at all: every orphan below it comes to it.
        # Not scanning /proc for them then saves every short job a walk over all processes.
        if not (self.subreaper and self.wait_status is not None and _childless()):
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
            sig, grace = int(request["signal"]), float(request["grace"])
        except (OSError, ValueError, KeyError, TypeError, OverflowError):
            return signal.SIGTERM, lifecycle.DEFAULT_GRACE
        if not (0 < sig < signal.NSIG and 0.0 <= grace <= lifecycle.MAX_SECONDS):
            return signal.SIGTERM, lifecycle.DEFAULT_GRACE
        return sig, grace

    def _job_env(self) -> dict[str, str]:
        env_file = self.layout.file(self.shell_id, lay.ENV)
        try:
            env = dict(lay.read_json(env_file))
        except FileNotFoundError:
            env = _initial_environ() if self.environ is None else dict(self.environ)
        else:
            os.unlink(env_file)
        env.pop(proc.MONITOR_VAR, None)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env[proc.SHELL_ID_VAR] = self.shell_id
        return env

    def _spawn(self, job: Job, env: dict[str, str]) -> int:
        out = os.open(self.layout.file(self.shell_id, lay.STDOUT), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        err = os.open(self.layout.file(self.shell_id, lay.STDERR), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.chdir(job.cwd)
            # posix_spawnp searches the PATH of this process: make it the job's, which the request was
            # checked against (a queued job's monitor, or one forked by the launcher, was started with another).
            os.environ["PATH"] = env.get("PATH", os.defpath)
            return os.posix_spawnp(
                job.argv[0], job.argv, env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, out, 1),
                    # One file for both streams keeps their lines in the order they were written.
                    (os.POSIX_SPAWN_DUP2, out if job.merge_output else err, 2),
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
        for sig in PAUSE_SIGNALS:
            signal.signal(sig, self._record_switch)

    def _record(self, signum: int, frame: object) -> None:
        self.received.append(signum)

    def _record_switch(self, signum: int, frame: object) -> None:
        self.switches.append(signum)

    def _try_save(self, state: lifecycle.State) -> None:
        """Record a passing state (paused, between attempts); on a full disk the next one says more."""
        try:
            self._save(state, reserve=lay.RESERVE_RUNNING, durable=False)
        except OSError as exc:
            self._log(f"could not record the state {state['status']}: {exc.strerror}\n")

    def _save(self, state: lifecycle.State, *, reserve: str, durable: bool = True) -> None:
        lay.write_json(self.layout.file(self.shell_id, lay.STATE), state, durable=durable,
                       reserve=self.layout.file(self.shell_id, reserve))

    def _reply(self, message: str) -> None:
        """Answer the starter, once (a later attempt's failure is only recorded)."""
        if self.ready_fd < 0:
            return
        try:
            os.write(self.ready_fd, message.encode() + b"\n")
            os.close(self.ready_fd)
        except OSError:
            pass  # The caller is gone; the job goes on regardless.
        self.ready_fd = -1

    def _log(self, text: str, name: str = lay.MONITOR_LOG) -> None:
        """Append `text` to one of the shell's files; a full disk or a removed record loses it."""
        try:
            fd = os.open(self.layout.file(self.shell_id, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            os.write(fd, text.encode(errors="surrogateescape"))
        except OSError:
            pass
        finally:
            os.close(fd)

    def _hand_over_slot(self) -> None:
        """Give the slot back and start queued shells in it, retrying a while on a full disk."""
        from supervisor import admission

        deadline = time.monotonic() + HANDOVER_RETRY_SECONDS
        while True:
            try:
                admission.start_admitted(self.layout, admission.release(self.layout, self.shell_id))
                return
            except lay.UnsafeHome as exc:
                self._log(f"the queue was not handed on: {exc}\n")
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    # The slot is free or not; the next admission on this home settles it either way.
                    self._log(f"the queue was not handed on: {exc.strerror}\n")
                    return
            time.sleep(RETRY_PAUSE)


def _childless() -> bool:
    """Whether this process has no child at all (reaped or not)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return False


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


class Job:
    """What the monitor runs, from a spec.json; ValueError when it is not what mgsup writes."""

    __slots__ = ("argv", "cwd", "merge_output", "retries", "retry_delay", "timeout")

    def __init__(self, spec: object) -> None:
        if not isinstance(spec, dict):
            raise ValueError("not an object")
        argv, cwd = spec.get("argv"), spec.get("cwd")
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) and a for a in argv[:1])
                and all(isinstance(a, str) for a in argv)):
            raise ValueError("argv is not a list of strings")
        if not isinstance(cwd, str) or not cwd:
            raise ValueError("cwd is not a path")
        self.argv: list[str] = argv
        self.cwd: str = cwd
        self.timeout = _seconds(spec, "timeout", None, positive=True)
        self.retry_delay = _seconds(spec, "retry_delay", 0.0, positive=False) or 0.0
        retries = spec.get("retries", 0)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= lifecycle.MAX_RETRIES:
            raise ValueError(f"retries {retries!r} is out of range")
        self.retries: int = retries
        self.merge_output = spec.get("merge_output") is True
        if spec.get("budget") is not None:
            # A budget that cannot be held to must not become a run without one.
            from supervisor import budget

            problem = budget.problem(spec["budget"])
            if problem is not None:
                raise ValueError(problem)


def _seconds(spec: dict[str, object], key: str, default: float | None, *, positive: bool) -> float | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (positive and value == 0)
            or value > lifecycle.MAX_SECONDS):
        raise ValueError(f"{key} {value!r} is out of range")
    return float(value)


def main() -> None:
    home, shell_id, ready_fd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.set_inheritable(ready_fd, False)
    if os.fork():
        os._exit(0)
    os.setsid()
    Monitor(lay.Layout(home), shell_id, ready_fd).run()


if __name__ == "__main__":
    main()
