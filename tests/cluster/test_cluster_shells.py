"""Shells on a real two-node Ray cluster through the Python API: outcomes, output, kill, timeout, resources."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from processes import tagged

from supervisor import Supervisor
from supervisor.proc import SHELL_ID_VAR

from .conftest import RayCluster

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.timeout(180)]


def test_exit_codes_pass_through(cluster_sup: Supervisor, work: Path, ray_cluster: RayCluster) -> None:
    ok = cluster_sup.start_shell("exit 0", cwd=work)
    three = cluster_sup.start_shell("exit 3", cwd=work)
    signalled = cluster_sup.start_shell("kill -9 $$", cwd=work)
    assert cluster_sup.wait_shell(ok, timeout=90)["status"] == "stopped"
    failed = cluster_sup.wait_shell(three, timeout=90)
    assert (failed["status"], failed["exit_code"], failed["signal"]) == ("failed", 3, None)
    killed = cluster_sup.wait_shell(signalled, timeout=90)
    assert (killed["status"], killed["exit_code"], killed["signal"]) == ("killed", -9, "SIGKILL")
    assert killed["backend"] == "ray" and killed["cluster"] == ray_cluster.address
    # Local and cluster shells share the home, the ids and the listing.
    local = Supervisor(cluster_sup.home).start_shell(["true"])
    listed = {s["shell_id"]: s["backend"] for s in Supervisor(cluster_sup.home).list_shells()}
    assert listed == {ok: "ray", three: "ray", signalled: "ray", local: "local"}


def test_output_windows_hold_only_the_jobs_text(cluster_sup: Supervisor, work: Path, tmp_path: Path,
                                                wait_for: Callable[..., Any]) -> None:
    go = tmp_path / "go"
    script = ("printf 'one\\ntwo\\n'; "
              f"while [ ! -e {go} ]; do sleep 0.05; done; "
              "printf 'three\\n\\377\\n' >&2; printf 'four\\nfive'")
    shell_id = cluster_sup.start_shell(script, cwd=work)
    early = wait_for(lambda: (out := cluster_sup.get_shell_output(shell_id))["stdout"] and out, timeout=90)
    assert (early["status"], early["stdout"]) == ("running", "one\ntwo\n")
    go.touch()
    assert cluster_sup.wait_shell(shell_id, timeout=60)["status"] == "stopped"
    whole = cluster_sup.get_shell_output(shell_id)
    # stdout and stderr merged in order, as Ray keeps them; invalid UTF-8 replaced; none of Ray's lines.
    assert whole["stdout"] == "one\ntwo\nthree\n\ufffd\nfour\nfive"
    assert whole["stderr"] == ""
    tail = cluster_sup.get_shell_output(shell_id, tail_lines=2)
    assert tail["stdout"] == "four\nfive" and tail["stdout_truncated"]
    window = cluster_sup.get_shell_output(shell_id, offset=early["stdout_next_offset"], max_bytes=6)
    assert window["stdout"] == "three\n" and window["stdout_remaining_bytes"] > 0
    rest = cluster_sup.get_shell_output(shell_id, offset=window["stdout_next_offset"])
    assert early["stdout"] + window["stdout"] + rest["stdout"] == whole["stdout"]


def test_kill_leaves_no_descendant(cluster_sup: Supervisor, work: Path, wait_for: Callable[..., Any]) -> None:
    script = ("trap '' TERM; "
              "setsid sh -c 'trap \"\" TERM; echo setsid=$$; exec sleep 300' & "
              "sh -c 'sleep 301 & echo double=$!' & "
              "echo main=$$; wait")
    shell_id = cluster_sup.start_shell(script, cwd=work)

    def pids() -> dict[str, int] | None:
        found = dict(line.split("=") for line in cluster_sup.get_shell_output(shell_id)["stdout"].split())
        return {k: int(v) for k, v in found.items()} if len(found) == 3 else None

    started = wait_for(pids, timeout=90, interval=0.1)
    assert all(_alive(pid) for pid in started.values())
    result = cluster_sup.kill_shell(shell_id)
    assert result == {"shell_id": shell_id, "status": "killed", "signal": "SIGTERM"}
    # kill_shell returned: nothing of the job may be left, the setsid'd and the double-forked ones included.
    assert [name for name, pid in started.items() if _alive(pid)] == []
    assert tagged(shell_id) == []
    status = cluster_sup.get_shell_status(shell_id)
    assert (status["status"], status["exit_code"]) == ("killed", -9)


def test_what_the_job_leaves_behind_is_stopped_when_it_exits(cluster_sup: Supervisor, work: Path) -> None:
    shell_id = cluster_sup.start_shell("setsid sleep 300 & echo left=$!", cwd=work)
    assert cluster_sup.wait_shell(shell_id, timeout=90)["status"] == "stopped"
    left = int(cluster_sup.get_shell_output(shell_id)["stdout"].split("=")[1])
    assert not _alive(left)


def test_timeout_kills_the_job(cluster_sup: Supervisor, work: Path) -> None:
    final = cluster_sup.wait_shell(cluster_sup.start_shell("sleep 60", cwd=work, timeout=1), timeout=90)
    assert (final["status"], final["timed_out"], final["signal"]) == ("killed", True, "SIGTERM")


def test_a_job_needing_the_second_nodes_resource_runs_there(cluster_sup: Supervisor, work: Path,
                                                            ray_cluster: RayCluster) -> None:
    from ray.job_submission import JobSubmissionClient

    shell_id = cluster_sup.start_shell("true", cwd=work, resources={"second_node": 1})
    assert cluster_sup.wait_shell(shell_id, timeout=90)["status"] == "stopped"
    assert JobSubmissionClient(ray_cluster.address).get_job_info(shell_id).driver_node_id == ray_cluster.second_node_id


def test_jobs_queue_while_cpus_are_taken(cluster_sup: Supervisor, work: Path, wait_for: Callable[..., Any]) -> None:
    # The head has 2 CPUs and the second node 1: a job asking for 2 fits only on the head, one at a time.
    first = cluster_sup.start_shell("sleep 120", cwd=work, cpus=2)
    wait_for(lambda: cluster_sup.get_shell_status(first)["status"] == "running", timeout=90, interval=0.1)
    second = cluster_sup.start_shell("sleep 120", cwd=work, cpus=2)
    third = cluster_sup.start_shell("sleep 120", cwd=work, cpus=2)
    assert cluster_sup.get_shell_status(second)["status"] == "queued"
    assert cluster_sup.kill_shell(third) == {"shell_id": third, "status": "killed", "signal": None,
                                             "message": "Removed from queue"}
    assert cluster_sup.kill_shell(first)["status"] == "killed"
    wait_for(lambda: cluster_sup.get_shell_status(second)["status"] == "running", timeout=90, interval=0.1)
    assert cluster_sup.get_shell_status(third)["status"] == "killed"
    cluster_sup.kill_shell(second)


def test_env_values_reach_the_job(cluster_sup: Supervisor, work: Path) -> None:
    env = {"GREETING": "hello world", "EMPTY": ""}
    inherited = cluster_sup.start_shell("env", cwd=work, env=env)
    alone = cluster_sup.start_shell(["/usr/bin/env"], cwd=work, env=env, inherit_env=False)
    for shell_id in (inherited, alone):
        assert cluster_sup.wait_shell(shell_id, timeout=90)["status"] == "stopped"
    seen = cluster_sup.get_shell_output(inherited)["stdout"].splitlines()
    assert {"GREETING=hello world", "EMPTY=", f"{SHELL_ID_VAR}={inherited}"} <= set(seen)
    assert any(line.startswith("RAY_ADDRESS=") for line in seen)  # the node's environment is inherited
    only = set(cluster_sup.get_shell_output(alone)["stdout"].splitlines())
    assert only == {"GREETING=hello world", "EMPTY=", f"{SHELL_ID_VAR}={alone}", "PYTHONUNBUFFERED=1"}
    # Values travel to Ray, never into the local record.
    assert "hello world" not in (Path(cluster_sup.home) / "shells" / inherited / "spec.json").read_text()


def test_isolated_jobs_get_a_fresh_workspace_on_the_node(cluster_sup: Supervisor, work: Path) -> None:
    (work / "data.txt").write_text("shipped\n")
    plain = cluster_sup.start_shell("cat data.txt", cwd=work)
    isolated = cluster_sup.start_shell("pwd; ls -A", cwd=work, isolate=True, name="iso")
    for shell_id in (plain, isolated):
        final = cluster_sup.wait_shell(shell_id, timeout=90)
        assert final["status"] == "stopped", cluster_sup.get_shell_output(shell_id)
    assert cluster_sup.get_shell_output(plain)["stdout"] == "shipped\n"
    where, *listing = cluster_sup.get_shell_output(isolated)["stdout"].splitlines()
    assert where.endswith(f"/.mgsup/workspaces/iso_{isolated[6:]}") and listing == []


def test_jobs_set_up_together_from_a_new_folder_all_find_it(cluster_sup: Supervisor, work: Path) -> None:
    # Jobs set up side by side from a folder new to the nodes, each reading it a little later: a node
    # that unpacked the folder again for a later job would pull it from under an earlier one.
    (work / "data.txt").write_text(f"fresh {work}\n")
    ids = [cluster_sup.start_shell("sleep 2; cat data.txt", cwd=work, cpus=0.5) for _ in range(4)]
    for shell_id in ids:
        final = cluster_sup.wait_shell(shell_id, timeout=120)
        assert (final["status"], cluster_sup.get_shell_output(shell_id)["stdout"]) == ("stopped", f"fresh {work}\n")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


