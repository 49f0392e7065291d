"""A two-node Ray cluster on 127.0.0.1, for the tests, the cluster benchmark, and trying `mgsup --cluster`.

    python scripts/local_ray_cluster.py        # start it, print its address; Ctrl-C stops it

The head has 2 CPUs; the second node has 1 CPU and the custom resource `second_node`. Everything
listens on 127.0.0.1 only, on free ports, and keeps its files in its own temporary directory. It
is stopped by the process ids it started (never `ray stop`, which kills every Ray on the machine):
the process that runs the nodes shuts them down, and whatever is left gets SIGKILL a few seconds
later (Ray's gcs_server can hang on SIGTERM).

Why not `ray start`: nodes bind to 127.0.0.1 only with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, and
with it `ray start --address` refuses to join a node ("Multi-node Ray clusters are not supported
on Windows and OSX"); without it Ray replaces 127.0.0.1 by the machine's outward address and
listens on every interface. `ray.cluster_utils.Cluster` (Ray's tool for multi-node test clusters)
starts the same processes and keeps the loopback binding. RAY_TMPDIR keeps its bookkeeping (Ray
writes `<tmp>/ray/ray_current_cluster`) in our directory rather than /tmp/ray.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

HEAD_CPUS = 2
SECOND_NODE_CPUS = 1
SECOND_NODE_RESOURCE = "second_node"
WORKER_PORTS = 40
OBJECT_STORE_BYTES = 80 * 1024 * 1024
START_TIMEOUT = 120.0
STOP_PATIENCE = 5.0
# Ray's own switches for a quiet local cluster: loopback only, no usage reports.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass
class LocalCluster:
    address: str
    second_node_id: str
    process: subprocess.Popen[bytes]
    folder: str

    def stop(self) -> None:
        """Stop the nodes and every process they started, by pid: SIGTERM, a few seconds, then SIGKILL."""
        ours = _processes_of(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_PATIENCE * 3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        ours += [p for p in _processes_of(self.process.pid) if p not in ours]
        _, alive = psutil.wait_procs(ours, timeout=STOP_PATIENCE)
        for process in alive:
            try:
                process.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=STOP_PATIENCE)
        if self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def start() -> LocalCluster:
    """Start the cluster and return once its Job API answers; RuntimeError (with Ray's log) when it does not."""
    # A short path: Ray's unix sockets live under it, and their paths may not exceed 107 bytes.
    folder = tempfile.mkdtemp(prefix="mgray-", dir="/tmp")
    # Jobs run `python3` from PATH: this interpreter's, with mgsup's dependencies.
    env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": folder,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(Path(folder) / "nodes.log", "wb") as log:
        process = subprocess.Popen([sys.executable, __file__, "--serve", folder], env=env, stdout=subprocess.PIPE,
                                   stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    cluster = LocalCluster("", "", process, folder)
    try:
        if not line:
            raise RuntimeError(f"the Ray cluster did not start:\n{_log_tail(folder)}")
        info = json.loads(line)
        cluster.address, cluster.second_node_id = info["dashboard"], info["second_node_id"]
        _await_job_api(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _await_job_api(cluster: LocalCluster) -> None:
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            JobSubmissionClient(cluster.address).list_jobs()
            return
        except (ConnectionError, RuntimeError) as exc:
            if time.monotonic() > deadline or cluster.process.poll() is not None:
                raise RuntimeError(f"the Ray Job API did not answer ({exc}):\n{_log_tail(cluster.folder)}") from None
            time.sleep(0.5)


def _log_tail(folder: str) -> str:
    try:
        return (Path(folder) / "nodes.log").read_text(errors="replace")[-3000:]
    except OSError:
        return "(no log)"


def _processes_of(pid: int) -> list[psutil.Process]:
    """The descendants of `pid` and the processes of its session (Ray daemonises some of them)."""
    found: dict[int, psutil.Process] = {}
    try:
        found |= {p.pid: p for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        pass
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == pid and process.pid != pid:
                found[process.pid] = process
        except (OSError, psutil.Error):
            continue
    return list(found.values())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node_ports() -> dict[str, Any]:
    first = _free_port()
    return {"node_manager_port": _free_port(), "object_manager_port": _free_port(),
            "runtime_env_agent_port": _free_port(), "dashboard_agent_listen_port": _free_port(),
            "metrics_export_port": _free_port(), "metrics_agent_port": _free_port(),
            "min_worker_port": first, "max_worker_port": first + WORKER_PORTS,
            "node_ip_address": "127.0.0.1", "object_store_memory": OBJECT_STORE_BYTES}


def _serve(folder: str) -> None:
    """Run the two nodes (in the process `start` launched) until SIGTERM or SIGINT, then shut them down."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    from ray.cluster_utils import Cluster

    dashboard = _free_port()
    cluster = Cluster(initialize_head=True, connect=False, shutdown_at_exit=True, head_node_args={
        "gcs_server_port": _free_port(), "include_dashboard": True, "dashboard_host": "127.0.0.1",
        "dashboard_port": dashboard, "ray_client_server_port": _free_port(), "num_cpus": HEAD_CPUS,
        "temp_dir": os.path.join(folder, "ray"), **_node_ports()})
    second = cluster.add_node(num_cpus=SECOND_NODE_CPUS, resources={SECOND_NODE_RESOURCE: 1}, **_node_ports())
    print(json.dumps({"dashboard": f"http://127.0.0.1:{dashboard}", "second_node_id": second.node_id}), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    cluster.shutdown()


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        _serve(sys.argv[2])
        return
    cluster = start()
    print(f"export MGSUP_CLUSTER={cluster.address}    # Ctrl-C stops the cluster", flush=True)
    try:
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
