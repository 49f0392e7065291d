"""Faults around the monitor and the job: killed callers and monitors, stubborn and escaping jobs, big output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from supervisor import LimitReached, StateDirError, Supervisor, admission, proc

PY = sys.executable
IGNORE_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); " \
              "time.sleep(60)"


def raw_state(sup: Supervisor, shell_id: str) -> dict[str, Any]:
    return json.loads((sup.home / "shells" / shell_id / "state.json").read_text())  # type: ignore[no-any-return]


def tree(pid: int) -> list[psutil.Process]:
    """`pid` and its descendants (a child that exits while the tree is read is left out)."""
    while True:
        try:
            root = psutil.Process(pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            if not psutil.pid_exists(pid):
                return []


def tagged(shell_id: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("MGSUP_SHELL_ID") == shell_id and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            pass
    return found


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes of `processes` that still run (same pid *and* creation time, not a zombie)."""
    alive = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive



def kill_monitor(sup: Supervisor, shell_id: str, wait_for: Callable[..., Any]) -> None:
    """SIGKILL the monitor of `shell_id` and wait until it is gone; its job runs on, unsupervised."""
    monitor = psutil.Process(raw_state(sup, shell_id)["monitor_pid"])
    monitor.kill()
    wait_for(lambda: not alive([monitor]), what="the monitor to die")


@pytest.fixture
def orphaned_slot(sup_factory: Callable[..., Supervisor],
                  wait_for: Callable[..., Any]) -> tuple[Supervisor, str, str]:
    """A limit of 1 held by a shell whose monitor died, and a shell queued behind it: (sup, dead, queued)."""
    sup = sup_factory(max_concurrent=1)
    dead = sup.start_shell("sleep 60")
    queued = sup.start_shell("echo next", queue=True)
    kill_monitor(sup, dead, wait_for)
    return sup, dead, queued

@pytest.mark.timeout(30)
def test_caller_killed_right_after_start(home: Supervisor) -> None:
    script = textwrap.dedent("""
        import os, signal, sys
        from supervisor import start_shell
        sid = start_shell("echo begin; sleep 0.3; echo end; exit 7")
        print(sid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([PY, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == -signal.SIGKILL
    sid = done.stdout.strip()
    final = home.wait_shell(sid, timeout=10)
    assert (final["status"], final["exit_code"]) == ("failed", 7)
    assert home.get_shell_output(sid)["stdout"] == "begin\nend\n"


@pytest.mark.timeout(30)
def test_caller_process_group_killed_does_not_touch_the_job(home: Supervisor) -> None:
    """The monitor has its own session: a signal to the caller's group (a terminal's Ctrl-C) misses it."""
    script = textwrap.dedent("""
        import os, signal, time
        from supervisor import start_shell
        print(start_shell("sleep 0.5; echo survived"), flush=True)
        os.killpg(0, signal.SIGINT)
        time.sleep(5)
    """)
    done = subprocess.run([PY, "-c", script], capture_output=True, text=True, timeout=30, start_new_session=True)
    assert done.returncode == -signal.SIGINT or "KeyboardInterrupt" in done.stderr
    sid = done.stdout.strip()
    assert home.wait_shell(sid, timeout=10)["status"] == "stopped"
    assert home.get_shell_output(sid)["stdout"] == "survived\n"


@pytest.mark.timeout(30)
def test_monitor_killed_makes_the_shell_lost(sup_factory: Callable[..., Supervisor],
                                             wait_for: Callable[..., Any]) -> None:
    sup = sup_factory(max_concurrent=1)
    sid = sup.start_shell("sleep 60 & setsid sleep 60 & sleep 60")
    job = tree(raw_state(sup, sid)["pid"])
    kill_monitor(sup, sid, wait_for)
    status = sup.get_shell_status(sid)
    assert status["status"] == "lost"
    assert "monitor" in status["message"] and status["end_time"] is not None
    assert sup.list_shells("running") == []
    # Reads act on nothing: the record and the job are as the monitor left them.
    assert raw_state(sup, sid)["status"] == "running" and alive(job) == job
    # The next start settles the slot first: the job's processes end, `lost` is recorded, the slot is reused.
    other = sup.start_shell("true")
    assert not alive(job), "the new shell was admitted beside the lost shell's job"
    assert raw_state(sup, sid)["status"] == "lost"
    assert sup.wait_shell(other, timeout=10)["status"] == "stopped"
    assert sup.get_shell_status(sid)["status"] == "lost"


@pytest.mark.timeout(30)
def test_monitor_killed_hands_its_slot_to_the_queue(orphaned_slot: tuple[Supervisor, str, str]) -> None:
    sup, sid, queued = orphaned_slot
    assert sup.wait_shell(queued, timeout=10)["status"] == "stopped"
    assert sup.get_shell_output(queued)["stdout"] == "next\n"
    assert sup.get_shell_status(sid)["status"] == "lost"


@pytest.mark.timeout(30)
def test_limit_reached_still_starts_the_queued_shell_its_admission_freed(
        sup_factory: Callable[..., Supervisor], wait_for: Callable[..., Any]) -> None:
    sup = sup_factory(max_concurrent=1)
    sid = sup.start_shell("sleep 60")
    # Runs until killed, so the slot it is given stays taken for the rest of the test.
    queued = sup.start_shell(["sleep", "60"], queue=True)
    kill_monitor(sup, sid, wait_for)
    # This admission finds the dead monitor's slot, gives it to the queued shell, and has none left.
    with pytest.raises(LimitReached):
        sup.start_shell("true")
    assert raw_state(sup, queued)["status"] == "running", "started by the caller that admitted it"
    assert raw_state(sup, sid)["status"] == "lost"
    assert sup.kill_shell(queued)["status"] == "killed"


@pytest.mark.timeout(30)
def test_the_queue_passes_over_a_shell_removed_while_it_waited(sup_factory: Callable[..., Supervisor],
                                                              tmp_path: Path, wait_for: Callable[..., Any]) -> None:
    sup = sup_factory(max_concurrent=1)
    first = sup.start_shell("while [ ! -e go ]; do sleep 0.02; done", cwd=tmp_path)
    damaged = sup.start_shell("echo never", queue=True)
    last = sup.start_shell("echo last", queue=True)
    (sup.home / "shells" / damaged / "state.json").write_text("{half")
    assert sup.clean() == [damaged], "a damaged record reads as lost, so clean removes it"
    (tmp_path / "go").touch()
    # The first shell's monitor hands its slot on by itself, past the removed shell: no read needed.
    wait_for(lambda: raw_state(sup, last)["status"] not in ("queued", "starting"), timeout=10,
             what="the last queued shell to start")
    assert sup.wait_shell(last, timeout=10)["status"] == "stopped"
    assert sup.get_shell_status(first)["status"] == "stopped"
    assert list((sup.home / "queue").iterdir()) == []
    # The monitor frees its slot just after it records the end: poll for it.
    wait_for(lambda: list((sup.home / "running").iterdir()) == [], timeout=10, what="the slot to be freed")


@pytest.mark.timeout(30)
def test_monitor_killed_is_never_reported_running(home: Supervisor, wait_for: Callable[..., Any]) -> None:
    sid = home.start_shell("sleep 60")
    kill_monitor(home, sid, wait_for)
    # Whichever read comes first after the monitor's death reports it lost.
    assert [s["status"] for s in home.list_shells()] == ["lost"]
    assert home.get_shell_output(sid)["status"] == "lost"
    assert home.get_shell_status(sid)["status"] == "lost"
    assert home.kill_shell(sid)["message"] == "Process already terminated"


@pytest.fixture
def read_only_view(home: Supervisor, tmp_path: Path) -> Iterator[Supervisor]:
    """A Supervisor on the test's home seen through a read-only bind mount (needs the right to mount)."""
    home.store.ensure()
    view = tmp_path / "read-only-home"
    view.mkdir()
    try:
        subprocess.run(["mount", "--bind", str(home.home), str(view)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot bind-mount here (needs CAP_SYS_ADMIN)")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True, capture_output=True)
        yield Supervisor(view)
    finally:
        subprocess.run(["umount", str(view)], check=True, capture_output=True)


@pytest.mark.timeout(30)
def test_a_read_only_home_reports_lost_without_recording_it(orphaned_slot: tuple[Supervisor, str, str],
                                                             read_only_view: Supervisor) -> None:
    sup, sid, queued = orphaned_slot
    job = psutil.Process(raw_state(sup, sid)["pid"])

    assert read_only_view.get_shell_status(sid)["status"] == "lost"
    assert read_only_view.get_shell_status(queued)["status"] == "queued"
    assert [s["status"] for s in read_only_view.list_shells()] == ["lost", "queued"]
    # Settling from a view that cannot write still stops the job; the record waits for a writer.
    assert read_only_view.settle(sid)["status"] == "lost"
    assert raw_state(sup, sid)["status"] == "running", "nothing could be written"
    assert not alive([job]), "the job does not run on without its monitor"
    # The first settler that can write records the end and hands the slot on.
    assert sup.settle(sid)["status"] == "lost"
    assert raw_state(sup, sid)["status"] == "lost"
    assert sup.wait_shell(queued, timeout=10)["status"] == "stopped"


def test_kill_and_clean_in_a_read_only_home_say_so(home: Supervisor, read_only_view: Supervisor) -> None:
    running = home.start_shell("sleep 60")
    ended = home.start_shell("true")
    home.wait_shell(ended, timeout=10)
    with pytest.raises(StateDirError, match=f"cannot ask the monitor of {running} to stop: .*Read-only file system"):
        read_only_view.kill_shell(running)
    with pytest.raises(StateDirError, match=f"cannot remove {ended} from .*Read-only file system"):
        read_only_view.clean()
    assert home.get_shell_status(running)["status"] == "running"
    assert home.get_shell_status(ended)["status"] == "stopped"


@pytest.mark.timeout(30)
def test_job_ignoring_sigterm_is_killed_after_grace(home: Supervisor, wait_for: Callable[..., Any]) -> None:
    sid = home.start_shell([PY, "-c", IGNORE_TERM])
    wait_for(lambda: home.get_shell_output(sid)["stdout"] == "ready\n", what="the job to ignore SIGTERM")
    job = tree(home.get_shell_status(sid)["pid"])
    began = time.monotonic()
    result = home.kill_shell(sid, grace=0.5)
    took = time.monotonic() - began
    assert not alive(job), "kill_shell returns only when nothing of the job is left"
    assert result == {"shell_id": sid, "status": "killed", "signal": "SIGTERM"}
    assert took >= 0.5, "the grace is given before SIGKILL"
    final = home.get_shell_status(sid)
    assert (final["status"], final["exit_code"], final["signal"]) == ("killed", -signal.SIGKILL, "SIGKILL")


@pytest.mark.timeout(30)
def test_kill_leaves_no_process_of_the_tree(home: Supervisor, wait_for: Callable[..., Any], tmp_path: Path) -> None:
    """Like pueue's kill test: list every pid of the job before the kill and check each is gone after."""
    pidfile = tmp_path / "daemon.pid"
    script = textwrap.dedent(f"""
        sleep 60 &
        (sleep 60 & sleep 60) &
        sh -c 'trap "" TERM; sleep 60' &
        setsid sleep 60 &
        echo $! > {pidfile}
        {PY} -c "import os, time; os.fork() or os.setsid(); os.fork() or time.sleep(60); time.sleep(60)" &
        {PY} -c "import os; os.fork() or (os.setsid(), os.fork() or os.execvp('sleep', ['sleep', '62']))"
        wait
    """)
    sid = home.start_shell(script)
    pid = home.get_shell_status(sid)["pid"]
    # The double-forked `sleep 62` left the tree (re-parented to the monitor): found by its tag.
    escaped = wait_for(lambda: [p for p in tagged(sid) if _cmdline(p) == ["sleep", "62"] and p not in tree(pid)],
                       what="the escaped daemon")
    wait_for(lambda: len(tree(pid)) >= 10 and pidfile.exists(), what="the whole tree to start")
    job = tree(pid) + escaped
    daemon = psutil.Process(int(pidfile.read_text()))
    assert os.getsid(daemon.pid) == daemon.pid and daemon in job
    assert home.kill_shell(sid, grace=0.5)["status"] == "killed"
    assert not alive(job), [p.cmdline() for p in alive(job)]


@pytest.mark.timeout(30)
def test_setsid_daemon_ends_with_its_shell(home: Supervisor, tmp_path: Path) -> None:
    """A daemon that leaves the job's session and process group still ends when the main process exits."""
    pidfile = tmp_path / "daemon.pid"
    sid = home.start_shell(f"setsid sleep 60 & echo $! > {pidfile}; "
                           f"{PY} -c \"import os; os.fork() or (os.setsid(), os.fork() or os.execvp('sleep', "
                           f"['sleep', '61']))\"; sleep 0.2; exit 0")
    final = home.wait_shell(sid, timeout=15)
    assert final["status"] == "stopped" and final["exit_code"] == 0
    daemon_pid = int(pidfile.read_text())
    assert not psutil.pid_exists(daemon_pid) or psutil.Process(daemon_pid).status() == psutil.STATUS_ZOMBIE
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "61"]]
    assert not alive(leftovers)


@pytest.mark.timeout(30)
def test_timeout_kills_a_job_that_ignores_sigterm(home: Supervisor) -> None:
    sid = home.start_shell([PY, "-c", IGNORE_TERM], timeout=0.5)
    final = home.wait_shell(sid, timeout=20)
    assert final["status"] == "killed" and final["timed_out"] is True and final["exit_code"] == -signal.SIGKILL


def test_invalid_utf8_output_is_replaced(home: Supervisor) -> None:
    sid = home.start_shell(r"printf 'ok \377\376 done\n'; printf '\300 err\n' >&2")
    home.wait_shell(sid, timeout=10)
    out = home.get_shell_output(sid)
    assert out["stdout"] == "ok \ufffd\ufffd done\n"
    assert out["stderr"] == "\ufffd err\n"
    assert home.get_shell_output(sid, tail_lines=1)["stdout"] == "ok \ufffd\ufffd done\n"


@pytest.mark.timeout(60)
def test_100_mb_of_output(home: Supervisor) -> None:
    lines = 1024 * 1024  # lines of exactly 100 bytes: 100 MiB
    code = (f"import sys; w = sys.stdout.buffer.write\n"
            f"for k in range(0, {lines}, 1024): w(b''.join(b'%09d ' % i + b'x' * 89 + b'\\n' "
            f"for i in range(k, k + 1024)))")
    sid = home.start_shell([PY, "-c", code])
    final = home.wait_shell(sid, timeout=50)
    assert final["status"] == "stopped"
    log = Path(final["stdout_path"])
    assert log.stat().st_size == lines * 100

    def line(i: int) -> str:
        return f"{i:09d} " + "x" * 89 + "\n"

    tail = home.get_shell_output(sid, tail_lines=3)
    assert tail["stdout"] == line(lines - 3) + line(lines - 2) + line(lines - 1)
    assert tail["stdout_next_offset"] == lines * 100 and tail["stdout_truncated"]
    window = home.get_shell_output(sid, offset=500_000 * 100, max_bytes=250)
    assert window["stdout"] == line(500_000) + line(500_001) + line(500_002)[:50]
    assert window["stdout_next_offset"] == 500_000 * 100 + 250 and window["stdout_truncated"]
    rest = home.get_shell_output(sid, offset=(lines - 1) * 100)
    assert rest["stdout"] == line(lines - 1) and not rest["stdout_truncated"]
    capped = home.get_shell_output(sid, max_bytes=1000)
    assert capped["stdout"] == "".join(line(i) for i in range(10)) and capped["stdout_next_offset"] == 1000
    with log.open("rb") as f:
        for i in (0, 123_456, lines - 1):
            f.seek(i * 100)
            assert f.read(100).decode() == line(i)


@pytest.mark.timeout(30)
def test_kill_when_the_monitor_does_not_answer(home: Supervisor, monkeypatch: pytest.MonkeyPatch,
                                               wait_for: Callable[..., Any]) -> None:
    from supervisor import core

    monkeypatch.setattr(core, "KILL_ANSWER_MARGIN", 0.5)
    sid = home.start_shell("sleep 60 & sleep 60; exit 0")
    state = raw_state(home, sid)
    wait_for(lambda: len(tree(state["pid"])) >= 3, what="the job's children")
    job = tree(state["pid"])
    monitor = psutil.Process(state["monitor_pid"])
    monitor.suspend()
    assert home.kill_shell(sid, grace=0.2) == {"shell_id": sid, "status": "killed", "signal": "SIGTERM"}
    assert not alive([*job, monitor])
    final = home.get_shell_status(sid)
    assert (final["status"], final["exit_code"]) == ("killed", -9)
    assert "did not answer" in final["message"]
    assert home.list_shells("running") == []


def test_the_reaper_finds_what_a_test_leaves_behind(home: Supervisor, reaper: Any,
                                                    wait_for: Callable[..., Any]) -> None:
    """The no-process-left-behind check must be able to fail: a process tagged with a shell's id is found."""
    sid = home.start_shell("true")
    home.wait_shell(sid, timeout=10)
    # The monitor records the end, then hands its slot on and exits: on a busy machine that takes a moment.
    wait_for(lambda: reaper.leftovers() == [], what="the monitor to exit")
    stray = subprocess.Popen(["sleep", "30"], env={**os.environ, "MGSUP_SHELL_ID": sid})
    try:
        assert [p.pid for p in reaper.leftovers()] == [stray.pid]
    finally:
        stray.kill()
        stray.wait()
    assert reaper.leftovers() == []


@pytest.mark.timeout(30)
def test_a_dead_monitors_slot_is_reused_only_once_its_job_is_gone(sup_factory: Callable[..., Supervisor],
                                                                  wait_for: Callable[..., Any]) -> None:
    """The limit counts the job of a dead monitor until it is stopped, not merely until it is found dead."""
    sup = sup_factory(max_concurrent=1)
    dead = sup.start_shell([PY, "-c", IGNORE_TERM])
    wait_for(lambda: sup.get_shell_output(dead)["stdout"] == "ready\n", what="the stubborn job to be ready")
    state = raw_state(sup, dead)
    kill_monitor(sup, dead, wait_for)
    # No read in between: this admission is the first to find the monitor dead.
    probe = f"from supervisor import proc; print(proc.is_alive({state['pid']}, {state['pid_start']}))"
    after = sup.start_shell([PY, "-c", probe])
    assert sup.wait_shell(after, timeout=10)["status"] == "stopped"
    assert sup.get_shell_output(after)["stdout"] == "False\n", "the new job ran beside the dead monitor's job"
    assert sup.get_shell_status(dead)["status"] == "lost"


FAKE_MONITOR = textwrap.dedent("""
    # Starts the job as the monitor does, then dies before it records or answers anything.
    import os, sys
    home, shell_id = sys.argv[1], sys.argv[2]
    os.set_inheritable(int(sys.argv[3]), False)
    os.posix_spawn("/bin/sleep", ["sleep", "60"], {"MGSUP_SHELL_ID": shell_id}, setsid=True)
    os._exit(1)
""")


# A monitor killed during its spawn of the job leaves a child that has not run exec yet: it carries the
# monitor's environment (MGSUP_MONITOR_OF), not the job's tag.
CAUGHT_BEFORE_EXEC = textwrap.dedent("""
    import os, sys
    os.set_inheritable(int(sys.argv[3]), False)
    os.posix_spawn("/bin/sleep", ["sleep", "60"], {"MGSUP_MONITOR_OF": os.environ["MGSUP_MONITOR_OF"]}, setsid=True)
    os._exit(1)
""")


@pytest.mark.timeout(30)
def test_a_process_left_with_a_dead_monitors_environment_is_stopped(home: Supervisor, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "caught_before_exec.py"
    fake.write_text(CAUGHT_BEFORE_EXEC)
    monkeypatch.setattr("supervisor.proc.MONITOR_FILE", str(fake))
    monkeypatch.setenv("MGSUP_LAUNCHER", "0")
    sid = home.start_shell("sleep 60")
    assert home.get_shell_status(sid)["status"] == "lost"
    assert proc.monitors_of(home.layout.shell_dir(sid)) == set(), "it could still start the job"
    assert list((home.home / "running").iterdir()) == []


@pytest.fixture
def dying_monitor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Monitors started from this process start their job and die before they answer.

    Started directly: a launcher forks the real monitor code (tests/supervisor/test_launcher.py).
    """
    fake = tmp_path / "fake_monitor.py"
    fake.write_text(FAKE_MONITOR)
    monkeypatch.setattr("supervisor.proc.MONITOR_FILE", str(fake))
    monkeypatch.setenv("MGSUP_LAUNCHER", "0")


@pytest.mark.timeout(30)
def test_a_monitor_dying_before_it_answers_leaves_no_job_running(home: Supervisor, dying_monitor: None,
                                                                 wait_for: Callable[..., Any]) -> None:
    sid = home.start_shell("sleep 60")
    status = home.get_shell_status(sid)
    assert (status["status"], status["exit_code"]) == ("lost", None)
    assert "monitor" in status["message"]
    assert tagged(sid) == [], "the job started by the dead monitor runs on unsupervised"
    assert list((home.home / "running").iterdir()) == []


@pytest.mark.timeout(30)
def test_a_queued_shells_monitor_dying_before_it_answers_leaves_no_job_running(
        orphaned_slot: tuple[Supervisor, str, str], dying_monitor: None) -> None:
    sup, dead, queued = orphaned_slot
    # Settling the dead monitor's shell hands its slot on, starting the queued shell's monitor from here.
    assert sup.settle(dead)["status"] == "lost"
    status = sup.get_shell_status(queued)
    assert (status["status"], status["exit_code"]) == ("lost", None)
    assert tagged(queued) == [], "the job started by the dead monitor runs on unsupervised"
    assert list((sup.home / "running").iterdir()) == []


@pytest.mark.timeout(30)
def test_a_slot_reserved_by_a_process_that_died_is_reclaimed_at_once(sup_factory: Callable[..., Supervisor]) -> None:
    """A caller (or a monitor handing its slot on) that dies before the monitor runs does not stall the queue."""
    sup = sup_factory(max_concurrent=1)
    script = textwrap.dedent("""
        import os, signal
        from supervisor import Supervisor, launch
        launch.spawn_monitor = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
        Supervisor(max_concurrent=1).start_shell("echo never")
    """)
    done = subprocess.run([PY, "-c", script], capture_output=True, text=True, timeout=20)
    assert done.returncode == -signal.SIGKILL
    [orphan] = [s["shell_id"] for s in sup.list_shells()]
    queued = sup.start_shell("echo next", queue=True)
    # Well before the slot of a dead caller could time out (STARTUP_GRACE): it is reclaimed at once.
    assert admission.STARTUP_GRACE > 10
    assert sup.wait_shell(queued, timeout=10)["status"] == "stopped"
    status = sup.get_shell_status(orphan)
    assert status["status"] == "lost" and "died" in status["message"]
    assert sup.get_shell_output(orphan)["stdout"] == ""


@pytest.mark.timeout(30)
def test_a_monitor_arriving_after_its_shell_was_given_up_does_not_start_it(home: Supervisor) -> None:
    sid = home.start_shell("echo ran")
    assert home.wait_shell(sid, timeout=10)["status"] == "stopped"
    before = raw_state(home, sid)
    log = str(home.home / "shells" / sid / "monitor.log")
    with pytest.raises(RuntimeError, match="no longer waiting to start"):
        proc.spawn_monitor(str(home.home), sid, dict(os.environ), log)
    assert raw_state(home, sid) == before
    assert home.get_shell_output(sid)["stdout"] == "ran\n"
