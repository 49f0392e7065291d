"""Both streams in one: each stderr line marked, and a mark always at the start of a line."""

from __future__ import annotations

from supervisor.logfollow import Interleaved


def _feed(*chunks: tuple[str, str]) -> str:
    out: list[str] = []
    both = Interleaved(out.append, mark="E| ")
    sinks = both.sinks()
    for stream, text in chunks:
        sinks[stream](text)
    return "".join(out)


def test_stderr_lines_are_marked() -> None:
    assert _feed(("stdout", "a\nb\n"), ("stderr", "oops\nagain\n"), ("stdout", "c\n")) == \
        "a\nb\nE| oops\nE| again\nc\n"


def test_a_line_split_across_reads_is_marked_once() -> None:
    assert _feed(("stderr", "Trace"), ("stderr", "back\n  line 1\n")) == "E| Traceback\nE|   line 1\n"


def test_an_unfinished_line_is_ended_before_the_other_stream_writes() -> None:
    assert _feed(("stdout", "progress 10%"), ("stderr", "warning\n"), ("stdout", "done\n")) == \
        "progress 10%\nE| warning\ndone\n"
    assert _feed(("stderr", "no newline"), ("stdout", "out")) == "E| no newline\nout"


def test_empty_reads_change_nothing() -> None:
    assert _feed(("stdout", ""), ("stderr", ""), ("stdout", "x")) == "x"
