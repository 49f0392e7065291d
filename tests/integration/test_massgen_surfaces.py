"""The real MassGen CLI through mgsup's other doors: `mgsup start --runner` and `wait` (a run with an answer,
one whose backends all fail), the MCP tool, scripts/batch.py."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakes.openai_server import OpenAIServer
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from supervisor import Supervisor
from supervisor.exitcodes import EXIT_NO_ANSWER

from .conftest import REPO, Mgsup
from .massgen_support import QUESTION, RUN_TIMEOUT, fake_llm, massgen_env, write_config

pytestmark = [pytest.mark.massgen, pytest.mark.timeout(240)]
__all__ = ["fake_llm", "massgen_env"]



def failed_outcome(status_file: str) -> str:
    """The outcome of a run whose backends all failed: MassGen's own `finish_reason` when it wrote
    `error` (it does for some of these runs, depending on timing), else `no_answer` (it left
    `in_progress`). Never `answered`, either way."""
    reason = json.loads(Path(status_file).read_text()).get("finish_reason")
    assert reason in ("error", "in_progress"), reason
    return "error" if reason == "error" else "no_answer"

def test_mgsup_start_runner_massgen(mgsup: Mgsup, fake_llm: OpenAIServer, massgen_env: dict[str, str]) -> None:
    with OpenAIServer(failing=True) as failing:
        # Both runs at once: the one whose backends all fail through $MGSUP_RUNNER and `mgsup wait`,
        # the other through --runner and --wait.
        broken = write_config(mgsup.work / "failing.yaml", failing.base_url)
        started = mgsup.run("start", "--config", str(broken), QUESTION, env={**massgen_env, "MGSUP_RUNNER": "massgen"})
        assert started.code == 0, started
        config = write_config(mgsup.work / "massgen.yaml", fake_llm.base_url)
        result = mgsup.run("start", "--config", str(config), "--runner", "massgen", "--env",
                           f"OPENAI_API_KEY={massgen_env['OPENAI_API_KEY']}", "--wait", QUESTION,
                           env={"PATH": massgen_env["PATH"]}, timeout=RUN_TIMEOUT)
        waited = mgsup.run("wait", "--json", started.out.strip(), timeout=RUN_TIMEOUT)
    assert result.code == 0, result
    shell_id = result.out.splitlines()[0]
    assert "outcome: answered" in result.out and "winner: agent_a" in result.out
    status = json.loads(mgsup.ok("status", "--json", shell_id))
    assert status["coordination"]["answer_file"].startswith(str(mgsup.work))
    # MassGen itself exits 0 and leaves its status.json "in_progress": mgsup says there is no answer.
    assert waited.code == EXIT_NO_ANSWER, waited
    final = json.loads(waited.out)
    assert (final["status"], final["exit_code"]) == ("stopped", 0)
    summary = final["coordination"]
    assert (summary["outcome"], summary["phase"], summary["winner"], summary["answer_file"]) == (
        failed_outcome(final["status_file"]), "error", None, None)
    assert summary["error"] == "Unable to provide coordinated answer - no successful agents"


def test_the_mcp_tool_starts_massgen(home: Supervisor, tmp_path: Path, fake_llm: OpenAIServer,
                                     massgen_env: dict[str, str]) -> None:
    config = write_config(tmp_path / "massgen.yaml", fake_llm.base_url)
    params = StdioServerParameters(command=sys.executable, args=["-m", "supervisor", "mcp"], cwd=str(tmp_path),
                                   env={"MGSUP_HOME": str(home.home), **massgen_env})

    async def host() -> tuple[dict[str, Any], dict[str, Any]]:
        async with Client(params) as client:
            started = await client.call_tool("start_coordination", {
                "config": str(config), "question": QUESTION, "runner": "massgen", "detail": True})
            shell_id = started.structured_content["shell_id"]  # type: ignore[index]
            waited = await client.call_tool("wait_shell", {"shell_id": shell_id, "timeout": RUN_TIMEOUT,
                                                           "detail": True})
            return started.structured_content, waited.structured_content  # type: ignore[return-value]

    started, waited = asyncio.run(host())
    assert started["command"][-4:] == ["--automation", "--config", str(config), QUESTION]
    assert waited["status"] == "stopped" and waited["coordination"]["outcome"] == "answered"
    assert Path(waited["coordination"]["answer_file"]).is_file()


def test_batch_script_runner_massgen(tmp_path: Path, home: Supervisor, fake_llm: OpenAIServer,
                                     massgen_env: dict[str, str]) -> None:
    config = write_config(tmp_path / "massgen.yaml", fake_llm.base_url)
    with OpenAIServer(failing=True) as failing:
        broken = write_config(tmp_path / "broken.yaml", failing.base_url)
        done = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "batch.py"), "--out", str(tmp_path / "out"), "--home",
             str(home.home), "--runner", "massgen", "--run", str(config), QUESTION, "--run", str(broken), QUESTION],
            env={**os.environ, **massgen_env, "COLUMNS": "200"}, capture_output=True, text=True,
            timeout=RUN_TIMEOUT * 2)
    assert done.returncode == 0, done.stderr + done.stdout
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    broken_outcome = failed_outcome(home.get_shell_status(rows[1]["shell_id"])["status_file"])
    assert [(r["label"], r["status"], r["outcome"]) for r in rows] == [("massgen", "stopped", "answered"),
                                                                       ("broken", "stopped", broken_outcome)]
    assert rows[0]["total_tokens"] and rows[0]["answer_file"]
    assert "massgen" in done.stdout and "no answer" in done.stdout
    assert "Unable to provide coordinated answer" in rows[1]["reason"]
    assert "1/1" in done.stdout and "0/1" in done.stdout
