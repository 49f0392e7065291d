"""The real MassGen CLI for the tests: where it is installed, a config for the fake LLM server, fixtures.

MassGen lives in its own virtual environment (scripts/install_massgen.py builds it once per machine;
.ci/run does so before the suite). The fixtures give a test a running stateless OpenAI-compatible
server on 127.0.0.1 (tests/fakes/openai_server.py) and an environment in which `massgen` is on
PATH and `OPENAI_API_KEY` is set: MassGen reads the key from the environment (an `api_key:` in the
YAML makes 0.1.97 crash).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from fakes.openai_server import OpenAIServer

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = REPO / "configs" / "massgen" / "openai_local.yaml"
QUESTION = "What is 17 * 23?"
# Starting massgen costs ~8 s (imports); a run against the fake server adds a second or two.
RUN_TIMEOUT = 120.0


def _installer() -> Any:
    spec = importlib.util.spec_from_file_location("install_massgen", REPO / "scripts" / "install_massgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def massgen_program() -> Path:
    """The installed massgen program; the test fails with what to run when it is missing."""
    installer = _installer()
    if not installer.installed():
        pytest.fail(f"the real MassGen is not installed at {installer.program()}: run "
                    "`python scripts/install_massgen.py` (once per machine; .ci/run does it)")
    return Path(installer.program())


def write_config(path: Path, base_url: str, agents: int = 2, *, workspaces: bool = False) -> Path:
    """The shipped configs/massgen/openai_local.yaml, on `base_url`, with `agents` agents; `workspaces` gives each
    a `cwd` (MassGen then starts MCP filesystem servers, node processes in their own sessions)."""
    document: dict[str, Any] = yaml.safe_load(SHIPPED_CONFIG.read_text())
    template = document["agents"][0]
    document["agents"] = []
    for i in range(agents):
        backend = {**template["backend"], "base_url": base_url, **({"cwd": f"workspace{i + 1}"} if workspaces else {})}
        document["agents"].append({**template, "id": f"agent_{chr(ord('a') + i)}", "backend": backend})
    if workspaces:
        document["orchestrator"] = {"snapshot_storage": "snapshots", "agent_temporary_workspace": "temp_workspaces"}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def massgen_env(tmp_path: Path) -> dict[str, str]:
    """Variables a massgen run needs: PATH with (only) massgen added, and a key for the fake server."""
    bin_dir = tmp_path / "massgen-bin"
    bin_dir.mkdir()
    # A link, not the venv's bin on PATH: that folder's `python` would shadow the system one.
    (bin_dir / "massgen").symlink_to(massgen_program())
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
