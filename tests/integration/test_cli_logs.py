"""`mgsup logs`: whole output, tails, stderr, invalid UTF-8, following, and a closed pipe."""

from __future__ import annotations

import subprocess

from .conftest import Mgsup


def test_logs_whole_tail_and_stderr(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "seq 1 10; echo oops >&2")
    mgsup.ok("wait", shell_id)
    assert mgsup.ok("logs", shell_id) == "".join(f"{i}\n" for i in range(1, 11)) + "[stderr] oops\n"
    assert mgsup.ok("logs", "--stdout", shell_id) == "".join(f"{i}\n" for i in range(1, 11))
    assert mgsup.ok("logs", "--tail", "2", shell_id) == "9\n10\n[stderr] oops\n"
    assert mgsup.ok("logs", "--tail", "0", shell_id) == ""
    assert mgsup.ok("logs", "--stderr", shell_id) == "oops\n"
    negative = mgsup.run("logs", "--tail", "-1", shell_id)
    assert negative.code == 2 and "--tail" in negative.error_line()


def test_invalid_utf8_is_replaced(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", r"printf 'a\377\376b\n'")
    mgsup.ok("wait", shell_id)
    assert mgsup.ok("logs", shell_id) == "a\ufffd\ufffdb\n"


def test_follow_sees_later_output_and_ends_with_the_shell(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "echo before; while [ ! -e go ]; do sleep 0.02; done; echo after; printf end")
    follower = mgsup.popen("logs", "--follow", shell_id)
    assert follower.stdout is not None
    assert follower.stdout.readline() == b"before\n"
    (mgsup.work / "go").touch()
    out, err = follower.communicate(timeout=30)
    assert (follower.returncode, out, err) == (0, b"after\nend", b"")


def test_follow_with_tail_starts_from_the_last_lines(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "seq 1 5; while [ ! -e go ]; do sleep 0.02; done; echo 6 >&2; echo 7")
    follower = mgsup.popen("logs", "--follow", "--tail", "1", "--stdout", shell_id)
    assert follower.stdout is not None
    assert follower.stdout.readline() == b"5\n"
    (mgsup.work / "go").touch()
    out, _ = follower.communicate(timeout=30)
    assert (follower.returncode, out) == (0, b"7\n")


def test_follow_of_an_ended_shell_prints_everything_and_exits(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "echo 1; echo 2 >&2")
    mgsup.ok("wait", shell_id)
    assert mgsup.ok("logs", "--follow", "--stderr", shell_id, timeout=20) == "2\n"


def test_a_large_log_streams_whole_and_a_closed_pipe_is_quiet(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "seq 1 500000")
    mgsup.ok("wait", shell_id)
    out = mgsup.ok("logs", shell_id)
    assert out.endswith("499999\n500000\n") and out.count("\n") == 500000
    head = subprocess.run(f"{subprocess.list2cmdline(mgsup.argv('logs', shell_id))} | head -n 1", shell=True,
                          cwd=mgsup.work, env=mgsup.env, capture_output=True, timeout=60, check=False)
    assert (head.stdout, head.stderr) == (b"1\n", b"")
