"""The Supervisor: the one library behind the Python API, the CLI and the agent tools."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import admission, lifecycle, proc, request
from . import layout as lay
from .automation import printed as printed_lines
from .automation import runners, summary
from .errors import InvalidRequest, LimitReached, ShellNotFound, StateDirError, SupervisorError
from .models import ShellOutput, ShellStatus, Spec, State, iso
from .output import read_window
from .store import StateMissing, Store

StatusDict = dict[str, Any]
KILL_ANSWER_MARGIN = 10.0


def _default_max_concurrent() -> int:
    raw = os.environ.get("MGSUP_MAX_CONCURRENT")
    if not raw:
        return admission.DEFAULT_LIMIT
    try:
        return int(raw)
    except ValueError:
        raise InvalidRequest(f"MGSUP_MAX_CONCURRENT must be a whole number, got {raw!r}") from None


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

    >>> sup = Supervisor("/tmp/mgsup-demo", max_concurrent=4)
    >>> sid = sup.start_shell(["python3", "-c", "print('hi')"])
    >>> sup.wait_shell(sid)["exit_code"]
    0
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, *, max_concurrent: int | None = None,
                 stall_seconds: float | None = None, clock: Callable[[], float] = time.time) -> None:
        self.layout = lay.Layout(lay.default_home() if home is None else home)
        limit = _default_max_concurrent() if max_concurrent is None else max_concurrent
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidRequest(f"max_concurrent must be a whole number >= 1, got {limit!r}")
        self.max_concurrent = limit
        # A running coordination run whose status.json is older than this is reported `stalled`.
        stall = request.seconds("stall_seconds", stall_seconds)
        self.stall_seconds = _default_stall_seconds() if stall is None else stall
        self.store = Store(self.layout)
        self.clock = clock

    @property
    def home(self) -> Path:
        return Path(self.layout.home)

    # -- starting ---------------------------------------------------------------------------------

    def start_shell(self, command: str | list[str], *, cwd: str | os.PathLike[str] | None = None,
                    env: dict[str, str] | None = None, inherit_env: bool = True, name: str | None = None,
                    timeout: float | None = None, queue: bool = False, isolate: bool = False) -> str:
        """Start `command` in the background and return its shell id (`shell_` + 8 hex characters).

        A string runs under `/bin/sh -c`; a list is executed directly. `env` is laid over the
        caller's environment (`inherit_env=False`: exactly `env`). At the limit, `queue=False`
        raises LimitReached and `queue=True` returns a queued shell that starts by itself.
        `isolate=True` runs the job in a fresh `<cwd>/.mgsup/workspaces/<name>_<suffix>`.

        >>> sid = Supervisor().start_shell("sleep 30", name="nap", timeout=10)
        """
        return self._start(lambda _: command, cwd=cwd, env=env, inherit_env=inherit_env, name=name,
                           timeout=timeout, queue=queue, isolate=isolate, runner=None)

    def start_coordination(self, config: str | os.PathLike[str], question: str, *,
                           runner: str | list[str] | None = None, cwd: str | os.PathLike[str] | None = None,
                           env: dict[str, str] | None = None, timeout: float | None = None, queue: bool = False,
                           name: str | None = None) -> str:
        """Start a coordination run: `RUNNER --automation --config CONFIG [--instance-id SUFFIX] QUESTION`.

        `runner` is "mgcoord" (the default, unless `$MGSUP_RUNNER` says otherwise), "massgen" (the
        real MassGen CLI on the job's PATH) or an explicit command (a program path, or an argv
        list) that follows the automation contract. mgcoord gets the shell id's 8 hex characters
        as its instance id, so parallel runs of one config never share a workspace. The run
        works in `cwd` (default: the current directory), and a relative `config` is read from
        there; `env` is laid over the caller's environment. The run's `log_dir`, `status_file`
        and `coordination` summary appear in its status as soon as it has printed them.

        >>> sid = Supervisor().start_coordination("configs/demo.yaml", "What is 17 * 23?")
        >>> sid = Supervisor().start_coordination("massgen.yaml", "What is 17 * 23?", runner="massgen",
        ...                                       env={"OPENAI_API_KEY": key})
        """
        if not isinstance(question, str) or not question.strip():
            raise InvalidRequest("question is empty: give the question the agents should answer")
        base = request.working_dir(cwd)
        if not isinstance(config, str | os.PathLike):
            raise InvalidRequest(f"config must be a path, got {type(config).__name__}")
        config_path = base / Path(config).expanduser()
        if not config_path.is_file():
            raise InvalidRequest(f"config file not found: {str(config_path)!r}")
        search = (env or {}).get("PATH") if isinstance(env, dict) else None
        chosen = runners.resolve(runner, path=search if isinstance(search, str) else os.environ.get("PATH"),
                                 cwd=base)
        return self._start(lambda shell_id: chosen.argv(str(config_path), question, shell_id[6:]),
                           cwd=base, env=env, inherit_env=True, name=name, timeout=timeout, queue=queue,
                           isolate=False, runner=chosen.kind)

    def _start(self, command_for: Callable[[str], str | list[str]], *, cwd: str | os.PathLike[str] | None,
               env: dict[str, str] | None, inherit_env: bool, name: str | None, timeout: float | None,
               queue: bool, isolate: bool, runner: str | None) -> str:
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
                    max_concurrent=self.max_concurrent, created=self.clock(), runner=runner)
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
            result = admission.admit(self.layout, self.max_concurrent, spec.shell_id, queue=queue, env=env)
        except BaseException:
            self.store.remove(spec.shell_id)
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
        admission.start_admitted(self.layout, result.to_start)

    def _launch(self, shell_id: str, env: dict[str, str]) -> None:
        try:
            proc.spawn_monitor(self.layout.home, shell_id, env, self.layout.file(shell_id, lay.MONITOR_LOG))
        except OSError as exc:
            # The monitor could not run at all: nothing started, the caller hears why.
            admission.monitor_failed(self.layout, shell_id, f"monitor failed: {exc}")
            raise SupervisorError(f"could not start the monitor of {shell_id}: {exc}") from exc
        except RuntimeError:
            # The monitor recorded why the job could not start, or it died on the way and the
            # shell reads `lost`: either way the record says what happened.
            admission.monitor_failed(self.layout, shell_id, None)

    def _new_id(self) -> str:
        while True:
            shell_id = f"shell_{secrets.token_hex(4)}"
            if not self.store.exists(shell_id):
                return shell_id


    # -- reading ----------------------------------------------------------------------------------

    def get_shell_status(self, shell_id: str) -> StatusDict:
        """The status of `shell_id` as a plain dict (see DESIGN §2 for the keys).

        >>> Supervisor().get_shell_status(sid)["status"]
        'running'
        """
        return self._status(shell_id).model_dump(mode="json")

    def _status(self, shell_id: str) -> ShellStatus:
        spec: Spec | None = None
        try:
            spec = self.store.spec(shell_id)
            state = self.store.state(shell_id)
        except StateMissing as exc:
            # Between its creation and its admission a shell has a spec but no state yet.
            assert spec is not None
            if self.clock() - spec.created > admission.STARTUP_GRACE:
                return self._damaged(shell_id, spec, str(exc))
            state = State(status="starting", created=spec.created)
        except ValueError as exc:
            return self._damaged(shell_id, spec, str(exc))
        return self._compose(spec, state)

    def _compose(self, spec: Spec, state: State) -> ShellStatus:
        status = "queued" if state.status == "starting" else state.status
        now = self.clock()
        duration = None
        if state.start_time is not None:
            duration = round((state.end_time if state.end_time is not None else now) - state.start_time, 3)
        stdout = self.layout.file(spec.shell_id, lay.STDOUT)
        stderr = self.layout.file(spec.shell_id, lay.STDERR)
        # A lost shell's leftovers may still be writing while they are stopped: only a recorded end is final.
        final = status in ("stopped", "failed", "killed")
        printed = printed_lines.printed(stdout, ended=final, cwd=spec.cwd, stderr_path=stderr,
                                        coordination=spec.runner is not None,
                                        record=self.layout.file(spec.shell_id, lay.PRINTED) if final else None)
        log_dir, status_file = spec.log_dir or printed.log_dir, spec.status_file or printed.status_file
        if status_file:
            status_file = summary.current_status_file(status_file)
        coordination = summary.summarize(status_file, shell_status=status, timed_out=state.timed_out,
                                         printed=printed, coordination_run=spec.runner is not None,
                                         stall_seconds=self.stall_seconds, now=now, activity=(stdout, stderr))
        return ShellStatus(
            shell_id=spec.shell_id, name=spec.name, status=status, exit_code=state.exit_code,
            signal=state.signal, timed_out=state.timed_out, pid=state.pid, command=spec.command,
            cwd=spec.cwd, created_at=iso(spec.created), start_time=iso(state.start_time),
            end_time=iso(state.end_time), duration_seconds=duration, stdout_path=stdout,
            stderr_path=stderr, log_dir=log_dir, status_file=status_file, coordination=coordination,
            message=state.message, resource_usage=state.rusage,
        )

    def _damaged(self, shell_id: str, spec: Spec | None, problem: str) -> ShellStatus:
        return ShellStatus(
            shell_id=shell_id, name=spec.name if spec else None, status="lost", exit_code=None, signal=None,
            timed_out=False, pid=None, command=spec.command if spec else "", cwd=spec.cwd if spec else "",
            created_at=iso(spec.created) if spec else None, start_time=None, end_time=None,
            duration_seconds=None, stdout_path=str(self.store.path(shell_id, lay.STDOUT)),
            stderr_path=str(self.store.path(shell_id, lay.STDERR)), log_dir=None, status_file=None,
            coordination=None, message=f"the shell's record is damaged: {problem}",
        )

    def list_shells(self, status: str | None = None) -> list[StatusDict]:
        """The status of every shell on record, oldest first; only those in `status` when given."""
        if status is not None and status not in lifecycle.STATUSES:
            raise InvalidRequest(f"unknown status {status!r}: use one of {', '.join(lifecycle.STATUSES)}")
        shells = []
        for shell_id in self.store.ids():
            try:
                shells.append(self._status(shell_id))
            except ShellNotFound:
                continue  # not a shell's directory, or removed since the listing
        shells.sort(key=lambda s: (s.created_at or "", s.shell_id))
        return [s.model_dump(mode="json") for s in shells if status is None or s.status == status]

    def get_shell_output(self, shell_id: str, *, tail_lines: int | None = None, offset: int | None = None,
                         max_bytes: int | None = None, stream: str | None = None) -> StatusDict:
        """The output of `shell_id`: all of it, the last `tail_lines` lines, or what follows `offset`.

        `max_bytes` caps each stream; `stdout_next_offset` / `stderr_next_offset` tell where to
        continue, `*_truncated` whether text was left out, `*_remaining_bytes` how much of the log
        follows the window. `stream="stdout"` or `"stderr"` reads only that one (the other's keys
        are None). Invalid UTF-8 is replaced.

        >>> out = Supervisor().get_shell_output(sid, tail_lines=20)
        """
        tail_lines = request.count("tail_lines", tail_lines)
        offset = request.count("offset", offset)
        max_bytes = request.count("max_bytes", max_bytes)
        streams = request.streams(stream)
        status = self._status(shell_id)
        fields: dict[str, Any] = {}
        for name in streams:
            window = read_window(self.store.path(shell_id, f"{name}.log"), tail_lines=tail_lines, offset=offset,
                                 max_bytes=max_bytes)
            fields |= {name: window.text, f"{name}_next_offset": window.next_offset,
                       f"{name}_truncated": window.truncated, f"{name}_remaining_bytes": window.remaining_bytes}
        return ShellOutput(shell_id=shell_id, status=status.status, exit_code=status.exit_code,
                           **fields).model_dump(mode="json")

    # -- stopping ---------------------------------------------------------------------------------

    def kill_shell(self, shell_id: str, *, signal: str | int = "SIGTERM", grace: float = 5.0) -> StatusDict:
        """Kill the whole process tree of `shell_id`: `signal`, up to `grace` seconds, then SIGKILL.

        Returns once no process of the job is left.

        >>> Supervisor().kill_shell(sid)
        {'shell_id': 'shell_...', 'status': 'killed', 'signal': 'SIGTERM'}
        """
        sig = request.signal_number(signal)
        grace_s = request.seconds("grace", grace, allow_zero=True) or 0.0
        state = self._wait_started(shell_id)
        if state.status == "queued":
            if admission.dequeue(self.layout, shell_id):
                return {"shell_id": shell_id, "status": "killed", "signal": None, "message": "Removed from queue"}
            # A monitor took it from the queue meanwhile: it is starting, so kill it as a running shell.
            state = self._wait_started(shell_id)
        if state.status == "running":
            try:
                lay.write_json(self.layout.file(shell_id, lay.KILL_REQUEST), {"signal": sig, "grace": grace_s},
                               durable=False)
            except OSError as exc:
                raise StateDirError(f"cannot ask the monitor of {shell_id} to stop: writing to {self.home} failed "
                                    f"({exc.strerror}); kill it where the state directory is writable") from exc
            if proc.is_alive(state.monitor_pid, state.monitor_start):
                proc.send([state.monitor_pid or 0], 15)
            state = self._await_end(shell_id, state, grace_s + KILL_ANSWER_MARGIN)
            if state.status == "killed":
                return {"shell_id": shell_id, "status": "killed", "signal": lifecycle.signal_name(sig)}
        return {"shell_id": shell_id, "status": self._status(shell_id).status, "signal": None,
                "message": "Process already terminated"}

    def _wait_started(self, shell_id: str) -> State:
        """The state, once it is past `starting` (a monitor that is coming up answers within seconds)."""
        deadline = time.monotonic() + admission.STARTUP_GRACE
        while True:
            self.store.spec(shell_id)
            try:
                state = self.store.state(shell_id)
            except ValueError:
                return State(status="lost")
            if state.status != "starting" or time.monotonic() > deadline:
                return state
            time.sleep(0.005)

    def _await_end(self, shell_id: str, state: State, patience: float) -> State:
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            current = self.store.state(shell_id)
            if current.status in lifecycle.ENDED:
                return current
            time.sleep(0.01)
        # The monitor did not answer in time: stop it and everything of the job from here.
        proc.stop(lambda: {state.monitor_pid or 0} if proc.is_alive(state.monitor_pid, state.monitor_start)
                  else set(), 9, 0.0, time.sleep)
        proc.stop(lambda: proc.tagged(shell_id), 9, 0.0, time.sleep)
        raw = lay.read_json(self.layout.file(shell_id, lay.STATE))
        if not lifecycle.is_ended(raw):
            raw = lifecycle.force_killed(raw, self.clock(), 9)
            lay.write_json(self.layout.file(shell_id, lay.STATE), raw)
            admission.start_admitted(self.layout, admission.release(self.layout, shell_id))
        return State.model_validate(raw)

    def clean(self, *, everything: bool = False) -> list[str]:
        """Remove the records and logs of ended shells; `everything=True` kills running ones first."""
        removed = []
        for status in self.list_shells():
            if status["status"] in ("queued", "running"):
                if not everything:
                    continue
                self.kill_shell(status["shell_id"])
            self.store.remove(status["shell_id"])
            removed.append(status["shell_id"])
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

        limit = request.seconds("timeout", timeout, allow_zero=True)
        return wait_until_ended(self, shell_id, limit, kill_on_stall=kill_on_stall)

    def watch(self, shell_id: str, *, timeout: float | None = None,
              kill_on_stall: bool = False) -> Iterator[StatusDict]:
        """Yield the status of `shell_id` each time it (or its run's status.json) changes, until it ends.

        TimeoutError when `timeout` seconds pass first; `kill_on_stall` as in `wait_shell`.

        >>> for status in Supervisor().watch(sid, timeout=600):
        ...     print(status["status"], (status["coordination"] or {}).get("phase"))
        """
        from .watch import watch_status

        return watch_status(self, shell_id, request.seconds("timeout", timeout, allow_zero=True),
                            kill_on_stall=kill_on_stall)


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

