"""Reading what a run printed: the announced paths at the head, the closing lines from the end."""

from __future__ import annotations

import os
from pathlib import Path

from supervisor import layout as lay
from supervisor.automation.locate import HEAD_BLOCK, announced_paths
from supervisor.automation.printed import (
    PROGRESS_LINE,
    TAIL_BLOCK,
    Printed,
    closing_lines,
    parse_closing,
    printed,
    record_printed,
)

MASSGEN = Path(__file__).resolve().parents[1] / "data" / "massgen-0.1.97"


def test_announced_paths(tmp_path: Path) -> None:
    out = tmp_path / "stdout.log"
    assert announced_paths(out) == (None, None)
    out.write_text("noise\nLOG_DIR: /runs/log_1\nSTATUS: /runs/log_1/status.json\nLOG_DIR: /other\n")
    assert announced_paths(out) == ("/runs/log_1", "/runs/log_1/status.json")
    out.write_text("LOG_DIR: /runs/log_2\n")
    assert announced_paths(out) == ("/runs/log_2", "/runs/log_2/status.json")
    out.write_text("x" * (HEAD_BLOCK + 10) + "\nLOG_DIR: /runs/log_3\r\nSTATUS: /runs/log_3/s.json\n")
    assert announced_paths(out) == ("/runs/log_3", "/runs/log_3/s.json")


def test_a_line_still_being_written_is_not_read_while_running(tmp_path: Path) -> None:
    out = tmp_path / "stdout.log"
    out.write_text("LOG_DIR: /runs/lo")
    assert announced_paths(out) == (None, None)
    assert announced_paths(out, ended=True) == ("/runs/lo", "/runs/lo/status.json")


def test_parse_closing() -> None:
    lines = ["QUESTION: q", "WINNER: agent_a", "ANSWER_FILE: /l/final/agent_a/answer.txt", "noise: x",
             "COMPLETED: 2 agents"]
    assert parse_closing(lines) == {"WINNER": "agent_a", "ANSWER_FILE": "/l/final/agent_a/answer.txt",
                                    "COMPLETED": "2 agents"}
    assert parse_closing(["\x1b[31m12:00 | ERROR | ❌ Unable to answer\x1b[0m"]) == {"ERROR": "Unable to answer"}
    assert len(parse_closing(["ERROR: " + "x" * 10_000])["ERROR"]) < 600, "an error line is bounded"


def test_the_end_is_found_however_much_was_printed_before_it(tmp_path: Path) -> None:
    out = tmp_path / "stdout.log"
    timeline = "".join(f"  [VOTE] agent_{i} -> agent_0\n         Reason: {'because ' * 20}\n" for i in range(2000))
    out.write_text(f"LOG_DIR: /l\n{PROGRESS_LINE}\n" + "noise\n" * 50_000 + "WINNER: agent_0\nTIMELINE:\n"
                   + timeline + "ANSWER: /l/final/agent_0/answer.txt\n")
    assert out.stat().st_size > 10 * TAIL_BLOCK
    lines = closing_lines(out)
    assert lines[:2] == ["noise", "noise"] and "WINNER: agent_0" in lines
    assert parse_closing(lines)["ANSWER"] == "/l/final/agent_0/answer.txt"


def test_closing_lines_without_a_progress_line_are_bounded(tmp_path: Path) -> None:
    out = tmp_path / "stdout.log"
    out.write_text("a" * 100 + "\n" + "ERROR: boom\n")
    assert closing_lines(out, limit=20) == ["ERROR: boom"], "a cut first line is left out"
    out.write_text(f"{PROGRESS_LINE}\nERROR: boom\n")
    assert closing_lines(out) == ["ERROR: boom"]
    assert closing_lines(tmp_path / "missing.log") == []


def test_massgen_prefers_the_absolute_answer_and_resolves_the_relative_one(tmp_path: Path) -> None:
    found = printed(MASSGEN / "completed.stdout", ended=True, cwd="/work/runs")
    assert found.answer_file is not None and found.answer_file.startswith("/tmp/mg8/run1/.massgen/")
    assert found.answer_file.endswith("/turn_1/final/agent_a/answer.txt") and found.error is None
    out = tmp_path / "stdout.log"
    out.write_text(f"LOG_DIR: /l\n{PROGRESS_LINE}\nWINNER: a\nANSWER_FILE: .massgen/final/a/answer.txt\n")
    assert printed(out, ended=True, cwd="/work/runs").answer_file == "/work/runs/.massgen/final/a/answer.txt"


def test_massgen_errors_are_read_from_stdout_or_stderr(tmp_path: Path) -> None:
    failed = printed(MASSGEN / "all-failed.stdout", ended=True, cwd="/w", stderr_path=MASSGEN / "all-failed.stderr")
    assert failed.answer_file is None
    assert failed.error == "Unable to provide coordinated answer - no successful agents"
    config = printed(MASSGEN / "config-error.stdout", ended=True, cwd="/w", coordination=True,
                     stderr_path=MASSGEN / "config-error.stderr")
    assert config == Printed(error="Configuration error: Agents with 'cwd' (filesystem support) require "
                                   "orchestrator configuration.")
    plain = printed(MASSGEN / "config-error.stdout", ended=True, cwd="/w", stderr_path=MASSGEN / "config-error.stderr")
    assert plain == Printed(), "a shell that is no coordination run and announced nothing has no closing lines"


def test_printed_reads_a_record_and_never_writes_one(tmp_path: Path) -> None:
    out, err, record = tmp_path / "stdout.log", tmp_path / "stderr.log", str(tmp_path / "printed.json")
    out.write_text("LOG_DIR: /l\nSTATUS: /l/status.json\nERROR: no agent answered\nCOMPLETED: 2 agents, 1.0s total\n")
    err.write_text("")
    assert printed(out, ended=False, cwd="/", record=record) == Printed("/l", "/l/status.json")
    found = printed(out, ended=True, cwd="/", record=record)
    assert found == Printed("/l", "/l/status.json", None, "no agent answered")
    assert not os.path.exists(record), "a read writes nothing"
    record_printed(record, out, cwd="/", stderr_path=err)
    assert lay.read_json(record) == {"log_dir": "/l", "status_file": "/l/status.json", "answer_file": None,
                                     "error": "no agent answered"}
    out.write_text("")
    assert printed(out, ended=True, cwd="/", record=record) == found, "read back from the record, not the log"
    assert printed(out, ended=False, cwd="/", record=record) == Printed(), "a record is for an ended job only"


def test_printed_without_a_writable_record_reads_the_log(tmp_path: Path) -> None:
    out = tmp_path / "stdout.log"
    out.write_text("LOG_DIR: /l\nANSWER_FILE: /l/final/a/answer.txt\n")
    record = str(tmp_path / "missing-folder" / "printed.json")
    assert printed(out, ended=True, cwd="/", record=record).answer_file == "/l/final/a/answer.txt"
    record_printed(record, out, cwd="/", stderr_path=tmp_path / "stderr.log")  # a folder that is not there
    assert not os.path.exists(record)
