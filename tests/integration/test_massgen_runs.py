"""The real MassGen CLI (0.1.97) supervised through the library, against a fake LLM server on 127.0.0.1.

Each test starts massgen for real (~8 s of imports); they are independent, so xdist runs them side by
side. What is checked is what a user of mgsup relies on: the phase and outcome however MassGen
reports them, the run's own absolute answer file, tokens, no false stall, and a kill that leaves
neither massgen nor its node MCP servers behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes.openai_server import OpenAIServer

from supervisor import Supervisor

from .massgen_support import (
    QUESTION,
    RUN_TIMEOUT,
    fake_llm,
    massgen_env,
    processes_under,
    write_config,
)

pytestmark = [pytest.mark.massgen, pytest.mark.timeout(240)]
__all__ = ["fake_llm", "massgen_env"]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def test_a_completed_run(home: Supervisor, work: Path, fake_llm: OpenAIServer, massgen_env: dict[str, str]) -> None:
    config = write_config(work / "massgen.yaml", fake_llm.base_url)
    shell_id = home.start_coordination(config, QUESTION, runner="massgen", cwd=work, env=massgen_env)
    final = home.wait_shell(shell_id, timeout=RUN_TIMEOUT)

    assert final["status"] == "stopped", final
    assert "--instance-id" not in final["command"] and final["command"][0].endswith("/massgen")
    summary = final["coordination"]
    assert (summary["phase"], summary["outcome"], summary["winner"]) == ("completed", "answered", "agent_a")
    answer = Path(summary["answer_file"])
    assert answer.is_absolute() and answer.is_relative_to(Path(final["log_dir"]))
    assert answer.read_text().strip() == "The answer is 391."
    assert final["status_file"].endswith("/turn_1/attempt_1/status.json")
    assert summary["tokens"]["input_tokens"] > 0 and summary["tokens"]["output_tokens"] > 0
    assert summary["cost_usd"] is not None and summary["votes"]
    assert summary["stalled"] is False and summary["error"] is None


def test_a_slow_presentation_is_never_stalled(sup_factory: Callable[..., Supervisor], work: Path,
                                              massgen_env: dict[str, str]) -> None:
    # MassGen writes nothing to status.json while the winner presents: longer than the threshold here.
    sup = sup_factory(stall_seconds=4)
    with OpenAIServer(chunks=6, chunk_delay=1.5) as slow:
        config = write_config(work / "massgen.yaml", slow.base_url)
        shell_id = sup.start_coordination(config, QUESTION, runner="massgen", cwd=work, env=massgen_env)
        seen = list(sup.watch(shell_id, timeout=RUN_TIMEOUT, kill_on_stall=True))
    summaries = [s["coordination"] for s in seen if s["coordination"]]
    assert "presentation" in {s["phase"] for s in summaries}
    assert not any(s["stalled"] for s in summaries)
    assert (seen[-1]["status"], summaries[-1]["outcome"]) == ("stopped", "answered")


def test_parallel_runs_of_one_config_in_one_cwd_keep_their_own_answers(
        home: Supervisor, work: Path, fake_llm: OpenAIServer, massgen_env: dict[str, str]) -> None:
    config = write_config(work / "massgen.yaml", fake_llm.base_url)
    shell_ids = [home.start_coordination(config, QUESTION, runner="massgen", cwd=work, env=massgen_env)
                 for _ in range(3)]
    finals = [home.wait_shell(shell_id, timeout=RUN_TIMEOUT) for shell_id in shell_ids]
    assert [f["coordination"]["outcome"] for f in finals] == ["answered"] * 3
    answers = {f["coordination"]["answer_file"] for f in finals}
    assert len(answers) == 3 and all(Path(a).is_file() for a in answers)
    assert len({f["log_dir"] for f in finals}) == 3
    assert all(f["coordination"]["answer_file"].startswith(f["log_dir"] + os.sep) for f in finals)


def test_kill_mid_run_leaves_no_massgen_or_node_process(home: Supervisor, work: Path,
                                                        massgen_env: dict[str, str],
                                                        wait_for: Callable[..., Any]) -> None:
    # Agents with workspaces: MassGen starts an MCP filesystem server (npm, node) per agent, in
    # its own session and without the run's environment.
    with OpenAIServer(delay=60) as stuck:
        config = write_config(work / "massgen.yaml", stuck.base_url, workspaces=True)
        shell_id = home.start_coordination(config, QUESTION, runner="massgen", cwd=work, env=massgen_env)
        node = wait_for(lambda: [p for p in processes_under(work) if p.name() == "node"], timeout=RUN_TIMEOUT,
                        interval=0.2, what="the MCP filesystem servers (node)")
        wait_for(lambda: home.get_shell_status(shell_id)["coordination"], timeout=RUN_TIMEOUT, what="status.json")
        result = home.kill_shell(shell_id, grace=5)
    assert result["status"] == "killed"
    assert node and processes_under(work) == []
    final = home.get_shell_status(shell_id)
    assert (final["coordination"]["outcome"], final["coordination"]["phase"]) == ("interrupted", "interrupted")
