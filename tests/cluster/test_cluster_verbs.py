"""The everyday verbs on cluster shells of a real Ray cluster: references, logs, restart, kill_many, clean, and the
options the cluster refuses (the local home's scheduling, pause)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor import Supervisor

from .conftest import RayCluster
from .test_cluster_cli import mgsup

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.timeout(240)]
DEMO = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def test_names_logs_restart_kill_and_clean_from_the_command_line(ray_cluster: RayCluster, tmp_path: Path,
                                                                 work: Path, wait_for: Callable[..., Any]) -> None:
    home = tmp_path / "home"
    started = mgsup(home, "--cluster", ray_cluster.address, "start", "--name", "ticker", "--resources",
                    "second_node=1", "--", "echo out; echo err >&2; sleep 120", cwd=work)
    assert started.returncode == 0, started.stderr
    old = started.stdout.strip()
    # Both lines in the one stream Ray keeps, in order; no stderr mark, since there is no stderr.
    assert wait_for(lambda: mgsup(home, "logs", "ticker", cwd=work).stdout == "out\nerr\n", timeout=90)
    table = mgsup(home, "status", cwd=work).stdout.splitlines()
    assert table[1].split()[:3] == [old[6:], "ticker", "running"] and "ray: echo out;" in table[1]
    # A restart goes to the cluster the shell ran on (no --cluster here), asking for the same resources.
    restarted = mgsup(home, "restart", "ticker", "--json", cwd=work)
    assert restarted.returncode == 0, restarted.stderr
    new = json.loads(restarted.stdout)
    assert (new["restarted_from"], new["backend"], new["cluster"]) == (old, "ray", ray_cluster.address)
    assert json.loads(mgsup(home, "status", old[6:10], "--json", cwd=work).stdout)["status"] == "killed"
    assert Supervisor(home).store.spec(new["shell_id"]).resources == {"CPU": 1.0, "GPU": 0.0, "second_node": 1.0}
    assert wait_for(lambda: mgsup(home, "logs", "last", cwd=work).stdout == "out\nerr\n", timeout=90)
    killed = mgsup(home, "kill", "--all", "--json", cwd=work)
    assert [(r["shell_id"], r["outcome"]) for r in json.loads(killed.stdout)] == [(new["shell_id"], "killed")]
    cleaned = mgsup(home, "clean", "ticker", cwd=work)
    assert (cleaned.returncode, cleaned.stdout) == (0, f"{new['shell_id']}\n")
    assert json.loads(mgsup(home, "clean", "--older-than", "0", "--json", cwd=work).stdout) == [old]
    from ray.job_submission import JobSubmissionClient

    jobs = {job.submission_id for job in JobSubmissionClient(ray_cluster.address).list_jobs()}
    assert old not in jobs and new["shell_id"] not in jobs


def test_kill_many_takes_a_queued_cluster_shell_out_of_the_queue_first(cluster_sup: Supervisor, work: Path,
                                                                       wait_for: Callable[..., Any]) -> None:
    # The second node has one `second_node`: the second job waits in Ray's queue.
    first = cluster_sup.start_shell("echo started; sleep 120", cwd=work, name="first", resources={"second_node": 1})
    # Running as Ray says, and the job itself started by its runner on the node (its first line came back).
    wait_for(lambda: cluster_sup.get_shell_output(first)["stdout"] == "started\n", timeout=90)
    second = cluster_sup.start_shell("sleep 120", cwd=work, name="second", resources={"second_node": 1})
    assert cluster_sup.get_shell_status("second")["status"] == "queued"
    results = cluster_sup.kill_many(["first", "second"])
    assert [(r["shell_id"], r["outcome"]) for r in results] == [(second, "dequeued"), (first, "killed")]
    assert {s["status"] for s in cluster_sup.list_shells()} == {"killed"}


def test_a_coordination_run_restarts_on_the_cluster(cluster_sup: Supervisor, work: Path) -> None:
    shutil.copy(DEMO, work / "demo.yaml")
    first = cluster_sup.start_coordination("demo.yaml", "What is 6 * 7?", cwd=work, name="six")
    assert cluster_sup.wait_shell("six", timeout=120)["coordination"]["outcome"] == "answered"
    # Restarted from a Supervisor without a cluster: the record says where the run was.
    again = Supervisor(cluster_sup.home).restart("six")
    final = cluster_sup.wait_shell(again, timeout=120)
    assert (final["restarted_from"], final["backend"], final["question"]) == (first, "ray", "What is 6 * 7?")
    assert final["coordination"]["outcome"] == "answered"
    assert "42" in Path(final["coordination"]["answer_file"]).read_text()


def test_what_a_cluster_shell_cannot_do_is_refused(ray_cluster: RayCluster, tmp_path: Path, work: Path) -> None:
    home = tmp_path / "home"
    running = mgsup(home, "--cluster", ray_cluster.address, "start", "--name", "nap", "--", "sleep 120", cwd=work)
    shell_id = running.stdout.strip()
    for option in (["--group", "gpu"], ["--after", "nap"], ["--retries", "2"]):
        refused = mgsup(home, "--cluster", ray_cluster.address, "start", *option, "--", "true", cwd=work)
        assert refused.returncode == 2, refused
        assert "not available for cluster shells (Ray holds their queue)" in refused.stderr
    local = mgsup(home, "start", "--after", "nap", "--", "true", cwd=work)
    assert local.returncode == 2 and "after names the cluster shell" in local.stderr
    for verb in ("pause", "resume"):
        refused = mgsup(home, verb, "nap", cwd=work)
        assert refused.returncode == 2 and "a Ray job cannot be" in refused.stderr, refused
    assert [s["shell_id"] for s in Supervisor(home).list_shells()] == [shell_id]
    assert Supervisor(home).get_shell_status(shell_id)["status"] == "running"
    Supervisor(home).kill_shell(shell_id)
