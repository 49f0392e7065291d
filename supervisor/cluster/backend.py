"""What `Supervisor` calls for cluster shells: start, read (state and output), kill, forget.

A cluster shell's record lives in the local home like any other (spec.json with `backend: "ray"`
and the cluster's address, state.json), but no monitor runs here: the job's state is Ray's, brought
into state.json by whoever reads it (`mirror` keeps the output and a run's progress). Once the end
is recorded, the cluster is never asked again. The local concurrency limit does not apply: the
cluster's scheduler holds the queue.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import layout as lay
from .. import lifecycle, request
from ..automation import runners
from ..errors import ClusterUnavailable, StateDirError, SupervisorError
from ..models import Spec, State
from ..store import Store
from . import client, jobstate, submission
from .mirror import Mirror, run_dir

# A stop takes Ray up to its own stop wait (the runner's grace and sweep included); then this much more.
STOP_PATIENCE = submission.STOP_WAIT + 10.0
POLL_FIRST = 0.05
POLL_MAX = 0.5


class ClusterShells:
    """Cluster shells of one home. `new_id` gives a fresh shell id; `clock` the time records carry."""

    def __init__(self, layout: lay.Layout, store: Store, *, new_id: Callable[[], str],
                 clock: Callable[[], float] = time.time) -> None:
        self.layout = layout
        self.store = store
        self.new_id = new_id
        self.clock = clock

    # -- starting ---------------------------------------------------------------------------------

    def start_shell(self, cluster: str, command: str | list[str], *, cwd: str | os.PathLike[str] | None,
                    env: dict[str, str] | None, inherit_env: bool, name: str | None, timeout: float | None,
                    isolate: bool, cpus: float | None, gpus: float | None,
                    resources: dict[str, float] | None) -> str:
        """Submit `command` as a Ray job run in a copy of `cwd`; `env` is laid over the node's environment."""
        req = request.start_request(command, cwd=cwd, env=env, inherit_env=inherit_env, name=name,
                                    timeout=timeout, isolate=isolate, path_lookup=False)
        asked = submission.resources(cpus, gpus, resources)
        shell_id = self.new_id()
        overlay = {key: req.env[key] for key in req.env_names}
        workspace = f"{req.name or 'shell'}_{shell_id[6:]}" if isolate else None
        sent = submission.command(shell_id, req.argv, workdir=req.cwd, workspace=workspace, timeout=req.timeout,
                                  env=overlay, env_names=req.env_names, inherit_env=inherit_env, name=req.name)
        spec = Spec(shell_id=shell_id, name=req.name, command=req.command, argv=req.argv, cwd=str(req.cwd),
                    env_names=req.env_names, inherit_env=inherit_env, timeout=req.timeout, isolate=isolate,
                    created=self.clock(), backend="ray", cluster=cluster, resources=asked.as_dict())
        return self._submit(spec, sent, asked)

    def start_coordination(self, cluster: str, config: Path, question: str, *, runner: runners.ResolvedRunner,
                           cwd: Path, env: dict[str, str] | None, timeout: float | None, name: str | None,
                           cpus: float | None, gpus: float | None, resources: dict[str, float] | None) -> str:
        """Submit a coordination run of `config` (absolute) in a copy of `cwd`; its progress is relayed here."""
        asked = submission.resources(cpus, gpus, resources)
        shell_id = self.new_id()
        argv = runner.argv(str(config), question, shell_id[6:])
        req = request.start_request(argv, cwd=cwd, env=env, inherit_env=True, name=name, timeout=timeout,
                                    path_lookup=False)
        overlay = {key: req.env[key] for key in req.env_names}
        sent = submission.coordination(shell_id, config, question, runner=runner, workdir=cwd, timeout=req.timeout,
                                       env=overlay, env_names=req.env_names, name=req.name)
        folder = run_dir(self.layout, shell_id)
        spec = Spec(shell_id=shell_id, name=req.name, command=argv, argv=argv, cwd=str(cwd),
                    env_names=req.env_names, timeout=req.timeout, created=self.clock(), log_dir=folder,
                    status_file=os.path.join(folder, "status.json"), runner=runner.kind, backend="ray",
                    cluster=cluster, resources=asked.as_dict())
        return self._submit(spec, sent, asked)

    def _submit(self, spec: Spec, sent: submission.Submission, resources: submission.Resources) -> str:
        # Connecting first: an unreachable cluster leaves no record behind.
        jobs = client.connect(spec.cluster or "")
        self.store.create(spec)
        try:
            lay.write_json(self.layout.file(spec.shell_id, lay.STATE), lifecycle.new(self.clock(), queued=False))
            jobs.submit(spec.shell_id, entrypoint=sent.entrypoint, runtime_env=sent.runtime_env,
                        metadata=sent.metadata, cpus=resources.cpus, gpus=resources.gpus, resources=resources.custom)
        except BaseException:
            self.store.remove(spec.shell_id)
            raise
        return spec.shell_id

    # -- reading ----------------------------------------------------------------------------------

    def state(self, spec: Spec, *, output: bool = False, strict: bool = True) -> State:
        """The shell's state, brought up to date from the cluster unless its end is already recorded.

        `output=True` also brings its output up to date. An unreachable cluster raises
        ClusterUnavailable, or with `strict=False` gives the last known state, saying so in `message`.
        """
        raw = self._read(spec.shell_id)
        if lifecycle.is_ended(raw):
            return State.model_validate(raw)
        try:
            raw = self._refresh(spec, output=output)
        except ClusterUnavailable as exc:
            if strict:
                raise
            return State.model_validate({**raw, "message": f"last known status: {exc}"})
        return State.model_validate(raw)

    def _refresh(self, spec: Spec, *, output: bool) -> dict[str, Any]:
        jobs = client.connect(spec.cluster or "")
        mirror = Mirror(self.layout, spec.shell_id)
        try:
            with mirror.locked():
                raw = self._read(spec.shell_id)
                if lifecycle.is_ended(raw):
                    return raw  # recorded by another reader meanwhile
                try:
                    job: client.Job | None = jobs.job(spec.shell_id)
                except client.JobMissing:
                    job = None
                end, log = None, ""
                # A running coordination run's progress comes with its log, and so does every job's end.
                if job is not None and (output or job.ended or spec.status_file is not None):
                    log = jobs.logs(spec.shell_id)
                    end = mirror.take(log)
                fresh = jobstate.advance(raw, job, end, self.clock())
                if lifecycle.is_ended(fresh):
                    mirror.finish(log, coordination_run=spec.status_file is not None)
                if fresh != raw:
                    lay.write_json(self.layout.file(spec.shell_id, lay.STATE), fresh,
                                   durable=lifecycle.is_ended(fresh))
                return fresh
        except ClusterUnavailable:
            raise  # an OSError too (ConnectionError), but not one of the home
        except OSError as exc:
            raise StateDirError(f"cannot update {spec.shell_id} in {self.layout.home}: {exc.strerror or exc}; the "
                                "state directory must be writable") from exc

    def _read(self, shell_id: str) -> dict[str, Any]:
        return self.store.raw_state(shell_id)

    # -- stopping ---------------------------------------------------------------------------------

    def kill(self, spec: Spec, *, signal: int, grace: float) -> dict[str, Any]:
        """Stop the job through Ray and return once Ray reports it gone, with the runner's account of the end.

        Ray sends SIGTERM; the runner then stops the job's whole tree with its own grace (5 s) before
        SIGKILL. Another `signal` or `grace` cannot reach the node: the result's message says so.
        A queued job is removed from the queue at once: Ray delivers the stop when the job would
        start (it cannot stop a job still waiting for resources), and the runner then never starts it.
        """
        shell_id = spec.shell_id
        before = self.state(spec)
        if before.status in lifecycle.ENDED:
            return {"shell_id": shell_id, "status": before.status, "signal": None,
                    "message": "Process already terminated"}
        jobs = client.connect(spec.cluster or "")
        try:
            jobs.stop(shell_id)
        except client.JobMissing:
            pass  # settled as `lost` by the read below
        except SupervisorError:
            # Ray refuses to stop a job that has just ended: the read below tells.
            if not jobs.job(shell_id).ended:
                raise
        if before.status == "queued" and self._dequeue(spec, jobs):
            return {"shell_id": shell_id, "status": "killed", "signal": None, "message": "Removed from queue"}
        final = self._await_end(spec)
        if final.status != "killed":
            return {"shell_id": shell_id, "status": final.status, "signal": None,
                    "message": "Process already terminated"}
        if final.start_time is None:
            return {"shell_id": shell_id, "status": "killed", "signal": None, "message": "Removed from queue"}
        result: dict[str, Any] = {"shell_id": shell_id, "status": "killed", "signal": "SIGTERM"}
        if signal != 15 or grace != submission.STOP_GRACE:
            result["message"] = (f"stopped through Ray: SIGTERM, then SIGKILL after {submission.STOP_GRACE:g} s "
                                 "(kill_shell's signal and grace apply to local shells)")
        return result

    def _dequeue(self, spec: Spec, jobs: client.Jobs) -> bool:
        """Record a job that Ray still holds in its queue as removed from it; False when it has started."""
        with Mirror(self.layout, spec.shell_id).locked():
            try:
                waiting = jobs.job(spec.shell_id).status == "PENDING"
            except client.JobMissing:
                return False
            raw = self._read(spec.shell_id)
            if not waiting or lifecycle.is_ended(raw):
                return False
            lay.write_json(self.layout.file(spec.shell_id, lay.STATE), lifecycle.removed_from_queue(raw, self.clock()))
            return True

    def _await_end(self, spec: Spec) -> State:
        deadline = time.monotonic() + STOP_PATIENCE
        pause = POLL_FIRST
        while True:
            state = self.state(spec, output=True)
            if state.status in lifecycle.ENDED:
                return state
            if time.monotonic() > deadline:
                raise SupervisorError(f"the Ray cluster at {spec.cluster} did not stop {spec.shell_id} within "
                                      f"{STOP_PATIENCE:g} s; see `ray job status {spec.shell_id}`")
            time.sleep(pause)
            pause = min(POLL_MAX, pause * 2)

    def forget(self, spec: Spec) -> None:
        """Remove an ended job's record from the cluster too, when it can be reached (the local record is the truth)."""
        try:
            client.connect(spec.cluster or "").delete(spec.shell_id)
        except SupervisorError:
            pass
