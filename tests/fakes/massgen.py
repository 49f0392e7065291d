"""The real MassGen CLI pointed at the fake server: where it is installed, and a config for it.

MassGen lives in its own virtual environment (scripts/install_massgen.py builds it once per machine;
.ci/run does so before the suite). Its configs are the shipped configs/massgen/openai_local.yaml with
the fake server's `base_url`: MassGen reads the key from `OPENAI_API_KEY` in the environment (an
`api_key:` in the YAML makes 0.1.97 crash).

>>> with OpenAIServer() as server:
...     write_config(tmp / "massgen.yaml", server.base_url)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = REPO / "configs" / "massgen" / "openai_local.yaml"


def _installer() -> Any:
    spec = importlib.util.spec_from_file_location("install_massgen", REPO / "scripts" / "install_massgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def program() -> Path:
    """The installed massgen program; FileNotFoundError saying what to run when it is missing."""
    installer = _installer()
    if not installer.installed():
        raise FileNotFoundError(f"the real MassGen is not installed at {installer.program()}: run "
                                "`python scripts/install_massgen.py` (once per machine; .ci/run does it)")
    return Path(installer.program())


def write_config(path: Path, base_url: str, agents: int = 2, *, workspaces: bool = False) -> Path:
    """The shipped config on `base_url` with `agents` agents; `workspaces` gives each a `cwd` (MassGen
    then starts MCP filesystem servers: npm and node processes in their own sessions)."""
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
