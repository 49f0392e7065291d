"""Hostile-but-ordinary input through the command line, each scenario as a user would type it.

Bytes that are not UTF-8, jobs that detach at once or clear their environment, monitors killed,
homes that others can write, numbers out of range, full disks, damaged records, terminal escapes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from faults import DAMAGE, Hostile, Nobody, make_damaged_home

from supervisor import Supervisor, lifecycle

from .conftest import Mgsup, poll

pytestmark = [pytest.mark.faults, pytest.mark.timeout(90)]
CAFE = os.fsdecode(b"caf\xe9")  # as Python carries the bytes c a f 0xE9 (not UTF-8) in a str
MINE = "MINE=" + os.fsdecode(b"v-\xe9")


def _status(mgsup: Mgsup, shell_id: str) -> dict[str, object]:
    return json.loads(mgsup.ok("status", "--json", shell_id))  # type: ignore[no-any-return]


def _state(mgsup: Mgsup, shell_id: str) -> dict[str, object]:
    return json.loads((mgsup.home / "shells" / shell_id / "state.json").read_text())  # type: ignore[no-any-return]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill_monitor(mgsup: Mgsup, shell_id: str) -> None:
    monitor = psutil.Process(int(_state(mgsup, shell_id)["monitor_pid"]))  # type: ignore[arg-type]
    monitor.kill()
    poll(lambda: not _alive(monitor.pid), what="the monitor to die")


# -- bytes that are not UTF-8 ------------------------------------------------------------------------


def test_a_non_utf8_argument_runs_is_listed_killed_and_counted(mgsup: Mgsup) -> None:
    one = {"MGSUP_MAX_CONCURRENT": "1"}
    result = mgsup.run("start", "--", "sh", "-c", "sleep 45", CAFE, env=one)
    assert result.code == 0, result
    shell_id = result.out.strip()
    [line] = mgsup.ok("list").splitlines()
    assert line.split("\t")[:2] == [shell_id, "running"], line
    assert "caf\ufffd" in line, "the byte that is not UTF-8 is shown as U+FFFD"
    assert _status(mgsup, shell_id)["command"] == ["sh", "-c", "sleep 45", "caf\ufffd"]
    # The job is counted and cannot be cleaned away from under itself.
    assert mgsup.run("start", "--", "true", env=one).code == 4
    assert mgsup.ok("clean") == ""
    assert mgsup.ok("kill", shell_id) == f"{shell_id} killed (SIGTERM)\n"
    assert mgsup.ok("list").split("\t")[1] == "killed"


def test_non_utf8_arguments_paths_and_environments_reach_the_job_byte_for_byte(mgsup: Mgsup) -> None:
    folder = mgsup.work / os.fsdecode(b"dir-\xe9\xff")
    folder.mkdir()
    record = "printf '%s|' \"$1\" \"$(pwd)\" \"$MINE\" \"$INHERITED\" > out.bin"
    env = {"INHERITED": os.fsdecode(b"in-\xfe")}
    now = mgsup.run("start", "--cwd", str(folder), "--env", MINE, "--",
                    "sh", "-c", record, "sh", CAFE, env=env)
    assert now.code == 0, now
    mgsup.ok("wait", now.out.strip())
    assert (folder / "out.bin").read_bytes() == b"caf\xe9|" + os.fsencode(str(folder)) + b"|v-\xe9|in-\xfe|"
    # A queued shell keeps its environment on disk meanwhile: the bytes survive that too.
    (folder / "out.bin").unlink()
    blocker = mgsup.run("--max-concurrent", "1", "start", "--", "sleep", "30").out.strip()
    queued = mgsup.run("--max-concurrent", "1", "start", "--queue", "--cwd", str(folder), "--env",
                       MINE, "--", "sh", "-c", record, "sh", CAFE, env=env)
    assert queued.code == 0, queued
    mgsup.ok("kill", blocker)
    mgsup.ok("wait", queued.out.strip())
    assert (folder / "out.bin").read_bytes() == b"caf\xe9|" + os.fsencode(str(folder)) + b"|v-\xe9|in-\xfe|"


# -- jobs that detach or hide -------------------------------------------------------------------------


def test_a_job_that_detaches_at_once_ends_with_its_shell(mgsup: Mgsup, hostile: Hostile) -> None:
    # Before the fix the sleep escaped to init in most tries: try several times.
    for _ in range(5):
        shell_id = mgsup.start("--", *hostile.early_daemon().split())
        final = json.loads(mgsup.ok("wait", "--json", shell_id))
        assert final["status"] == "stopped", final
        assert hostile.survivors() == [], "the detached sleep outlived its shell"


def test_a_scrubbed_job_is_stopped_before_its_slot_is_reused_when_its_monitor_died(mgsup: Mgsup,
                                                                                  hostile: Hostile) -> None:
    first = mgsup.ok("--max-concurrent", "1", "start", "--", "env", "-i", "sleep", hostile.token).strip()
    job = int(_state(mgsup, first)["pid"])  # type: ignore[arg-type]
    _kill_monitor(mgsup, first)
    assert _alive(job), "the job runs on, unsupervised and untagged"
    # A zombie is no longer running (its parent, the monitor, is gone and init may reap it late).
    probe = mgsup.ok("--max-concurrent", "1", "start", "--", "sh", "-c",
                     f"s=$(cut -d' ' -f3 /proc/{job}/stat 2>/dev/null); "
                     "[ -n \"$s\" ] && [ \"$s\" != Z ] && echo beside || echo alone").strip()
    mgsup.ok("wait", probe)
    assert mgsup.ok("logs", probe) == "alone\n", "the new shell was admitted while the lost job still ran"
    assert hostile.survivors() == []
    assert _status(mgsup, first)["status"] == "lost"


def test_kill_stops_a_scrubbed_job_whose_monitor_died(mgsup: Mgsup, hostile: Hostile) -> None:
    shell_id = mgsup.start("--", "sh", "-c", f"env -i sleep {hostile.token} & exec env -i sleep {hostile.token}")
    poll(lambda: len(hostile.survivors()) == 2, what="both sleeps")
    _kill_monitor(mgsup, shell_id)
    assert mgsup.ok("kill", shell_id) == f"{shell_id} already lost\n"
    assert hostile.survivors() == []


def test_a_variable_does_not_make_a_job_a_monitor(mgsup: Mgsup, hostile: Hostile) -> None:
    ended = mgsup.start("--", *hostile.fake_monitor().split())
    assert json.loads(mgsup.ok("wait", "--json", ended))["status"] == "stopped"
    assert hostile.survivors() == [], "the end-of-job sweep spared a process that set MGSUP_MONITOR_OF"
    running = mgsup.start("--", "sh", "-c", f"{hostile.fake_monitor()} & sleep {hostile.token}")
    poll(lambda: len(hostile.survivors()) == 2, what="the job and its fake monitor")
    assert mgsup.ok("kill", running) == f"{running} killed (SIGTERM)\n"
    assert hostile.survivors() == [], "kill spared a process that set MGSUP_MONITOR_OF"


def test_a_fork_burst_is_killed_to_the_last_process(mgsup: Mgsup, hostile: Hostile) -> None:
    shell_id = mgsup.start("--", *hostile.fork_burst(200))
    poll(lambda: mgsup.ok("logs", shell_id) == "forked\n", what="the burst")
    assert mgsup.ok("kill", "--grace", "0", shell_id) == f"{shell_id} killed (SIGTERM)\n"
    assert hostile.survivors() == []


# -- homes that others can write --------------------------------------------------------------------


@pytest.fixture
def reachable(tmp_path: Path) -> Iterator[Mgsup]:
    """The command line on a home that another user can reach (the test's tmp_path is owner-only)."""
    folder = Path(tempfile.mkdtemp(prefix="mgsup-shared-"))
    folder.chmod(0o755)
    work = tmp_path / "work-reachable"
    work.mkdir()
    cli = Mgsup(folder / "home", work)
    try:
        yield cli
    finally:
        if (cli.home / "shells").is_dir() and not cli.home.stat().st_mode & 0o022:
            for status in Supervisor(cli.home).list_shells():
                if status["status"] in lifecycle.LIVE:
                    Supervisor(cli.home).kill_shell(status["shell_id"], grace=1.0)
        shutil.rmtree(folder)


def test_a_home_that_others_can_write_is_refused(mgsup: Mgsup) -> None:
    mgsup.home.mkdir(mode=0o777)
    os.chmod(mgsup.home, 0o777)
    for verb in (["list"], ["status"], ["start", "--", "true"], ["clean"], ["kill", "--all"]):
        result = mgsup.run(*verb)
        assert result.code == 5, (verb, result)
        assert "can be written by others (mode 0777)" in result.error_line() and "chmod 700" in result.err
    assert list(mgsup.home.iterdir()) == [], "nothing is created in a refused home"
    os.chmod(mgsup.home, 0o700)
    (mgsup.home / "queue").mkdir(mode=0o700)
    os.chmod(mgsup.home / "queue", 0o733)
    assert "queue can be written by others" in mgsup.run("list").error_line()


def test_a_shell_planted_by_another_user_is_never_run(reachable: Mgsup, nobody: Nobody, tmp_path: Path) -> None:
    mgsup = reachable
    mgsup.home.mkdir(mode=0o777)
    os.chmod(mgsup.home, 0o777)
    proof = tmp_path / "planted-ran"
    # Planted with the shell alone: the Python of the test run may live where `nobody` cannot read.
    shell = mgsup.home / "shells" / "shell_0bad0bad"
    plant = (f'set -e; mkdir -p {shell} {mgsup.home}/queue {mgsup.home}/running; now=$(date +%s); '
             f'printf \'{{"shell_id":"shell_0bad0bad","command":"touch {proof}",'
             f'"argv":["/bin/sh","-c","touch {proof}"],"cwd":"/","created":%s}}\' "$now" > {shell}/spec.json; '
             f'printf \'{{"status":"queued","created":%s}}\' "$now" > {shell}/state.json; '
             f': > {mgsup.home}/queue/$(printf %020d "$(date +%s%N)")-shell_0bad0bad')
    done = nobody.run("/bin/sh", "-c", plant)
    assert done.returncode == 0, done.stderr
    for verb in (["list"], ["status", "shell_0bad0bad"], ["start", "--", "true"], ["wait", "shell_0bad0bad"]):
        result = mgsup.run(*verb)
        assert result.code == 5 and "refusing the state directory" in result.error_line(), (verb, result)
    # Nothing took it from the queue (a start would have rewritten its state first) and nothing ran it.
    assert json.loads((shell / "state.json").read_text())["status"] == "queued"
    assert list((mgsup.home / "queue").iterdir()) and not list((mgsup.home / "running").iterdir())
    assert not proof.exists(), "a shell planted by another user ran as this user"


def test_a_home_owned_by_another_user_is_refused(mgsup: Mgsup) -> None:
    mgsup.home.mkdir(mode=0o700)
    os.chown(mgsup.home, 65534, 65534)
    result = mgsup.run("start", "--", "true")
    assert result.code == 5
    assert "belongs to uid 65534, not to this user" in result.error_line()
    assert list(mgsup.home.iterdir()) == []


def test_another_user_cannot_read_an_owner_only_home(reachable: Mgsup, nobody: Nobody) -> None:
    mgsup = reachable
    shell_id = mgsup.start("--", "true")
    for verb in (("status", shell_id), ("list",), ("start", "--", "true")):
        done = nobody.run(*mgsup.argv(*verb))
        assert done.returncode == 5, done
        assert done.stderr.startswith("mgsup: error: refusing the state directory"), done.stderr
        assert "belongs to uid 0, not to this user (uid 65534)" in done.stderr


def test_everything_created_is_owner_only_whatever_the_umask(mgsup: Mgsup) -> None:
    old = os.umask(0)
    try:
        result = mgsup.run("start", "--queue", "--", "echo", "hi")
        shell_id = result.out.strip()
        mgsup.ok("wait", shell_id)
    finally:
        os.umask(old)
    open_to_others = [(str(p.relative_to(mgsup.home)), oct(p.stat().st_mode & 0o777))
                      for p in [mgsup.home, *mgsup.home.rglob("*")] if p.stat().st_mode & 0o077]
    assert open_to_others == []
    assert (mgsup.home / "shells" / shell_id / "monitor.log").exists()


# -- numbers at the edge ------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("start", "--timeout", "1e10", "--", "true"),
    ("start", "--timeout", "nan", "--", "true"),
    ("start", "--timeout", "inf", "--", "true"),
    ("start", "--timeout", "-1", "--", "true"),
    ("--max-concurrent", "100001", "start", "--", "true"),
])
def test_numbers_out_of_range_are_refused_before_anything_is_written(mgsup: Mgsup, args: tuple[str, ...]) -> None:
    result = mgsup.run(*args)
    assert result.code == 2, result
    assert "timeout must be" in result.err or "max-concurrent" in result.err or "max_concurrent" in result.err
    assert not mgsup.home.exists() or list((mgsup.home / "shells").iterdir()) == []


def test_numbers_out_of_range_on_every_verb(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "sleep", "30")
    for args, message in [(("kill", "--grace", "1e10", shell_id), "grace must be at most"),
                          (("wait", "--timeout", "1e10", shell_id), "timeout must be at most"),
                          (("logs", "--tail", str(2**64), shell_id), "tail_lines must be a whole number"),
                          ]:
        result = mgsup.run(*args)
        assert result.code == 2 and message in result.error_line(), (args, result)
    assert _status(mgsup, shell_id)["status"] == "running"
    result = mgsup.run("list", env={"MGSUP_MAX_CONCURRENT": "1e9"})
    assert result.code == 2 and "MGSUP_MAX_CONCURRENT must be a whole number" in result.error_line()


# -- full disks ---------------------------------------------------------------------------------------


def test_a_full_disk_loses_no_exit_code_and_refuses_new_starts(tiny_home: object, tmp_path: Path) -> None:
    sup: Supervisor = tiny_home("2m")  # type: ignore[operator]
    cli = Mgsup(sup.home, tmp_path)
    a = cli.start("--", "sleep 2; exit 5")
    c = cli.start("--", "sleep", "60")
    b = cli.start("--", "cat /dev/zero")
    assert json.loads(cli.run("wait", "--json", b).out)["status"] == "failed", "cat ends on ENOSPC"
    final = json.loads(cli.run("wait", "--json", a).out)
    assert (final["status"], final["exit_code"]) == ("failed", 5), final
    # Ended shells give back a page or two: fill those too, so that not even a kill request fits.
    _fill(sup.home / "filler")
    # No room for a kill request: the monitor is asked all the same and stops the job with its defaults.
    assert cli.ok("kill", "--signal", "INT", c) == f"{c} killed (SIGTERM)\n"
    assert _status(cli, c)["status"] == "killed"
    poll(lambda: os.listdir(sup.home / "running") == [], what="the slots to be given back")
    before = sorted(os.listdir(sup.home / "shells"))
    result = cli.run("start", "--", "echo", "never")
    assert result.code == 5 and "No space left on device" in result.error_line(), result
    result = cli.run("start", "--queue", "--", "echo", "never")
    assert result.code == 5, result
    assert sorted(os.listdir(sup.home / "shells")) == before, "a failed start left something behind"
    assert os.listdir(sup.home / "running") == [] and os.listdir(sup.home / "queue") == []
    # Room again: the home works as before.
    (sup.home / "shells" / b / "stdout.log").unlink()
    (sup.home / "filler").unlink()
    assert json.loads(cli.run("start", "--wait", "--json", "--", "echo", "again").out)["status"] == "stopped"


def _fill(path: Path) -> None:
    """Write to `path` until its file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- damaged records ----------------------------------------------------------------------------------


def test_one_damaged_record_breaks_no_listing(tmp_path: Path) -> None:
    damaged = make_damaged_home(tmp_path)
    cli = Mgsup(damaged.sup.home, tmp_path)
    listed = {s["shell_id"]: s for s in json.loads(cli.ok("list", "--json"))}
    assert set(listed) == {*damaged.shells.values(), damaged.healthy}
    for kind, shell_id in damaged.shells.items():
        assert listed[shell_id]["status"] == "lost", kind
        assert DAMAGE[kind] in listed[shell_id]["message"], (kind, listed[shell_id]["message"])
    assert listed[damaged.healthy]["status"] == "stopped"
    for verb in (["status"], ["status", damaged.shells["nan_in_state"]], ["kill", "--all"]):
        assert cli.run(*verb).code == 0, verb
    # Stray files in queue/ and running/ stop no start, and are left alone.
    started = cli.start("--", "echo", "fine")
    assert json.loads(cli.ok("wait", "--json", started))["status"] == "stopped"
    assert sorted(os.listdir(damaged.sup.home / "queue")) == [".DS_Store", "notes"]
    # clean removes every damaged record; a linked shell directory goes as a link, its target stays.
    removed = cli.ok("clean").split()
    assert sorted(removed) == sorted([*damaged.shells.values(), damaged.healthy, started])
    assert os.listdir(damaged.sup.home / "shells") == []
    assert (damaged.elsewhere / damaged.shells["shell_dir_is_a_link"] / "spec.json").exists()


def test_a_touched_ds_store_in_the_queue_stops_no_start(mgsup: Mgsup) -> None:
    mgsup.ok("start", "--wait", "--", "true")
    (mgsup.home / "queue" / ".DS_Store").touch()
    (mgsup.home / "running" / ".DS_Store").touch()
    assert mgsup.run("start", "--wait", "--", "true").code == 0


# -- what is shown ----------------------------------------------------------------------------------


def test_terminal_escapes_in_a_command_are_shown_not_sent(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "printf", "\x1b]0;pwned\x07\x1b[2J", "\x9b31m")
    mgsup.ok("wait", shell_id)
    for verb in (["list"], ["status"], ["status", shell_id]):
        out = mgsup.ok(*verb)
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out, (verb, out)
        assert "\\x1b]0;pwned\\x07" in out, (verb, out)


def test_an_empty_home_is_an_error(mgsup: Mgsup) -> None:
    result = mgsup.run("--home", "", "list")
    assert result.code == 2 and "home is empty" in result.error_line()


def test_kill_does_not_claim_a_job_that_was_killed_from_outside(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "sleep", "30")
    state = _state(mgsup, shell_id)
    monitor = psutil.Process(int(state["monitor_pid"]))  # type: ignore[arg-type]
    # The monitor is held still so that the kill finds the shell running although its job is dead.
    monitor.suspend()
    try:
        os.kill(int(state["pid"]), signal.SIGKILL)  # type: ignore[arg-type]
        kill = mgsup.popen("kill", shell_id)
        poll(lambda: (mgsup.home / "shells" / shell_id / "kill.json").exists(), what="the kill request")
    finally:
        monitor.resume()
    out, err = kill.communicate(timeout=30)
    assert (kill.returncode, out.decode()) == (0, f"{shell_id} already killed\n"), err
    final = _status(mgsup, shell_id)
    assert (final["status"], final["signal"]) == ("killed", "SIGKILL")


def test_clean_removes_a_linked_shell_directory_as_a_link(mgsup: Mgsup, tmp_path: Path) -> None:
    shell_id = mgsup.start("--", "true")
    mgsup.ok("wait", shell_id)
    real = tmp_path / "moved"
    (mgsup.home / "shells" / shell_id).rename(real)
    (mgsup.home / "shells" / shell_id).symlink_to(real)
    assert mgsup.ok("clean").split() == [shell_id]
    assert os.listdir(mgsup.home / "shells") == [], "a hidden link was left behind"
    assert (real / "spec.json").exists(), "what the link pointed to is not the home's to remove"


# -- sizes --------------------------------------------------------------------------------------------


def test_a_long_command_is_not_echoed_whole(mgsup: Mgsup) -> None:
    args = ["echo", *(["z" * 1000] * 500)]  # 500 kB of arguments: allowed, but not to be repeated
    started = json.loads(mgsup.ok("start", "--json", "--", *args))
    assert started["status"] in ("running", "stopped")
    for document in (started, json.loads(mgsup.ok("list", "--json"))[0]):
        shown = document["command"]
        assert sum(map(len, shown)) < 5000 and shown[-1].startswith("… [") and shown[0] == "echo"
    assert len(mgsup.ok("list")) < 6000
