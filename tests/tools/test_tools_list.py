"""list_shells as a model uses it: newest first, a page of `limit`, filters by status and name, the next page."""

from __future__ import annotations

import json
from typing import Any

import pytest

from supervisor import Supervisor
from supervisor.tools import dispatch


def listed(**arguments: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(dispatch("list_shells", arguments))
    assert "error" not in result, result
    return result


@pytest.fixture
def shells(home: Supervisor) -> list[str]:
    """25 ended shells, oldest first: train-0..train-14 stopped, eval-0..eval-9 failed."""
    ids = [home.start_shell("true", name=f"train-{n}") for n in range(15)]
    ids += [home.start_shell("exit 3", name=f"eval-{n}") for n in range(10)]
    for shell_id in ids:
        home.wait_shell(shell_id, timeout=60)
    return ids


def test_a_page_of_the_newest_shells_and_the_call_for_the_next(shells: list[str]) -> None:
    first = listed()
    assert [s["shell_id"] for s in first["shells"]] == shells[::-1][:20]
    assert (first["total"], first["running"], first["queued"], first["max_concurrent"]) == (25, 0, 0, 10)
    assert first["hint"] == "5 older shells not shown: call list_shells with offset=20"
    second = listed(offset=20)
    assert [s["shell_id"] for s in second["shells"]] == shells[::-1][20:]
    assert "hint" not in second
    past = listed(offset=40)
    assert past["shells"] == [] and past["hint"] == "offset 40 is past the 25 matching shells"


def test_filters_by_status_and_name(shells: list[str]) -> None:
    failed = listed(status="failed", limit=3)
    assert [s["name"] for s in failed["shells"]] == ["eval-9", "eval-8", "eval-7"]
    assert failed["total"] == 10
    assert failed["hint"] == "7 older shells not shown: call list_shells with offset=3, limit=3, status='failed'"
    assert [s["name"] for s in listed(name="train-1*")["shells"]] == [f"train-{n}" for n in (14, 13, 12, 11, 10, 1)]
    assert [s["shell_id"] for s in listed(name="eval-2")["shells"]] == [shells[17]]
    assert listed(name="eval-*", status="stopped") == {"shells": [], "total": 0, "running": 0, "queued": 0,
                                                       "max_concurrent": 10}


def test_entries_are_compact_unless_detail_is_asked(shells: list[str]) -> None:
    [entry] = listed(limit=1)["shells"]
    assert entry == {"shell_id": shells[-1], "name": "eval-9", "status": "failed", "exit_code": 3,
                     "command": "exit 3", "duration_seconds": entry["duration_seconds"]}
    page = listed(limit=1, detail=True)
    [full] = page["shells"]
    assert full["stdout_path"].endswith("stdout.log") and full["pid"] and "created_at" in full
    assert page["hint"] == "24 older shells not shown: call list_shells with offset=1, limit=1, detail=true"


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
    ({"limit": 201}, "limit: Input should be less than or equal to 200"),
    ({"offset": -1}, "offset: Input should be greater than or equal to 0"),
    ({"name": ""}, "name: String should have at least 1 character"),
])
def test_bad_paging_is_a_readable_error(home: Supervisor, arguments: dict[str, Any], expected: str) -> None:
    error = json.loads(dispatch("list_shells", arguments))["error"]
    assert expected in error and "call list_shells again" in error


def test_the_page_bounds_the_answer_however_many_shells_there_are(home: Supervisor) -> None:
    # 200 ended shells cost 132 KB as one answer before paging; a default page holds 20 of them.
    ids = [home.start_shell("true") for _ in range(60)]
    for shell_id in ids:
        home.wait_shell(shell_id, timeout=60)
    answer = dispatch("list_shells", {})
    assert len(json.loads(answer)["shells"]) == 20
    assert len(answer) < 20 * 200
