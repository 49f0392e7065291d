"""Coordination runs on a real Ray cluster: progress seen from here, the answer brought back, a batch, MCP tools."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from supervisor import Supervisor
from supervisor.tools.mcp_server import build_server

from .conftest import RayCluster

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.timeout(240)]
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.yaml"
QUESTION = "What is 17 * 23?"


def test_progress_is_seen_from_the_submitting_side(cluster_sup: Supervisor, work: Path,
                                                   wait_for: Callable[..., Any]) -> None:
    shutil.copy(DEMO, work / "demo.yaml")
    shell_id = cluster_sup.start_coordination("demo.yaml", QUESTION, cwd=work, name="demo")
    # While the run goes on, its status.json is relayed from the node into the local record.
    during = wait_for(lambda: (s := cluster_sup.get_shell_status(shell_id))["coordination"] and s, timeout=120,
                      interval=0.05)
    assert during["status"] == "running"
    assert during["coordination"]["phase"] in ("initial_answer", "enforcement", "presentation")
    assert set(during["coordination"]["agents"]) == {"solver", "reviewer"}
    final = cluster_sup.wait_shell(shell_id, timeout=120)
    assert (final["status"], final["exit_code"]) == ("stopped", 0)
    summary = final["coordination"]
    assert (summary["phase"], summary["completion_percentage"], summary["winner"]) == ("completed", 100, "reviewer")
    assert summary["outcome"] == "answered" and final["command"][:3] == ["mgcoord", "--automation", "--config"]
    # The paths in the status are local copies inside the home, readable here.
    shell_dir = Path(cluster_sup.home) / "shells" / shell_id
    assert Path(final["status_file"]).is_relative_to(shell_dir) and Path(final["status_file"]).is_file()
    answer = Path(summary["answer_file"])
    assert answer.is_relative_to(shell_dir) and "391" in answer.read_text()
    assert summary["final_answer_preview"] and "391" in summary["final_answer_preview"]
    # The run's output travelled too (its LOG_DIR names the node's copy of the working directory).
    assert "WINNER: reviewer" in cluster_sup.get_shell_output(shell_id)["stdout"]


def test_a_config_outside_the_working_directory_travels_with_the_run(cluster_sup: Supervisor, work: Path) -> None:
    # The shipped demo config sits in the repository's configs/, not in the run's working directory.
    shell_id = cluster_sup.start_coordination(DEMO, "What is 6 * 7?", cwd=work)
    final = cluster_sup.wait_shell(shell_id, timeout=120)
    assert (final["status"], final["coordination"]["winner"]) == ("stopped", "reviewer")
    assert "42" in Path(final["coordination"]["answer_file"]).read_text()


def test_a_batch_runs_on_the_cluster_and_resumes(ray_cluster: RayCluster, tmp_path: Path) -> None:
    out, home = tmp_path / "results", tmp_path / "home"
    argv = [sys.executable, str(REPO / "scripts" / "batch.py"), "--cluster", ray_cluster.address, "--home", str(home),
            "--out", str(out), "--run", str(DEMO), "What is 6 * 7?", "--repeat", "2"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MGSUP_")} | {"NO_COLOR": "1"}
    first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=200, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    rows = json.loads((out / "results.json").read_text())["results"]
    assert [(r["status"], r["outcome"], r["winner"]) for r in rows] == [("stopped", "answered", "reviewer")] * 2
    assert {Supervisor(home).get_shell_status(r["shell_id"])["backend"] for r in rows} == {"ray"}
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=200, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    # Resumed: nothing ran twice.
    assert len(list((home / "shells").iterdir())) == 2


def test_mcp_tools_on_a_cluster_home(ray_cluster: RayCluster, home: Supervisor, work: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGSUP_CLUSTER", ray_cluster.address)

    async def scenario() -> tuple[dict[str, Any], ...]:
        async with Client(build_server()) as client:
            started = await _call(client, "start_shell", {"command": "echo from the cluster; sleep 120",
                                                          "cwd": str(work), "resources": ["second_node=1"]})
            shell_id = started["shell_id"]
            # Once the job has printed, it runs: then a short wait expires and the kill stops a running job.
            deadline = time.monotonic() + 120
            while "from the cluster" not in (await _call(client, "get_shell_output", {"shell_id": shell_id}))["stdout"]:
                assert time.monotonic() < deadline, "the job never printed"
                await asyncio.sleep(0.2)
            expired = await _call(client, "wait_shell", {"shell_id": shell_id, "timeout": 2})
            detail = await _call(client, "get_shell_status", {"shell_id": shell_id, "detail": True})
            short = await _call(client, "start_shell", {"command": "exit 3", "cwd": str(work)})
            ended = await _call(client, "wait_shell", {"shell_id": short["shell_id"], "timeout": 120})
            listed = await _call(client, "list_shells", {})
            killed = await _call(client, "kill_shell", {"shell_id": shell_id})
            output = await _call(client, "get_shell_output", {"shell_id": shell_id})
            return started, expired, detail, ended, listed, killed, output

    started, expired, detail, ended, listed, killed, output = asyncio.run(scenario())
    # Compact results name the backend of a cluster shell; detail adds the cluster's address.
    assert started["backend"] == "ray" and "cluster" not in started
    assert (detail["backend"], detail["cluster"]) == ("ray", ray_cluster.address)
    assert expired["wait_expired"] is True and expired["status"] == "running"
    # A wait on a cluster shell (no monitor here to watch) ends when the job does.
    assert (ended["status"], ended["exit_code"], ended.get("wait_expired")) == ("failed", 3, None)
    assert [s["shell_id"] for s in listed["shells"]] == [ended["shell_id"], started["shell_id"]]
    assert (killed["status"], killed["signal"]) == ("killed", "SIGTERM")
    assert output["stdout"] == "from the cluster\n"


async def _call(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content
