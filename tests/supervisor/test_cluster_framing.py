"""Reading the runner's records out of a job's Ray log: Ray's lines, partial writes, the end."""

from __future__ import annotations

from supervisor.cluster import framing
from supervisor.cluster.framing import Cursor, read, record

BANNER = "2026-01-01 INFO job_manager.py:581 -- Runtime env is setting up.\nRunning entrypoint for job x: y\n"
BEGIN = record("begin", {"host": "node"})


def test_output_between_records_is_the_jobs_text_exactly() -> None:
    log = BANNER + BEGIN + "a\nb" + record("status", {"phase": "x"}) + "c\n" + record("end", {"status": "stopped"})
    piece = read(log, Cursor())
    assert piece.output == "a\nbc\n"
    assert piece.records == [("status", {"phase": "x"}), ("end", {"status": "stopped"})]
    assert piece.cursor == Cursor(consumed=len(log), begun=True, ended=True)


def test_nothing_is_the_jobs_before_begin() -> None:
    piece = read(BANNER + "a line Ray wrote", Cursor())
    assert (piece.output, piece.records, piece.cursor) == ("", [], Cursor())


def test_reading_on_from_a_cursor_returns_only_what_is_new() -> None:
    first = BANNER + BEGIN + "one\n"
    piece = read(first, Cursor())
    more = read(first + "two\n", piece.cursor)
    assert (piece.output, more.output) == ("one\n", "two\n")


def test_a_record_being_written_waits_for_the_next_read() -> None:
    whole = record("status", {"phase": "enforcement"})
    for cut in (1, len(framing.OPEN) - 1, len(framing.OPEN) + 3, len(whole) - 1):
        log = BANNER + BEGIN + "out" + whole[:cut]
        piece = read(log, Cursor())
        assert (piece.output, piece.records) == ("out", []), cut
        rest = read(BANNER + BEGIN + "out" + whole + "after", piece.cursor)
        assert (rest.output, rest.records) == ("after", [("status", {"phase": "enforcement"})]), cut


def test_text_after_the_end_is_not_the_jobs() -> None:
    log = BANNER + BEGIN + "x" + record("end", {"status": "failed"}) + "Ray: job finished\n"
    piece = read(log, Cursor())
    assert piece.output == "x" and piece.cursor.ended
    assert read(log + "more", piece.cursor).output == ""


def test_a_damaged_record_is_dropped_and_the_output_kept() -> None:
    log = BANNER + BEGIN + "a" + framing.OPEN + "status {not json" + framing.CLOSE + "b"
    piece = read(log, Cursor())
    assert (piece.output, piece.records) == ("ab", [("status", None)])


def test_records_escape_their_own_separator() -> None:
    text = record("answer", {"text": "x\x1ey"})
    assert text.count("\x1e") == 2
    assert read(BEGIN + text, Cursor()).records == [("answer", {"text": "x\x1ey"})]
