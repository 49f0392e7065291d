"""What a cluster start sends to Ray: the runner's spec, the entrypoint, the runtime_env and the resources.

The job's working directory travels as a `py_modules` entry (without `.massgen/`, `.mgsup/`,
`.git/` and `__pycache__/`), beside this package and the coordinator, so a node needs only Ray.
Not as the runtime_env's `working_dir`: since ray-project/ray#49313 a node deletes and unpacks a
`working_dir` again each time it sets up one that is not in its cache yet, so the first jobs from
one folder that a node sets up at the same moment delete it from under each other (a job then
fails, its folder gone); a node unpacks a `py_modules` entry once and shares it. Folders travel
by name (the node finds each on PYTHONPATH), so two of one name are refused.

A coordination run's config travels in the working directory, or, when it lives elsewhere, with
its folder as one more `py_modules` entry; its runner is named, and found on the node
(`automation.runners.for_node`). The caller's `env` values go in the runtime_env's `env_vars`
(Ray keeps them in its job record).
"""

from __future__ import annotations

import json
import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import coordinator
import supervisor

from ..automation.runners import ResolvedRunner
from ..errors import InvalidRequest

EXCLUDES = (".massgen/", ".mgsup/", ".git/", "__pycache__/")
PYTHON = "python3"
RUNNER_MODULE = "supervisor.cluster.runner"
# On a stop, the runner gives the job's tree this long after SIGTERM before SIGKILL (as kill_shell's default).
STOP_GRACE = 5.0
# Ray SIGKILLs the runner itself this long after its stop signal (whole seconds): time for the grace, the
# sweep of what the job left behind (the monitor's leftover grace, twice) and the final records.
STOP_WAIT_VAR = "RAY_JOB_STOP_WAIT_TIME_S"
STOP_WAIT = int(STOP_GRACE) + 10
DEFAULT_CPUS = 1.0


@dataclass(frozen=True)
class Resources:
    """What a job asks the cluster's scheduler for. One CPU by default, so that Ray queues rather than
    running every job at once (Ray's own default, zero, means no limit at all)."""

    cpus: float = DEFAULT_CPUS
    gpus: float = 0.0
    custom: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {"CPU": self.cpus, "GPU": self.gpus, **self.custom}


def resources(cpus: Any = None, gpus: Any = None, custom: Any = None) -> Resources:
    """Validated resources: amounts are finite numbers >= 0; custom names are Ray resource names.

    >>> resources(2, None, {"big_node": 1}).as_dict()
    {'CPU': 2.0, 'GPU': 0.0, 'big_node': 1.0}
    """
    extra: dict[str, float] = {}
    if custom is not None:
        if not isinstance(custom, dict):
            raise InvalidRequest(f"resources must be a mapping of resource names to amounts, got "
                                 f"{type(custom).__name__}")
        for name, amount in custom.items():
            if not isinstance(name, str) or not name.strip() or name != name.strip():
                raise InvalidRequest(f"invalid resource name {name!r}")
            if name in ("CPU", "GPU"):
                raise InvalidRequest(f"ask for {name} with {'cpus' if name == 'CPU' else 'gpus'}, not in resources")
            extra[name] = _amount(f"resource {name!r}", amount)
    return Resources(cpus=DEFAULT_CPUS if cpus is None else _amount("cpus", cpus),
                     gpus=0.0 if gpus is None else _amount("gpus", gpus), custom=extra)


def _amount(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidRequest(f"{what} must be a number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Submission:
    entrypoint: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str]


def command(shell_id: str, argv: list[str], *, workdir: Path, workspace: str | None, timeout: float | None,
            env: dict[str, str], env_names: list[str], inherit_env: bool, name: str | None) -> Submission:
    """The submission of a plain command, run in (a copy of) `workdir` or a fresh `workspace` inside it."""
    return _submission({"shell_id": shell_id, "argv": argv, "workspace": workspace}, workdir=workdir,
                       timeout=timeout, env=env, env_names=env_names, inherit_env=inherit_env, name=name)


def coordination(shell_id: str, config: Path, question: str, *, runner: ResolvedRunner, workdir: Path,
                 timeout: float | None, env: dict[str, str], env_names: list[str], name: str | None) -> Submission:
    """The submission of a coordination run of `config` (an absolute path) by `runner` in (a copy of) `workdir`."""
    extra: list[str] = []
    if config.is_relative_to(workdir):
        where: dict[str, Any] = {"config": str(config.relative_to(workdir)), "folder": None}
    else:
        where = {"config": config.name, "folder": config.parent.name}
        extra.append(str(config.parent))
    run = {**where, "question": question, "runner": runner.kind, "program": runner.program}
    return _submission({"shell_id": shell_id, "coordination": run}, workdir=workdir, timeout=timeout, env=env,
                       env_names=env_names, inherit_env=True, name=name, extra_modules=extra)


def _submission(spec: dict[str, Any], *, workdir: Path, timeout: float | None, env: dict[str, str],
                env_names: list[str], inherit_env: bool, name: str | None,
                extra_modules: list[str] | None = None) -> Submission:
    modules = [_package_dir(supervisor), _package_dir(coordinator), str(workdir), *(extra_modules or [])]
    _check_names(modules)
    runner_spec = {**spec, "workdir": workdir.name, "timeout": timeout, "env_names": env_names,
                   "inherit_env": inherit_env, "grace": STOP_GRACE, "drop_env": [STOP_WAIT_VAR]}
    runtime_env = {"py_modules": modules, "excludes": list(EXCLUDES),
                   "env_vars": {**env, STOP_WAIT_VAR: str(STOP_WAIT)}}
    entrypoint = f"exec {PYTHON} -m {RUNNER_MODULE} {shlex.quote(json.dumps(runner_spec))}"
    metadata = {"submitted_by": "mgsup", "shell_name": name or ""}
    return Submission(entrypoint=entrypoint, runtime_env=runtime_env, metadata=metadata)


def _check_names(modules: list[str]) -> None:
    """The node finds each folder that travels by its name: two of one name could not be told apart."""
    seen: dict[str, str] = {}
    for folder in modules:
        name = os.path.basename(folder)
        if not name:
            raise InvalidRequest(f"{folder!r} cannot travel to a Ray cluster: start from a folder inside it")
        if name in seen:
            raise InvalidRequest(f"{seen[name]!r} and {folder!r} would both travel to the Ray cluster as {name!r}: "
                                 "start from a folder of another name, or keep the config inside the working "
                                 "directory")
        seen[name] = folder


def _package_dir(package: ModuleType) -> str:
    return os.path.dirname(os.path.abspath(str(package.__file__)))
