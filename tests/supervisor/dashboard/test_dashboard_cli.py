"""`mgsup dashboard` on the command line: its help, its errors, and the URL it prints."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from supervisor import Supervisor

pytestmark = pytest.mark.timeout(60)


def mgsup(home: Supervisor, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor", "--home", str(home.home), *args], capture_output=True,
                          text=True, timeout=30, check=False)


def test_help_names_the_options(home: Supervisor) -> None:
    done = mgsup(home, "dashboard", "--help")
    assert done.returncode == 0
    for option in ("--host", "--port", "--open", "--experiments"):
        assert option in done.stdout


def test_a_busy_port_is_one_error_line(home: Supervisor) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = mgsup(home, "dashboard", "--port", str(port))
    assert done.returncode == 1
    assert done.stderr == (f"mgsup: error: cannot listen on 127.0.0.1:{port}: Address already in use; choose "
                           "another --port (0 picks a free one)\n")
    assert done.stdout == ""


def test_a_missing_experiments_folder_is_a_usage_error(home: Supervisor, tmp_path: Path) -> None:
    done = mgsup(home, "dashboard", "--experiments", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert "does not exist" in done.stderr
    assert done.stdout == ""


def test_the_printed_url_opens_the_dashboard(served: object) -> None:
    base, token = served.base, served.token  # type: ignore[attr-defined]
    assert base.startswith("http://127.0.0.1:")
    with httpx.Client() as client:
        assert client.get(base).status_code == 401
        page = client.get(f"{base}?token={token}", follow_redirects=True)
        assert page.status_code == 200
        assert "mgsup" in page.text
