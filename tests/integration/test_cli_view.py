"""`mgsup status`, `mgsup list`: tables, details, JSON, following, and a damaged home."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from .conftest import CONTRACT_KEYS, Mgsup


def test_status_table_without_colour_on_a_pipe(mgsup: Mgsup) -> None:
    done = mgsup.start("--name", "quick", "--", "true")
    mgsup.ok("wait", done)
    running = mgsup.start("--", "sleep", "30")
    table = mgsup.ok("status")
    assert "\x1b[" not in table
    lines = table.splitlines()
    assert lines[0].split() == ["SHELL", "NAME", "STATUS", "PID", "AGE", "DURATION", "EXIT", "PROGRESS", "COST",
                                "COMMAND"]
    assert lines[1].split()[:3] == [done, "quick", "stopped"]
    assert lines[1].split()[6] == "0" and lines[1].rstrip().endswith("true")
    assert lines[2].split()[:3] == [running, "-", "running"]
    assert lines[2].rstrip().endswith("sleep 30")
    assert len(lines) == 3



def test_status_table_shows_a_long_command_whole_when_there_is_room(mgsup: Mgsup) -> None:
    command = "for i in 1 2 3; do echo tick $i; sleep 10; done; echo and a little more to read"
    shell_id = mgsup.start("--", command)
    row = mgsup.ok("status").splitlines()[1]
    assert row.startswith(shell_id) and row.endswith(command)
    mgsup.ok("kill", shell_id)
    narrow = mgsup.run("status", env={"COLUMNS": "100"})
    assert narrow.code == 0 and max(len(line) for line in narrow.out.splitlines()) <= 100
    assert narrow.out.splitlines()[1].endswith("…")


def test_an_argument_list_is_shown_quoted_and_the_table_names_its_program(mgsup: Mgsup) -> None:
    argv = [sys.executable, "-c", "print(1 + 1)"]
    shell_id = mgsup.start("--", *argv)
    mgsup.ok("wait", shell_id)
    assert mgsup.ok("list").split("\t")[4] == shlex.join(argv) + "\n"
    details = dict(line.split(None, 1) for line in mgsup.ok("status", shell_id).splitlines())
    assert details["command"] == shlex.join(argv)
    # The table has less room: the program by its name, not its whole path.
    assert mgsup.ok("status").splitlines()[1].endswith(shlex.join([Path(sys.executable).name, *argv[1:]]))

def test_status_of_an_empty_home(mgsup: Mgsup) -> None:
    assert mgsup.ok("status") == f"no shells on record in {mgsup.home}\n"
    assert json.loads(mgsup.ok("status", "--json")) == []
    assert mgsup.ok("list") == ""


def test_status_json_and_details_of_one_shell(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "echo hi; exit 2")
    assert mgsup.run("wait", shell_id).code == 2
    status = json.loads(mgsup.ok("status", "--json", shell_id))
    assert status.keys() >= CONTRACT_KEYS
    assert (status["status"], status["exit_code"]) == ("failed", 2)
    details = mgsup.ok("status", shell_id)
    fields = dict(line.split(None, 1) for line in details.splitlines() if len(line.split(None, 1)) == 2)
    assert fields["shell_id"] == shell_id and fields["status"] == "failed" and fields["exit_code"] == "2"
    assert set(fields) >= CONTRACT_KEYS - {"coordination"}


def test_list_is_tab_separated_and_filters_by_status(mgsup: Mgsup) -> None:
    ok = mgsup.start("--name", "good", "--", "true")
    bad = mgsup.start("--", "false")
    for shell_id in (ok, bad):
        mgsup.run("wait", shell_id)
    assert mgsup.ok("list").splitlines() == [f"{ok}\tstopped\t0\tgood\ttrue", f"{bad}\tfailed\t1\t-\tfalse"]
    assert mgsup.ok("list", "--status", "failed").splitlines() == [f"{bad}\tfailed\t1\t-\tfalse"]
    listed = json.loads(mgsup.ok("list", "--json", "--status", "stopped"))
    assert [s["shell_id"] for s in listed] == [ok] and listed[0].keys() >= CONTRACT_KEYS
    wrong = mgsup.run("list", "--status", "sleeping")
    assert wrong.code == 2 and "'sleeping' is not one of" in wrong.error_line()


def test_a_corrupt_state_file_does_not_break_list_or_status(mgsup: Mgsup) -> None:
    damaged = mgsup.start("--", "true")
    healthy = mgsup.start("--", "true")
    for shell_id in (damaged, healthy):
        mgsup.ok("wait", shell_id)
    (mgsup.home / "shells" / damaged / "state.json").write_text('{"status": "runn')
    assert mgsup.ok("list").splitlines() == [f"{damaged}\tlost\t-\t-\ttrue", f"{healthy}\tstopped\t0\t-\ttrue"]
    table = mgsup.ok("status")
    assert damaged in table and "lost" in table
    status = json.loads(mgsup.ok("status", "--json", damaged))
    assert status["status"] == "lost" and "damaged" in status["message"]
    assert "damaged" in mgsup.ok("status", damaged)
    assert mgsup.run("wait", damaged).code == 125


def test_status_follow_prints_plain_lines_until_the_end(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "sleep 0.3; exit 5")
    lines = mgsup.ok("status", "--follow", shell_id).splitlines()
    assert lines[-1].startswith(f"{shell_id} failed exit=5 duration=")
    assert all(line.startswith(shell_id) for line in lines)


def test_status_follow_json_is_one_document_per_change(mgsup: Mgsup) -> None:
    shell_id = mgsup.start("--", "sleep", "0.3")
    updates = [json.loads(line) for line in mgsup.ok("status", "--follow", "--json", shell_id).splitlines()]
    assert updates[-1]["status"] == "stopped"
    assert {u["shell_id"] for u in updates} == {shell_id}


def test_follow_needs_an_id(mgsup: Mgsup) -> None:
    result = mgsup.run("status", "--follow")
    assert result.code == 2 and "--follow needs a SHELL_ID" in result.error_line()


def test_unknown_ids_exit_3_with_one_line(mgsup: Mgsup) -> None:
    calls = [(verb, "shell_deadbeef") for verb in (["status"], ["status", "--json"], ["logs"], ["wait"], ["kill"])]
    for verb, shell_id in [*calls, (["status"], "not-an-id")]:
        result = mgsup.run(*verb, shell_id)
        assert result.code == 3, (verb, result)
        assert f"no shell '{shell_id}'" in result.error_line()
        assert result.out == ""
