"""The Supervisor: the one library behind the Python API, the CLI and the agent tools."""

from __future__ import annotations

import errno
import functools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import admission, lifecycle, request
from . import layout as lay
from .automation import locate, runners, summary
from .automation import printed as printed_lines
from .cluster.address import default_cluster, normalize
from .errors import InvalidRequest, LimitReached, ShellNotFound, StateDirError, SupervisorError
from .host import Host
from .models import ShellOutput, ShellStatus, Spec, State, iso, shown_command, shown_text
from .output import read_window
from .store import StateMissing, Store, unsafe_home_error

if TYPE_CHECKING:
    from .cluster.backend import ClusterShells

StatusDict = dict[str, Any]
KILL_ANSWER_MARGIN = 10.0
# How often the kill waits look at the state again.
KILL_POLL = 0.01


def _default_max_concurrent() -> int:
    raw = os.environ.get("MGSUP_MAX_CONCURRENT")
    if not raw:
        return admission.DEFAULT_LIMIT
    try:
        return request.limit("MGSUP_MAX_CONCURRENT", int(raw))
    except ValueError:
        raise InvalidRequest(f"MGSUP_MAX_CONCURRENT must be a whole number from 1 to {admission.MAX_LIMIT}, "
                             f"got {request.quoted(raw)}") from None


def _default_stall_seconds() -> float:
    raw = os.environ.get("MGSUP_STALL_SECONDS")
    if not raw:
        return summary.DEFAULT_STALL_SECONDS
    try:
        value = request.seconds("MGSUP_STALL_SECONDS", float(raw))
    except (ValueError, InvalidRequest):
        raise InvalidRequest(f"MGSUP_STALL_SECONDS must be a number of seconds > 0, got {raw!r}") from None
    assert value is not None
    return value


class Supervisor:
    """Starts, tracks, limits and kills background shells recorded in one state directory.

    Every Supervisor on the same home shares the same shells and the same limit, across processes.
    `clock` stamps the records; `host` (a `supervisor.host.Host`, real by default) is the machine
    that admission, settling and the kill waits act on, and its clock wins over `clock`.

    >>> sup = Supervisor("/tmp/mgsup-demo", max_concurrent=4)
    >>> sid = sup.start_shell(["python3", "-c", "print('hi')"])
    >>> sup.wait_shell(sid)["exit_code"]
    0

    With `cluster` (a Ray dashboard URL; default `$MGSUP_CLUSTER`), new shells run as jobs of that
    Ray cluster; every Supervisor reads, waits for and kills local and cluster shells alike.

    >>> Supervisor(cluster="http://127.0.0.1:8265").start_shell("nproc", cpus=2)
    'shell_...'
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, *, max_concurrent: int | None = None,
                 cluster: str | None = None, stall_seconds: float | None = None,
                 clock: Callable[[], float] = time.time, host: Host | None = None) -> None:
        self.layout = lay.Layout(lay.default_home() if home is None else request.home(home))
        self.max_concurrent = (_default_max_concurrent() if max_concurrent is None
                               else request.limit("max_concurrent", max_concurrent))
        # A running coordination run whose status.json is older than this is reported `stalled`.
        stall = request.seconds("stall_seconds", stall_seconds)
        self.stall_seconds = _default_stall_seconds() if stall is None else stall
        if not callable(clock):
            raise InvalidRequest(f"clock must be a function returning the time, got {type(clock).__name__}")
        # Every OS call of admission, settling and the kill waits goes through the host; tests pass
        # a scripted one. `clock` stamps the records.
        self.host = Host(clock) if host is None else host
        self.clock = self.host.now
        self.store = Store(self.layout, self.host)
        self.cluster = default_cluster() if cluster is None else normalize(cluster)

    @property
    def home(self) -> Path:
        return Path(self.layout.home)

    @functools.cached_property
    def _cluster(self) -> ClusterShells:
        # Imported on first use: a Supervisor of local shells never pays for the cluster backend.
        from .cluster.backend import ClusterShells

        return ClusterShells(self.layout, self.store, new_id=self._new_id, clock=self.clock)

    # -- starting ---------------------------------------------------------------------------------

    def start_shell(self, command: str | list[str], *, cwd: str | os.PathLike[str] | None = None,
                    env: dict[str, str] | None = None, inherit_env: bool = True, name: str | None = None,
                    timeout: float | None = None, queue: bool = False, isolate: bool = False,
                    cpus: float | None = None, gpus: float | None = None,
                    resources: dict[str, float] | None = None) -> str:
        """Start `command` in the background and return its shell id (`shell_` + 8 hex characters).

        A string runs under `/bin/sh -c`; a list is executed directly. `env` is laid over the
        caller's environment (`inherit_env=False`: exactly `env`). At the limit, `queue=False`
        raises LimitReached and `queue=True` returns a queued shell that starts by itself.
        `isolate=True` runs the job in a fresh `<cwd>/.mgsup/workspaces/<name>_<suffix>`.

        On a cluster, the job runs in a copy of `cwd` on a node with `cpus` (default 1), `gpus` and
        custom `resources` free, `env` is laid over the node's environment, and Ray holds the queue.

        >>> sid = Supervisor().start_shell("sleep 30", name="nap", timeout=10)
        """
        if self.cluster is not None:
            return self._cluster.start_shell(self.cluster, command, cwd=cwd, env=env, inherit_env=inherit_env,
                                             name=name, timeout=timeout, isolate=isolate, cpus=cpus, gpus=gpus,
                                             resources=resources)
        _local_only(cpus, gpus, resources)
        return self._start(lambda _: command, cwd=cwd, env=env, inherit_env=inherit_env, name=name,
                           timeout=timeout, queue=queue, isolate=isolate, runner=None)

    def start_coordination(self, config: str | os.PathLike[str], question: str, *,
                           runner: str | list[str] | None = None, cwd: str | os.PathLike[str] | None = None,
                           env: dict[str, str] | None = None, timeout: float | None = None, queue: bool = False,
                           name: str | None = None, cpus: float | None = None, gpus: float | None = None,
                           resources: dict[str, float] | None = None, budget: dict[str, float] | None = None) -> str:
        """Start a coordination run: `RUNNER --automation --config CONFIG [--instance-id SUFFIX] QUESTION`.

        `runner` is "mgcoord" (the default, unless `$MGSUP_RUNNER` says otherwise), "massgen" (the
        real MassGen CLI on the job's PATH) or an explicit command (a program path, or an argv
        list) that follows the automation contract. mgcoord gets the shell id's 8 hex characters
        as its instance id, so parallel runs of one config never share a workspace. The run
        works in `cwd` (default: the current directory), and a relative `config` is read from
        there; `env` is laid over the caller's environment. The run's `log_dir`, `status_file`
        and `coordination` summary appear in its status as soon as it has printed them.

        On a cluster, `cwd` and the config travel with the job, the runner's program is looked up
        on the node (mgcoord travels too), `env` is laid over the node's environment, and the run's
        progress and final answer are brought back (see `start_shell` for the resources).

        `budget` (`max_tokens`, `max_cost_usd`, `max_duration_seconds`) is enforced by the shell's
        monitor, also after the caller has exited: when the run's reported usage passes it, the run
        is interrupted (SIGINT) and then stopped, and its `coordination.outcome` is `budget_exceeded`
        with the figure that passed in `coordination.budget_exceeded`. A cost the runner does not
        report is priced with the price table (`supervisor.prices`) as it is at the start.

        >>> sid = Supervisor().start_coordination("configs/demo.yaml", "What is 17 * 23?")
        >>> sid = Supervisor().start_coordination("configs/demo.yaml", "Q?", budget={"max_tokens": 50_000})
        >>> sid = Supervisor().start_coordination("massgen.yaml", "What is 17 * 23?", runner="massgen",
        ...                                       env={"OPENAI_API_KEY": key})
        """
        if not isinstance(question, str) or not question.strip():
            raise InvalidRequest("question is empty: give the question the agents should answer")
        limits = request.budget(budget)
        table = None
        if limits and "max_cost_usd" in limits:
            from . import prices  # a YAML file: read only when a budget needs it

            table = prices.table()
        if not isinstance(config, str | os.PathLike) or not os.fspath(config):
            raise InvalidRequest(f"config must be the path of a config file, got {request.quoted(config)}")
        base = request.working_dir(cwd)
        config_path = base / Path(config).expanduser()
        try:
            found = config_path.is_file()
        except OSError:
            found = False
        if not found:
            raise InvalidRequest(f"config file not found: {request.quoted_path(str(config_path))}")
        if self.cluster is not None:
            if limits:
                raise InvalidRequest("a budget is enforced by the shell's local monitor and is not available for "
                                     "cluster shells yet: start the run without a budget, or locally")
            return self._cluster.start_coordination(
                self.cluster, config_path.absolute(), question, runner=runners.for_node(runner, cwd=base), cwd=base,
                env=env, timeout=timeout, name=name, cpus=cpus, gpus=gpus, resources=resources)
        _local_only(cpus, gpus, resources)
        search = (env or {}).get("PATH") if isinstance(env, dict) else None
        chosen = runners.resolve(runner, path=search if isinstance(search, str) else os.environ.get("PATH"),
                                 cwd=base)
        return self._start(lambda shell_id: chosen.argv(str(config_path), question, shell_id[6:]),
                           cwd=base, env=env, inherit_env=True, name=name, timeout=timeout, queue=queue,
                           isolate=False, runner=chosen.kind, budget=limits, prices=table)

    def _start(self, command_for: Callable[[str], str | list[str]], *, cwd: str | os.PathLike[str] | None,
               env: dict[str, str] | None, inherit_env: bool, name: str | None, timeout: float | None,
               queue: bool, isolate: bool, runner: str | None, budget: dict[str, float] | None = None,
               prices: dict[str, list[float]] | None = None) -> str:
        queue = request.flag("queue", queue)
        shell_id = self._new_id()
        command = command_for(shell_id)
        req = request.start_request(command, cwd=cwd, env=env, inherit_env=inherit_env, name=name,
                                    timeout=timeout, isolate=isolate)
        self.store.ensure()
        workdir, made = req.cwd, []
        if isolate:
            workdir = req.cwd / ".mgsup" / "workspaces" / f"{req.name or 'shell'}_{shell_id[6:]}"
            made = _make_workspace(workdir)
        spec = Spec(shell_id=shell_id, name=req.name, command=req.command, argv=req.argv, cwd=str(workdir),
                    env_names=req.env_names, inherit_env=inherit_env, timeout=req.timeout, isolate=isolate,
                    max_concurrent=self.max_concurrent, created=self.clock(), runner=runner, budget=budget,
                    prices=prices)
        try:
            result = self._admit(spec, req.env, queue=queue)
        except BaseException:
            _remove_folders(made)
            raise
        try:
            if result.admitted:
                self._launch(shell_id, req.env)
        finally:
            self._start_queued(result)
        return shell_id

    def _admit(self, spec: Spec, env: dict[str, str], *, queue: bool) -> admission.Admission:
        """Record the shell, then give it a slot or a place in the queue; LimitReached when neither is free."""
        self.store.create(spec)
        try:
            result = admission.admit(self.layout, self.max_concurrent, spec.shell_id, queue=queue, env=env,
                                     host=self.host)
        except BaseException as exc:
            self.store.remove(spec.shell_id)
            if isinstance(exc, lay.UnsafeHome):
                raise unsafe_home_error(self.layout, str(exc)) from None
            if isinstance(exc, OSError):
                raise StateDirError(f"cannot write to the state directory {self.home}: {exc.strerror}; nothing "
                                    "was started") from exc
            raise
        if not (result.admitted or result.queued):
            self.store.remove(spec.shell_id)
            self._start_queued(result)
            raise LimitReached(f"Maximum concurrent shells ({self.max_concurrent}) reached: "
                               f"{result.active} running in {self.home}; wait for one to end, kill one, "
                               "or queue it (queue=True; mgsup start --queue)")
        return result

    def _start_queued(self, result: admission.Admission) -> None:
        """Start the queued shells an admission gave free slots to.

        Done whatever became of the shell being admitted: nobody else would start them.
        """
        admission.start_admitted(self.layout, result.to_start, self.host)

    def _launch(self, shell_id: str, env: dict[str, str]) -> None:
        try:
            self.host.spawn_monitor(self.layout.home, shell_id, env, self.layout.file(shell_id, lay.MONITOR_LOG))
        except OSError as exc:
            # The monitor could not run at all: nothing started, the caller hears why.
            admission.monitor_failed(self.layout, shell_id, f"monitor failed: {exc}", self.host)
            raise SupervisorError(f"could not start the monitor of {shell_id}: {exc}") from exc
        except RuntimeError:
            # The monitor recorded why the job could not start, or it died on the way and the
            # shell reads `lost`: either way the record says what happened.
            admission.monitor_failed(self.layout, shell_id, None, self.host)

    def _new_id(self) -> str:
        while True:
            shell_id = f"shell_{os.urandom(4).hex()}"
            if not self.store.exists(shell_id):
                return shell_id

    # -- reading ----------------------------------------------------------------------------------
    # Reads are side-effect free: a shell whose monitor vanished reads `lost`, but nothing is
    # written, signalled or started until a settling call (kill, wait, watch, clean, settle, a start).
    # The one exception is a cluster shell's local copy: its state is Ray's, and a read brings the
    # copy (state, output, a run's status.json) up to date; nothing is signalled or started.

    def get_shell_status(self, shell_id: str) -> StatusDict:
        """The status of `shell_id` as a plain dict (see DESIGN §2 for the keys).

        Side-effect free. Text that was not UTF-8 (bytes of an argument or a path) shows as U+FFFD,
        and a command shows at most `models.COMMAND_SHOWN` characters; the job runs with the exact bytes.

        >>> Supervisor().get_shell_status(sid)["status"]
        'running'
        """
        shell_id = request.shell_id(shell_id)
        self.store.check()
        return self._status(shell_id).model_dump(mode="json")

    def _status(self, shell_id: str, *, output: bool = False, strict: bool = True) -> ShellStatus:
        """The status of one shell; damage in its record is reported in it, never raised (but ShellNotFound).

        A cluster shell's state is brought up to date from the cluster (`output=True`: its output
        too); an unreachable cluster raises ClusterUnavailable, or with `strict=False` gives the
        last known status.
        """
        spec: Spec | None = None
        problems = []
        try:
            spec = self.store.spec(shell_id)
        except ValueError as exc:
            problems.append(str(exc))
        try:
            if spec is not None and spec.backend == "ray":
                state = self._cluster.state(spec, output=output, strict=strict)
            else:
                state = self.store.state(shell_id)
        except StateMissing as exc:
            # Between its creation and its admission a shell has a spec but no state yet.
            if spec is None or self.clock() - spec.created > admission.STARTUP_GRACE:
                problems.append(str(exc))
                state = State(status="lost")
            else:
                state = State(status="starting", created=spec.created)
        except ValueError as exc:
            problems.append(str(exc))
            state = State(status="lost")
        if problems:
            # A job that may still run keeps its status, so it is still counted, killed and never
            # cleaned away from under it; anything else reads lost.
            if lifecycle.is_ended(state.model_dump()):
                state = State(status="lost")
            damage = "; ".join(dict.fromkeys(problems))
            return self._compose(shell_id, spec, state, f"the shell's record is damaged: {damage}")
        return self._compose(shell_id, spec, state, None)

    def _compose(self, shell_id: str, spec: Spec | None, state: State, damage: str | None) -> ShellStatus:
        status = "queued" if state.status == "starting" else state.status
        now = self.clock()
        duration = None
        if state.start_time is not None:
            duration = round((state.end_time if state.end_time is not None else now) - state.start_time, 3)
        stdout = self.layout.file(shell_id, lay.STDOUT)
        stderr = self.layout.file(shell_id, lay.STDERR)
        # A lost shell's leftovers may still be writing while they are stopped: only a recorded end is final.
        final = status in ("stopped", "failed", "killed") and damage is None
        log_dir = status_file = None
        coordination = None
        if damage is None:
            assert spec is not None
            printed = printed_lines.printed(stdout, ended=final, cwd=spec.cwd, stderr_path=stderr,
                                            coordination=spec.runner is not None,
                                            record=self.layout.file(shell_id, lay.PRINTED) if final else None)
            log_dir, status_file = spec.log_dir or printed.log_dir, spec.status_file or printed.status_file
            if status_file:
                status_file = locate.current_status_file(status_file)
            # Priced only when there is a status.json to read usage from: the table is a YAML file.
            prices = spec.prices
            if not prices and status_file:
                from . import prices as price_table

                prices = price_table.table_for_reading()
            coordination = summary.summarize(status_file, shell_status=status, timed_out=state.timed_out,
                                             printed=printed, coordination_run=spec.runner is not None,
                                             stall_seconds=self.stall_seconds, now=now, activity=(stdout, stderr),
                                             prices=prices, budget_exceeded=state.budget_exceeded)
        # Made of validated records: not checked again.
        return ShellStatus.model_construct(
            shell_id=shell_id, name=spec.name if spec else None, status=status, exit_code=state.exit_code,
            signal=state.signal, timed_out=state.timed_out, pid=state.pid,
            command=shown_command(spec.command) if spec else "", cwd=shown_text(spec.cwd) if spec else "",
            created_at=iso(spec.created) if spec else None, start_time=iso(state.start_time),
            end_time=iso(state.end_time), duration_seconds=duration, stdout_path=stdout,
            stderr_path=stderr, log_dir=log_dir, status_file=status_file, coordination=coordination,
            message=damage or state.message, resource_usage=state.rusage, budget=spec.budget if spec else None,
            backend=spec.backend if spec else "local", cluster=spec.cluster if spec else None,
        )

    def list_shells(self, status: str | None = None) -> list[StatusDict]:
        """The status of every shell on record, oldest first; only those in `status` when given.

        Side-effect free; a damaged record is listed with what is wrong with it, never an error.
        """
        if status is not None and status not in lifecycle.STATUSES:
            raise InvalidRequest(f"unknown status {request.quoted(status)}: use one of {', '.join(lifecycle.STATUSES)}")
        self.store.check()
        shells = []
        for shell_id in self.store.ids():
            try:
                shells.append(self._status(shell_id, strict=False))
            except ShellNotFound:
                continue  # removed since the listing
        shells.sort(key=lambda s: (s.created_at or "", s.shell_id))
        return [s.model_dump(mode="json") for s in shells if status is None or s.status == status]

    def get_shell_output(self, shell_id: str, *, tail_lines: int | None = None, offset: int | None = None,
                         max_bytes: int | None = None, stream: str | None = None) -> StatusDict:
        """The output of `shell_id`: all of it, the last `tail_lines` lines, or what follows `offset`.

        `max_bytes` caps each stream; `stdout_next_offset` / `stderr_next_offset` tell where to
        continue, `*_truncated` whether text was left out, `*_remaining_bytes` how much of the log
        follows the window. A window of at least one byte always makes progress: when `max_bytes`
        is smaller than the character at `offset`, that one whole character is returned
        (`max_bytes=0` returns no text, only where the logs end). `stream="stdout"` or
        `"stderr"` reads only that one (the other's keys are None). Invalid UTF-8 is replaced.

        >>> out = Supervisor().get_shell_output(sid, tail_lines=20)
        """
        shell_id = request.shell_id(shell_id)
        tail_lines = request.count("tail_lines", tail_lines)
        offset = request.count("offset", offset)
        max_bytes = request.count("max_bytes", max_bytes)
        streams = request.streams(stream)
        self.store.check()
        status = self._status(shell_id, output=True)
        fields: dict[str, Any] = {}
        for name in streams:
            window = read_window(self.store.path(shell_id, f"{name}.log"), tail_lines=tail_lines, offset=offset,
                                 max_bytes=max_bytes)
            fields |= {name: window.text, f"{name}_next_offset": window.next_offset,
                       f"{name}_truncated": window.truncated, f"{name}_remaining_bytes": window.remaining_bytes}
        return ShellOutput(shell_id=shell_id, status=status.status, exit_code=status.exit_code,
                           **fields).model_dump(mode="json")

    # -- settling and stopping ----------------------------------------------------------------------

    def settle(self, shell_id: str) -> StatusDict:
        """Act on what a read of `shell_id` reports, and return its status after.

        A shell whose monitor vanished reads `lost`; settling stops whatever is left of its job
        (by its tag, its recorded pid, process group and session), records `lost` and hands its
        slot to the queue; a queued shell first in line takes a slot a dead monitor held. Bounded:
        about `admission.LOST_GRACE` + `admission.MONITOR_APPEAR` seconds at most. `kill_shell`,
        `wait_shell`, `watch`, `clean` and every start settle what they touch; reads never do.

        >>> Supervisor().settle(sid)["status"]
        'lost'
        """
        shell_id = request.shell_id(shell_id)
        self.store.check()
        self.store.require(shell_id)
        self._settle(shell_id)
        status = self._status(shell_id)
        if status.status == "lost":
            # Its monitor may have died between the settling and this read: act on that too.
            self._settle(shell_id)
            status = self._status(shell_id)
        return status.model_dump(mode="json")

    def _settle(self, shell_id: str) -> None:
        spec = self._spec(shell_id)
        if spec is not None and spec.backend == "ray":
            return  # nothing of it runs here to act on: its state is Ray's, brought here by every read
        try:
            admission.settle(self.layout, shell_id, self.host)
        except lay.UnsafeHome as exc:
            raise unsafe_home_error(self.layout, str(exc)) from None

    def _spec(self, shell_id: str) -> Spec | None:
        """The shell's spec, None when it is damaged (such a shell is settled and killed as a local one)."""
        try:
            return self.store.spec(shell_id)
        except ValueError:
            return None

    def kill_shell(self, shell_id: str, *, signal: str | int = "SIGTERM", grace: float = 5.0) -> StatusDict:
        """Kill the whole process tree of `shell_id`: `signal`, up to `grace` seconds, then SIGKILL.

        Returns once no process of the job is left. `killed` only when this call (or another kill)
        ended the job; a job that had already ended, whatever ended it, is `Process already terminated`.

        >>> Supervisor().kill_shell(sid)
        {'shell_id': 'shell_...', 'status': 'killed', 'signal': 'SIGTERM'}
        """
        shell_id = request.shell_id(shell_id)
        sig = request.signal_number(signal)
        grace_s = request.seconds("grace", grace, allow_zero=True) or 0.0
        self.store.check()
        self.store.require(shell_id)
        spec = self._spec(shell_id)
        if spec is not None and spec.backend == "ray":
            return self._cluster.kill(spec, signal=sig, grace=grace_s)
        state = self._wait_started(shell_id)
        if state.status == "queued":
            try:
                removed = admission.dequeue(self.layout, shell_id, self.host)
            except OSError as exc:
                raise StateDirError(f"cannot remove {shell_id} from the queue: writing to {self.home} failed "
                                    f"({exc.strerror}); it is still queued") from exc
            if removed:
                return {"shell_id": shell_id, "status": "killed", "signal": None, "message": "Removed from queue"}
            # A monitor took it from the queue meanwhile: it is starting, so kill it as a running shell.
            state = self._wait_started(shell_id)
        if state.status == "running":
            try:
                lay.write_json(self.layout.file(shell_id, lay.KILL_REQUEST), {"signal": sig, "grace": grace_s},
                               durable=False)
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise StateDirError(f"cannot ask the monitor of {shell_id} to stop: writing to {self.home} "
                                        f"failed ({exc.strerror}); kill it where the state directory is writable"
                                        ) from exc
                # A full disk: without a request the monitor stops the job with its defaults.
                sig, grace_s = 15, lifecycle.DEFAULT_GRACE
            self.host.signal(state.monitor_pid, state.monitor_start, 15)
            state = self._await_end(shell_id, state, grace_s + KILL_ANSWER_MARGIN)
            if state.status == "killed" and state.kill_requested:
                return {"shell_id": shell_id, "status": "killed", "signal": lifecycle.signal_name(sig)}
        return {"shell_id": shell_id, "status": self._status(shell_id).status, "signal": None,
                "message": "Process already terminated"}

    def _wait_started(self, shell_id: str) -> State:
        """The state once it is past `starting`, settled (a monitor that is coming up answers within seconds)."""
        deadline = self.host.monotonic() + admission.STARTUP_GRACE
        while True:
            self._settle(shell_id)
            try:
                state = self.store.state(shell_id)
            except ValueError:
                return State(status="lost")
            if state.status != "starting" or self.host.monotonic() > deadline:
                return state
            self.host.sleep(KILL_POLL)

    def _await_end(self, shell_id: str, state: State, patience: float) -> State:
        """The state once the monitor has recorded the end; past `patience`, the job is stopped from here."""
        deadline = self.host.monotonic() + patience
        while self.host.monotonic() < deadline:
            try:
                current = self.store.state(shell_id)
            except ValueError:
                break
            if current.status in lifecycle.ENDED:
                return current
            self.host.sleep(KILL_POLL)
        # The monitor did not answer in time: stop it and everything of the job from here.
        self.host.stop_process(state.monitor_pid, state.monitor_start, 9, 0.0)
        self.host.stop_job(shell_id, state.model_dump(), 9, 0.0)
        try:
            raw = self.store.raw_state(shell_id)
        except ValueError:
            raw = state.model_dump()
        if not lifecycle.is_ended(raw):
            raw = lifecycle.force_killed(raw, self.clock(), 9)
            try:
                lay.write_json(self.layout.file(shell_id, lay.STATE), raw)
            except OSError:
                # Nothing of the job is left; the record says so once it can be written (a settle).
                return State.model_validate(raw)
            admission.start_admitted(self.layout, admission.release(self.layout, shell_id, self.host), self.host)
        return State.model_validate(raw)

    def clean(self, *, everything: bool = False) -> list[str]:
        """Remove the records and logs of ended shells; `everything=True` kills running ones first.

        Each shell is settled first, so a lost one's leftovers are stopped and its slot handed on
        before its record goes; a shell whose job may still run is never removed without `everything`.
        """
        everything = request.flag("everything", everything)
        self.store.check()
        removed = []
        for shell_id in list(self.store.ids()):
            try:
                self._settle(shell_id)
                # A cluster that cannot be reached: its shells keep their last known status.
                status = self._status(shell_id, strict=False).status
            except ShellNotFound:
                continue
            if status in ("queued", "running"):
                if not everything:
                    continue
                self.kill_shell(shell_id)
            spec = self._spec(shell_id)
            if spec is not None and spec.backend == "ray":
                self._cluster.forget(spec)
            self.store.remove(shell_id)
            removed.append(shell_id)
        return removed

    # -- waiting ----------------------------------------------------------------------------------

    def wait_shell(self, shell_id: str, timeout: float | None = None, *, kill_on_stall: bool = False) -> StatusDict:
        """Block until `shell_id` has ended and return its final status (file watching, no busy polling).

        Raises TimeoutError when `timeout` seconds pass first. `kill_on_stall=True` kills the shell
        (like `kill_shell`) as soon as its coordination run is `stalled`: its status.json has not
        changed for `stall_seconds`; the final status then says so in `message`.

        >>> Supervisor().wait_shell(sid, timeout=60)["status"]
        'stopped'
        """
        from .watch import wait_until_ended

        shell_id = request.shell_id(shell_id)
        limit = request.seconds("timeout", timeout, allow_zero=True)
        return wait_until_ended(self, shell_id, limit, kill_on_stall=request.flag("kill_on_stall", kill_on_stall))

    def watch(self, shell_id: str, *, timeout: float | None = None,
              kill_on_stall: bool = False) -> Iterator[StatusDict]:
        """Yield the status of `shell_id` each time it (or its run's status.json) changes, until it ends.

        TimeoutError when `timeout` seconds pass first; `kill_on_stall` as in `wait_shell`.

        >>> for status in Supervisor().watch(sid, timeout=600):
        ...     print(status["status"], (status["coordination"] or {}).get("phase"))
        """
        from .watch import watch_status

        shell_id = request.shell_id(shell_id)
        return watch_status(self, shell_id, request.seconds("timeout", timeout, allow_zero=True),
                            kill_on_stall=request.flag("kill_on_stall", kill_on_stall))


def _local_only(cpus: float | None, gpus: float | None, resources: dict[str, float] | None) -> None:
    if cpus is not None or gpus is not None or resources is not None:
        raise InvalidRequest("cpus, gpus and resources are asked of a Ray cluster: give its address "
                             "(Supervisor(cluster=...), mgsup --cluster or $MGSUP_CLUSTER)")


def _make_workspace(path: Path) -> list[Path]:
    """Create the isolated workspace `path`; the folders this created, deepest first (to undo it)."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_folders(missing)
        base = next((p for p in path.parents if p.name == ".mgsup"), path.parent)
        raise InvalidRequest(f"cannot create the isolated workspace under {str(base)!r}: {exc.strerror or exc}; "
                             "start it from a writable directory, or without isolate") from None
    return missing


def _remove_folders(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            pass

