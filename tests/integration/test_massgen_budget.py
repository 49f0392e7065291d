"""The real MassGen CLI (0.1.97) held to a token budget by mgsup after the command that started it has exited,
against a fake LLM server on 127.0.0.1 that reports large usage and then never answers again."""

from __future__ import annotations

import json
import threading

import pytest
from fakes.openai_server import OpenAIServer

from supervisor.exitcodes import EXIT_BUDGET_EXCEEDED

from .conftest import Mgsup
from .massgen_support import QUESTION, RUN_TIMEOUT, massgen_env, processes_under, write_config

pytestmark = [pytest.mark.massgen, pytest.mark.timeout(240)]
__all__ = ["massgen_env"]


def test_a_token_budget_stops_massgen_after_its_caller_exited(mgsup: Mgsup, massgen_env: dict[str, str]) -> None:
    gate = threading.Event()
    with OpenAIServer(prompt_tokens=40_000, completion_tokens=2_000, gate=gate, stall_after=2) as server:
        config = write_config(mgsup.work / "massgen.yaml", server.base_url)
        started = mgsup.run("start", "--config", str(config), "--runner", "massgen", "--max-tokens", "10000",
                            QUESTION, env=massgen_env)
        assert started.code == 0, started
        shell_id = started.out.strip()
        # The caller has exited; only now may the model answer.
        gate.set()
        waited = mgsup.run("wait", shell_id, "--json", timeout=RUN_TIMEOUT)
    assert waited.code == EXIT_BUDGET_EXCEEDED, waited
    final = json.loads(waited.out)
    summary = final["coordination"]
    assert final["status"] == "killed" and summary["outcome"] == "budget_exceeded"
    exceeded = summary["budget_exceeded"]
    assert (exceeded["limit"], exceeded["budget"]) == ("max_tokens", 10000) and exceeded["used"] >= 42_000
    assert summary["tokens"]["total_tokens"] >= 42_000
    # MassGen exits 0 on SIGINT: the interrupt, not a kill, ended it.
    assert final["exit_code"] == 0 and final["signal"] is None
    assert processes_under(mgsup.work) == []
