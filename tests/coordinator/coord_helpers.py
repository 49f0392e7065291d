"""Helpers for the coordinator tests: config writers, an mgcoord runner, a chat server model."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPTED_AGENT = Path(__file__).resolve().parent / "agents" / "scripted_agent.py"
DEMO_CONFIG = REPO / "configs" / "demo.yaml"


WaitFor = Callable[..., Any]
"""The ``wait_for`` fixture of tests/conftest.py: ``wait_for(predicate, timeout=10.0)`` polls until truthy."""


def processes_mentioning(marker: str) -> list[psutil.Process]:
    """Live processes (not zombies) whose command line or working directory mentions ``marker``."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        info = proc.info
        if proc.pid == os.getpid() or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        text = " ".join(info["cmdline"] or []) + " " + (info["cwd"] or "")
        if marker in text:
            found.append(proc)
    return found


def scripted(mode: str, marker: Path, *, text: str | None = None, delay: float = 0.0) -> list[str]:
    """The argv of a scripted test agent."""
    argv = [sys.executable, str(SCRIPTED_AGENT), mode, "--marker", str(marker), "--delay", str(delay)]
    if text is not None:
        argv += ["--text", text]
    return argv


def write_config(
    path: Path,
    agents: list[dict[str, Any]],
    *,
    agent_timeout: float = 10,
    orchestrator_timeout: float = 30,
    **orchestrator: Any,
) -> Path:
    """Write a config whose ``agents`` are ``{"id", "backend"}`` mappings."""
    document = {
        "agents": agents,
        "orchestrator": {"max_new_answers_per_agent": 2, "max_turn_retries": 1, **orchestrator},
        "timeout_settings": {
            "agent_timeout_seconds": agent_timeout,
            "orchestrator_timeout_seconds": orchestrator_timeout,
        },
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def one_openai_agent(tmp_path: Path, **backend: Any) -> Path:
    """config.yaml in `tmp_path` with one openai agent `meta` (model `m`) and these backend keys."""
    document = {"agents": [{"id": "meta", "backend": {"type": "openai", "model": "m", **backend}}]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def command_agent(agent_id: str, argv: list[str], **backend: Any) -> dict[str, Any]:
    return {"id": agent_id, "backend": {"type": "command", "command": argv, **backend}}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def value(self, key: str) -> str:
        """The value of the stdout line ``KEY: value``."""
        prefix = f"{key}: "
        matches = [line[len(prefix) :] for line in self.lines if line.startswith(prefix)]
        assert len(matches) == 1, f"expected one {key} line in:\n{self.stdout}\nstderr:\n{self.stderr}"
        return matches[0]


def mgcoord_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "coordinator", *args]


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **extra}
    env.pop("OPENAI_API_KEY", None)
    env.update(extra)
    return env


def run_mgcoord(*args: str, cwd: Path, timeout: float = 30, env: dict[str, str] | None = None) -> Result:
    """Run ``python -m coordinator ARGS`` to its end."""
    done = subprocess.run(
        mgcoord_argv(*args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or child_env(),
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def start_mgcoord(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        mgcoord_argv(*args),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or child_env(),
    )


Responder = Callable[[dict[str, Any]], dict[str, Any] | tuple[int, str]]


@dataclass
class ChatServer:
    """An OpenAI-compatible chat-completions endpoint on 127.0.0.1 answering with ``responder``."""

    responder: Responder = field(default=lambda body: {"choices": []})
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def chat_response(
    *, content: str | None = None, tool_calls: list[tuple[str, str]] | None = None, usage: bool = True
) -> dict[str, Any]:
    """A chat-completions response; ``tool_calls`` are (name, raw JSON arguments) pairs."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": arguments}}
            for i, (name, arguments) in enumerate(tool_calls)
        ]
    response: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
    }
    if usage:
        response["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    return response
