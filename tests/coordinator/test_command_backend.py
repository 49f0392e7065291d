"""The command backend against real (tiny) programs: replies, agent errors, and stopping a process tree."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from coord_helpers import WaitFor, processes_mentioning, scripted

from coordinator.backends.command import CommandBackend
from coordinator.errors import AgentError
from coordinator.protocol.messages import AnswerView, CoordinateRequest, NewAnswer, PresentRequest, Vote

pytestmark = pytest.mark.timeout(20)


def _request(workspace: Path, answers: tuple[AnswerView, ...] = ()) -> CoordinateRequest:
    return CoordinateRequest(
        agent_id="a",
        anon_id="agent1",
        question="q?",
        system_message=None,
        workspace=str(workspace),
        answers=answers,
        vote_options=tuple(a.anon_id for a in answers),
        can_answer=True,
    )


def _backend(argv: list[str], cwd: Path) -> tuple[CommandBackend, list[str]]:
    transcript: list[str] = []
    return CommandBackend(argv, cwd=cwd, transcript=transcript.append, env={"EXTRA": "1"}), transcript


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_request_on_stdin_and_answer_on_stdout(run_dir: Path) -> None:
    code = (
        "import json, os, sys; r = json.load(sys.stdin); "
        "print(json.dumps({'action': 'new_answer', 'content': r['question'] + os.getcwd() + os.environ['EXTRA']}))"
    )
    backend, transcript = _backend(_python(code), run_dir)
    action = asyncio.run(backend.coordinate(_request(run_dir)))
    assert action == NewAnswer(f"q?{run_dir}1")
    assert "new_answer" in transcript[0]
    assert backend.usage is None


def test_vote_and_present_and_usage(run_dir: Path) -> None:
    backend, _ = _backend(scripted("answer", run_dir, text="mine"), run_dir)
    answers = (AnswerView("agent1", "agent1.1", "mine"),)
    action = asyncio.run(backend.coordinate(_request(run_dir, answers)))
    assert isinstance(action, Vote) and action.agent_id == "agent1"
    present = PresentRequest("a", "agent1", "q?", None, str(run_dir), answers, {"agent1": 1}, "agent1")
    assert asyncio.run(backend.present(present)) == "final: mine"
    asyncio.run(backend.coordinate(_request(run_dir)))
    assert backend.usage is not None and backend.usage.total_tokens == 5


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("import sys; print('oops', file=sys.stderr); sys.exit(2)", "exited with code 2: oops"),
        ("print('not json')", "invalid JSON"),
        ("print('[1, 2]')", "must be a JSON object"),
        ('print(\'{"action": "dance"}\')', "unknown action 'dance'"),
        ('print(\'{"action": "vote"}\')', "agent_id"),
        ('print(\'{"action": "new_answer", "content": 3}\')', "content"),
    ],
)
def test_bad_replies_are_agent_errors(run_dir: Path, code: str, message: str) -> None:
    backend, _ = _backend(_python("import sys; sys.stdin.read(); " + code), run_dir)
    with pytest.raises(AgentError, match=message):
        asyncio.run(backend.coordinate(_request(run_dir)))


def test_missing_program_is_an_agent_error(run_dir: Path) -> None:
    backend, _ = _backend(["/no/such/program"], run_dir)
    with pytest.raises(AgentError, match="cannot start"):
        asyncio.run(backend.coordinate(_request(run_dir)))


def test_cancelled_turn_stops_the_whole_process_tree(run_dir: Path, wait_for: WaitFor) -> None:
    backend, _ = _backend(scripted("spawn_and_sleep", run_dir), run_dir)

    async def scenario() -> None:
        task = asyncio.create_task(backend.coordinate(_request(run_dir)))
        # The agent and its detached (setsid) grandchild are both up.
        while len(processes_mentioning(str(run_dir))) < 2:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(scenario(), 10))
    wait_for(lambda: not processes_mentioning(str(run_dir)), timeout=5)


def test_children_left_by_a_finished_agent_are_stopped(run_dir: Path, wait_for: WaitFor) -> None:
    code = (
        "import json, subprocess, sys; sys.stdin.read(); "
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', '{run_dir}']); "
        "print(json.dumps({'action': 'new_answer', 'content': 'x'}))"
    )
    backend, _ = _backend(_python(code), run_dir)
    assert asyncio.run(backend.coordinate(_request(run_dir))) == NewAnswer("x")
    wait_for(lambda: not processes_mentioning(str(run_dir)), timeout=5)


def test_agents_get_the_runs_environment_with_their_own_on_top(run_dir: Path) -> None:
    from coordinator.backends import build_backend
    from coordinator.config import AgentConfig

    code = ("import json, os; "
            "print(json.dumps({'action': 'new_answer', 'content': os.environ['RUN'] + os.environ['OWN']}))")
    agent = AgentConfig.model_validate(
        {"id": "a", "backend": {"type": "command", "command": _python(code), "env": {"OWN": "-own"}}})
    run_environ = {"PATH": "/usr/bin:/bin", "RUN": "from-the-run"}
    backend = build_backend(agent, workspace=run_dir, transcript=lambda _: None, timeout=10, environ=run_environ)
    assert asyncio.run(backend.coordinate(_request(run_dir))) == NewAnswer("from-the-run-own")


HOSTILE_AGENT = Path(__file__).resolve().parent / "agents" / "hostile_agent.py"


def _hostile(mode: str, run_dir: Path, *args: str) -> list[str]:
    return [sys.executable, str(HOSTILE_AGENT), mode, "--marker", str(run_dir), *args]


@pytest.mark.parametrize(
    ("mode", "stream"), [("big_stdout", "stdout"), ("endless_stdout", "stdout"), ("endless_stderr", "stderr")]
)
def test_output_past_the_limit_stops_the_agent(run_dir: Path, mode: str, stream: str, wait_for: WaitFor) -> None:
    # 100 MB of stdout, or a writer that never stops: the turn ends at the limit, not at a timeout.
    limit = 2**20
    transcript: list[str] = []
    backend = CommandBackend(_hostile(mode, run_dir, "--bytes", str(100 * 2**20)), cwd=run_dir,
                             transcript=transcript.append, max_output_bytes=limit)
    with pytest.raises(AgentError, match=f"more than {limit} bytes to {stream} \\(backend.max_output_bytes\\)"):
        asyncio.run(asyncio.wait_for(backend.coordinate(_request(run_dir)), 15))
    assert sum(len(text) for text in transcript) <= 2 * limit + 100
    wait_for(lambda: not processes_mentioning(str(run_dir)), timeout=5)


def test_output_up_to_the_limit_is_read_whole(run_dir: Path) -> None:
    backend = CommandBackend(_hostile("big_stdout", run_dir, "--bytes", str(3 * 2**20)), cwd=run_dir,
                             transcript=lambda _: None, max_output_bytes=4 * 2**20)
    action = asyncio.run(backend.coordinate(_request(run_dir)))
    assert isinstance(action, NewAnswer) and action.content == "x" * (3 * 2**20)


def test_deeply_nested_json_is_an_agent_error(run_dir: Path) -> None:
    backend, _ = _backend(_hostile("deep_json", run_dir, "--bytes", "50000"), run_dir)
    with pytest.raises(AgentError, match="stdout is nested too deeply"):
        asyncio.run(backend.coordinate(_request(run_dir)))


def test_a_lone_surrogate_in_a_reply_is_replaced(run_dir: Path) -> None:
    backend, transcript = _backend(_hostile("surrogate", run_dir), run_dir)
    assert asyncio.run(backend.coordinate(_request(run_dir))) == NewAnswer("an emoji cut in half: \ufffd")
    "".join(transcript).encode("utf-8")


def test_a_detached_child_holding_stdout_does_not_hold_the_turn(run_dir: Path) -> None:
    # The agent replies and exits, but a child in its own session keeps stdout open for a minute.
    pid_file = run_dir / "child.pid"
    code = (
        "import json, subprocess, sys; sys.stdin.read(); "
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', '{run_dir}'], "
        "start_new_session=True); "
        f"open('{pid_file}', 'w').write(str(child.pid)); "
        "print(json.dumps({'action': 'new_answer', 'content': 'done'}), flush=True)"
    )
    backend, _ = _backend(_python(code), run_dir)
    try:
        assert asyncio.run(asyncio.wait_for(backend.coordinate(_request(run_dir)), 15)) == NewAnswer("done")
    finally:
        # The run's final sweep ends such escapees; this test has no run around it.
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
