"""coordination_events.json: appended in place, a complete JSON document after every event."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from coordinator.events import EventLog, read_events

pytestmark = pytest.mark.timeout(10)

SESSION = {"session_id": "log_x", "question": "q?\nsecond line", "agents": ["a", "b"]}


def test_each_event_is_appended_and_the_file_stays_one_document(tmp_path: Path) -> None:
    path = tmp_path / "coordination_events.json"
    log = EventLog(path, SESSION, clock=lambda: 12.5)
    assert json.loads(path.read_text()) == {"session_metadata": SESSION, "events": []}
    inode = path.stat().st_ino
    before = path.read_bytes()
    answer = "x" * 2**20
    for number in range(12):
        log.record("new_answer", "a", {"label": f"agent1.{number}", "content": answer}, {"phase": "enforcement"})
        now = path.read_bytes()
        # The bytes already written stay as they are (only the closing "]}" moves): an append.
        assert now.startswith(before[: -len(b"\n]}\n")])
        assert path.stat().st_ino == inode
        document = json.loads(now)
        assert len(document["events"]) == number + 1
        before = now
    log.record("session_end", None)
    log.close()
    log.record("ignored after close")
    events = json.loads(path.read_text())["events"]
    assert [e["event_type"] for e in events] == ["new_answer"] * 12 + ["session_end"]
    assert events[0] == {
        "timestamp": 12.5,
        "event_type": "new_answer",
        "agent_id": "a",
        "details": {"label": "agent1.0", "content": answer},
        "context": {"phase": "enforcement"},
    }
    assert events[-1]["details"] == {} and events[-1]["context"] == {}
    # One event per line: a 13-event log is the header, 13 lines and the closing line.
    assert len(path.read_text().splitlines()) == 15


def test_a_file_cut_anywhere_still_reads_up_to_its_last_whole_event(tmp_path: Path) -> None:
    path = tmp_path / "coordination_events.json"
    log = EventLog(path, SESSION)
    for number in range(5):
        log.record("vote", "b", {"reason": f"reason {number} ü"})
    log.close()
    whole = path.read_bytes()
    assert read_events(path) == json.loads(whole)
    lines = whole.split(b"\n")
    for cut in range(len(lines[0]) + 1, len(whole)):
        path.write_bytes(whole[:cut])
        complete = sum(1 for n in range(1, 6) if len(b"\n".join(lines[: n + 1]).removesuffix(b",")) <= cut)
        document = read_events(path)
        assert document["session_metadata"] == SESSION
        assert [e["details"]["reason"] for e in document["events"]] == [f"reason {n} ü" for n in range(complete)]


def test_files_of_earlier_versions_still_read(tmp_path: Path) -> None:
    path = tmp_path / "coordination_events.json"
    old = {"session_metadata": SESSION, "events": [{"timestamp": 1.0, "event_type": "vote", "agent_id": "a",
                                                    "details": {}, "context": {}}]}
    path.write_text(json.dumps(old, indent=2))
    assert read_events(path) == old


def test_text_no_file_can_hold_is_repaired(tmp_path: Path) -> None:
    path = tmp_path / "coordination_events.json"
    log = EventLog(path, SESSION)
    log.record("new_answer", "a", {"content": "cut \ud83d"})
    log.close()
    assert read_events(path)["events"][0]["details"]["content"] == "cut \ufffd"


def test_the_log_keeps_no_descriptor_after_close(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    log = EventLog(tmp_path / "e.json", SESSION)
    log.record("x")
    log.close()
    assert len(os.listdir("/proc/self/fd")) == before
