"""A real two-node Ray cluster on 127.0.0.1, shared by every test of this folder.

The session fixture starts scripts/local_ray_cluster.py (a head with 2 CPUs, a second node with 1
CPU and the custom resource `second_node`, free ports, its own temporary directory), and at the
end stops it by the pids it started. Never `ray stop`: it kills every Ray process on the machine.

Under pytest-xdist each worker that runs one of these tests starts its own cluster; the tests are
in the xdist group "ray", so `-n 2 --dist loadgroup` runs them all on one worker with one cluster.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from supervisor import Supervisor

HELPER = Path(__file__).resolve().parents[2] / "scripts" / "local_ray_cluster.py"


@dataclass(frozen=True)
class RayCluster:
    address: str
    second_node_id: str


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): run the tests of one group on one xdist worker")


def _helper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("local_ray_cluster", HELPER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: its dataclasses look their module up by name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    pytest.importorskip("ray.job_submission", reason="the Ray tests need mgsup[ray] (pip install -e '.[ray]')")
    try:
        cluster = _helper().start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield RayCluster(address=cluster.address, second_node_id=cluster.second_node_id)
    finally:
        cluster.stop()


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
