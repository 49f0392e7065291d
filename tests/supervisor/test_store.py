"""Records on disk: files of earlier versions load, damaged ones never break a listing, odd homes fail clearly."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor import ShellNotFound, StateDirError, Supervisor
from supervisor.models import Spec, State

DATA = Path(__file__).parent.parent / "data"


def copy_home(name: str, tmp_path: Path) -> Supervisor:
    home = tmp_path / name
    shutil.copytree(DATA / name, home)
    return Supervisor(home)


def test_v0_1_records_load(tmp_path: Path) -> None:
    sup = copy_home("home-v0.1", tmp_path)
    shells = {s["shell_id"]: s for s in sup.list_shells()}
    assert list(shells) == ["shell_0000bbbb", "shell_0000aaaa", "shell_58929711", "shell_7f0bd242",
                            "shell_8474d5a1", "shell_0000cccc"], "oldest first"
    ok, failed, timed_out = shells["shell_58929711"], shells["shell_7f0bd242"], shells["shell_8474d5a1"]
    assert (ok["status"], ok["exit_code"], ok["name"], ok["command"]) == ("stopped", 0, "ok", "echo hello")
    assert (failed["status"], failed["exit_code"], failed["command"]) == \
        ("failed", 3, ["sh", "-c", "echo oops >&2; exit 3"])
    assert (timed_out["status"], timed_out["timed_out"], timed_out["exit_code"], timed_out["signal"]) == \
        ("killed", True, -15, "SIGTERM")
    assert ok["duration_seconds"] == pytest.approx(0.007, abs=0.001)
    assert ok["start_time"].startswith("2026-11-25T")
    assert sup.get_shell_output("shell_58929711")["stdout"] == "hello\n"
    assert sup.get_shell_output("shell_7f0bd242")["stderr"] == "oops\n"
    minimal = shells["shell_0000bbbb"]
    assert (minimal["status"], minimal["duration_seconds"], minimal["name"]) == ("stopped", 1.25, None)
    assert sup.get_shell_output("shell_0000bbbb")["stdout"] == ""
    # Queued, but its queue entry is gone (no process will ever start it).
    assert shells["shell_0000cccc"]["status"] == "lost" and shells["shell_0000cccc"]["pid"] is None


def test_running_record_with_a_recycled_monitor_pid_is_lost(tmp_path: Path) -> None:
    """The record names pid 1 with other start ticks: that is not our monitor, and pid 1 is not signalled."""
    sup = copy_home("home-v0.1", tmp_path)
    status = sup.get_shell_status("shell_0000aaaa")
    assert status["status"] == "lost" and "monitor" in status["message"]
    assert sup.kill_shell("shell_0000aaaa")["message"] == "Process already terminated"
    assert sup.wait_shell("shell_0000aaaa", timeout=5)["status"] == "lost"
    assert Path("/proc/1").exists()


def test_model_defaults_fill_fields_older_records_lack() -> None:
    spec = Spec.model_validate_json((DATA / "home-v0.1/shells/shell_0000bbbb/spec.json").read_bytes())
    assert (spec.name, spec.env_names, spec.max_concurrent, spec.timeout) == (None, [], 10, None)
    state = State.model_validate_json((DATA / "home-v0.1/shells/shell_0000bbbb/state.json").read_bytes())
    assert (state.timed_out, state.rusage, state.pid) == (False, None, None)


def test_damaged_records_never_break_a_listing(tmp_path: Path) -> None:
    sup = copy_home("home-corrupt", tmp_path)
    shells = {s["shell_id"]: s for s in sup.list_shells()}
    assert set(shells) == {f"shell_c000000{i}" for i in range(1, 8)} | {"shell_c00000ff"}
    assert shells["shell_c00000ff"]["status"] == "stopped"
    problems = {
        "shell_c0000001": "state.json is damaged", "shell_c0000002": "state.json is missing",
        "shell_c0000003": "spec.json is missing", "shell_c0000004": "state.json is damaged",
        "shell_c0000005": "state.json is damaged", "shell_c0000006": "spec.json is damaged",
        "shell_c0000007": "state.json is damaged",
    }
    for sid, problem in problems.items():
        assert shells[sid]["status"] == "lost", sid
        assert problem in shells[sid]["message"], (sid, shells[sid]["message"])
        assert sup.get_shell_status(sid)["status"] == "lost"
        assert sup.get_shell_output(sid)["status"] == "lost"
    assert [s["shell_id"] for s in sup.list_shells("stopped")] == ["shell_c00000ff"]
    with pytest.raises(ShellNotFound):
        sup.get_shell_status("notes")


def test_damaged_records_can_be_killed_waited_and_cleaned(tmp_path: Path) -> None:
    sup = copy_home("home-corrupt", tmp_path)
    assert sup.kill_shell("shell_c0000001")["message"] == "Process already terminated"
    assert sup.wait_shell("shell_c0000001", timeout=5)["status"] == "lost"
    removed = sup.clean()
    assert len(removed) == 8
    assert sorted(os.listdir(sup.home / "shells")) == [".shell_c0000009.tmp", "notes"]


def test_home_is_created_owner_only(home: Supervisor) -> None:
    assert not home.home.exists(), "nothing is written before the first start"
    home.wait_shell(home.start_shell("true"), timeout=10)
    assert home.home.stat().st_mode & 0o777 == 0o700
    assert (home.home / "shells").stat().st_mode & 0o777 == 0o700


def test_home_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    sup = Supervisor(blocker / "home")
    with pytest.raises(StateDirError, match=f"cannot create the state directory {blocker}/home") as info:
        sup.start_shell("true")
    assert isinstance(info.value, OSError) and info.value.exit_code == 5
    with pytest.raises(StateDirError, match=f"cannot read the state directory {blocker}/home: Not a directory"):
        sup.list_shells()
    with pytest.raises(StateDirError, match="Not a directory"):
        sup.get_shell_status("shell_00000000")


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Path]:
    """A directory that even root cannot write into (chattr +i)."""
    path = tmp_path / "frozen"
    path.mkdir()
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    yield path
    subprocess.run(["chattr", "-i", str(path)], check=True)


def test_home_that_cannot_be_created_in(immutable: Path) -> None:
    sup = Supervisor(immutable / "home")
    with pytest.raises(StateDirError, match=r"cannot create the state directory .*Operation not permitted"):
        sup.start_shell("true")
    assert not (immutable / "home").exists()


def test_home_that_is_not_writable(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "home")
    sup.wait_shell(sup.start_shell("true"), timeout=10)
    shells = tmp_path / "home" / "shells"
    subprocess.run(["chattr", "+i", str(shells)], check=True)
    try:
        fresh = Supervisor(tmp_path / "home")
        with pytest.raises(StateDirError, match=r"the state directory .* is not writable"):
            fresh.start_shell("echo never")
        assert len(fresh.list_shells()) == 1, "reading still works"
        assert len(os.listdir(shells)) == 1
        assert os.listdir(tmp_path / "home" / "running") == []
    finally:
        subprocess.run(["chattr", "-i", str(shells)], check=True)


def test_unknown_ids_are_not_paths(home: Supervisor) -> None:
    home.wait_shell(home.start_shell("true"), timeout=10)
    for bad in ("..", "shells", "shell_0000000g", "SHELL_00000000", "shell_000000001"):
        with pytest.raises(ShellNotFound):
            home.get_shell_status(bad)
