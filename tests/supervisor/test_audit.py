"""The audit log: one line per tool call, env values never written, owner-only, bounded by rotation,
shared by concurrent writers, and shown by `mgsup audit`."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor import Supervisor, audit
from supervisor.tools import dispatch

pytestmark = pytest.mark.timeout(60)
SECRET = "hunter2-value"


def test_every_dispatched_call_is_one_line_without_env_values(home: Supervisor) -> None:
    started = json.loads(dispatch("start_shell", {"command": "true", "env": [f"API_KEY={SECRET}"]}))
    dispatch("wait_shell", {"shell_id": started["shell_id"], "timeout": 30})
    dispatch("get_shell_status", '{"shell_id": "shell_0badcafe"}')
    dispatch("start_shell", '{"command": "true", "env": ["' + SECRET + '"]}')
    dispatch("no_such_tool", "{}")
    dispatch("start_shell", '{"command": "true", "env": ["API_KEY=' + SECRET + '"')  # not JSON at all
    log = Path(audit.path(home.home))
    text = log.read_text()
    assert SECRET not in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    records = [json.loads(line) for line in text.splitlines()]
    assert [(r["tool"], r["decision"], r["result"]) for r in records] == [
        ("start_shell", "allowed", "ok"), ("wait_shell", "allowed", "ok"), ("get_shell_status", "allowed", "error"),
        ("start_shell", "invalid", "error"), ("no_such_tool", "invalid", "error"), ("start_shell", "invalid", "error")]
    first = records[0]
    assert first["arguments"] == {"command": "true", "env": ["API_KEY=***"]}
    assert (first["shell_id"], first["surface"], first["session"], first["pid"]) == (
        started["shell_id"], "dispatch", None, os.getpid())
    assert records[2]["error"].startswith("no shell 'shell_0badcafe'")
    assert records[3]["arguments"] == {"command": "true", "env": ["***"]}
    assert records[5]["arguments"].startswith("<") and records[5]["arguments"].endswith(" characters>")


def test_a_bad_size_setting_refuses_the_call_and_starts_nothing(home: Supervisor,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGSUP_AUDIT_MAX_BYTES", "lots")
    answer = json.loads(dispatch("start_shell", {"command": "true"}))
    assert "MGSUP_AUDIT_MAX_BYTES must be a whole number >= 1, got 'lots'" in answer["error"]
    assert "misconfigured" in answer["error"]
    assert home.list_shells() == []


def test_the_log_rotates_and_keeps_three_older_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGSUP_AUDIT_MAX_BYTES", "1000")
    for n in range(200):
        audit.append(tmp_path, {"n": n, "tool": "list_shells", "padding": "x" * 40})
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(audit.AUDIT_FILE))
    assert names == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2", "audit.jsonl.3"]
    for name in names:
        assert (tmp_path / name).stat().st_size <= 1000
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    kept = [r["n"] for r in audit.read(tmp_path)]
    # The newest records, in order, none missing between the oldest kept and the last.
    assert kept == list(range(kept[0], 200)) and kept[0] > 0
    assert [r["n"] for r in audit.read(tmp_path, tail=30)] == list(range(170, 200))
    assert audit.read(tmp_path, tail=0) == []


def test_a_log_made_readable_by_others_is_made_owner_only(tmp_path: Path) -> None:
    log = Path(audit.path(tmp_path))
    log.write_text("")
    log.chmod(0o644)
    audit.append(tmp_path, {"tool": "list_shells"})
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def _writer(home: str, worker: int, count: int) -> None:
    for n in range(count):
        audit.append(home, {"worker": worker, "n": n, "padding": "y" * 200})


def test_concurrent_writers_never_mix_or_lose_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGSUP_AUDIT_MAX_BYTES", str(10**9))
    workers = [multiprocessing.get_context("fork").Process(target=_writer, args=(str(tmp_path), w, 200))
               for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    lines = Path(audit.path(tmp_path)).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for w in range(4):
        assert [r["n"] for r in records if r["worker"] == w] == list(range(200))


def test_redact_keeps_names_and_hides_every_value() -> None:
    assert audit.redact({"env": {"A": "1"}}) == {"env": {"A": "***"}}
    assert audit.redact({"env": ["A=1", "B=", 7]}) == {"env": ["A=***", "B=***", "***"]}
    assert audit.redact({"env": "A=1"}) == {"env": "***"}
    assert audit.redact({"command": "x"}) == {"command": "x"}


def test_mgsup_audit_shows_the_calls(home: Supervisor) -> None:
    dispatch("list_shells", {})
    dispatch("kill_shell", {"shell_id": "shell_0badcafe"})
    mgsup = [sys.executable, "-m", "supervisor"]
    shown = subprocess.run([*mgsup, "audit"], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 2
    assert "  dispatch  list_shells  allowed  ok" in lines[0]
    assert "  dispatch  kill_shell  allowed  error  shell_0badcafe error: no shell 'shell_0badcafe'" in lines[1]
    tail = subprocess.run([*mgsup, "audit", "--tail", "1", "--json"], capture_output=True, text=True, timeout=30)
    assert [r["tool"] for r in json.loads(tail.stdout)] == ["kill_shell"]


def test_mgsup_audit_on_an_empty_home_says_so(tmp_path: Path) -> None:
    shown = subprocess.run([sys.executable, "-m", "supervisor", "--home", str(tmp_path / "h"), "audit"],
                           capture_output=True, text=True, timeout=30)
    assert (shown.returncode, shown.stdout) == (0, "")
    assert shown.stderr == f"no tool calls on record in {tmp_path / 'h'}\n"
    assert not (tmp_path / "h").exists()


def test_the_log_is_never_written_through_a_link_or_into_a_home_others_control(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    Path(audit.path(home)).symlink_to(victim)
    with pytest.raises(OSError):
        audit.append(home, {"tool": "list_shells"})
    assert victim.read_text() == "precious\n"
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(OSError, match="can be written by others"):
        audit.append(shared, {"tool": "list_shells"})
    assert list(shared.iterdir()) == []
