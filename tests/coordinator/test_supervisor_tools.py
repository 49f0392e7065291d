"""openai agents with the supervisor tools: the config flag, the tool-round bound, the end-of-run sweep
that spares supervised shells, and configs/meta/runs_itself.yaml driving a nested run (fake LLM, real processes)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from coord_helpers import (
    REPO,
    ChatServer,
    WaitFor,
    chat_response,
    child_env,
    one_openai_agent,
    run_mgcoord,
    write_config,
)

from coordinator.backends import build_backend
from coordinator.config import AgentConfig, OpenAIBackendConfig, load_config
from coordinator.errors import AgentError
from coordinator.protocol.messages import CoordinateRequest
from supervisor import Supervisor, audit, proc
from supervisor.proc import MONITOR_VAR
from supervisor.tools import TOOLS

pytestmark = pytest.mark.timeout(60)

META_CONFIG = REPO / "configs" / "meta" / "runs_itself.yaml"
ALL_TOOLS = [spec.name for spec in TOOLS]
NESTED_QUESTION = "What is 17 * 23?"
KEY_ENV = "TEST_META_KEY"


# The flag -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, ALL_TOOLS),
        (False, None),
        (None, None),
        (["wait_shell", "start_coordination"], ["wait_shell", "start_coordination"]),
    ],
)
def test_supervisor_tools_flag(tmp_path: Path, value: Any, expected: list[str] | None) -> None:
    report = load_config(one_openai_agent(tmp_path, supervisor_tools=value), run_cwd=tmp_path)
    assert report.valid, report.errors
    assert report.config is not None
    backend = report.config.agents[0].backend
    assert isinstance(backend, OpenAIBackendConfig)
    assert backend.supervisor_tools == expected
    assert backend.max_tool_rounds == 10


@pytest.mark.parametrize(
    ("backend", "location", "fragment"),
    [
        (
            {"supervisor_tools": ["wait_shell", "teleport"]},
            "agents[0].backend.supervisor_tools[1]",
            "unknown supervisor tool 'teleport'; the tools are: start_shell, get_shell_status",
        ),
        ({"supervisor_tools": "yes"}, "agents[0].backend.supervisor_tools", "expected true, false or a list"),
        (
            {"supervisor_tools": ["wait_shell", "wait_shell"]},
            "agents[0].backend.supervisor_tools",
            "tool listed more than once: wait_shell",
        ),
        ({"max_tool_rounds": 0}, "agents[0].backend.max_tool_rounds", "greater than or equal to 1"),
    ],
)
def test_bad_flag_values_are_located(tmp_path: Path, backend: dict[str, Any], location: str, fragment: str) -> None:
    report = load_config(one_openai_agent(tmp_path, **backend), run_cwd=tmp_path)
    assert not report.valid
    assert [(issue.location, fragment in issue.message) for issue in report.errors] == [(location, True)]


def test_flag_on_a_command_backend_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text('agents:\n  - id: a\n    backend: {type: command, command: ["true"], supervisor_tools: true}\n')
    report = load_config(path, run_cwd=tmp_path)
    assert report.valid
    assert [(w.location, w.message) for w in report.warnings] == [
        ("agents[0].backend.supervisor_tools", "not used by the command backend")
    ]


def test_unknown_tool_is_reported_by_validate_and_starts_nothing(run_dir: Path, tmp_path: Path) -> None:
    config = one_openai_agent(run_dir, supervisor_tools=["start_coordination", "rm_rf"], api_key_env=KEY_ENV)
    home = tmp_path / "home"
    env = child_env(**{KEY_ENV: "k", "MGSUP_HOME": str(home)})
    checked = run_mgcoord("--validate", str(config), "--json", cwd=run_dir, env=env)
    assert checked.returncode == 1
    errors = json.loads(checked.stdout)["errors"]
    assert [e["location"] for e in errors] == ["agents[0].backend.supervisor_tools[1]"]
    assert "unknown supervisor tool 'rm_rf'" in errors[0]["message"]
    run = run_mgcoord("--automation", "--config", str(config), "q?", cwd=run_dir, env=env)
    assert run.returncode == 1 and "rm_rf" in run.stdout
    assert "LOG_DIR" not in run.stdout
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml"]
    assert not home.exists()


# The tool-round bound -------------------------------------------------------------------------------


def test_a_model_that_only_calls_tools_runs_out_of_rounds(chat_server: ChatServer, home: Supervisor) -> None:
    chat_server.responder = lambda body: chat_response(tool_calls=[("list_shells", '{"status": null}')])
    agent = AgentConfig.model_validate(
        {
            "id": "meta",
            "backend": {
                "type": "openai",
                "model": "m",
                "base_url": chat_server.base_url,
                "api_key_env": KEY_ENV,
                "supervisor_tools": ["list_shells"],
                "max_tool_rounds": 3,
            },
        }
    )
    backend = build_backend(agent, workspace=Path("/"), transcript=lambda _: None, timeout=5, environ={KEY_ENV: "k"})
    request = CoordinateRequest("meta", "agent1", "q?", None, "/", (), (), True)

    async def turn() -> None:
        try:
            await backend.coordinate(request)
        finally:
            await backend.aclose()

    with pytest.raises(AgentError, match=r"no new_answer or vote within 3 model calls \(backend.max_tool_rounds\)"):
        asyncio.run(turn())
    assert len(chat_server.requests) == 3
    offered = [t["function"]["name"] for t in chat_server.requests[0]["tools"]]
    assert offered == ["new_answer", "list_shells"]
    result = json.loads(chat_server.requests[2]["messages"][-1]["content"])
    assert result["max_concurrent"] == home.max_concurrent and result["shells"] == []


# The end-of-run sweep -------------------------------------------------------------------------------

DETACHING_AGENT = """
import json, os, subprocess, sys, time
import psutil
from supervisor import Supervisor
request = json.load(sys.stdin)
home, out = sys.argv[1], sys.argv[2]
DETACH = ("import subprocess, sys; print(subprocess.Popen(sys.argv[1:], start_new_session=True, "
          "stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)")

def detach(argv, **env):
    done = subprocess.run([sys.executable, "-c", DETACH, *argv], env={**os.environ, **env},
                          capture_output=True, text=True, check=True)
    return int(done.stdout)

mine = [a for a in request["answers"] if a["anon_id"] == request["anon_id"]]
if request["phase"] == "present":
    print(json.dumps({"content": "done"}))
elif not mine:
    # A supervised shell outlives the run; its monitor re-parents to the run (a subreaper).
    shell = Supervisor(home).start_shell(["sleep", "30"])
    with open(os.path.join(home, "shells", shell, "state.json")) as f:
        state = json.load(f)
    pids = {"shell": shell, "monitor": state["monitor_pid"], "job": state["pid"],
            # Processes that only claim to be monitors, one of them naming the real shell.
            "forged": detach(["sleep", "30"], MARK=os.path.join(home, "shells", shell)),
            "marked": detach(["sh", "-c", "env -u MARK sleep 30 & wait"], MARK="shell_deadbeef"),
            "plain": detach(["sleep", "30"])}
    while not psutil.Process(pids["marked"]).children():
        time.sleep(0.01)
    pids["marked_child"] = psutil.Process(pids["marked"]).children()[0].pid
    with open(out, "w") as f:
        json.dump(pids, f)
    print(json.dumps({"action": "new_answer", "content": "spawned"}))
else:
    print(json.dumps({"action": "vote", "agent_id": request["vote_options"][0], "reason": "mine"}))
""".replace("MARK", MONITOR_VAR)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sweep_spares_supervised_shells_but_not_processes_that_claim_to_be_monitors(run_dir: Path,
                                                                                    tmp_path: Path) -> None:
    agent = tmp_path / "detaching_agent.py"
    agent.write_text(DETACHING_AGENT)
    home, pids_file = tmp_path / "home", tmp_path / "pids.json"
    command = [sys.executable, str(agent), str(home), str(pids_file)]
    config = write_config(run_dir / "c.yaml", [{"id": "a", "backend": {"type": "command", "command": command}}])
    pids: dict[str, Any] = {}
    try:
        result = run_mgcoord("--automation", "--config", str(config), "q?", cwd=run_dir)
        pids = json.loads(pids_file.read_text())
        assert result.returncode == 0, result
        assert _alive(pids["monitor"]) and _alive(pids["job"]), "the sweep killed a supervised shell"
        assert Supervisor(home).get_shell_status(pids["shell"])["status"] == "running"
        for name in ("forged", "marked", "marked_child", "plain"):
            assert not _alive(pids[name]), f"the {name} detached process survived the run"
    finally:
        if pids.get("shell"):
            Supervisor(home).kill_shell(pids["shell"], grace=1.0)


def test_a_mark_spares_only_the_monitor_its_shell_records(tmp_path: Path, wait_for: WaitFor) -> None:
    claimed, recorded = tmp_path / "shells" / "shell_0badcafe", tmp_path / "shells" / "shell_0000cafe"
    marked = subprocess.Popen(["sleep", "30"], env={**os.environ, MONITOR_VAR: str(claimed)})
    monitor = subprocess.Popen(["sleep", "30"], env={**os.environ, MONITOR_VAR: str(recorded)})
    try:
        wait_for(lambda: psutil.Process(monitor.pid).name() == "sleep")
        for folder, pid in ((claimed, os.getpid()), (recorded, monitor.pid)):
            folder.mkdir(parents=True)
            (folder / "state.json").write_text(json.dumps(
                {"status": "running", "monitor_pid": pid, "monitor_start": proc.start_ticks(pid)}))
        swept = proc.descendants(os.getpid())
        assert marked.pid in swept, "a variable alone spared a process"
        assert monitor.pid not in swept
    finally:
        for process in (marked, monitor):
            process.kill()
            process.wait()


# configs/meta/runs_itself.yaml ----------------------------------------------------------------------


def _meta_config(directory: Path, server: ChatServer, **timeouts: float) -> Path:
    """runs_itself.yaml pointed at the scripted server; ${config_dir} resolved as for the shipped file."""
    text = META_CONFIG.read_text().replace("${config_dir}", str(META_CONFIG.parent))
    document = yaml.safe_load(text)
    document["agents"][0]["backend"].update(model="scripted", base_url=server.base_url, api_key_env=KEY_ENV)
    document["timeout_settings"].update(timeouts)
    path = directory / "meta.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


class MetaAgent:
    """The scripted model: start_coordination, wait_shell on the id it got back, new_answer, vote, present."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.answer = ""

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | tuple[int, str]:
        messages = body["messages"]
        prompt = messages[1]["content"]
        if "Write the final answer" in prompt:
            return chat_response(content=f"Report: {self.answer}")
        if "agent1.1" in prompt:
            return chat_response(tool_calls=[("vote", '{"agent_id": "agent1", "reason": "it is my report"}')])
        results = [json.loads(m["content"]) for m in messages if m["role"] == "tool"]
        if any("error" in result for result in results):
            return self._fail(f"a tool failed: {results[-1]}")
        if not results:
            found = re.search(r'config "(/[^"]+\.yaml)"', messages[0]["content"])
            if found is None or not Path(found.group(1)).is_file():
                return self._fail(f"no existing config path in the system message: {messages[0]['content']!r}")
            arguments = {"config": found.group(1), "question": NESTED_QUESTION}
            return chat_response(tool_calls=[("start_coordination", json.dumps(arguments))])
        if len(results) == 1:
            return chat_response(tool_calls=[("wait_shell", json.dumps({"shell_id": results[0]["shell_id"]}))])
        waited = results[-1]
        if waited.get("wait_expired") or "coordination" not in waited:
            return self._fail(f"the nested run did not end with a summary: {waited}")
        self.answer = (
            f"nested run {waited['shell_id']} ended {waited['status']} (exit {waited['exit_code']}), "
            f"winner {waited['coordination']['winner']}"
        )
        return chat_response(tool_calls=[("new_answer", json.dumps({"content": self.answer}))])

    def _fail(self, problem: str) -> tuple[int, str]:
        self.problems.append(problem)
        return 400, json.dumps({"error": problem})


def test_meta_config_runs_a_nested_coordination(
    run_dir: Path, chat_server: ChatServer, home: Supervisor, tmp_path: Path
) -> None:
    model = MetaAgent()
    chat_server.responder = model
    config = _meta_config(tmp_path, chat_server, agent_timeout_seconds=40, orchestrator_timeout_seconds=50)
    env = child_env(**{KEY_ENV: "k", "MGSUP_HOME": str(home.home)})
    result = run_mgcoord(
        "--automation", "--config", str(config), "Run the demo and report its winner", cwd=run_dir, env=env, timeout=50
    )
    assert not model.problems
    assert result.returncode == 0, result
    assert result.value("WINNER") == "meta_agent"

    [nested] = home.list_shells()
    assert nested["status"] == "stopped" and nested["exit_code"] == 0
    # Under the config's policy: in the agent's own workspace, with the capped timeout and budget.
    [workspace] = (run_dir / ".massgen" / "workspaces").glob("meta_workspace_*")
    assert nested["cwd"] == str(workspace)
    assert nested["budget"] == {"max_tokens": 200000, "max_cost_usd": 1.0, "max_duration_seconds": 900}
    assert home.store.spec(nested["shell_id"]).timeout == 900
    assert [(r["tool"], r["decision"], r["result"]) for r in audit.read(home.home)] == [
        ("start_coordination", "allowed", "ok"), ("wait_shell", "allowed", "ok")]
    stdout = home.get_shell_output(nested["shell_id"])["stdout"]
    [winner] = re.findall(r"^WINNER: (\S+)$", stdout, re.MULTILINE)
    assert nested["coordination"]["winner"] == winner
    assert result.value("ANSWER_PREVIEW") == (
        f"Report: nested run {nested['shell_id']} ended stopped (exit 0), winner {winner}"
    )
    offered = [t["function"]["name"] for t in chat_server.requests[0]["tools"]]
    assert offered == [
        "new_answer",
        "start_coordination",
        "wait_shell",
        "get_shell_status",
        "get_shell_output",
        "kill_shell",
    ]


def test_a_turn_timing_out_in_wait_shell_leaves_the_shell_running(
    run_dir: Path, chat_server: ChatServer, home: Supervisor, tmp_path: Path
) -> None:
    """The wait cannot be interrupted: the run must still end at once, and the shell it started lives on."""

    def responder(body: dict[str, Any]) -> dict[str, Any]:
        results = [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]
        if not results:
            return chat_response(
                tool_calls=[
                    ("start_coordination", json.dumps({"config": str(_slow_config(tmp_path)), "question": "q?"}))
                ]
            )
        wait = {"shell_id": results[0]["shell_id"], "timeout": 600}
        return chat_response(tool_calls=[("wait_shell", json.dumps(wait))])

    chat_server.responder = responder
    config = _meta_config(tmp_path, chat_server, agent_timeout_seconds=1, orchestrator_timeout_seconds=50)
    env = child_env(**{KEY_ENV: "k", "MGSUP_HOME": str(home.home)})
    try:
        # The wait would hold a default-executor thread (and the run's exit) for 600 s.
        result = run_mgcoord("--automation", "--config", str(config), "q?", cwd=run_dir, env=env, timeout=30)
        assert result.returncode == 2, result
        assert "timeout" in result.value("ERROR")
        [nested] = home.list_shells()
        assert nested["status"] == "running", "the sweep ended a supervised shell"
        assert psutil.pid_exists(nested["pid"])
    finally:
        for shell in home.list_shells():
            home.kill_shell(shell["shell_id"], grace=1)
    assert [s["status"] for s in home.list_shells()] == ["killed"]


def _slow_config(tmp_path: Path) -> Path:
    script = tmp_path / "sleeper.py"
    script.write_text("import time\ntime.sleep(60)\n")
    agent = {"id": "sleeper", "backend": {"type": "command", "command": [sys.executable, str(script)]}}
    return write_config(tmp_path / "slow.yaml", [agent], agent_timeout=60, orchestrator_timeout=60)


def test_shipped_meta_config_is_valid_and_finds_the_demo(tmp_path: Path) -> None:
    report = load_config(META_CONFIG, run_cwd=tmp_path)
    assert report.valid, report.errors
    assert report.config is not None
    agent = report.config.agents[0]
    assert agent.system_message is not None
    [config] = re.findall(r'config "([^"]+)"', agent.system_message)
    assert Path(config).resolve() == REPO / "configs" / "demo.yaml"
    assert os.path.isabs(config)
    assert isinstance(agent.backend, OpenAIBackendConfig) and agent.backend.supervisor_tools
    assert report.config.timeout_settings.agent_timeout_seconds > 60
