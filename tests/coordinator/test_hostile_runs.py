"""mgcoord runs against hostile agents, a misbehaving OpenAI-compatible server and hostile configs.

Each test replays a scenario of the adversarial trials as it was reported, through the real
command line, and checks the contract of DESIGN §6 still holds: the stdout lines, the exit code,
a final status.json, bounded files, and no agent process left.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from coord_helpers import (
    Result,
    WaitFor,
    child_env,
    command_agent,
    mgcoord_argv,
    processes_mentioning,
    run_mgcoord,
    scripted,
    write_config,
)
from hostile_server import HostileServer, tool_call_response

from coordinator.events import read_events
from supervisor.automation.schema import StatusDocument

pytestmark = pytest.mark.timeout(90)

QUESTION = "What is 6 * 7?"
HOSTILE_AGENT = Path(__file__).resolve().parent / "agents" / "hostile_agent.py"
MiB = 2**20
ERROR_LINE_MAX = len("ERROR: ") + 1000


def hostile(mode: str, marker: Path, *args: str) -> list[str]:
    return [sys.executable, str(HOSTILE_AGENT), mode, "--marker", str(marker), *args]


def openai_agent(agent_id: str, server: HostileServer, **backend: Any) -> dict[str, Any]:
    return {
        "id": agent_id,
        "backend": {"type": "openai", "model": "m", "base_url": server.base_url, "api_key_env": "TEST_CHAT_KEY",
                    **backend},
    }


def run(config: Path, cwd: Path, *args: str) -> Result:
    return run_mgcoord("--automation", "--config", str(config), *args, QUESTION, cwd=cwd, timeout=80,
                       env=child_env(TEST_CHAT_KEY="k"))


def final_status(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(result.value("STATUS")).read_text(encoding="utf-8"))
    StatusDocument.model_validate(data)
    assert data["meta"]["exit_code"] == result.returncode
    assert data["coordination"]["completion_percentage"] == 100
    return data


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr.replace("ERROR", ""), result.stderr


# -- issue: hostile-but-ordinary input ------------------------------------------------------------

def test_a_lone_surrogate_in_a_reply_fails_nothing(run_dir: Path) -> None:
    config = write_config(run_dir / "c.yaml", [
        command_agent("cutter", hostile("surrogate", run_dir)),
        command_agent("plain", scripted("answer", run_dir, text="42")),
    ])
    result = run(config, run_dir)
    assert result.returncode == 0, result
    assert_no_traceback(result)
    log_dir = Path(result.value("LOG_DIR"))
    for path in log_dir.rglob("*"):
        if path.is_file():
            path.read_text(encoding="utf-8")  # every file the run wrote is UTF-8
    answers = [p.read_text() for p in log_dir.glob("cutter/*/answer.txt")]
    assert answers == ["an emoji cut in half: \ufffd"]
    assert final_status(result)["agents"]["cutter"]["error"] is None


def test_a_question_that_is_not_utf8_is_asked_with_a_replacement(run_dir: Path) -> None:
    config = write_config(run_dir / "c.yaml", [command_agent("a", scripted("answer", run_dir, text="42"))])
    # "caf\xe9?" as raw bytes in argv: Python sees a lone surrogate.
    result = run_mgcoord("--automation", "--config", str(config), "caf\udce9?", cwd=run_dir)
    assert result.returncode == 0, result
    assert result.value("QUESTION") == "caf\ufffd?"
    assert final_status(result)["meta"]["question"] == "caf\ufffd?"


def test_a_config_that_is_not_utf8_is_one_error_line(run_dir: Path) -> None:
    config = run_dir / "c.yaml"
    config.write_bytes(b"agents:\n  - id: caf\xe9\n    backend: {type: command, command: [x]}\n")
    result = run(config, run_dir)
    assert result.returncode == 1, result
    assert result.lines == [f"ERROR: invalid config {config}: line 2: config is not UTF-8 text (byte 0xe9)"]
    assert "Traceback" not in result.stderr
    assert not (run_dir / ".massgen").exists()
    validated = run_mgcoord("--validate", str(config), cwd=run_dir)
    assert validated.returncode == 1 and "not UTF-8" in validated.stdout and "Traceback" not in validated.stderr


def test_billion_laughs_is_refused_at_once(run_dir: Path) -> None:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    config = run_dir / "c.yaml"
    config.write_text("\n".join(lines) + "\nbomb: *l9\nagents: [{id: a, backend: {type: command, command: [x]}}]\n")
    result = run(config, run_dir)
    assert result.returncode == 1, result
    assert result.lines == [f"ERROR: invalid config {config}: (file): the config expands to more than 100,000 values "
                            "(YAML aliases used too often?)"]
    assert not (run_dir / ".massgen").exists()


def _start_and_wait_for_agents(run_dir: Path, wait_for: WaitFor, **popen: Any) -> subprocess.Popen[str]:
    config = write_config(
        run_dir / "c.yaml",
        [command_agent("a", scripted("spawn_and_sleep", run_dir)), command_agent("b", scripted("sleep", run_dir))],
        agent_timeout=60,
    )
    process = subprocess.Popen(mgcoord_argv("--automation", "--config", str(config), QUESTION), cwd=run_dir,
                               text=True, env=child_env(), **popen)
    # Both agents and a's detached grandchild are running.
    wait_for(lambda: len([p for p in processes_mentioning(str(run_dir)) if p.pid != process.pid]) >= 3)
    return process


def test_sighup_with_the_terminal_gone_still_finalises_the_run(run_dir: Path, wait_for: WaitFor) -> None:
    # A closed terminal: SIGHUP, and stdout that can no longer be written.
    process = _start_and_wait_for_agents(run_dir, wait_for, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    log_dir = Path(process.stdout.readline().removeprefix("LOG_DIR: ").strip())
    process.stdout.close()
    process.send_signal(signal.SIGHUP)
    assert process.wait(timeout=20) == 4
    assert process.stderr is not None
    with process.stderr:
        stderr = process.stderr.read()
    assert "Traceback" not in stderr, stderr
    status = json.loads((log_dir / "status.json").read_text())
    assert status["coordination"]["phase"] == "interrupted" and status["meta"]["exit_code"] == 4
    assert processes_mentioning(str(run_dir)) == []


def test_a_signal_ignored_at_start_stays_ignored(run_dir: Path, wait_for: WaitFor) -> None:
    # As under nohup: SIGHUP does not end the run; SIGTERM still does.
    process = _start_and_wait_for_agents(
        run_dir, wait_for, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    process.send_signal(signal.SIGHUP)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=20)
    result = Result(process.returncode, stdout, stderr)
    assert result.returncode == 4, result
    assert result.value("ERROR") == "interrupted by SIGTERM"
    assert processes_mentioning(str(run_dir)) == []


# -- issue: bound everything a model, an agent or a host can send ---------------------------------

def test_a_gzip_bomb_from_the_endpoint_fails_that_agent_only(run_dir: Path) -> None:
    # 256 KB of gzip that unpacks to 256 MB.
    with HostileServer("gzip_bomb", size=256 * MiB) as server:
        config = write_config(run_dir / "c.yaml", [
            openai_agent("bombed", server),
            command_agent("plain", scripted("answer", run_dir, text="42")),
        ])
        result = run(config, run_dir)
    assert result.returncode == 0, result
    assert result.value("WINNER") == "plain"
    status = final_status(result)
    error = status["agents"]["bombed"]["error"]
    assert status["agents"]["bombed"]["status"] == "error"
    assert "response larger than 4194304 bytes (backend.max_response_bytes)" in error["message"]
    transcript = Path(result.value("LOG_DIR")) / "agent_outputs" / "bombed.txt"
    assert transcript.stat().st_size < MiB


def test_a_reply_that_never_ends_is_an_agent_timeout(run_dir: Path) -> None:
    with HostileServer("drip") as server:
        config = write_config(run_dir / "c.yaml", [
            openai_agent("dripping", server),
            command_agent("plain", scripted("answer", run_dir, text="42")),
        ], agent_timeout=2)
        result = run(config, run_dir)
    assert result.returncode == 0, result
    agent = final_status(result)["agents"]["dripping"]
    assert agent["status"] == "timeout" and agent["error"]["type"] == "timeout"


@pytest.mark.parametrize("mode", ["big_stdout", "endless_stdout", "endless_stderr"])
def test_command_agent_output_is_capped(run_dir: Path, mode: str) -> None:
    # 100 MB of stdout, or a writer that never stops; the turn timeout is far away (120 s).
    config = write_config(run_dir / "c.yaml", [
        command_agent("flood", hostile(mode, run_dir, "--bytes", str(100 * MiB)), max_output_bytes=MiB),
        command_agent("plain", scripted("answer", run_dir, text="42")),
    ], agent_timeout=120, orchestrator_timeout=240)
    result = run(config, run_dir)
    assert result.returncode == 0, result
    stream = "stderr" if mode == "endless_stderr" else "stdout"
    agent = final_status(result)["agents"]["flood"]
    assert agent["status"] == "error"
    assert f"more than 1048576 bytes to {stream} (backend.max_output_bytes)" in agent["error"]["message"]
    outputs = Path(result.value("LOG_DIR")) / "agent_outputs"
    # Each attempt (1 + max_turn_retries) is logged with at most the limit of each stream.
    assert (outputs / "flood.txt").stat().st_size <= 2 * (2 * MiB + 1000)
    assert processes_mentioning(str(run_dir)) == []


def test_a_huge_vote_target_makes_bounded_errors(run_dir: Path) -> None:
    config = write_config(run_dir / "c.yaml", [command_agent("voter", hostile("huge_vote", run_dir))])
    result = run(config, run_dir)
    assert result.returncode == 2, result
    error_line = next(line for line in result.lines if line.startswith("ERROR: "))
    assert len(error_line) <= ERROR_LINE_MAX and "all agents failed" in error_line
    assert "(3145728 characters)" in error_line
    log_dir = Path(result.value("LOG_DIR"))
    assert (log_dir / "status.json").stat().st_size < 16 * 1024
    assert (log_dir / "coordination_events.json").stat().st_size < 64 * 1024
    assert len(final_status(result)["agents"]["voter"]["error"]["message"]) <= 1000
    assert len(result.stdout) < 4096


def test_a_huge_tool_name_makes_bounded_errors(run_dir: Path) -> None:
    call = tool_call_response("t" * (3 * MiB), "{}")
    with HostileServer("scripted", script=[call] * 12) as server:
        config = write_config(run_dir / "c.yaml", [openai_agent("caller", server)])
        result = run(config, run_dir)
    assert result.returncode == 2, result
    assert len(next(line for line in result.lines if line.startswith("ERROR: "))) <= ERROR_LINE_MAX
    log_dir = Path(result.value("LOG_DIR"))
    assert (log_dir / "status.json").stat().st_size < 16 * 1024
    assert (log_dir / "coordination_events.json").stat().st_size < 64 * 1024


def test_retry_after_is_honoured_and_auth_errors_are_not_retried(run_dir: Path) -> None:
    with HostileServer("retry_after", retry_after="1", failures=2) as limited, HostileServer("unauthorized") as locked:
        config = write_config(run_dir / "c.yaml", [openai_agent("limited", limited), openai_agent("locked", locked)],
                              max_turn_retries=2)
        result = run(config, run_dir)
    assert result.returncode == 0, result
    assert result.value("WINNER") == "limited"
    first, second, third = (request.at for request in limited.requests[:3])
    assert second - first >= 1.0 and third - second >= 1.0
    assert len(locked.requests) == 1
    status = final_status(result)
    assert status["agents"]["locked"]["status"] == "error"
    assert "HTTP 401" in status["agents"]["locked"]["error"]["message"]


def test_malformed_shapes_and_deep_json_never_surface_as_tracebacks(run_dir: Path) -> None:
    bad = [
        {"choices": [{"message": {"role": "assistant", "tool_calls": "new_answer"}}]},
        {"choices": [{"message": {"role": "assistant", "tool_calls": [{"id": "c", "function": "vote"}]}}]},
    ]
    with HostileServer("scripted", script=bad) as server:
        config = write_config(run_dir / "c.yaml", [
            openai_agent("shapes", server),
            command_agent("deep", hostile("deep_json", run_dir, "--bytes", "50000")),
        ])
        result = run(config, run_dir)
    assert result.returncode == 0, result
    assert result.value("WINNER") == "shapes"
    assert_no_traceback(result)
    agents = final_status(result)["agents"]
    assert agents["deep"]["status"] == "error" and "nested too deeply" in agents["deep"]["error"]["message"]
    # The model was told about each malformed reply, then answered properly.
    told = [r.body["messages"][-1]["content"] for r in server.requests[1:3]]
    assert told[0] == "error: tool_calls must be a list of calls, got str 'new_answer'"
    assert told[1].startswith("error: tool call #1 is malformed: 'function' must be an object")


def test_an_answer_on_record_is_presented_when_every_agent_later_fails(run_dir: Path) -> None:
    config = write_config(run_dir / "c.yaml", [
        command_agent("agent1", hostile("answer_then_crash", run_dir)),
        command_agent("agent2", scripted("crash", run_dir)),
    ])
    result = run(config, run_dir)
    assert result.returncode == 0, result
    assert result.value("WINNER") == "agent1"
    assert Path(result.value("ANSWER_FILE")).read_text() == "final: 42"
    status = final_status(result)
    assert status["coordination"]["phase"] == "completed"
    assert status["agents"]["agent2"]["status"] == "error"


def test_absurd_token_usage_is_ignored(run_dir: Path) -> None:
    with HostileServer("absurd_usage") as server:
        config = write_config(run_dir / "c.yaml", [
            openai_agent("model", server),
            command_agent("tool", hostile("absurd_usage", run_dir)),
        ])
        result = run(config, run_dir)
    assert result.returncode == 0, result
    status = final_status(result)
    assert status["agents"]["model"]["usage"] is None and status["agents"]["tool"]["usage"] is None
    assert status["results"]["usage"] is None
    log = (Path(result.value("LOG_DIR")) / "massgen.log").read_text()
    assert "ignored a usage report with invalid token counts" in log


def test_events_of_a_run_are_one_line_each(run_dir: Path) -> None:
    config = write_config(run_dir / "c.yaml", [
        command_agent("a", scripted("answer", run_dir, text="41")),
        command_agent("b", scripted("answer", run_dir, text="42")),
    ])
    result = run(config, run_dir)
    assert result.returncode == 0, result
    path = Path(result.value("LOG_DIR")) / "coordination_events.json"
    document = json.loads(path.read_text())
    assert document == read_events(path)
    assert len(path.read_text().splitlines()) == len(document["events"]) + 2
    assert document["events"][-1]["event_type"] == "session_end"
