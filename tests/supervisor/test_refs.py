"""Naming a shell by a prefix of its id, its name or `last` (`Supervisor.resolve`), through every verb."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from supervisor import Supervisor, lifecycle
from supervisor import layout as lay
from supervisor.errors import AmbiguousReference, InvalidRequest, ShellNotFound


def _plant(home: Supervisor, shell_id: str, name: str | None, created: float, status: str = "stopped") -> None:
    """A record with a chosen id (ids are random; prefixes need known ones), as the library writes them."""
    folder = home.home / "shells" / shell_id
    folder.mkdir(parents=True)
    spec = {"shell_id": shell_id, "name": name, "command": "true", "argv": ["/bin/sh", "-c", "true"],
            "cwd": str(home.home), "created": created}
    state = {**lifecycle.new(created, queued=False), "status": status, "start_time": created,
             "end_time": created + 1, "exit_code": 0}
    lay.write_json(str(folder / "spec.json"), spec)
    lay.write_json(str(folder / "state.json"), state)


@pytest.fixture
def planted(home: Supervisor) -> Supervisor:
    home.store.ensure()
    _plant(home, "shell_ab12cd34", "build", 1_700_000_000.0)
    _plant(home, "shell_ab99ee00", "build", 1_700_000_100.0)
    _plant(home, "shell_0f0f0f0f", "beef", 1_700_000_200.0)
    _plant(home, "shell_beef0001", None, 1_700_000_050.0)
    return home


@pytest.mark.parametrize(("ref", "expected"), [
    ("shell_ab12cd34", "shell_ab12cd34"),   # a full id
    ("ab12", "shell_ab12cd34"),             # a unique prefix of the hex digits
    ("AB12C", "shell_ab12cd34"),            # in either case
    ("shell_ab9", "shell_ab99ee00"),        # with the id's own prefix
    ("build", "shell_ab99ee00"),            # a name: the newest shell with it
    ("last", "shell_0f0f0f0f"),             # the newest shell of all
    ("0f", "shell_0f0f0f0f"),
])
def test_references_resolve(planted: Supervisor, ref: str, expected: str) -> None:
    assert planted.resolve(ref) == expected
    assert planted.get_shell_status(ref)["shell_id"] == expected
    assert planted.get_shell_output(ref)["shell_id"] == expected


def test_a_prefix_of_several_ids_lists_them_and_acts_on_none(planted: Supervisor) -> None:
    with pytest.raises(AmbiguousReference, match=re.escape("'ab' is a prefix of 2 shells' ids")) as info:
        planted.kill_shell("ab")
    message = str(info.value)
    assert "shell_ab99ee00 (build, stopped)" in message and "shell_ab12cd34 (build, stopped)" in message
    assert message.index("shell_ab99ee00") < message.index("shell_ab12cd34"), "newest first"
    assert info.value.candidates == ["shell_ab99ee00", "shell_ab12cd34"]
    assert isinstance(info.value, InvalidRequest) and info.value.exit_code == 2


def test_a_name_that_is_also_a_prefix_of_another_id_is_ambiguous(planted: Supervisor) -> None:
    with pytest.raises(AmbiguousReference, match="'beef' is the name of shell_0f0f0f0f and a prefix of other"):
        planted.resolve("beef")
    assert planted.resolve("beef0") == "shell_beef0001"


def test_an_unknown_reference_suggests_near_names(planted: Supervisor) -> None:
    with pytest.raises(ShellNotFound, match=re.escape("no shell 'biuld'")) as info:
        planted.resolve("biuld")
    assert "did you mean 'build'?" in str(info.value)
    with pytest.raises(ShellNotFound) as far:
        planted.resolve("zzzzzzzz-unrelated")
    assert "did you mean" not in str(far.value)
    with pytest.raises(ShellNotFound, match="there are no shells on record"):
        Supervisor(planted.home / "other").resolve("last")


def test_a_damaged_spec_is_still_found_by_its_id_prefix(planted: Supervisor) -> None:
    (planted.home / "shells" / "shell_beef0001" / "spec.json").write_text("{broken")
    assert planted.resolve("beef0") == "shell_beef0001"
    assert planted.resolve("last") == "shell_0f0f0f0f"


@pytest.mark.parametrize("name", ["last", "shell_1", "shell_0a1b2c3d"])
def test_names_that_a_reference_reads_otherwise_are_refused(home: Supervisor, name: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(f"invalid name {name!r}: 'last' and names beginning")):
        home.start_shell("true", name=name)
    assert not (home.home / "shells").exists() or not any((home.home / "shells").iterdir())


def test_every_verb_takes_a_name(home: Supervisor, tmp_path: Path) -> None:
    first = home.start_shell("sleep 30", name="nap")
    second = home.start_shell("sleep 30", name="nap")
    assert home.resolve("nap") == second and home.resolve("last") == second
    assert home.kill_shell("nap")["shell_id"] == second
    assert home.wait_shell("nap", timeout=10)["shell_id"] == second
    assert [status["shell_id"] for status in home.watch("nap", timeout=10)][-1] == second
    assert home.settle("nap")["shell_id"] == second
    assert home.get_shell_status(first)["status"] == "running"
    assert home.kill_many([first[6:12]])[0]["shell_id"] == first
    json.dumps(home.list_shells())


def test_a_full_id_costs_no_listing(home: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    shell_id = home.start_shell("true")
    monkeypatch.setattr(type(home.store), "ids", lambda self: pytest.fail("listed the shells for a full id"))
    assert home.resolve(shell_id) == shell_id
    with pytest.raises(ShellNotFound):
        home.resolve("shell_00000000")
