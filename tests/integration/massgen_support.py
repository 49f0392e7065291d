"""Fixtures for the tests of the real MassGen CLI: a fake LLM server and an environment to run massgen in.

The fixtures give a test a running stateless OpenAI-compatible server on 127.0.0.1
(tests/fakes/openai_server.py) and an environment in which `massgen` is on PATH and
`OPENAI_API_KEY` is set; tests/fakes/massgen.py finds the installation and writes its configs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from fakes import massgen
from fakes.massgen import write_config
from fakes.openai_server import OpenAIServer

__all__ = ["QUESTION", "RUN_TIMEOUT", "fake_llm", "massgen_env", "processes_under", "write_config"]
QUESTION = "What is 17 * 23?"
# Starting massgen costs ~8 s (imports); a run against the fake server adds a second or two.
RUN_TIMEOUT = 120.0


@pytest.fixture
def massgen_env(tmp_path: Path) -> dict[str, str]:
    """Variables a massgen run needs: PATH with (only) massgen added, and a key for the fake server."""
    bin_dir = tmp_path / "massgen-bin"
    bin_dir.mkdir()
    # A link, not the venv's bin on PATH: that folder's `python` would shadow the system one.
    try:
        program = massgen.program()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    (bin_dir / "massgen").symlink_to(program)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}", "OPENAI_API_KEY": "sk-fake"}


@pytest.fixture
def fake_llm() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


def processes_under(folder: Path) -> list[psutil.Process]:
    """Live processes whose command line or working directory is inside `folder` (massgen, node, npm)."""
    found = []
    for p in psutil.process_iter(["cmdline", "cwd", "status"]):
        if p.info["status"] == psutil.STATUS_ZOMBIE or p.pid == os.getpid():
            continue
        text = " ".join(p.info["cmdline"] or []) + " " + (p.info["cwd"] or "")
        if str(folder) in text:
            found.append(p)
    return found
