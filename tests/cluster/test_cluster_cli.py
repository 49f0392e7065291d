"""`mgsup --cluster ...` on a real Ray cluster: start, status, logs, wait, kill, clean, and a cluster that is away."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import RayCluster

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.timeout(180)]


def mgsup(home: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MGSUP_")} | {"NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "supervisor", "--home", str(home), *args], cwd=cwd,
                          env=clean | (env or {}), capture_output=True, text=True, timeout=150, check=False)


def test_start_status_logs_kill_and_clean(ray_cluster: RayCluster, tmp_path: Path, work: Path,
                                         wait_for: Callable[..., Any]) -> None:
    home = tmp_path / "home"
    started = mgsup(home, "--cluster", ray_cluster.address, "start", "--name", "ticker", "--",
                    "echo tick; sleep 120", cwd=work)
    assert started.returncode == 0, started.stderr
    shell_id = started.stdout.strip()
    # Reads need no --cluster: the record knows where the shell runs.
    logs = wait_for(lambda: (out := mgsup(home, "logs", shell_id, cwd=work).stdout) and out, timeout=90)
    assert logs == "tick\n"
    details = json.loads(mgsup(home, "status", shell_id, "--json", cwd=work).stdout)
    assert (details["status"], details["backend"], details["cluster"]) == ("running", "ray", ray_cluster.address)
    table = mgsup(home, "status", cwd=work).stdout
    assert shell_id in table and " ray " in table
    killed = mgsup(home, "kill", shell_id, cwd=work)
    assert (killed.returncode, killed.stdout) == (0, f"{shell_id} killed (SIGTERM)\n")
    assert mgsup(home, "list", cwd=work).stdout.split("\t")[:3] == [shell_id, "killed", "-15"]
    cleaned = mgsup(home, "clean", "--json", cwd=work)
    assert json.loads(cleaned.stdout) == [shell_id]
    from ray.job_submission import JobSubmissionClient

    assert shell_id not in {job.submission_id for job in JobSubmissionClient(ray_cluster.address).list_jobs()}


def test_start_wait_with_resources_from_the_environment(ray_cluster: RayCluster, tmp_path: Path, work: Path) -> None:
    done = mgsup(tmp_path / "home", "start", "--cpus", "1", "--resources", "second_node=1", "--wait", "--",
                 "echo done; exit 7", cwd=work, env={"MGSUP_CLUSTER": ray_cluster.address})
    assert done.returncode == 7, done.stderr
    assert done.stdout.splitlines()[0].startswith("shell_")


def test_unreachable_cluster_is_exit_6_and_writes_nothing(tmp_path: Path, work: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path / "home"
    result = mgsup(home, "--cluster", f"127.0.0.1:{port}", "start", "--", "true", cwd=work)
    assert result.returncode == 6
    assert result.stdout == ""
    assert result.stderr.startswith(f"mgsup: error: cannot reach the Ray cluster at http://127.0.0.1:{port} ")
    assert len(result.stderr.splitlines()) == 1
    assert not (home / "shells").exists() or not list((home / "shells").iterdir())


def test_resources_without_a_cluster_are_refused(tmp_path: Path, work: Path) -> None:
    result = mgsup(tmp_path / "home", "start", "--cpus", "2", "--", "true", cwd=work)
    assert result.returncode == 2
    assert "cpus, gpus and resources are asked of a Ray cluster" in result.stderr
    assert not (tmp_path / "home" / "shells").exists()
