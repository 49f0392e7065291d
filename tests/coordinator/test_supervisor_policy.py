"""An openai agent's `supervisor_policy`: checked with the config (located errors), applied to every tool
call of the agent (a scripted model on 127.0.0.1, real shells), one session per agent, audited."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from coord_helpers import ChatServer, chat_response, one_openai_agent

from coordinator.backends import build_backend
from coordinator.config import AgentConfig, OpenAIBackendConfig, load_config
from coordinator.protocol.messages import CoordinateRequest
from supervisor import Supervisor, audit

pytestmark = pytest.mark.timeout(60)
KEY_ENV = "TEST_POLICY_KEY"


def test_a_policy_file_is_found_from_the_configs_folder(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.yaml").write_text("read_only: true\n")
    report = load_config(one_openai_agent(tmp_path, supervisor_tools=True, supervisor_policy="policies/p.yaml"),
                         run_cwd=Path("/"))
    assert report.valid, report.errors
    assert report.config is not None
    backend = report.config.agents[0].backend
    assert isinstance(backend, OpenAIBackendConfig)
    assert backend.supervisor_policy == str(tmp_path / "policies" / "p.yaml")


@pytest.mark.parametrize(("policy", "message"), [
    ("missing.yaml", "policy {tmp}/missing.yaml: cannot read it: No such file or directory"),
    ({"commands": {"alow": ["x"]}}, "commands.alow: unknown rule"),
    ({"max_shells_per_session": -1}, "max_shells_per_session: Input should be greater than or equal to 0"),
])
def test_a_bad_policy_is_a_located_config_error(tmp_path: Path, policy: Any, message: str) -> None:
    report = load_config(one_openai_agent(tmp_path, supervisor_tools=True, supervisor_policy=policy), run_cwd=tmp_path)
    assert not report.valid
    assert [(e.location, e.message) for e in report.errors] == [
        ("agents[0].backend.supervisor_policy", message.format(tmp=tmp_path))]


def test_a_policy_without_tools_is_a_warning(tmp_path: Path) -> None:
    report = load_config(one_openai_agent(tmp_path, supervisor_policy={"read_only": True}), run_cwd=tmp_path)
    assert report.valid
    assert ("agents[0].backend.supervisor_policy", "not used: the agent has no supervisor_tools") in [
        (w.location, w.message) for w in report.warnings]


def test_the_agents_calls_run_in_its_workspace_under_its_policy(chat_server: ChatServer, home: Supervisor,
                                                               tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "sub").mkdir(parents=True)
    calls = [
        ("start_shell", {"command": ["touch", "default"]}),
        ("start_shell", {"command": ["touch", "relative"], "cwd": "sub"}),
        ("start_shell", {"command": ["touch", "escaped"], "cwd": str(tmp_path)}),
        ("start_shell", {"command": ["rm", "-rf", str(workspace)]}),
        ("start_shell", {"command": ["touch", "third"]}),
    ]

    def responder(body: dict[str, Any]) -> dict[str, Any]:
        done = sum(m["role"] == "tool" for m in body["messages"])
        if done < len(calls):
            name, arguments = calls[done]
            return chat_response(tool_calls=[(name, json.dumps(arguments))])
        return chat_response(tool_calls=[("new_answer", '{"content": "done"}')])

    chat_server.responder = responder
    agent = AgentConfig.model_validate({"id": "meta", "backend": {
        "type": "openai", "model": "m", "base_url": chat_server.base_url, "api_key_env": KEY_ENV,
        "supervisor_tools": ["start_shell"], "max_tool_rounds": 10,
        "supervisor_policy": {"cwd_roots": ["."], "commands": {"allow": ["touch *"]}, "max_shells_per_session": 2}}})
    backend = build_backend(agent, workspace=workspace, transcript=lambda _: None, timeout=30,
                            environ={KEY_ENV: "k"})
    request = CoordinateRequest("meta", "agent1", "q?", None, str(workspace), (), (), True)

    async def turn() -> None:
        try:
            await backend.coordinate(request)
        finally:
            await backend.aclose()

    asyncio.run(turn())
    results = [json.loads(m["content"]) for m in chat_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert "shell_id" in results[0] and "shell_id" in results[1], results
    assert results[2]["error"].startswith('denied by the policy rule cwd_roots: ["."] (supervisor_policy of agent '
                                          'meta)')
    assert results[3]["error"].startswith('denied by the policy rule commands.allow: ["touch *"]')
    assert results[4]["error"].startswith("denied by the policy rule max_shells_per_session: 2")
    for shell in home.list_shells():
        home.wait_shell(shell["shell_id"], timeout=30)
    assert sorted(str(p.relative_to(workspace)) for p in workspace.rglob("*")) == ["default", "sub", "sub/relative"]
    assert not (tmp_path / "escaped").exists()
    records = audit.read(home.home)
    assert [r["decision"] for r in records] == ["allowed", "allowed", "denied", "denied", "denied"]
    assert len({r["session"] for r in records}) == 1 and records[0]["surface"] == "dispatch"
    assert records[0]["arguments"]["cwd"] == str(workspace) and os.path.isabs(records[1]["arguments"]["cwd"])
