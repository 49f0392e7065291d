"""The limit and the queue, shared by every process on a home."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor import LimitReached, Supervisor


def test_limit_reached_message_and_nothing_left_on_disk(sup_factory: Callable[..., Supervisor]) -> None:
    sup = sup_factory(max_concurrent=2)
    running = [sup.start_shell("sleep 30") for _ in range(2)]
    before = sorted(p.name for p in (sup.home / "shells").iterdir())
    with pytest.raises(LimitReached, match=r"Maximum concurrent shells \(2\) reached") as info:
        sup.start_shell("echo over the limit", env={"SECRET": "x"})
    assert isinstance(info.value, RuntimeError)
    assert sorted(p.name for p in (sup.home / "shells").iterdir()) == before == sorted(running)
    assert sorted(os.listdir(sup.home / "running")) == sorted(running)
    assert os.listdir(sup.home / "queue") == []
    assert [s["shell_id"] for s in sup.list_shells()] == running


def test_limit_comes_from_the_environment(home: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGSUP_MAX_CONCURRENT", "1")
    sup = Supervisor()
    sup.start_shell("sleep 30")
    with pytest.raises(LimitReached, match=r"Maximum concurrent shells \(1\) reached"):
        sup.start_shell("sleep 30")


def test_ended_shells_free_their_slot(sup_factory: Callable[..., Supervisor], wait_for: Callable[..., Any]) -> None:
    sup = sup_factory(max_concurrent=1)
    for _ in range(3):
        sup.wait_shell(sup.start_shell("true"), timeout=10)
    # The monitor gives its slot back just after recording the end that wait_shell returns on.
    wait_for(lambda: os.listdir(sup.home / "running") == [], what="the slots to be given back")


@pytest.mark.timeout(30)
def test_queue_runs_in_order_as_slots_free(sup_factory: Callable[..., Supervisor], tmp_path: Path) -> None:
    sup = sup_factory(max_concurrent=1)
    record = tmp_path / "order.txt"
    first = sup.start_shell(f"sleep 0.3; echo first >> {record}")
    queued = [sup.start_shell(f"echo q{i} >> {record}", queue=True, name=f"q{i}") for i in range(4)]
    assert [sup.get_shell_status(sid)["status"] for sid in queued] == ["queued"] * 4
    queued_status = sup.get_shell_status(queued[0])
    assert queued_status["pid"] is None and queued_status["start_time"] is None
    assert queued_status["duration_seconds"] is None and queued_status["exit_code"] is None
    for sid in queued:
        assert sup.wait_shell(sid, timeout=10)["status"] == "stopped"
    assert sup.get_shell_status(first)["status"] == "stopped"
    assert record.read_text().split() == ["first", "q0", "q1", "q2", "q3"]
    starts = [sup.get_shell_status(sid)["start_time"] for sid in [first, *queued]]
    assert starts == sorted(starts)


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env}, check=True)


@pytest.mark.timeout(30)
def test_queue_drains_after_the_caller_exited(home: Supervisor, tmp_path: Path) -> None:
    record = tmp_path / "order.txt"
    done = _run_python(f"""
        from supervisor import Supervisor
        sup = Supervisor(max_concurrent=1)
        ids = [sup.start_shell("sleep 0.3; echo 0 >> {record}")]
        ids += [sup.start_shell("sleep 0.1; echo %d >> {record}" % i, queue=True) for i in (1, 2, 3)]
        print(" ".join(ids))
    """)
    ids = done.stdout.split()
    assert len(ids) == 4
    # The caller has exited: the monitors alone hand the slot on.
    for sid in ids[1:]:
        assert home.wait_shell(sid, timeout=10)["status"] == "stopped"
    assert record.read_text().split() == ["0", "1", "2", "3"]
    statuses = [home.get_shell_status(sid) for sid in ids]
    for earlier, later in itertools.pairwise(statuses):
        assert earlier["end_time"] <= later["start_time"], "never more than one at once"


@pytest.mark.timeout(60)
def test_processes_starting_at_the_same_instant_respect_the_limit(home: Supervisor, tmp_path: Path,
                                                                   wait_for: Callable[..., Any]) -> None:
    limit, callers, starts = 3, 4, 6
    spans = tmp_path / "spans"
    spans.mkdir()
    job = (f"{sys.executable} -c \"import time, os; s = time.time(); time.sleep(0.15); "
           f"open(os.path.join('{spans}', os.environ['MGSUP_SHELL_ID']), 'w').write(f'{{s}} {{time.time()}}')\"")
    go = time.time() + 1.0
    script = f"""
        import time
        from supervisor import Supervisor
        sup = Supervisor(max_concurrent={limit})
        time.sleep(max(0.0, {go} - time.time()))
        print(" ".join(sup.start_shell({job!r}, queue=True) for _ in range({starts})))
    """
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True)
             for _ in range(callers)]
    ids = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        ids += out.split()
    assert len(set(ids)) == callers * starts
    finals = [home.wait_shell(sid, timeout=40) for sid in ids]
    assert all(f["status"] == "stopped" for f in finals), [f["status"] for f in finals]
    intervals = [tuple(map(float, (spans / sid).read_text().split())) for sid in ids]
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    overlap = peak = 0
    for _, step in events:
        overlap += step
        peak = max(peak, overlap)
    assert peak <= limit
    assert peak == limit, "the limit is also used: shells ran side by side"
    assert os.listdir(home.home / "queue") == []
    wait_for(lambda: os.listdir(home.home / "running") == [], what="the slots to be given back")


@pytest.mark.timeout(30)
def test_the_limit_is_shared_across_processes(home: Supervisor) -> None:
    _run_python("""
        from supervisor import Supervisor
        Supervisor(max_concurrent=1).start_shell("sleep 30")
    """)
    with pytest.raises(LimitReached):
        Supervisor(home.home, max_concurrent=1).start_shell("true")
    done = subprocess.run([sys.executable, "-c", "from supervisor import start_shell; start_shell('true')"],
                          capture_output=True, text=True, env={**os.environ, "MGSUP_MAX_CONCURRENT": "1"},
                          timeout=30)
    assert done.returncode != 0 and "Maximum concurrent shells (1) reached" in done.stderr


def test_queued_env_file_is_owner_only_and_deleted_on_start(sup_factory: Callable[..., Supervisor],
                                                            wait_for: Callable[..., Any]) -> None:
    sup = sup_factory(max_concurrent=1)
    secret = f"queued-secret-{os.getpid()}-{time.monotonic_ns()}"
    blocker = sup.start_shell("sleep 30")
    sid = sup.start_shell('test "$TOKEN" = "$EXPECTED" && echo match', env={"TOKEN": secret, "EXPECTED": secret},
                          queue=True)
    env_file = sup.home / "shells" / sid / "env.json"
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert json.loads(env_file.read_text())["TOKEN"] == secret
    spec = json.loads((sup.home / "shells" / sid / "spec.json").read_text())
    assert spec["env_names"] == ["EXPECTED", "TOKEN"] and secret not in json.dumps(spec)
    sup.kill_shell(blocker, grace=1)
    assert sup.wait_shell(sid, timeout=10)["status"] == "stopped"
    assert sup.get_shell_output(sid)["stdout"] == "match\n"
    assert not env_file.exists()
    assert not _files_containing(sup.home, secret)


def test_queued_env_file_is_deleted_when_removed_from_queue(sup_factory: Callable[..., Supervisor]) -> None:
    sup = sup_factory(max_concurrent=1)
    secret = f"removed-secret-{time.monotonic_ns()}"
    sup.start_shell("sleep 30")
    sid = sup.start_shell("true", env={"TOKEN": secret}, queue=True)
    assert (sup.home / "shells" / sid / "env.json").exists()
    assert sup.kill_shell(sid)["message"] == "Removed from queue"
    assert not (sup.home / "shells" / sid / "env.json").exists()
    assert not _files_containing(sup.home, secret)


def test_env_of_an_immediate_shell_never_touches_disk(home: Supervisor) -> None:
    secret = f"immediate-secret-{time.monotonic_ns()}"
    sid = home.start_shell('test "$TOKEN" = "$EXPECTED" && sleep 0.3 && echo match',
                           env={"TOKEN": secret, "EXPECTED": secret})
    assert home.get_shell_status(sid)["status"] == "running"
    assert not _files_containing(home.home, secret)
    assert not (home.home / "shells" / sid / "env.json").exists()
    home.wait_shell(sid, timeout=10)
    assert home.get_shell_output(sid)["stdout"] == "match\n"
    assert not _files_containing(home.home, secret)


def _files_containing(root: Path, text: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]
