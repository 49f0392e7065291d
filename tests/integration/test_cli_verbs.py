"""The everyday verbs through the real command line: references, streams, restart, retries, groups,
dependencies, pause, clean and the filters of status and list."""

from __future__ import annotations

import json

from supervisor import Supervisor

from .conftest import Mgsup, poll


def test_names_prefixes_and_last_name_a_shell(mgsup: Mgsup) -> None:
    first = mgsup.start("--name", "nap", "--", "echo first")
    second = mgsup.start("--name", "nap", "--", "echo second; exit 4")
    assert mgsup.run("wait", "nap").code == 4
    mgsup.ok("wait", first)
    assert mgsup.ok("logs", "nap") == "second\n"
    assert mgsup.ok("logs", first[6:]) == "first\n"
    assert json.loads(mgsup.ok("status", "--json", "last"))["shell_id"] == second
    typo = mgsup.run("logs", "npa")
    assert typo.code == 3 and "no shell 'npa'" in typo.error_line() and "did you mean 'nap'?" in typo.error_line()
    reserved = mgsup.run("start", "--name", "last", "--", "true")
    assert reserved.code == 2 and "'last' and names beginning with 'shell_' are reserved" in reserved.error_line()


def test_an_ambiguous_prefix_lists_the_candidates_and_kills_nothing(mgsup: Mgsup) -> None:
    # 17 ids over 16 first hex digits: two of them share one. Queued shells start quickly and run nothing.
    sup = Supervisor(mgsup.home, max_concurrent=1)
    ids = [sup.start_shell("sleep 30", queue=True) for _ in range(17)]
    by_digit: dict[str, list[str]] = {}
    for shell_id in ids:
        by_digit.setdefault(shell_id[6], []).append(shell_id)
    digit, shared = next((d, group) for d, group in by_digit.items() if len(group) > 1)
    result = mgsup.run("kill", digit)
    assert result.code == 2 and f"'{digit}' is a prefix of {len(shared)} shells' ids" in result.error_line()
    assert all(shell_id in result.error_line() for shell_id in shared)
    statuses = json.loads(mgsup.ok("list", "--json"))
    assert sorted(s["status"] for s in statuses) == ["queued"] * 16 + ["running"]


def test_logs_shows_both_streams_and_merge_output_keeps_their_order(mgsup: Mgsup) -> None:
    program = "echo one; echo two >&2; echo three"
    separate = mgsup.start("--", program)
    merged = mgsup.start("--merge-output", "--", program)
    for shell_id in (separate, merged):
        mgsup.ok("wait", shell_id)
    assert mgsup.ok("logs", separate) == "one\nthree\n[stderr] two\n"
    assert mgsup.ok("logs", "--stderr", separate) == "two\n"
    assert mgsup.ok("logs", merged) == "one\ntwo\nthree\n"
    assert mgsup.ok("logs", "--stderr", merged) == ""


def test_start_wait_streams_the_output_and_passes_the_exit_code_on(mgsup: Mgsup) -> None:
    result = mgsup.run("start", "--wait", "--", "echo out; echo err >&2; exit 3")
    lines = result.out.splitlines()
    assert result.code == 3 and lines[0].startswith("shell_") and lines[1:] == ["out"]
    assert result.err.splitlines()[0] == "err"
    assert result.err.splitlines()[-1].startswith(f"{lines[0]} failed exit=3")


def test_retries_and_after_through_the_cli(mgsup: Mgsup) -> None:
    counter = mgsup.work / "runs"
    flaky = mgsup.start("--name", "flaky", "--retries", "2", "--retry-delay", "0.1", "--",
                        f"n=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); echo $n > {counter}; [ $n -ge 2 ]")
    after = mgsup.start("--after", "flaky", "--", "echo after flaky")
    assert mgsup.run("wait", after).code == 0
    status = json.loads(mgsup.ok("status", "--json", flaky))
    assert (status["status"], status["attempt"]) == ("stopped", 2)
    bad = mgsup.start("--name", "bad", "--", "exit 9")
    dependent = mgsup.start("--after", "bad", "--", "echo never")
    assert mgsup.run("wait", dependent).code == 1
    details = json.loads(mgsup.ok("status", "--json", dependent))
    assert details["message"] == f"not started: {bad}, which it was to start after, ended failed (exit 9)"
    assert mgsup.ok("logs", dependent) == ""
    unknown = mgsup.run("start", "--after", "nothing", "--", "true")
    assert unknown.code == 3 and "no shell 'nothing'" in unknown.error_line()


def test_groups_limit_their_shells(mgsup: Mgsup) -> None:
    assert "gpu" in mgsup.ok("group", "gpu", "--max", "1")
    first = mgsup.start("--group", "gpu", "--", "sleep", "30")
    full = mgsup.run("start", "--group", "gpu", "--", "true")
    assert full.code == 4 and "group 'gpu' (1) reached" in full.error_line()
    queued = mgsup.start("--group", "gpu", "--queue", "--", "true")
    shown = json.loads(mgsup.ok("group", "gpu", "--json"))
    assert shown == {"group": "gpu", "max_concurrent": 1, "running": 1, "queued": 1, "shells": 2}
    assert mgsup.ok("group").splitlines()[1].split() == ["gpu", "1", "1", "1", "2"]
    assert mgsup.ok("list", "--group", "gpu").splitlines()[0].startswith(queued)
    mgsup.ok("kill", first)
    assert mgsup.run("wait", queued).code == 0
    assert mgsup.run("group", "--max", "2").code == 2


def test_restart_pause_and_resume(mgsup: Mgsup) -> None:
    old = mgsup.start("--name", "svc", "--env", "MGSUP_T=1", "--", "echo $MGSUP_T; sleep 30")
    refused = mgsup.run("restart", "svc")
    assert refused.code == 2 and "MGSUP_T" in refused.error_line()
    new = mgsup.ok("restart", "svc", "--env", "MGSUP_T=2").strip()
    assert json.loads(mgsup.ok("status", "--json", old))["status"] == "killed"
    assert json.loads(mgsup.ok("status", "--json", new))["restarted_from"] == old
    poll(lambda: mgsup.ok("logs", "svc") == "2\n", what="the restarted job's output")
    assert mgsup.ok("pause", "svc") == f"{new} paused\n"
    assert mgsup.ok("status", "--status", "paused").splitlines()[1].split()[:3] == [new[6:], "svc", "paused"]
    assert mgsup.ok("resume", "svc") == f"{new} running\n"
    ended = mgsup.run("pause", old)
    assert ended.code == 2 and "only a running shell can be paused" in ended.error_line()


def test_clean_by_reference_and_age(mgsup: Mgsup) -> None:
    done = mgsup.start("--name", "done", "--", "true")
    mgsup.ok("wait", done)
    live = mgsup.start("--name", "live", "--", "sleep", "30")
    refused = mgsup.run("clean", "done", "live")
    assert refused.code == 2 and "not ended" in refused.error_line()
    assert len(mgsup.shell_dirs()) == 2
    assert mgsup.ok("clean", "--older-than", "1h") == ""
    bad = mgsup.run("clean", "--older-than", "soon")
    assert bad.code == 2 and "--older-than must be a duration" in bad.error_line()
    assert mgsup.ok("clean", "done") == f"{done}\n"
    assert mgsup.ok("clean", "--all", "live") == f"{live}\n"
    assert mgsup.shell_dirs() == []


def test_status_and_list_filter_and_show_the_newest_first(mgsup: Mgsup) -> None:
    ids = [mgsup.start("--name", f"train-{i}", "--", "true") for i in range(3)]
    other = mgsup.start("--name", "eval", "--", "false")
    for shell_id in (*ids, other):
        mgsup.run("wait", shell_id)
    assert [line.split("\t")[0] for line in mgsup.ok("list", "--name", "train-*").splitlines()] == ids[::-1]
    assert [line.split()[0] for line in mgsup.ok("status", "--status", "failed").splitlines()[1:]] == [other[6:]]
    limited = mgsup.run("status", "--limit", "2")
    assert len(limited.out.splitlines()) == 3 and "2 older shells not shown" in limited.err
    assert mgsup.ok("status", "--name", "nothing*") == f"no shells match in {mgsup.home}\n"
    mixed = mgsup.run("status", "--status", "failed", other)
    assert mixed.code == 2


def test_a_home_that_cannot_exist_is_exit_5(mgsup: Mgsup) -> None:
    for args in (["list"], ["status"], ["logs", "last"]):
        result = mgsup.run("--home", "/proc/nope", *args)
        assert result.code == 5 and "cannot be created" in result.error_line(), (args, result)
