"""Hostile-but-ordinary input through the Python API: bad arguments, oversized commands, windows inside a
character, damaged records and special files, and reads that must change nothing."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from faults import DAMAGE, DamagedHome, SpecialFiles

from supervisor import InvalidRequest, ShellNotFound, StateDirError, Supervisor, request
from supervisor.host import Host

pytestmark = pytest.mark.faults


def _nothing_written(sup: Supervisor) -> bool:
    return not (sup.home / "shells").exists() or list((sup.home / "shells").iterdir()) == []


# -- every public function validates its arguments ------------------------------------------------


@pytest.mark.parametrize("bad", [None, b"shell_0000aaaa", 5, ["shell_0000aaaa"]])
def test_a_shell_id_that_is_not_a_string_is_an_invalid_request(home: Supervisor, bad: Any) -> None:
    for call in (home.get_shell_status, home.get_shell_output, home.kill_shell, home.wait_shell, home.settle):
        with pytest.raises(InvalidRequest, match="shell_id must be a string"):
            call(bad)


def test_module_functions_validate_their_arguments_too(home: Supervisor) -> None:
    from supervisor import get_shell_status, start_coordination, start_shell

    with pytest.raises(InvalidRequest, match="shell_id must be a string"):
        get_shell_status(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="config must be the path of a config file, got None"):
        start_coordination(None, "q")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="inherit_env must be true or false, got 'no'"):
        start_shell("true", inherit_env="no")  # type: ignore[arg-type]
    assert _nothing_written(home)


@pytest.mark.parametrize(("home_arg", "message"), [(5, "home must be a path, got int"),
                                                    ("", "home is empty"),
                                                    (b"/tmp/x", "home must be a path, got bytes")])
def test_a_home_that_is_not_a_path(home_arg: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        Supervisor(home_arg)


@pytest.mark.parametrize(("option", "value"), [("queue", "yes"), ("isolate", 1), ("inherit_env", None)])
def test_flags_are_booleans(home: Supervisor, option: str, value: Any) -> None:
    with pytest.raises(InvalidRequest, match=f"{option} must be true or false"):
        home.start_shell("true", **{option: value})
    assert _nothing_written(home)


def test_numbers_out_of_range_are_refused_everywhere(home: Supervisor) -> None:
    shell_id = home.start_shell("sleep 30")
    for call, message in [
        (lambda: home.start_shell("true", timeout=1e10), "timeout must be at most"),
        (lambda: home.kill_shell(shell_id, grace=1e300), "grace must be at most"),
        (lambda: home.wait_shell(shell_id, timeout=float("inf")), "timeout must be a number of seconds"),
        (lambda: home.get_shell_output(shell_id, offset=2**64), "offset must be a whole number from 0"),
        (lambda: home.get_shell_output(shell_id, max_bytes=-1), "max_bytes must be a whole number from 0"),
        (lambda: home.get_shell_output(shell_id, tail_lines=2**70), "tail_lines must be a whole number"),
        (lambda: Supervisor(home.home, stall_seconds=1e12), "stall_seconds must be at most"),
    ]:
        with pytest.raises(InvalidRequest, match=message):
            call()
    assert [s["shell_id"] for s in home.list_shells()] == [shell_id]


def test_error_messages_never_echo_unbounded_input(home: Supervisor) -> None:
    huge = "n" * 1_000_000
    for call in (lambda: home.start_shell("true", name=huge), lambda: home.start_shell([huge]),
                 lambda: home.start_shell("true", env={huge: "v"}), lambda: home.list_shells(huge),
                 lambda: home.kill_shell("shell_00000000", signal=huge), lambda: home.get_shell_status(huge)):
        with pytest.raises((InvalidRequest, ShellNotFound)) as info:
            call()
        assert len(str(info.value)) < 500, str(info.value)[:200]


# -- sizes the kernel would refuse --------------------------------------------------------------------


def test_a_large_environment_value_is_refused_before_anything_is_written(home: Supervisor) -> None:
    with pytest.raises(InvalidRequest, match="the environment variable 'BIG' is 200004 bytes with its name"):
        home.start_shell("true", env={"BIG": "x" * 200_000})
    assert _nothing_written(home)


def test_a_200_kb_command_or_question_is_refused_before_anything_is_written(home: Supervisor,
                                                                           tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="the command is 200005 bytes"):
        home.start_shell("echo " + "x" * 200_000)
    config = tmp_path / "c.yaml"
    config.write_text("agents: []\n")
    with pytest.raises(InvalidRequest, match=r"argument \d+ is 200000 bytes"):
        home.start_coordination(config, "q" * 200_000)
    with pytest.raises(InvalidRequest, match=r"more than the \d+ the kernel allows a program to start with"):
        home.start_shell(["echo", *(["y" * 100_000] * 100)])
    assert _nothing_written(home)


def test_a_10_mb_command_is_refused_and_not_stored(home: Supervisor) -> None:
    with pytest.raises(InvalidRequest) as info:
        home.start_shell("x" * 10_000_000)
    assert len(str(info.value)) < 300
    assert _nothing_written(home)


def test_limits_follow_the_kernel() -> None:
    """What is refused is exactly what exec would refuse: the largest allowed argument still runs."""
    request.exec_size(["/bin/sh", "-c", "x" * request.MAX_ARG_BYTES], {})
    with pytest.raises(InvalidRequest):
        request.exec_size(["/bin/sh", "-c", "x" * (request.MAX_ARG_BYTES + 1)], {})


def test_the_largest_allowed_argument_runs(home: Supervisor) -> None:
    arg = "y" * request.MAX_ARG_BYTES
    shell_id = home.start_shell([sys.executable, "-c", "import sys; print(len(sys.argv[1]))", arg],
                                inherit_env=False, env={"PATH": os.environ["PATH"]})
    assert home.wait_shell(shell_id, timeout=20)["status"] == "stopped"
    assert home.get_shell_output(shell_id)["stdout"] == f"{request.MAX_ARG_BYTES}\n"


# -- windows make progress ----------------------------------------------------------------------------


@pytest.mark.parametrize("max_bytes", [1, 2, 3])
def test_every_output_window_makes_progress(home: Supervisor, max_bytes: int) -> None:
    text = "a€b😀c\n"
    shell_id = home.start_shell(["printf", "%s", text])
    home.wait_shell(shell_id, timeout=10)
    data = text.encode()
    for start in range(len(data)):
        offset, pieces = start, []
        for _ in range(len(data) + 1):
            window = home.get_shell_output(shell_id, offset=offset, max_bytes=max_bytes, stream="stdout")
            assert window["stdout_next_offset"] > offset, (start, offset, window)
            pieces.append(window["stdout"])
            offset = window["stdout_next_offset"]
            if not window["stdout_truncated"]:
                break
        assert offset == len(data)
        if start == 0:
            assert "".join(pieces) == text


# -- damaged records and special files ----------------------------------------------------------------


@pytest.mark.timeout(60)  # a listing that read a blocking file would hang here
def test_damaged_records_are_reported_per_shell_and_cleaned(damaged_home: Callable[[], DamagedHome],
                                                            wait_for: Callable[..., Any]) -> None:
    damaged = damaged_home()
    sup = damaged.sup
    statuses = {s["shell_id"]: s for s in sup.list_shells()}
    for kind, shell_id in damaged.shells.items():
        assert statuses[shell_id]["status"] == "lost", kind
        assert DAMAGE[kind] in statuses[shell_id]["message"], (kind, statuses[shell_id]["message"])
        assert sup.get_shell_status(shell_id)["status"] == "lost"
        assert sup.get_shell_output(shell_id)["status"] == "lost"
        assert sup.wait_shell(shell_id, timeout=5)["status"] == "lost"
        assert sup.kill_shell(shell_id)["message"] == "Process already terminated"
    assert statuses[damaged.healthy]["status"] == "stopped"
    # Stray files where slots and queue entries live: a start works, and they are left alone.
    assert sup.wait_shell(sup.start_shell("true"), timeout=10)["status"] == "stopped"
    # The monitor gives its slot back just after recording the end.
    wait_for(lambda: sorted(os.listdir(sup.home / "running")) == [".DS_Store", "README", "shell_00000bad"],
             what="the slot of the ended shell to be given back, the stray files left alone")
    assert len(sup.clean()) == len(damaged.shells) + 2
    assert os.listdir(sup.home / "shells") == []


def test_special_files_in_place_of_logs_read_as_empty(home: Supervisor, special_files: SpecialFiles) -> None:
    shell_id = home.start_shell("echo hi")
    home.wait_shell(shell_id, timeout=10)
    folder = home.home / "shells" / shell_id
    (folder / "stdout.log").unlink()
    os.mkfifo(folder / "stdout.log")
    (folder / "stderr.log").unlink()
    (folder / "stderr.log").symlink_to(special_files.huge())
    out = home.get_shell_output(shell_id)
    assert (out["stdout"], out["stderr"]) == ("", "")
    assert home.get_shell_status(shell_id)["status"] == "stopped"


@pytest.mark.timeout(30)
def test_a_fifo_in_place_of_stdout_never_blocks_a_status_read(home: Supervisor) -> None:
    running = home.start_shell("sleep 30")
    ended = home.start_shell("echo done")
    home.wait_shell(ended, timeout=10)
    for shell_id in (running, ended):
        folder = home.home / "shells" / shell_id
        (folder / "stdout.log").unlink()
        os.mkfifo(folder / "stdout.log")
    assert home.get_shell_status(running)["status"] == "running"
    assert home.get_shell_status(ended)["status"] == "stopped"
    assert {s["shell_id"] for s in home.list_shells()} == {running, ended}


# -- reads change nothing ------------------------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*") if p.is_file()}


def test_reads_change_nothing_even_when_they_find_a_shell_lost(sup_factory: Callable[..., Supervisor],
                                                                wait_for: Callable[..., Any]) -> None:
    sup = sup_factory(max_concurrent=1)
    lost = sup.start_shell("sleep 60")
    queued = sup.start_shell("echo next", queue=True)
    state = json.loads((sup.home / "shells" / lost / "state.json").read_text())
    monitor = psutil.Process(state["monitor_pid"])
    monitor.kill()
    wait_for(lambda: not monitor.is_running() or monitor.status() == psutil.STATUS_ZOMBIE, what="the monitor")
    before = _snapshot(sup.home)
    reader = Supervisor(sup.home, max_concurrent=1, host=NeverWaits())
    for _ in range(3):
        assert reader.get_shell_status(lost)["status"] == "lost"
        assert [s["status"] for s in reader.list_shells()] == ["lost", "queued"]
        assert reader.get_shell_output(queued)["status"] == "queued"
    assert _snapshot(sup.home) == before, "a read wrote to the home"
    assert psutil.Process(state["pid"]).status() != psutil.STATUS_ZOMBIE, "a read signalled the job"
    # Settling is explicit: waiting on the queued shell settles the lost one and starts it.
    assert sup.wait_shell(queued, timeout=10)["status"] == "stopped"
    assert not psutil.pid_exists(state["pid"]) or psutil.Process(state["pid"]).status() == psutil.STATUS_ZOMBIE


class NeverWaits(Host):
    """The machine, for a reader that must never wait: any sleep fails the test."""

    def sleep(self, seconds: float) -> None:
        raise AssertionError(f"a read waited ({seconds} s)")


def test_a_linked_directory_inside_the_home_refuses_it(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir(mode=0o700)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "home" / "shells").symlink_to(tmp_path / "elsewhere")
    try:
        with pytest.raises(StateDirError, match="shells is a symbolic link"):
            Supervisor(tmp_path / "home").list_shells()
        with pytest.raises(StateDirError, match="shells is a symbolic link"):
            Supervisor(tmp_path / "home").start_shell("true")
        assert list((tmp_path / "elsewhere").iterdir()) == []
    finally:
        (tmp_path / "home" / "shells").unlink()
