"""`mgsup kill` and `mgsup clean`."""

from __future__ import annotations

import json

from .conftest import Mgsup, tagged_processes


def test_kill_all_stops_running_and_queued_shells(mgsup: Mgsup) -> None:
    running = [mgsup.ok("--max-concurrent", "2", "start", "--", "sleep 30 & sleep 30; wait").strip()
               for _ in range(2)]
    queued = mgsup.ok("--max-concurrent", "2", "start", "--queue", "--", "sleep", "30").strip()
    assert len(tagged_processes(set(running))) >= 4
    out = mgsup.ok("kill", "--all", "--grace", "2")
    assert sorted(out.splitlines()) == sorted([f"{queued} removed from queue",
                                               *(f"{shell_id} killed (SIGTERM)" for shell_id in running)])
    statuses = {s["shell_id"]: s for s in json.loads(mgsup.ok("list", "--json"))}
    assert {s["status"] for s in statuses.values()} == {"killed"}
    assert statuses[queued]["pid"] is None
    assert tagged_processes({*running, queued}) == []
    assert mgsup.ok("kill", "--all") == "no running, paused or queued shells\n"


def test_kill_reports_shells_that_already_ended(mgsup: Mgsup) -> None:
    done = mgsup.start("--", "true")
    mgsup.ok("wait", done)
    result = json.loads(mgsup.ok("kill", "--json", done))
    assert result == [{"shell_id": done, "outcome": "already_ended", "status": "stopped", "signal": None,
                       "message": "Process already terminated"}]
    assert mgsup.ok("kill", done) == f"{done} already stopped\n"


def test_kill_with_another_signal(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "sleep", "30")
    assert mgsup.ok("kill", "--signal", "KILL", shell_id) == f"{shell_id} killed (SIGKILL)\n"
    assert mgsup.run("wait", shell_id).code == 137


def test_kill_bad_input_kills_nothing(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "sleep", "30")
    for args, message in ((["--signal", "SIGNOPE", shell_id], "unknown signal"),
                          (["--grace", "-1", shell_id], "grace must be zero or more"),
                          ([shell_id, "shell_deadbeef"], "no shell 'shell_deadbeef'"),
                          ([], "give REFs or --all"),
                          (["--all", shell_id], "give REFs or --all")):
        result = mgsup.run("kill", *args)
        assert result.code in (2, 3) and message in result.error_line(), (args, result)
    assert json.loads(mgsup.ok("status", "--json", shell_id))["status"] == "running"


def test_kill_all_checks_its_options_even_when_nothing_runs(mgsup: Mgsup) -> None:
    for args, message in ((["--signal", "SIGNOPE"], "unknown signal"), (["--grace", "-1"], "grace must be zero")):
        result = mgsup.run("kill", "--all", *args)
        assert (result.code, result.out) == (2, "") and message in result.error_line(), (args, result)


def test_clean_removes_ended_shells_and_all_removes_everything(mgsup: Mgsup) -> None:
    ended = mgsup.start("--", "true")
    mgsup.ok("wait", ended)
    running = mgsup.start("--", "sleep", "30")
    cleaned = mgsup.run("clean")
    assert (cleaned.code, cleaned.out, cleaned.err) == (0, f"{ended}\n", "removed 1 shell\n")
    assert [d.name for d in mgsup.shell_dirs()] == [running]
    assert json.loads(mgsup.ok("clean", "--all", "--json")) == [running]
    assert mgsup.shell_dirs() == []
    assert tagged_processes({running}) == []
