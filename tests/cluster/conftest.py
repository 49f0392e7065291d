"""A real two-node Ray cluster on 127.0.0.1, shared by every test of this folder.

The session fixture starts `ray_nodes.py` (head with 2 CPUs, second node with 1 CPU and the custom
resource `second_node`) with free ports and its own temporary directory, waits until the Job API
answers, and at the end stops it by the pids it started: the helper first (it shuts its nodes
down), then SIGKILL after a few seconds to whatever of its processes is left (Ray's gcs_server can
hang on SIGTERM). Never `ray stop`: it kills every Ray process on the machine.

Under pytest-xdist each worker that runs one of these tests starts its own cluster; the tests are
in the xdist group "ray", so `-n 2 --dist loadgroup` runs them all on one worker with one cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from supervisor import Supervisor

HELPER = Path(__file__).with_name("ray_nodes.py")
START_TIMEOUT = 120.0
STOP_PATIENCE = 5.0
# Ray's own variables for a quiet local cluster: loopback only, no usage reports.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass(frozen=True)
class RayCluster:
    address: str
    second_node_id: str


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): run the tests of one group on one xdist worker")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    pytest.importorskip("ray.job_submission", reason="the Ray tests need mgsup[ray] (pip install -e '.[ray]')")
    # A short path: Ray's unix sockets live under it, and their paths may not exceed 107 bytes.
    temp = tempfile.mkdtemp(prefix="mgray-", dir="/tmp")
    # The jobs' entrypoint runs `python3` from PATH: this interpreter's, with mgsup's dependencies.
    env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": temp,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MGSUP_CLUSTER", None)
    log = open(Path(temp) / "nodes.log", "wb")  # noqa: SIM115 - kept open while the cluster runs
    helper = subprocess.Popen([sys.executable, str(HELPER), temp], env=env, stdout=subprocess.PIPE, stderr=log,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        info = _ready(helper, Path(temp) / "nodes.log")
        yield RayCluster(address=info["dashboard"], second_node_id=info["second_node_id"])
    finally:
        _stop(helper)
        assert helper.stdout is not None
        helper.stdout.close()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _ready(helper: subprocess.Popen[bytes], log: Path) -> dict[str, str]:
    assert helper.stdout is not None
    line = helper.stdout.readline()
    if not line:
        helper.wait(timeout=30)
        pytest.fail(f"the Ray cluster did not start: {log.read_text(errors='replace')[-3000:]}")
    info: dict[str, str] = json.loads(line)
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            JobSubmissionClient(info["dashboard"]).list_jobs()
            return info
        except (ConnectionError, RuntimeError) as exc:
            if time.monotonic() > deadline or helper.poll() is not None:
                pytest.fail(f"the Ray Job API did not answer: {exc}")
            time.sleep(0.5)


def _stop(helper: subprocess.Popen[bytes]) -> None:
    """Stop the helper and every process it started, by pid: SIGTERM, a few seconds, then SIGKILL."""
    ours = _processes_of(helper.pid)
    if helper.poll() is None:
        helper.send_signal(signal.SIGTERM)
        try:
            helper.wait(timeout=STOP_PATIENCE * 3)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()
    ours += [p for p in _processes_of(helper.pid) if p not in ours]
    _, alive = psutil.wait_procs(ours, timeout=STOP_PATIENCE)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=STOP_PATIENCE)


def _processes_of(helper_pid: int) -> list[psutil.Process]:
    """The helper's descendants and the processes of its session (Ray daemonises some of them)."""
    found: dict[int, psutil.Process] = {}
    try:
        found |= {p.pid: p for p in psutil.Process(helper_pid).children(recursive=True)}
    except psutil.Error:
        pass
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == helper_pid and process.pid != helper_pid:
                found[process.pid] = process
        except (OSError, psutil.Error):
            continue
    return list(found.values())


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The working directory the tests' cluster jobs are started from (it travels to the node)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def cluster_sup(home: Supervisor, ray_cluster: RayCluster) -> Supervisor:
    """A Supervisor on the test's home that starts shells on the test cluster."""
    return Supervisor(home.home, cluster=ray_cluster.address)
