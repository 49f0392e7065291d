"""The launcher: monitors forked from a per-home process, and what must hold whatever becomes of it.

Each test turns the launcher on (or runs in both modes) whatever $MGSUP_LAUNCHER says, since the
suite also runs with it off.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor import Supervisor, launch, proc

PY = sys.executable
NOBODY = 65534
PRINT_ENV = [PY, "-c", "import os; print(os.environ.get('MGSUP_TEST_VALUE', 'missing'))"]


@pytest.fixture
def launcher_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(launch.ENABLE_VAR, "1")


@pytest.fixture(params=["1", "0"], ids=["launcher", "direct"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(launch.ENABLE_VAR, request.param)
    return str(request.param)


def launcher_of(home: Path) -> int:
    pid = launch.launcher_pid(str(home))
    assert pid is not None, f"no launcher answers on {home}"
    return pid


def started_launcher(sup: Supervisor, wait_for: Callable[..., Any]) -> int:
    """Start a shell (which starts the home's launcher) and return the launcher's pid once it answers."""
    sup.wait_shell(sup.start_shell(["true"]), timeout=30)
    return int(wait_for(lambda: launch.launcher_pid(str(sup.home)), timeout=20, what="the launcher"))


def monitor_of(sup: Supervisor, shell_id: str) -> psutil.Process:
    pid = sup.store.state(shell_id).monitor_pid
    assert pid is not None
    return psutil.Process(pid)


def forked(monitor: psutil.Process) -> bool:
    """A monitor forked by a launcher shows only its MONITOR_VAR; one started directly, its caller's environment."""
    return set(monitor.environ()) == {proc.MONITOR_VAR}


def job_output(sup: Supervisor, command: list[str] | str) -> str:
    shell_id = sup.start_shell(command)
    assert sup.wait_shell(shell_id, timeout=30)["status"] == "stopped"
    return str(sup.get_shell_output(shell_id)["stdout"])


# -- how starts go through it ----------------------------------------------------------------------


def test_a_launcher_forks_monitors_that_look_like_monitors(home: Supervisor, launcher_on: None,
                                                            wait_for: Callable[..., Any]) -> None:
    launcher = started_launcher(home, wait_for)
    shell_id = home.start_shell(["sleep", "60"])
    monitor = monitor_of(home, shell_id)
    assert forked(monitor)
    assert monitor.cmdline()[:len(proc.monitor_argv(str(home.home), shell_id, 0)) - 1] == \
        proc.monitor_argv(str(home.home), shell_id, 0)[:-1]
    assert monitor.ppid() != launcher and os.getsid(monitor.pid) == monitor.pid, "in its own session, not a child"
    assert proc.monitors_of(str(home.home / "shells" / shell_id)) == {monitor.pid}
    assert psutil.Process(launcher).uids().real == os.geteuid(), "the launcher runs as its owner"
    assert psutil.Process(launcher).cwd() == "/", "it holds no directory of its caller's"
    for name in (launch.SOCKET, launch.LOCK):
        assert stat.S_IMODE((home.home / name).stat().st_mode) == 0o600, name


def test_a_spare_becomes_the_next_monitor_and_losing_it_costs_nothing(home: Supervisor, launcher_on: None,
                                                                      wait_for: Callable[..., Any]) -> None:
    launcher = started_launcher(home, wait_for)
    [spare] = wait_for(lambda: _one(_spares(home.home, launcher)), what="the spare")
    assert spare.ppid() != launcher and os.getsid(spare.pid) == spare.pid, "detached like a monitor"
    shell_id = home.start_shell(["sleep", "60"])
    assert monitor_of(home, shell_id).pid == spare.pid
    [next_spare] = wait_for(lambda: _one(_spares(home.home, launcher)), what="the next spare")
    next_spare.kill()
    wait_for(lambda: not _spares(home.home, launcher), what="the spare to die")
    shell_id = home.start_shell(["sleep", "60"])
    assert home.get_shell_status(shell_id)["status"] == "running" and forked(monitor_of(home, shell_id))
    # When the launcher goes, so does its spare: it has nothing to wait for.
    wait_for(lambda: _spares(home.home, launcher), what="a spare again")
    launch.stop(str(home.home))
    wait_for(lambda: not _spares(home.home, launcher), what="the spare to exit with the launcher")


def test_two_homes_have_two_launchers_each_serving_its_own(tmp_path: Path, reaper: Any, launcher_on: None,
                                                           wait_for: Callable[..., Any]) -> None:
    first, second = Supervisor(tmp_path / "a"), Supervisor(tmp_path / "b")
    for sup in (first, second):
        reaper.track(sup.home)
    pids = {started_launcher(sup, wait_for) for sup in (first, second)}
    assert len(pids) == 2
    for pid, sup in zip(sorted(pids, key=lambda p: str(psutil.Process(p).cmdline())), (first, second), strict=True):
        assert str(sup.home) in psutil.Process(pid).cmdline()
    # Asked to start a shell of the other home, a launcher refuses (and the caller starts it directly).
    queued = Supervisor(second.home, max_concurrent=1)
    blocker = queued.start_shell(["sleep", "60"])
    waiting = queued.start_shell(["sleep", "60"], queue=True)
    reply = _ask_raw(first.home, {"home": str(second.home), "shell_id": waiting, "env": {}, "log": "/dev/null",
                                  "context": launch.context()})
    assert reply.startswith(b"refused this launcher serves ") and reply.endswith(b" only\n"), reply
    assert queued.get_shell_status(waiting)["status"] == "queued"
    queued.kill_shell(blocker)


def test_the_launcher_is_started_once_and_exits_when_idle(home: Supervisor, launcher_on: None,
                                                           wait_for: Callable[..., Any]) -> None:
    home.store.ensure()
    starter = launch.start(str(home.home), idle=0.5)
    assert starter is not None
    os.waitpid(starter, 0)
    pid = wait_for(lambda: launch.launcher_pid(str(home.home)), timeout=20, what="the launcher")
    assert launch.start(str(home.home)) is None, "a second launcher is not even started while one holds the lock"
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
             timeout=20, what="the idle launcher to exit")
    assert not (home.home / launch.SOCKET).exists(), "it removes its socket"
    # The next start finds none, starts the job directly and a launcher for the start after it.
    shell_id = home.start_shell(["sleep", "60"])
    assert not forked(monitor_of(home, shell_id))
    wait_for(lambda: launch.launcher_pid(str(home.home)), timeout=20, what="a new launcher")
    assert forked(monitor_of(home, home.start_shell(["sleep", "60"])))


def test_turned_off_no_launcher_is_started(home: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(launch.ENABLE_VAR, "0")
    ids = [home.start_shell(["sleep", "60"]) for _ in range(3)]
    assert not any(forked(monitor_of(home, shell_id)) for shell_id in ids)
    assert not (home.home / launch.SOCKET).exists() and launch.launcher_pid(str(home.home)) is None


# -- invariants ------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_killing_launchers_during_a_burst_leaves_every_start_whole(home: Supervisor, launcher_on: None,
                                                                   wait_for: Callable[..., Any]) -> None:
    sup = Supervisor(home.home, max_concurrent=100)
    started_launcher(sup, wait_for)
    before = [sup.start_shell(["sleep", "60"]) for _ in range(3)]
    done = threading.Event()
    kills: list[int] = []

    def killer() -> None:
        # Every launcher that shows up during the burst is SIGKILLed, whatever it is doing.
        while not done.is_set():
            pid = _lock_holder(home.home / launch.LOCK)
            if pid is not None:
                try:
                    psutil.Process(pid).kill()
                    kills.append(pid)
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.02)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(lambda _: sup.start_shell(["sleep", "60"]), range(24)))
    finally:
        done.set()
        thread.join()
    assert kills, "no launcher was killed during the burst"
    statuses = {s["shell_id"]: s for s in sup.list_shells()}
    assert len(ids) == 24 and {s for s, v in statuses.items() if v["status"] != "stopped"} == {*before, *ids}
    for shell_id in [*before, *ids]:
        assert statuses[shell_id]["status"] == "running", statuses[shell_id]
        assert monitor_of(sup, shell_id).is_running() and psutil.pid_exists(statuses[shell_id]["pid"])
    assert not [p.name for p in (home.home / "shells").iterdir() if p.name.startswith(".")], "a half-made record"
    assert sorted(p.name for p in (home.home / "running").iterdir()) == sorted([*before, *ids])


def test_killing_the_launcher_leaves_running_shells_running(home: Supervisor, launcher_on: None,
                                                            wait_for: Callable[..., Any]) -> None:
    launcher = started_launcher(home, wait_for)
    ids = [home.start_shell(["sleep", "60"]) for _ in range(3)]
    monitors = [monitor_of(home, shell_id) for shell_id in ids]
    assert all(forked(m) for m in monitors)
    os.killpg(os.getpgid(launcher), signal.SIGKILL)  # its whole process group, too
    wait_for(lambda: not psutil.pid_exists(launcher) or psutil.Process(launcher).status() == psutil.STATUS_ZOMBIE,
             what="the launcher to die")
    assert all(m.is_running() for m in monitors)
    assert [home.get_shell_status(shell_id)["status"] for shell_id in ids] == ["running"] * 3
    assert home.kill_shell(ids[0])["status"] == "killed"
    assert home.wait_shell(home.start_shell(["true"]), timeout=30)["status"] == "stopped"


@pytest.mark.timeout(60)
def test_a_hung_launcher_is_replaced_and_never_blocks_admission(home: Supervisor, launcher_on: None,
                                                                wait_for: Callable[..., Any]) -> None:
    launcher = started_launcher(home, wait_for)
    os.kill(launcher, signal.SIGSTOP)
    try:
        with open(home.home / "admission.lock", "rb") as lock:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the launcher held it
            fcntl.flock(lock, fcntl.LOCK_UN)
        began = time.monotonic()
        shell_id = home.start_shell(["sleep", "60"])
        assert time.monotonic() - began >= launch.ANSWER_SECONDS * 0.9, "it waited for the launcher first"
        assert home.get_shell_status(shell_id)["status"] == "running"
        assert not forked(monitor_of(home, shell_id)), "started directly"
        wait_for(lambda: not psutil.pid_exists(launcher) or psutil.Process(launcher).status() == psutil.STATUS_ZOMBIE,
                 what="the hung launcher to be killed")
    finally:
        if psutil.pid_exists(launcher):
            os.kill(launcher, signal.SIGCONT)
    # The next start starts a new launcher; the one after uses it.
    home.start_shell(["true"])
    wait_for(lambda: launch.launcher_pid(str(home.home)) not in (None, launcher), timeout=20, what="a new launcher")
    assert forked(monitor_of(home, home.start_shell(["sleep", "60"])))


def test_the_launcher_never_takes_the_admission_lock(home: Supervisor, launcher_on: None,
                                                     wait_for: Callable[..., Any]) -> None:
    sup = Supervisor(home.home, max_concurrent=4)
    launcher = started_launcher(sup, wait_for)
    lock_inode = os.stat(home.home / "admission.lock").st_ino
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for line in Path("/proc/locks").read_text().splitlines():
                fields = line.replace("->", "").split()  # "N: [->] FLOCK ADVISORY WRITE PID MAJ:MIN:INODE ..."
                if fields[4] == str(launcher) and fields[5].endswith(f":{lock_inode}"):
                    seen.append(line)
            for fd in Path(f"/proc/{launcher}/fd").iterdir():
                try:
                    if os.readlink(fd) == str(home.home / "admission.lock"):
                        seen.append(f"fd {fd.name}")
                except OSError:
                    continue
            time.sleep(0.005)

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        # Queued shells are handed on by monitors, which use the launcher too.
        ids = [sup.start_shell(["sleep", "0.05"], queue=True) for _ in range(16)]
        assert {sup.wait_shell(shell_id, timeout=60)["status"] for shell_id in ids} == {"stopped"}
    finally:
        done.set()
        thread.join()
    assert launch.launcher_pid(str(home.home)) == launcher, "the same launcher served the whole run"
    assert seen == []


@pytest.mark.parametrize("change", ["variable", "PATH", "umask", "rlimit", "oom_score_adj"])
def test_a_callers_change_is_seen_by_the_next_job(home: Supervisor, mode: str, change: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """No stale process setting from the launcher: each job starts with what its caller has now."""
    if change == "variable":
        monkeypatch.setenv("MGSUP_TEST_VALUE", "one")
        assert job_output(home, PRINT_ENV) == "one\n"
        monkeypatch.setenv("MGSUP_TEST_VALUE", "two")
        assert job_output(home, PRINT_ENV) == "two\n"
        monkeypatch.delenv("MGSUP_TEST_VALUE")
        assert job_output(home, PRINT_ENV) == "missing\n"
    elif change == "PATH":
        for version in ("v1", "v2"):
            folder = tmp_path / version
            folder.mkdir()
            tool = folder / "mgsup-test-tool"
            tool.write_text(f"#!/bin/sh\necho {version}\n")
            tool.chmod(0o755)
            monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
            assert job_output(home, ["mgsup-test-tool"]) == f"{version}\n"
    elif change == "umask":
        for mask in (0o027, 0o002):
            old = os.umask(mask)
            try:
                assert job_output(home, "umask") == f"{mask:04o}\n"
            finally:
                os.umask(old)
    elif change == "oom_score_adj":
        adj = Path("/proc/self/oom_score_adj")
        old = int(adj.read_text())
        try:
            for value in (min(old + 100, 1000), min(old + 200, 1000)):  # raising needs no privilege
                adj.write_text(str(value))
                assert job_output(home, "cat /proc/self/oom_score_adj") == f"{value}\n"
        finally:
            with contextlib.suppress(OSError):  # lowering it again may need a privilege
                adj.write_text(str(old))
    else:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        for limit in (min(soft, 200), min(soft, 100)):
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
            try:
                assert job_output(home, "ulimit -n") == f"{limit}\n"
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_caller_the_launcher_cannot_stand_for_is_started_directly(home: Supervisor, launcher_on: None,
                                                                    wait_for: Callable[..., Any]) -> None:
    """A caller without the right to gain privileges (no_new_privs) is not served by a launcher that has it."""
    launcher = started_launcher(home, wait_for)
    script = textwrap.dedent("""
        import ctypes, sys
        from supervisor import Supervisor
        assert ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
        print(Supervisor(sys.argv[1]).start_shell(["sleep", "60"]))
    """)
    done = subprocess.run([PY, "-c", script, str(home.home)], capture_output=True, text=True, timeout=60,
                          check=True)
    shell_id = done.stdout.strip()
    assert home.get_shell_status(shell_id)["status"] == "running"
    assert not forked(monitor_of(home, shell_id))
    assert launch.launcher_pid(str(home.home)) == launcher, "a refusal is no reason to replace the launcher"


# -- its owner, and only its owner -----------------------------------------------------------------


@pytest.fixture
def open_home(reaper: Any, launcher_on: None) -> Iterator[Supervisor]:
    """A home others may pass through (mode 0711, outside the test's private tmp_path), for a second user."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to act as a second user")
    path = Path(tempfile.mkdtemp(prefix="mgsup-owner-"))
    path.chmod(0o711)
    reaper.track(path)
    try:
        yield Supervisor(path)
    finally:
        for shell in Supervisor(path).list_shells():
            if shell["status"] in ("queued", "running"):
                Supervisor(path).kill_shell(shell["shell_id"], grace=1.0)
        launch.stop(str(path))
        shutil.rmtree(path, ignore_errors=True)


def test_the_launcher_answers_only_its_owner(open_home: Supervisor, wait_for: Callable[..., Any]) -> None:
    sup = Supervisor(open_home.home, max_concurrent=1)
    started_launcher(sup, wait_for)
    blocker = sup.start_shell(["sleep", "60"])
    waiting = sup.start_shell(["sh", "-c", "touch ran; sleep 60"], queue=True, cwd=str(open_home.home))
    # Even with its socket open to everyone, another user is refused before anything starts.
    (open_home.home / launch.SOCKET).chmod(0o666)
    request = {"home": str(open_home.home), "shell_id": waiting, "env": dict(os.environ),
               "log": str(open_home.home / "shells" / waiting / "monitor.log")}
    reply = _as_nobody(lambda: _ask_raw(open_home.home, {**request, "context": launch.context()}))
    assert reply == b"refused this launcher serves its owner only\n"
    assert sup.get_shell_status(waiting)["status"] == "queued"
    assert not (open_home.home / "ran").exists()
    # The refused request left the queued shell whole: it starts when the slot frees.
    sup.kill_shell(blocker)
    wait_for(lambda: (open_home.home / "ran").exists(), timeout=30, what="the queued shell to run")


def test_a_launcher_of_another_user_is_never_used(home: Supervisor, launcher_on: None) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to act as a second user")
    home.store.ensure()
    if len(str(home.home / launch.SOCKET)) >= 100:
        pytest.skip("the home's path is too long to bind a socket in it directly")
    impostor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    impostor.bind(str(home.home / launch.SOCKET))
    heard_r, heard_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the impostor, in a child that became another user
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            impostor.listen(8)
            os.write(heard_w, b"listening.")
            impostor.settimeout(30)
            conn, _ = impostor.accept()
            conn.settimeout(10)
            os.write(heard_w, b"heard:" + conn.recv(4096))
        finally:
            os._exit(0)
    os.close(heard_w)
    try:
        assert os.read(heard_r, len(b"listening.")) == b"listening."
        shell_id = home.start_shell(["sleep", "60"])
        assert home.get_shell_status(shell_id)["status"] == "running"
        assert not forked(monitor_of(home, shell_id)), "started directly"
        assert os.read(heard_r, 4096) == b"heard:", "the caller sent nothing to a launcher not its own"
    finally:
        os.close(heard_r)
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        impostor.close()


# -- helpers ---------------------------------------------------------------------------------------


def _one(found: list[psutil.Process]) -> list[psutil.Process]:
    """`found` when it is one process (the spare's short-lived parent may show for a moment too), else empty."""
    return found if len(found) == 1 else []


def _spares(home: Path, launcher: int) -> list[psutil.Process]:
    """The processes that still show the launcher's command line but are not the launcher: its spare."""
    found = []
    for p in psutil.process_iter():
        try:
            cmdline = p.cmdline()
            if (p.pid != launcher and launch.LAUNCHER_FILE in cmdline and str(home) in cmdline
                    and p.status() != psutil.STATUS_ZOMBIE):
                found.append(p)
        except psutil.Error:
            continue
    return found


def _lock_holder(lock: Path) -> int | None:
    """The pid of the launcher holding `lock` (its spare and its monitors close the lock after forking)."""
    try:
        inode = lock.stat().st_ino
    except FileNotFoundError:
        return None
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.replace("->", "").split()  # "N: [->] FLOCK ADVISORY WRITE PID MAJ:MIN:INODE ..."
        if fields[1] == "FLOCK" and fields[5].endswith(f":{inode}") and "->" not in line:
            return int(fields[4])
    return None


def _ask_raw(home: Path, request: dict[str, Any]) -> bytes:
    """Send one request to the launcher of `home` and return all it answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(home / launch.SOCKET))
        sock.sendall(json.dumps(request).encode() + b"\n")
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
        return b"".join(chunks)


def _as_nobody(action: Callable[[], bytes]) -> bytes:
    """What `action` returns when run in a child process that became the user `nobody`."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, action())
        except BaseException as exc:
            os.write(write_end, f"failed: {exc!r}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as answer:
            return answer.read()
    finally:
        os.waitpid(child, 0)
