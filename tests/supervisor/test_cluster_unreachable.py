"""A cluster that cannot be used: unreachable, or Ray not installed. A typed error, and no record changed."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor import ClusterUnavailable, Supervisor, lifecycle
from supervisor import layout as lay
from supervisor.cluster import client
from supervisor.models import Spec


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _record(sup: Supervisor, cluster: str) -> str:
    """A cluster shell's record, as a start leaves it once Ray accepted the job."""
    shell_id = "shell_0a1b2c3d"
    sup.store.create(Spec(shell_id=shell_id, command="sleep 60", argv=["/bin/sh", "-c", "sleep 60"], cwd="/",
                          created=1.0, backend="ray", cluster=cluster))
    lay.write_json(sup.layout.file(shell_id, lay.STATE), {**lifecycle.new(1.0, queued=False), "status": "running",
                                                          "start_time": 2.0})
    return shell_id


def test_a_start_on_an_unreachable_cluster_writes_nothing(home: Supervisor, tmp_path: Path, closed_port: int) -> None:
    sup = Supervisor(home.home, cluster=f"127.0.0.1:{closed_port}")
    with pytest.raises(ClusterUnavailable, match=rf"cannot reach the Ray cluster at http://127.0.0.1:{closed_port} "):
        sup.start_shell("true", cwd=tmp_path)
    (tmp_path / "run.yaml").write_text("agents: []\n")
    with pytest.raises(ClusterUnavailable):
        sup.start_coordination("run.yaml", "q?", cwd=tmp_path)
    assert sup.list_shells() == []


def test_reads_of_a_shell_whose_cluster_is_away(home: Supervisor, closed_port: int) -> None:
    shell_id = _record(home, f"http://127.0.0.1:{closed_port}")
    state_file = Path(home.layout.file(shell_id, lay.STATE))
    before = state_file.read_bytes()
    try:
        with pytest.raises(ClusterUnavailable):
            home.get_shell_status(shell_id)
        with pytest.raises(ClusterUnavailable):
            home.kill_shell(shell_id)
        # A listing still shows it, as last known, and says why.
        [listed] = home.list_shells()
        assert (listed["shell_id"], listed["status"], listed["backend"]) == (shell_id, "running", "ray")
        assert listed["message"].startswith("last known status: cannot reach the Ray cluster")
        # Settling does not take it for a local shell whose monitor vanished (it has none here):
        # nothing is recorded lost, and clean keeps a shell that may still run.
        with pytest.raises(ClusterUnavailable):
            home.settle(shell_id)
        assert home.clean() == []
        assert state_file.read_bytes() == before
    finally:
        home.store.remove(shell_id)


def test_without_ray_the_error_names_the_extra(listening_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # A head that answers TCP, and an installation without Ray: importing it fails.
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setattr(client, "_connected", {})
    with pytest.raises(ClusterUnavailable, match=r"pip install 'mgsup\[ray\]'"):
        client.connect(f"http://127.0.0.1:{listening_port}")
