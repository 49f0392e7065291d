"""Ray's untyped errors, produced for real by the test cluster, come out as mgsup's typed ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor import InvalidRequest, Supervisor, SupervisorError, lifecycle
from supervisor import layout as lay
from supervisor.cluster import client
from supervisor.cluster.jobstate import SUBMIT_GRACE
from supervisor.models import Spec

from .conftest import RayCluster

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.timeout(180)]


def test_http_errors_become_typed_errors(ray_cluster: RayCluster, cluster_sup: Supervisor, work: Path) -> None:
    jobs = client.connect(ray_cluster.address)
    with pytest.raises(client.JobMissing, match="has no job for this shell"):
        jobs.job("shell_00000000")
    running = cluster_sup.start_shell("sleep 60", cwd=work)
    # Ray answers with HTTP 400 or 500 (it varies) and the server's traceback; the message keeps what went wrong.
    with pytest.raises(SupervisorError, match=f"to submit {running}: Job with submission_id {running} "
                                              "already exists") as duplicate:
        jobs.submit(running, entrypoint="true", runtime_env={}, metadata={}, cpus=0, gpus=0, resources={})
    with pytest.raises(SupervisorError, match=f"to delete {running}: Attempted to delete job") as deleting:
        jobs.delete(running)
    for error in (duplicate.value, deleting.value):
        assert "Traceback" not in str(error) and "\n" not in str(error)
    with pytest.raises(InvalidRequest, match="cannot submit"):
        jobs.submit("shell_11111111", entrypoint="true", runtime_env={"working_dir": str(work / "missing")},
                    metadata={}, cpus=0, gpus=0, resources={})
    cluster_sup.kill_shell(running)


def test_a_shell_the_cluster_forgot_is_lost(ray_cluster: RayCluster, home: Supervisor) -> None:
    shell_id = "shell_0f0f0f0f"
    created = 1000.0
    home.store.create(Spec(shell_id=shell_id, command="true", argv=["true"], cwd="/", created=created,
                           backend="ray", cluster=ray_cluster.address))
    lay.write_json(home.layout.file(shell_id, lay.STATE), lifecycle.new(created, queued=False))
    assert created + SUBMIT_GRACE < home.clock()
    status = home.get_shell_status(shell_id)
    assert status["status"] == "lost" and "has no record of this job" in status["message"]
