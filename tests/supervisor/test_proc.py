"""Process identity, trees, tags and the stop protocol, on real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from supervisor import proc


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", "30"])
    yield p
    p.kill()
    p.wait()


def test_start_ticks_matches_psutil(child: subprocess.Popen[bytes]) -> None:
    ticks = proc.start_ticks(child.pid)
    assert ticks is not None
    assert proc.is_alive(child.pid, ticks)
    boot = psutil.boot_time()
    hz = os.sysconf("SC_CLK_TCK")
    assert abs(boot + ticks / hz - psutil.Process(child.pid).create_time()) < 1.0


def test_recycled_pid_is_not_alive(child: subprocess.Popen[bytes]) -> None:
    """The same pid with other start ticks is another process: never alive, never signalled."""
    ticks = proc.start_ticks(child.pid)
    assert ticks is not None
    assert not proc.is_alive(child.pid, ticks + 1)
    assert not proc.is_alive(child.pid, ticks - 1)
    assert not proc.is_alive(child.pid, None)
    assert not proc.is_alive(None, ticks)
    assert not proc.is_alive(0, ticks)


def test_dead_and_zombie_processes_are_not_alive() -> None:
    p = subprocess.Popen(["true"])
    ticks = proc.start_ticks(p.pid)
    deadline = time.monotonic() + 10
    while psutil.Process(p.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not proc.is_alive(p.pid, ticks)
    p.wait()
    assert proc.start_ticks(p.pid) is None


def test_descendants_and_tagged(wait_for: Callable[..., Any]) -> None:
    tag = "shell_0badcafe"
    env = {**os.environ, proc.SHELL_ID_VAR: tag}
    p = subprocess.Popen(["/bin/sh", "-c", "sleep 30 & setsid sleep 30 & wait"], env=env)
    try:
        found = wait_for(lambda: len(proc.descendants(p.pid)) == 2 and proc.descendants(p.pid))
        assert found == {c.pid for c in psutil.Process(p.pid).children(recursive=True)}
        assert proc.tagged(tag) == found | {p.pid}
        assert proc.tagged("shell_00000000") == set()
    finally:
        proc.stop(lambda: proc.tagged(tag), signal.SIGKILL, 0, time.sleep)
        p.wait()
    assert proc.tagged(tag) == set()


@pytest.mark.timeout(30)
def test_a_program_is_found_by_its_tag_before_execve_has_placed_its_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A lookup waits for the environment of a program that execve is still setting up.

    posix_spawn returns once the child has its new address space; until execve has placed the
    program's environment there, /proc shows it empty (and env_end 0 in stat). A monitor that dies
    right after spawning its job leaves its settler just that to find. A process cannot be held in
    that moment on demand, so a real tagged process is shown as the kernel shows it then, for its
    first three looks.
    """
    tag = "shell_0e8ecbad"
    p = subprocess.Popen(["sleep", "60"], env={**os.environ, proc.SHELL_ID_VAR: tag}, start_new_session=True)
    read = proc._read
    empty_looks = []

    def in_execve(pid: int, name: str) -> bytes:
        data = read(pid, name)
        if pid != p.pid or len(empty_looks) == 3:
            return data
        if name == "environ":
            empty_looks.append(pid)
            return b""
        head, fields = data[: data.rindex(b")") + 2], data[data.rindex(b")") + 2 :].split()
        fields[48] = b"0"  # env_end
        return head + b" ".join(fields) + b"\n"

    monkeypatch.setattr(proc, "_read", in_execve)
    try:
        assert proc.job_processes(tag, None, None) == {p.pid}
        assert len(empty_looks) == 3
    finally:
        p.kill()
        p.wait()


def test_stop_escalates_to_sigkill_after_grace() -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); " \
           "time.sleep(60)"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert p.stdout is not None and p.stdout.readline() == b"ready\n"
    ticks = proc.start_ticks(p.pid)

    def find() -> set[int]:
        return {p.pid} if p.poll() is None else set()

    began = time.monotonic()
    proc.stop(find, signal.SIGTERM, 0.3, time.sleep)
    assert time.monotonic() - began >= 0.3
    assert p.returncode == -signal.SIGKILL
    assert not proc.is_alive(p.pid, ticks)
    p.stdout.close()


def test_send_ignores_vanished_processes() -> None:
    p = subprocess.Popen(["true"])
    p.wait()
    proc.send([p.pid, 2**22 + 12345], signal.SIGTERM)
