"""What a model reads: compact views of the library's results, and `detail` for everything (pure, no processes)."""

from __future__ import annotations

from typing import Any

from supervisor.tools.views import (
    COMMAND_CHARS,
    MESSAGE_CHARS,
    compact,
    output_view,
    rounded,
    shell_view,
    wait_view,
)

RUNNING: dict[str, Any] = {
    "shell_id": "shell_1a2b3c4d", "name": None, "status": "running", "exit_code": None, "signal": None,
    "timed_out": False, "pid": 4242, "command": ["python3", "train.py", "--epochs", "3"], "cwd": "/srv/app",
    "created_at": "2026-01-01T10:00:00+00:00", "start_time": "2026-01-01T10:00:00+00:00", "end_time": None,
    "duration_seconds": 12.0040739999, "stdout_path": "/h/shells/x/stdout.log", "stderr_path": "/h/shells/x/stderr.log",
    "log_dir": None, "status_file": None, "coordination": None, "message": None,
    "resource_usage": {"user_seconds": 0.0040739999999999995},
}


def test_compact_status_keeps_what_a_model_acts_on() -> None:
    assert shell_view(RUNNING) == {"shell_id": "shell_1a2b3c4d", "status": "running", "pid": 4242,
                                   "command": "python3 train.py --epochs 3", "duration_seconds": 12.0}


def test_detail_is_the_library_record_unchanged() -> None:
    assert shell_view(RUNNING, detail=True) is RUNNING


def test_an_ended_shell_drops_its_pid_and_keeps_exit_code_zero_and_its_timeout() -> None:
    ended = {**RUNNING, "status": "killed", "exit_code": -15, "signal": "SIGTERM", "timed_out": True,
             "duration_seconds": 3600.4}
    assert shell_view(ended) == {"shell_id": "shell_1a2b3c4d", "status": "killed", "exit_code": -15,
                                 "signal": "SIGTERM", "timed_out": True, "command": "python3 train.py --epochs 3",
                                 "duration_seconds": 3600}
    assert shell_view({**RUNNING, "status": "stopped", "exit_code": 0})["exit_code"] == 0


def test_long_commands_and_messages_are_cut_and_say_how_much() -> None:
    view = shell_view({**RUNNING, "command": "x" * 10_000, "message": "m" * 10_000})
    assert view["command"] == "x" * COMMAND_CHARS + f"… ({10_000 - COMMAND_CHARS} more characters)"
    assert view["message"].startswith("m" * MESSAGE_CHARS + "… (")


def test_coordination_summary_is_compact_too() -> None:
    summary = {"phase": "completed", "completion_percentage": 100, "winner": "agent_b", "active_agent": None,
               "agents": {"agent_a": "completed", "agent_b": "completed"},
               "errors": {"agent_c": {"type": "timeout", "message": "no answer in 180 s", "timestamp": 1.5}},
               "votes": {}, "final_answer_preview": "391", "usage": {"input_tokens": 1200, "cost_usd": 0.0123456},
               "last_updated": 1730678901.234, "stalled": False, "answer_file": "/runs/final/agent_b/answer.txt",
               "error": None}
    view = shell_view({**RUNNING, "status": "stopped", "exit_code": 0, "coordination": summary})
    assert view["coordination"] == {"phase": "completed", "completion_percentage": 100, "winner": "agent_b",
                                    "agents": {"agent_a": "completed", "agent_b": "completed"},
                                    "errors": {"agent_c": "no answer in 180 s"}, "final_answer_preview": "391",
                                    "usage": {"input_tokens": 1200, "cost_usd": 0.0123}}


def test_rounding() -> None:
    assert [rounded(x) for x in (0.0040739999999999995, 12.3456, 99.94, 1234.56, -0.5)] == [
        0.00407, 12.3, 99.9, 1235, -0.5]
    assert compact({"waited_seconds": 0.04, "duration_seconds": 250.7, "ratio": 0.123456}) == {
        "waited_seconds": 0.0, "duration_seconds": 251, "ratio": 0.123}


def test_wait_view_has_one_wait_key() -> None:
    expired = wait_view(RUNNING, expired=True, waited=60.012)
    assert (expired["wait_expired"], expired["waited_seconds"]) == (True, 60.0)
    assert "timed_out" not in expired
    ended = wait_view({**RUNNING, "status": "stopped", "exit_code": 0}, expired=False, waited=1.2)
    assert "wait_expired" not in ended and "timed_out" not in ended
    full = wait_view(RUNNING, expired=False, waited=1.23456, detail=True)
    assert (full["wait_expired"], full["waited_seconds"], full["timed_out"]) == (False, 1.235, False)


def test_output_view_hints_the_next_call_and_keeps_text_whole() -> None:
    text = "line\n" * 2000
    output = {"shell_id": "shell_1a2b3c4d", "status": "running", "exit_code": None, "stdout": text, "stderr": "",
              "stdout_next_offset": 10_000, "stderr_next_offset": 0, "stdout_truncated": True,
              "stderr_truncated": False, "stdout_remaining_bytes": 500, "stderr_remaining_bytes": 0}
    view = output_view(output, max_bytes=10_000)
    assert view == {"shell_id": "shell_1a2b3c4d", "status": "running", "stdout": text, "stderr": "",
                    "stdout_next_offset": 10_000, "stderr_next_offset": 0, "stdout_truncated": True,
                    "hint": "500 more bytes of stdout: call get_shell_output with stream='stdout' and offset=10000"}
    assert output_view(output, max_bytes=10_000, detail=True) == {**output, "max_bytes": 10_000,
                                                                  "hint": view["hint"]}
