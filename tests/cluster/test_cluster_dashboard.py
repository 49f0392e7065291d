"""The dashboard of a home with a cluster shell: listed with its backend, followed to its end, its output shown."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from supervisor import Supervisor
from supervisor.dashboard import Secrets, create_app

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.timeout(180)]


def test_the_dashboard_follows_a_cluster_shell(cluster_sup: Supervisor, work: Path,
                                               wait_for: Callable[..., Any]) -> None:
    keys = Secrets(port=8765)
    with TestClient(create_app(cluster_sup, keys), base_url="http://127.0.0.1:8765") as client:
        client.cookies.set(keys.cookie, keys.token)
        shell_id = cluster_sup.start_shell("echo from the node; sleep 1", cwd=work)

        def row(status: str) -> dict[str, Any] | None:
            rows = client.get("/api/shells").json()["rows"]
            return next((r for r in rows if r["id"] == shell_id and r["status"] == status), None)

        # Only the dashboard reads the shell here: its own refresh brings the job's end from the cluster.
        ended = wait_for(lambda: row("stopped"), timeout=120, interval=0.1,
                         what="the cluster shell's end in the table")
        assert (ended["backend"], ended["exit_code"]) == ("ray", 0)
        output = client.get(f"/api/shells/{shell_id}/output", params={"stream": "stdout"}).json()
        assert output["text"] == "from the node\n"
