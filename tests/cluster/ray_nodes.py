"""A two-node Ray cluster on 127.0.0.1 for the tests: `python ray_nodes.py TEMP_DIR`.

Prints one JSON line (the dashboard URL, the GCS address, the id of the second node), then runs
until SIGTERM or SIGINT, and shuts both nodes down (Ray's own `Cluster.shutdown`, by the pids it
started). The head has 2 CPUs; the second node has 1 CPU and the custom resource `second_node`.

Why not `ray start`: nodes bind to 127.0.0.1 only with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, and
with it `ray start --address` refuses to join a node ("Multi-node Ray clusters are not supported
on Windows and OSX"); without it Ray replaces 127.0.0.1 by the machine's outward address and
listens on every interface. `ray.cluster_utils.Cluster` (Ray's tool for multi-node tests) starts
the same processes and keeps the loopback binding. RAY_TMPDIR points its bookkeeping (Ray writes
`<tmp>/ray/ray_current_cluster`) into TEMP_DIR, not /tmp/ray.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from typing import Any

HEAD_CPUS = 2
SECOND_NODE_CPUS = 1
SECOND_NODE_RESOURCE = "second_node"
WORKER_PORTS = 40
OBJECT_STORE_BYTES = 80 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def node_ports() -> dict[str, Any]:
    first = free_port()
    return {"node_manager_port": free_port(), "object_manager_port": free_port(),
            "runtime_env_agent_port": free_port(), "dashboard_agent_listen_port": free_port(),
            "metrics_export_port": free_port(), "metrics_agent_port": free_port(),
            "min_worker_port": first, "max_worker_port": first + WORKER_PORTS,
            "node_ip_address": "127.0.0.1", "object_store_memory": OBJECT_STORE_BYTES}


def main() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    from ray.cluster_utils import Cluster

    dashboard = free_port()
    cluster = Cluster(initialize_head=True, connect=False, shutdown_at_exit=True, head_node_args={
        "gcs_server_port": free_port(), "include_dashboard": True, "dashboard_host": "127.0.0.1",
        "dashboard_port": dashboard, "ray_client_server_port": free_port(), "num_cpus": HEAD_CPUS,
        "temp_dir": os.path.join(sys.argv[1], "ray"), **node_ports()})
    second = cluster.add_node(num_cpus=SECOND_NODE_CPUS, resources={SECOND_NODE_RESOURCE: 1}, **node_ports())
    print(json.dumps({"dashboard": f"http://127.0.0.1:{dashboard}", "gcs": cluster.address,
                      "second_node_id": second.node_id}), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    cluster.shutdown()


if __name__ == "__main__":
    main()
