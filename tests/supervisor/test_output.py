"""Log windows: whole, tail, offset, max_bytes; UTF-8 never split, invalid bytes replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor import output
from supervisor.output import read_window


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "stdout.log"
    path.write_bytes(b"".join(f"line {i}\n".encode() for i in range(1, 11)))
    return path


def test_whole_file(log: Path) -> None:
    window = read_window(log)
    assert window.text == log.read_text()
    assert window.next_offset == log.stat().st_size and not window.truncated


def test_missing_file_is_empty(tmp_path: Path) -> None:
    window = read_window(tmp_path / "none.log", offset=5)
    assert (window.text, window.next_offset, window.truncated) == ("", 5, False)


@pytest.mark.parametrize(("lines", "expected"), [
    (0, ""), (1, "line 10\n"), (3, "line 8\nline 9\nline 10\n"), (10, None), (50, None),
])
def test_tail_lines(log: Path, lines: int, expected: str | None) -> None:
    window = read_window(log, tail_lines=lines)
    assert window.text == (log.read_text() if expected is None else expected)
    assert window.next_offset == log.stat().st_size
    assert window.truncated == (lines < 10)


def test_tail_counts_an_unterminated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(b"a\nb\nc")
    assert read_window(path, tail_lines=1).text == "c"
    assert read_window(path, tail_lines=2).text == "b\nc"


def test_tail_across_block_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "BLOCK", 7)
    path = tmp_path / "x.log"
    lines = [f"{i:04d}-{'y' * (i % 13)}\n" for i in range(300)]
    path.write_text("".join(lines))
    for n in (1, 2, 17, 299, 300, 301):
        assert read_window(path, tail_lines=n).text == "".join(lines[-n:]), n


def test_offset_then_next_offset_polls_incrementally(log: Path) -> None:
    first = read_window(log, max_bytes=14)
    assert first.text == "line 1\nline 2\n" and first.next_offset == 14 and first.truncated
    rest = read_window(log, offset=first.next_offset)
    assert first.text + rest.text == log.read_text() and not rest.truncated
    with log.open("ab") as f:
        f.write(b"more\n")
    assert read_window(log, offset=rest.next_offset).text == "more\n"
    past_end = read_window(log, offset=10**9)
    assert (past_end.text, past_end.next_offset) == ("", log.stat().st_size)


def test_max_bytes_with_tail_keeps_the_last_bytes(log: Path) -> None:
    window = read_window(log, tail_lines=5, max_bytes=8)
    assert window.text == "line 10\n" and window.truncated and window.next_offset == log.stat().st_size


def test_max_bytes_zero(log: Path) -> None:
    window = read_window(log, max_bytes=0)
    assert (window.text, window.next_offset, window.truncated) == ("", 0, True)


def test_utf8_character_is_never_split(tmp_path: Path) -> None:
    path = tmp_path / "u.log"
    text = "aé☃😀b"  # 1, 2, 3 and 4 byte characters
    path.write_text(text, encoding="utf-8")
    data = text.encode()
    collected = ""
    offset = 0
    while offset < len(data):
        window = read_window(path, offset=offset, max_bytes=4)
        assert "\ufffd" not in window.text
        assert window.next_offset > offset or window.text == ""
        if window.next_offset == offset:  # a 4-byte window that cannot hold the next character whole
            window = read_window(path, offset=offset, max_bytes=8)
        collected += window.text
        offset = window.next_offset
    assert collected == text
    for cap in range(1, len(data)):
        window = read_window(path, max_bytes=cap)
        assert data[: window.next_offset].decode() == window.text


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "bad.log"
    path.write_bytes(b"ok \xff\xfe done\n")
    assert read_window(path).text == "ok \ufffd\ufffd done\n"
    assert read_window(path, tail_lines=1).text == "ok \ufffd\ufffd done\n"
