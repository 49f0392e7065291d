"""Coordination runners on a cluster node: the real MassGen, a runner shipped in the working directory,
and one the node does not have. Each run's progress, outcome, tokens and answer come back here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fakes.openai_server import OpenAIServer
from integration.massgen_support import QUESTION, RUN_TIMEOUT, fake_llm, massgen_env, write_config

from supervisor import Supervisor

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.timeout(240)]
__all__ = ["fake_llm", "massgen_env"]
FAKES = Path(__file__).resolve().parents[1] / "fakes"


@pytest.mark.massgen
def test_the_real_massgen_runs_on_a_node(cluster_sup: Supervisor, work: Path, fake_llm: OpenAIServer,
                                         massgen_env: dict[str, str]) -> None:
    # `massgen` by name is looked up on the node, here through the PATH the run's env gives it.
    config = write_config(work / "massgen.yaml", fake_llm.base_url)
    shell_id = cluster_sup.start_coordination(config.name, QUESTION, runner="massgen", cwd=work, env=massgen_env)
    final = cluster_sup.wait_shell(shell_id, timeout=RUN_TIMEOUT)

    assert final["status"] == "stopped", cluster_sup.get_shell_output(shell_id)
    assert final["command"][0] == "massgen" and "--instance-id" not in final["command"]
    summary = final["coordination"]
    assert (summary["phase"], summary["outcome"], summary["winner"]) == ("completed", "answered", "agent_a")
    assert summary["tokens"]["input_tokens"] > 0 and summary["cost_usd"] is not None
    # The answer and the status.json are local copies, in the shell's folder of this home.
    shell_dir = Path(cluster_sup.home) / "shells" / shell_id
    assert Path(final["status_file"]).is_relative_to(shell_dir)
    answer = Path(summary["answer_file"])
    assert answer.is_relative_to(shell_dir) and answer.read_text().strip() == "The answer is 391."
    assert "sk-fake" not in (shell_dir / "spec.json").read_text()


def test_a_shipped_runner_restarting_and_a_runner_the_node_lacks(cluster_sup: Supervisor, work: Path) -> None:
    shutil.copy(FAKES / "restarting_runner.py", work / "runner.py")  # executable: it travels so
    (work / "run.yaml").write_text("agents: []\n")
    restarted = cluster_sup.start_coordination("run.yaml", QUESTION, runner="./runner.py", cwd=work)
    missing = cluster_sup.start_coordination("run.yaml", QUESTION, runner=["mgsup-no-such-runner"], cwd=work)

    final = cluster_sup.wait_shell(restarted, timeout=120)
    assert final["status"] == "stopped", cluster_sup.get_shell_output(restarted)
    summary = final["coordination"]
    # Its newest attempt's status.json was relayed; its own answer line was told from a preview's.
    assert (summary["phase"], summary["outcome"], summary["winner"]) == ("completed", "answered", "agent_a")
    assert summary["tokens"] == {"input_tokens": 600, "output_tokens": 150, "total_tokens": 750}
    assert summary["cost_usd"] == pytest.approx(0.0012)
    assert Path(summary["answer_file"]).read_text() == "The answer is 391.\n"

    lacking = cluster_sup.wait_shell(missing, timeout=120)
    assert (lacking["status"], lacking["coordination"]["outcome"]) == ("failed", "error")
    assert "cannot run 'mgsup-no-such-runner'" in cluster_sup.get_shell_output(missing)["stdout"]
