"""Paths of the state directory and the lean JSON files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from supervisor import layout as lay


@pytest.mark.parametrize("value", [
    {"a": 1, "b": [1.5, None, True, False], "c": {"d": "é ☃ \n \"q\""}}, [], "", 0, -3.25,
])
def test_dumps_loads_round_trip(value: object) -> None:
    text = lay.dumps(value)
    assert lay.loads(text) == value
    assert json.loads(text) == value


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} x', "nope", '{"a": 1}{"b": 2}'])
def test_loads_rejects_what_is_not_one_document(text: str) -> None:
    with pytest.raises(ValueError):
        lay.loads(text)


def test_dumps_rejects_unknown_types() -> None:
    with pytest.raises(TypeError, match="set is not JSON serialisable"):
        lay.dumps({"a": {1}})


def test_write_json_is_owner_only_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    lay.write_json(str(target), {"status": "running"})
    lay.write_json(str(target), {"status": "stopped"})
    assert lay.read_json(str(target)) == {"status": "stopped"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["state.json"]


def test_write_json_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    lay.write_json(str(target), {"status": "running"})
    with pytest.raises(TypeError):
        lay.write_json(str(target), {"status": object()})
    assert lay.read_json(str(target)) == {"status": "running"}
    assert os.listdir(tmp_path) == ["state.json"]


def test_read_json_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        lay.read_json(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ValueError, match="not UTF-8"):
        lay.read_json(str(tmp_path / "bad.json"))
    (tmp_path / "half.json").write_bytes(b'{"status": "runn')
    with pytest.raises(ValueError):
        lay.read_json(str(tmp_path / "half.json"))


def test_default_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MGSUP_HOME", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert lay.default_home() == str(tmp_path / "a")
    monkeypatch.delenv("MGSUP_HOME")
    assert lay.default_home() == str(tmp_path / "xdg" / "mgsup")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert lay.default_home() == str(tmp_path / "user" / ".local" / "state" / "mgsup")


def test_ensure_creates_owner_only_directories(tmp_path: Path) -> None:
    layout = lay.Layout(tmp_path / "deep" / "home")
    layout.ensure()
    for path in (layout.home, layout.shells, layout.running, layout.queue):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path
    assert layout.file("shell_0000abcd", lay.STATE) == os.path.join(layout.home, "shells", "shell_0000abcd",
                                                                     "state.json")
