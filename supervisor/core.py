"""The Supervisor: the one library behind the Python API, the CLI and the agent tools."""

from __future__ import annotations

import errno
import functools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import admission, bulk, lifecycle, proc, refs, request, schedule
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
                    group: str | None = None, after: list[str] | None = None, retries: int = 0,
                    retry_delay: float = 0.0, merge_output: bool = False, cpus: float | None = None,
                    gpus: float | None = None, resources: dict[str, float] | None = None) -> str:
        """Start `command` in the background and return its shell id (`shell_` + 8 hex characters).

        A string runs under `/bin/sh -c`; a list is executed directly. `env` is laid over the
        caller's environment (`inherit_env=False`: exactly `env`). At the limit, `queue=False`
        raises LimitReached and `queue=True` returns a queued shell that starts by itself.
        `isolate=True` runs the job in a fresh `<cwd>/.mgsup/workspaces/<name>_<suffix>`.

        `group` puts the shell in a group whose own limit (`set_group_limit`) applies too. `after`
        lists shells (ids, prefixes, names) that must all end `stopped` first: until then the
        shell waits `queued`, and it ends `failed` without running when one of them does not
        succeed. `retries` runs the job again, up to that many times, when an attempt fails, times
        out or crashes (never after a kill), `retry_delay` seconds later; `timeout` is per attempt.
        `merge_output=True` writes stderr into stdout, in the order the job wrote them.

        On a cluster, the job runs in a copy of `cwd` on a node with `cpus` (default 1), `gpus` and
        custom `resources` free, `env` is laid over the node's environment, and Ray holds the queue.
        Its stderr always goes into its stdout; `group`, `after` and retries are InvalidRequest there.

        >>> sid = Supervisor().start_shell("sleep 30", name="nap", timeout=10)
        >>> tests = Supervisor().start_shell("pytest -q", after=["build"], retries=2, group="ci")
        """
        opts = request.options(group=group, after=after, retries=retries, retry_delay=retry_delay,
                               merge_output=merge_output)
        if self.cluster is not None:
            _cluster_options(opts)
            return self._cluster.start_shell(self.cluster, command, cwd=cwd, env=env, inherit_env=inherit_env,
                                             name=name, timeout=timeout, isolate=isolate, cpus=cpus, gpus=gpus,
                                             resources=resources)
        _local_only(cpus, gpus, resources)
        return self._start(lambda _: command, cwd=cwd, env=env, inherit_env=inherit_env, name=name,
                           timeout=timeout, queue=queue, isolate=isolate, runner=None, options=opts)

    def start_coordination(self, config: str | os.PathLike[str], question: str, *,
                           runner: str | list[str] | None = None, cwd: str | os.PathLike[str] | None = None,
                           env: dict[str, str] | None = None, timeout: float | None = None, queue: bool = False,
                           name: str | None = None, group: str | None = None, after: list[str] | None = None,
                           retries: int = 0, retry_delay: float = 0.0, cpus: float | None = None,
                           gpus: float | None = None, resources: dict[str, float] | None = None,
                           budget: dict[str, float] | None = None) -> str:
        """Start a coordination run: `RUNNER --automation --config CONFIG [--instance-id SUFFIX] QUESTION`.

        `runner` is "mgcoord" (the default, unless `$MGSUP_RUNNER` says otherwise), "massgen" (the
        real MassGen CLI on the job's PATH) or an explicit command (a program path, or an argv
        list) that follows the automation contract. mgcoord gets the shell id's 8 hex characters
        as its instance id, so parallel runs of one config never share a workspace. The run
        works in `cwd` (default: the current directory), and a relative `config` is read from
        there; `env` is laid over the caller's environment. The run's `log_dir`, `status_file`
        and `coordination` summary appear in its status as soon as it has printed them.
        `group`, `after` and the retries as in `start_shell`.

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
        table = _price_table(limits)
        opts = request.options(group=group, after=after, retries=retries, retry_delay=retry_delay)
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
            _cluster_options(opts)
            return self._cluster.start_coordination(
                self.cluster, config_path.absolute(), question, runner=runners.for_node(runner, cwd=base), cwd=base,
                env=env, timeout=timeout, name=name, cpus=cpus, gpus=gpus, resources=resources)
        _local_only(cpus, gpus, resources)
        search = (env or {}).get("PATH") if isinstance(env, dict) else None
        chosen = runners.resolve(runner, path=search if isinstance(search, str) else os.environ.get("PATH"),
                                 cwd=base)
        opts = opts._replace(config=str(config_path), question=question)
        return self._start(_coordination_command(chosen, str(config_path), question), cwd=base, env=env,
                           inherit_env=True, name=name, timeout=timeout, queue=queue, isolate=False,
                           runner=chosen.kind, options=opts, budget=limits, prices=table)

    def restart(self, shell_id: str, *, env: dict[str, str] | None = None, queue: bool = False) -> str:
        """Run what `shell_id` ran again, as a new shell, and return the new id.

        The same command (a coordination run: the same config, question and budget), working
        directory (an isolated shell: a fresh workspace beside its old one), name, timeout, group,
        retries and output setting; the shells it started after, as far as they are still on
        record. A cluster shell is submitted again to the cluster it ran on, asking for the same
        resources. The new status says `restarted_from`. A shell that has not ended is killed first.

        Environment values are never kept on disk, only the names that the start set (`env`): each
        must be given again in `env` or be set in this process's environment, else InvalidRequest
        names the missing ones and nothing is killed or started. The rest of the environment is
        this process's, as for any start (unless the shell was started with `inherit_env=False`).

        >>> new_id = Supervisor().restart("train", env={"API_KEY": key})
        """
        old = self.resolve(shell_id)
        try:
            spec = self.store.spec(old)
        except ValueError as exc:
            raise InvalidRequest(f"{old} cannot be restarted: {exc}") from None
        given = request.env_overlay(env)
        missing = [n for n in spec.env_names if n not in given and n not in os.environ]
        if missing:
            raise InvalidRequest(f"{old} was started with {', '.join(missing)} set, and environment values are never "
                                 f"kept: give {'it' if len(missing) == 1 else 'them'} again (env=...; mgsup restart "
                                 "--env NAME=VALUE) or set them here; nothing was restarted")
        job_env = {n: given.get(n, os.environ.get(n, "")) for n in spec.env_names} | given
        if spec.backend == "ray":
            return self._restart_on_cluster(old, spec, job_env)
        cwd = Path(spec.cwd).parents[2] if spec.isolate else Path(spec.cwd)
        after = tuple(dep for dep in spec.after if self.store.exists(dep))
        opts = request.Options(group=spec.group, after=after, retries=spec.retries, retry_delay=spec.retry_delay,
                               merge_output=spec.merge_output, restarted_from=old, config=spec.config,
                               question=spec.question)
        command = _same_command(spec)
        # What the start would refuse is refused before the old shell is killed.
        request.start_request(command(old), cwd=cwd, env=job_env, inherit_env=spec.inherit_env, name=spec.name,
                              timeout=spec.timeout, isolate=spec.isolate)
        # The price table as it is now, as for any start: a restart is a new run.
        table = _price_table(spec.budget)
        if self._status(old).status in lifecycle.LIVE:
            self.kill_shell(old)
        return self._start(command, cwd=cwd, env=job_env or None, inherit_env=spec.inherit_env, name=spec.name,
                           timeout=spec.timeout, queue=queue, isolate=spec.isolate, runner=spec.runner, options=opts,
                           budget=spec.budget, prices=table)

    def _restart_on_cluster(self, old: str, spec: Spec, env: dict[str, str]) -> str:
        """`restart` of a cluster shell: submitted again to its cluster, with the same resources."""
        assert spec.cluster is not None
        custom = dict(spec.resources or {})
        cpus, gpus = custom.pop("CPU", None), custom.pop("GPU", None)
        runner = _runner_of(spec)
        # What the submission would refuse is refused before the old shell is killed.
        request.start_request(spec.command, cwd=spec.cwd, env=env, inherit_env=spec.inherit_env, name=spec.name,
                              timeout=spec.timeout, isolate=spec.isolate, path_lookup=False)
        if self._status(old).status in lifecycle.LIVE:
            self.kill_shell(old)
        if runner is not None:
            assert spec.config is not None and spec.question is not None
            return self._cluster.start_coordination(
                spec.cluster, Path(spec.config), spec.question, runner=runner, cwd=Path(spec.cwd), env=env or None,
                timeout=spec.timeout, name=spec.name, cpus=cpus, gpus=gpus, resources=custom, restarted_from=old)
        return self._cluster.start_shell(spec.cluster, spec.command, cwd=spec.cwd, env=env or None,
                                         inherit_env=spec.inherit_env, name=spec.name, timeout=spec.timeout,
                                         isolate=spec.isolate, cpus=cpus, gpus=gpus, resources=custom,
                                         restarted_from=old)

    def _start(self, command_for: Callable[[str], str | list[str]], *, cwd: str | os.PathLike[str] | None,
               env: dict[str, str] | None, inherit_env: bool, name: str | None, timeout: float | None,
               queue: bool, isolate: bool, runner: str | None, options: request.Options,
               budget: dict[str, float] | None = None, prices: dict[str, list[float]] | None = None) -> str:
        queue = request.flag("queue", queue)
        shell_id = self._new_id()
        command = command_for(shell_id)
        req = request.start_request(command, cwd=cwd, env=env, inherit_env=inherit_env, name=name,
                                    timeout=timeout, isolate=isolate)
        self.store.ensure()
        after = list(dict.fromkeys(self.resolve(ref) for ref in options.after))
        on_cluster = [dep for dep in after if (dep_spec := self._spec(dep)) is not None and dep_spec.backend == "ray"]
        if on_cluster:
            raise InvalidRequest(f"after names the cluster shell {', '.join(on_cluster)}: a shell can start after "
                                 "local shells only (a cluster shell's end is not seen by the local queue)")
        workdir, made = req.cwd, []
        if isolate:
            workdir = req.cwd / ".mgsup" / "workspaces" / f"{req.name or 'shell'}_{shell_id[6:]}"
            made = _make_workspace(workdir)
        spec = Spec(shell_id=shell_id, name=req.name, command=req.command, argv=req.argv, cwd=str(workdir),
                    env_names=req.env_names, inherit_env=inherit_env, timeout=req.timeout, isolate=isolate,
                    max_concurrent=self.max_concurrent, created=self.clock(), runner=runner, group=options.group,
                    after=after, retries=options.retries, retry_delay=options.retry_delay,
                    merge_output=options.merge_output, restarted_from=options.restarted_from, config=options.config,
                    question=options.question, budget=budget, prices=prices)
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
            # The spec just written says the group and dependencies: admission need not read it back.
            result = admission.admit(self.layout, self.max_concurrent, spec.shell_id, queue=queue, env=env,
                                     plan=schedule.Plan(spec.group, list(spec.after)), host=self.host)
        except BaseException as exc:
            self.store.remove(spec.shell_id)
            if isinstance(exc, lay.UnsafeHome):
                raise unsafe_home_error(self.layout, str(exc)) from None
            if isinstance(exc, OSError):
                raise StateDirError(f"cannot write to the state directory {self.home}: {exc.strerror}; nothing "
                                    "was started") from exc
            raise
        if not (result.admitted or result.queued or result.ended):
            self.store.remove(spec.shell_id)
            self._start_queued(result)
            if result.full_group is not None:
                limit = schedule.group_limits(self.layout).get(result.full_group)
                raise LimitReached(f"Maximum concurrent shells of group {result.full_group!r} ({limit}) reached in "
                                   f"{self.home}; wait for one of the group to end, kill one, or queue it "
                                   "(queue=True; mgsup start --queue)")
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

    def resolve(self, ref: str) -> str:
        """The id of the shell that `ref` names: a full id, a unique prefix of its 8 hex characters
        (with or without `shell_`), a name (the newest shell with that name), or `last` (the newest shell).

        Every method that takes a shell id takes such a reference too. ShellNotFound (with the
        names and ids it is close to) when nothing fits; AmbiguousReference, listing the
        candidates, when several do. A full id costs one existence check; anything else reads each
        shell's spec.json, nothing more.

        >>> sup = Supervisor()
        >>> sup.resolve("nap") == sup.resolve("last")
        True
        """
        self.store.check()
        return refs.resolve(ref, self.store, self._describe)

    def _describe(self, shell_id: str) -> str:
        try:
            status = self._status(shell_id, strict=False)
        except ShellNotFound:
            return f"{shell_id} (removed)"
        return f"{shell_id} ({', '.join(filter(None, (status.name, status.status)))})"

    # Reads are side-effect free: a shell whose monitor vanished reads `lost`, but nothing is
    # written, signalled or started until a settling call (kill, wait, watch, clean, settle, a start).
    # The one exception is a cluster shell's local copy: its state is Ray's, and a read brings the
    # copy (state, output, a run's status.json) up to date; nothing is signalled or started.

    def get_shell_status(self, shell_id: str) -> StatusDict:
        """The status of `shell_id` (a reference, see `resolve`) as a plain dict (the README lists the keys).

        Side-effect free. Text that was not UTF-8 (bytes of an argument or a path) shows as U+FFFD,
        and a command shows at most `models.COMMAND_SHOWN` characters; the job runs with the exact bytes.

        >>> Supervisor().get_shell_status(sid)["status"]
        'running'
        """
        shell_id = self.resolve(shell_id)
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
            # Only a coordination run's monitor (or a cluster shell's mirror) records what it printed.
            kept = final and (spec.runner is not None or spec.backend == "ray")
            printed = printed_lines.printed(stdout, ended=final, cwd=spec.cwd, stderr_path=stderr,
                                            coordination=spec.runner is not None,
                                            record=self.layout.file(shell_id, lay.PRINTED) if kept else None,
                                            start=state.output_start)
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
            message=damage or state.message or self._waiting(spec, status), resource_usage=state.rusage,
            group=spec.group if spec else None, after=spec.after if spec else [], attempt=state.attempt,
            retries=spec.retries if spec else 0, restarted_from=spec.restarted_from if spec else None,
            question=spec.question if spec else None, budget=spec.budget if spec else None,
            backend=spec.backend if spec else "local", cluster=spec.cluster if spec else None,
        )

    def _waiting(self, spec: Spec | None, status: str) -> str | None:
        """What a queued shell waits for, besides a free slot: the shells it starts after that have not ended."""
        if spec is None or status != "queued" or not spec.after:
            return None
        left = schedule.waiting_for(self.layout, spec.after)
        return f"waiting for {', '.join(left)} to end" if left else None

    def list_shells(self, status: str | None = None, *, group: str | None = None, name: str | None = None,
                    newest_first: bool = False, limit: int | None = None) -> list[StatusDict]:
        """The status of every shell on record, oldest first (`newest_first`: the other way round).

        Only those in `status`, in `group`, or whose name is `name` or matches it as a pattern
        (`train-*`), when given; at most `limit` of them. Side-effect free; a damaged record is
        listed with what is wrong with it, never an error.

        >>> [s["name"] for s in Supervisor().list_shells("running", name="train-*", newest_first=True)]
        ['train-3', 'train-2']
        """
        if status is not None and status not in lifecycle.STATUSES:
            raise InvalidRequest(f"unknown status {request.quoted(status)}: use one of {', '.join(lifecycle.STATUSES)}")
        group = request.group_name("group", group)
        if name is not None and (not isinstance(name, str) or not name):
            raise InvalidRequest(f"name must be a name or a pattern such as 'train-*', got {request.quoted(name)}")
        newest_first = request.flag("newest_first", newest_first)
        limit = request.count("limit", limit)
        self.store.check()
        shells = []
        for shell_id in self.store.ids():
            try:
                shell = self._status(shell_id, strict=False)
            except ShellNotFound:
                continue  # removed since the listing
            if bulk.selected({"status": shell.status, "group": shell.group, "name": shell.name}, status=status,
                             group=group, name=name):
                shells.append(shell)
        # By the instant, not the text: times carry their UTC offset, which changes with daylight saving.
        shells.sort(key=lambda s: (datetime.fromisoformat(s.created_at).timestamp() if s.created_at else 0.0,
                                   s.shell_id), reverse=newest_first)
        return [s.model_dump(mode="json") for s in shells[:limit]]

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
        tail_lines = request.count("tail_lines", tail_lines)
        offset = request.count("offset", offset)
        max_bytes = request.count("max_bytes", max_bytes)
        streams = request.streams(stream)
        shell_id = self.resolve(shell_id)
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
        return self._settled(self.resolve(shell_id))

    def _settled(self, shell_id: str, *, strict: bool = True) -> StatusDict:
        """`settle` of a resolved id; `strict=False`: a cluster that cannot be reached gives the last known status."""
        self._settle(shell_id)
        status = self._status(shell_id, strict=strict)
        if status.status == "lost":
            # Its monitor may have died between the settling and this read: act on that too.
            self._settle(shell_id)
            status = self._status(shell_id, strict=strict)
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
        sig = request.signal_number(signal)
        grace_s = request.seconds("grace", grace, allow_zero=True) or 0.0
        shell_id = self.resolve(shell_id)
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
        if state.status in lifecycle.SUPERVISED:
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

    def pause(self, shell_id: str) -> StatusDict:
        """Stop the whole process tree of a running shell (SIGSTOP) and return its status, now `paused`.

        A paused shell keeps its slot, and neither its timeout nor its budget's duration runs until it
        is resumed; killing it works as usual. Pausing a paused shell changes nothing; any other
        status is InvalidRequest, and so is a cluster shell (a Ray job cannot be paused).

        >>> Supervisor().pause("train")["status"]
        'paused'
        """
        return self._switch(shell_id, pause=True)

    def resume(self, shell_id: str) -> StatusDict:
        """Continue a paused shell's whole process tree (SIGCONT) and return its status, `running` again.

        >>> Supervisor().resume("train")["status"]
        'running'
        """
        return self._switch(shell_id, pause=False)

    def _switch(self, ref: str, *, pause: bool) -> StatusDict:
        shell_id = self.resolve(ref)
        spec = self._spec(shell_id)
        if spec is not None and spec.backend == "ray":
            raise InvalidRequest(f"{shell_id} runs on the Ray cluster at {spec.cluster}, and a Ray job cannot be "
                                 f"{'paused' if pause else 'resumed'}: only local shells can (kill_shell stops it)")
        wanted = "paused" if pause else "running"
        state = self._wait_started(shell_id)
        if state.status != wanted:
            if state.status not in lifecycle.SUPERVISED:
                status = self._status(shell_id).status
                raise InvalidRequest(f"{shell_id} is {status}: only a running shell can be paused and only a paused "
                                     "one resumed")
            self.host.signal(state.monitor_pid, state.monitor_start,
                             proc.PAUSE_SIGNAL if pause else proc.RESUME_SIGNAL)
            deadline = self.host.monotonic() + KILL_ANSWER_MARGIN
            while state.status != wanted and state.status in lifecycle.SUPERVISED:
                if self.host.monotonic() > deadline:
                    raise SupervisorError(f"the monitor of {shell_id} did not answer the request to "
                                          f"{'pause' if pause else 'resume'} within {KILL_ANSWER_MARGIN:g} s")
                self.host.sleep(KILL_POLL)
                try:
                    state = self.store.state(shell_id)
                except ValueError:
                    break
        return self._status(shell_id).model_dump(mode="json")

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

    def kill_many(self, targets: Iterable[str] | Literal["all"], *, signal: str | int = "SIGTERM",
                  grace: float = 5.0) -> list[bulk.KillResult]:
        """Kill several shells: `targets` are references (ids, prefixes, names, `last`), or "all" for
        every shell that has not ended. Queued ones leave the queue first; the others are killed in
        parallel, each like `kill_shell`. Every reference is resolved before anything is killed.

        >>> [r["outcome"] for r in Supervisor().kill_many(["build", "tests"])]
        ['dequeued', 'killed']
        """
        request.signal_number(signal)
        request.seconds("grace", grace, allow_zero=True)
        if targets != "all" and (isinstance(targets, str) or not all(isinstance(t, str) for t in targets)):
            raise InvalidRequest(f"targets must be a list of shell references or 'all', got {request.quoted(targets)}")
        self.store.check()
        return bulk.kill_many(self, targets, signal, grace)

    def clean(self, refs: Iterable[str] | None = None, *, everything: bool = False,
              older_than: float | None = None) -> list[str]:
        """Remove the records and logs of ended shells, and return their ids.

        `refs`: only these shells (every reference is resolved first; one that has not ended is an
        error and nothing is removed, unless `everything`). `older_than`: only shells that ended
        (or, never started, were created) more than that many seconds ago. `everything=True` kills
        shells that have not ended (with `kill_many`) and removes them too. Each shell is settled
        first, so a lost one's leftovers are stopped and its slot handed on before its record goes.

        >>> Supervisor().clean(older_than=7 * 86400)
        ['shell_0a1b2c3d']
        """
        everything = request.flag("everything", everything)
        age = request.seconds("older_than", older_than, allow_zero=True)
        if refs is not None and (isinstance(refs, str) or not all(isinstance(r, str) for r in refs)):
            raise InvalidRequest(f"refs must be a list of shell references, got {request.quoted(refs)}")
        self.store.check()
        # A cluster that cannot be reached: its shells keep their last known status (and their record,
        # unless it says they ended).
        return bulk.clean(self, None if refs is None else list(refs), everything=everything, older_than=age,
                          settle=functools.partial(self._settled, strict=False), remove=self._remove)

    def _remove(self, shell_id: str) -> None:
        """Remove an ended shell's record; a cluster shell's job record on the cluster too, when it can be reached."""
        spec = self._spec(shell_id)
        if spec is not None and spec.backend == "ray":
            self._cluster.forget(spec)
        self.store.remove(shell_id)

    # -- groups -----------------------------------------------------------------------------------

    def set_group_limit(self, group: str, max_concurrent: int | None) -> StatusDict:
        """Let at most `max_concurrent` shells of `group` run at once (None: no limit of its own), and
        return the group as `groups` shows it. The home's limit still applies to all shells together.
        Queued shells that the new limit lets in start at once.

        >>> Supervisor().set_group_limit("gpu", 2)
        {'group': 'gpu', 'max_concurrent': 2, 'running': 0, 'queued': 0, 'shells': 0}
        """
        name = request.group_name("group", group)
        if name is None:
            raise InvalidRequest("group is missing: give the group's name")
        limit = None if max_concurrent is None else request.limit("max_concurrent", max_concurrent)
        self.store.ensure()
        try:
            admission.set_group_limit(self.layout, name, limit, self.max_concurrent, self.host)
        except lay.UnsafeHome as exc:
            raise unsafe_home_error(self.layout, str(exc)) from None
        except OSError as exc:
            raise StateDirError(f"cannot write the group limit to {self.home}: {exc.strerror}") from exc
        return next(g for g in self.groups() if g["group"] == name)

    def groups(self) -> list[StatusDict]:
        """Every group that has a limit or shells on record: its limit, how many of it run and wait, in all.

        >>> Supervisor().groups()
        [{'group': 'gpu', 'max_concurrent': 2, 'running': 1, 'queued': 3, 'shells': 6}]
        """
        self.store.check()
        return bulk.groups(self.list_shells(), schedule.group_limits(self.layout))

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

        limit = request.seconds("timeout", timeout, allow_zero=True)
        shell_id = self.resolve(shell_id)
        return wait_until_ended(self, shell_id, limit, kill_on_stall=request.flag("kill_on_stall", kill_on_stall))

    def watch(self, shell_id: str, *, timeout: float | None = None,
              kill_on_stall: bool = False) -> Iterator[StatusDict]:
        """Yield the status of `shell_id` each time it (or its run's status.json) changes, until it ends.

        TimeoutError when `timeout` seconds pass first; `kill_on_stall` as in `wait_shell`.

        >>> for status in Supervisor().watch(sid, timeout=600):
        ...     print(status["status"], (status["coordination"] or {}).get("phase"))
        """
        from .watch import watch_status

        limit = request.seconds("timeout", timeout, allow_zero=True)
        stall = request.flag("kill_on_stall", kill_on_stall)
        return watch_status(self, self.resolve(shell_id), limit, kill_on_stall=stall)


def _local_only(cpus: float | None, gpus: float | None, resources: dict[str, float] | None) -> None:
    if cpus is not None or gpus is not None or resources is not None:
        raise InvalidRequest("cpus, gpus and resources are asked of a Ray cluster: give its address "
                             "(Supervisor(cluster=...), mgsup --cluster or $MGSUP_CLUSTER)")


def _price_table(budget: Mapping[str, float] | None) -> dict[str, list[float]] | None:
    """The price table a start records when its budget is in USD (a YAML file: read only then)."""
    if not budget or "max_cost_usd" not in budget:
        return None
    from . import prices

    return prices.table()


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

def _cluster_options(opts: request.Options) -> None:
    """Refuse what the local home schedules and a cluster cannot: Ray holds a cluster shell's queue."""
    given = [what for what, used in (("group", opts.group is not None), ("after", bool(opts.after)),
                                     ("retries", opts.retries > 0), ("retry_delay", opts.retry_delay > 0)) if used]
    if given:
        raise InvalidRequest(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} scheduled by the local home "
                             "and not available for cluster shells (Ray holds their queue): start without "
                             f"{'it' if len(given) == 1 else 'them'}, or locally")


def _runner_of(spec: Spec) -> runners.ResolvedRunner | None:
    """The runner of a coordination run as its spec recorded it; None for a plain shell."""
    command = spec.command
    if spec.config and spec.question and spec.runner and isinstance(command, list) and "--automation" in command:
        # The runner's program is what its command line has before the automation options.
        return runners.ResolvedRunner(spec.runner, command[:command.index("--automation")])
    return None


def _same_command(spec: Spec) -> Callable[[str], str | list[str]]:
    """The command of a restart of `spec`: the same, but a coordination run gets the new shell's instance id."""
    runner = _runner_of(spec)
    if runner is not None:
        assert spec.config is not None and spec.question is not None
        return _coordination_command(runner, spec.config, spec.question)
    command = spec.command
    return lambda _: command


def _coordination_command(runner: runners.ResolvedRunner, config: str, question: str) -> Callable[[str], list[str]]:
    """The command of a coordination run, given its shell id (its 8 hex characters are mgcoord's instance id)."""
    return lambda shell_id: runner.argv(config, question, shell_id[6:])
