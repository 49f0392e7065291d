"""The pure shaping of status dicts for the pages: rows, filters, pages, counts; and the page templates."""

from __future__ import annotations

from typing import Any

import pytest

from supervisor.dashboard import pages, views
from supervisor.dashboard.server import is_loopback
from supervisor.errors import InvalidRequest


def status(n: int, state: str = "stopped", **extra: Any) -> dict[str, Any]:
    return {"shell_id": f"shell_{n:08x}", "name": f"job-{n}", "status": state, "exit_code": 0, "signal": None,
            "timed_out": False, "command": ["python3", "-c", "print(1)"], "cwd": "/tmp",
            "created_at": f"2026-01-01T00:00:{n:02d}+00:00", "start_time": None, "end_time": None,
            "duration_seconds": None, "coordination": None, **extra}


def test_rows_come_newest_first_in_pages() -> None:
    shells = [status(n) for n in range(7)]
    first = views.table(shells, views.Query(per_page=3), now=0.0)
    assert [r["id"] for r in first["rows"]] == ["shell_00000006", "shell_00000005", "shell_00000004"]
    assert (first["pages"], first["first"], first["matched"], first["total"]) == (3, 1, 7, 7)
    last = views.table(shells, views.Query(per_page=3, page=3), now=0.0)
    assert [r["id"] for r in last["rows"]] == ["shell_00000000"]
    assert last["first"] == 7


def test_counts_follow_the_name_and_group_filters_but_not_the_status_filter() -> None:
    shells = [status(1, "running", group="a"), status(2, "failed", group="a"), status(3, "running", group="b"),
              status(4, "paused", group="a")]
    view = views.table(shells, views.Query(status="running", group="a"), now=0.0)
    assert [r["id"] for r in view["rows"]] == ["shell_00000001"]
    assert view["counts"] == {"queued": 0, "running": 1, "stopped": 0, "failed": 1, "killed": 0, "lost": 0,
                              "paused": 1}
    assert view["groups"] == ["a", "b"]


def test_a_coordination_run_gets_a_progress_cell_and_missing_keys_stay_none() -> None:
    summary = {"phase": "enforcement", "completion_percentage": 65, "winner": None, "stalled": True}
    row = views.row(status(1, "running", coordination=summary))
    assert row["progress"] == {"phase": "enforcement", "percent": 65, "stalled": True, "winner": None,
                               "outcome": None}
    assert row["command"] == "python3 -c 'print(1)'"
    assert views.row(status(2))["progress"] is None


@pytest.mark.parametrize(("params", "message"), [({"page": "two"}, "page must be a whole number"),
                                                 ({"per_page": "0"}, "per_page must be between")])
def test_bad_queries_say_what_is_wrong(params: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        views.Query.parse(params)


def test_pages_escape_what_they_fill_in() -> None:
    html = pages.render("shell.html", title="t", script="shell.js", nav="shells", csrf="c",
                        home="/tmp/<home>", shell_id='shell_"><script>')
    assert "<script>" not in html.split("</head>")[1]
    assert "/tmp/&lt;home&gt;" in html
    assert 'data-shell-id="shell_&quot;&gt;&lt;script&gt;"' in html


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True),
                                                 ("::1", True), ("0.0.0.0", False), ("192.0.2.1", False)])
def test_loopback_addresses_are_told_apart(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
