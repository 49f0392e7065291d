"""Running the real `mgsup` command line as a subprocess, in a temporary state directory.

The `mgsup` fixture gives each test its own home and working directory, and at teardown kills what
is left of its shells and checks that no process carrying one of their ids remains.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from supervisor import Supervisor, lifecycle

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "configs" / "demo.yaml"
CONTRACT_KEYS = {
    "shell_id", "name", "status", "exit_code", "signal", "timed_out", "pid", "command", "cwd", "start_time",
    "end_time", "duration_seconds", "stdout_path", "stderr_path", "log_dir", "status_file", "coordination",
}
REAP_DEADLINE = 15.0


@dataclass
class Result:
    code: int
    out: str
    err: str

    def error_line(self) -> str:
        """The single error line; fails unless stderr is exactly one `mgsup: error:` line."""
        lines = self.err.splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got {self.err!r}"
        assert lines[0].startswith("mgsup: error: "), lines[0]
        return lines[0]


class Mgsup:
    """The command line bound to one temporary home and working directory."""

    def __init__(self, home: Path, work: Path) -> None:
        self.home = home
        self.work = work
        # The launcher's switch stays: the suite also runs with the launcher off.
        self.env = {k: v for k, v in os.environ.items()
                    if (not k.startswith("MGSUP_") or k == "MGSUP_LAUNCHER") and k not in ("COLUMNS", "FORCE_COLOR")}
        self.env |= {"NO_COLOR": "1", "XDG_STATE_HOME": str(home.parent / "xdg")}
        self.followers: list[subprocess.Popen[bytes]] = []

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "supervisor", "--home", str(self.home), *args]

    def run(self, *args: str, timeout: float = 60, env: dict[str, str] | None = None) -> Result:
        done = subprocess.run(self.argv(*args), cwd=self.work, env=self.env | (env or {}), capture_output=True,
                              timeout=timeout, check=False)
        return Result(done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"))

    def ok(self, *args: str, timeout: float = 60) -> str:
        """Run, expect exit 0 and nothing on stderr, return stdout."""
        result = self.run(*args, timeout=timeout)
        assert result.code == 0, result
        return result.out

    def start(self, *args: str) -> str:
        shell_id = self.ok("start", *args).strip()
        assert shell_id.startswith("shell_"), shell_id
        return shell_id

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(self.argv(*args), cwd=self.work, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.followers.append(proc)
        return proc

    def shell_dirs(self) -> list[Path]:
        return sorted((self.home / "shells").glob("*"))


def poll(condition: object, deadline: float = 10.0, what: str = "condition") -> None:
    """Wait until `condition()` is true, failing after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not condition():  # type: ignore[operator]
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def tagged_processes(shell_ids: set[str]) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("MGSUP_SHELL_ID") in shell_ids:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@pytest.fixture
def mgsup(tmp_path: Path) -> Iterator[Mgsup]:
    work = tmp_path / "work"
    work.mkdir()
    cli = Mgsup(tmp_path / "home", work)
    yield cli
    for proc in cli.followers:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    shell_ids = {d.name for d in cli.shell_dirs()}
    if not shell_ids:
        return
    sup = Supervisor(cli.home)
    for status in sup.list_shells():
        if status["status"] in lifecycle.LIVE:
            sup.kill_shell(status["shell_id"], grace=1.0)
    end = time.monotonic() + REAP_DEADLINE
    while (left := tagged_processes(shell_ids)) and time.monotonic() < end:
        time.sleep(0.05)
    assert not left, f"processes left behind: {[(p.pid, p.name()) for p in left]}"
