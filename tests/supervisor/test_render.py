"""The shells table: what matters first, in 80 columns (pure: status dicts in, text out)."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from supervisor import render

NOW = 1_800_000_000.0
CREATED = "2027-01-15T08:00:00+00:00"


def _status(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"shell_id": "shell_0a1b2c3d", "name": None, "status": "stopped", "exit_code": 0,
                            "signal": None, "timed_out": False, "pid": None, "command": "true",
                            "created_at": CREATED, "start_time": CREATED, "duration_seconds": 1.0,
                            "coordination": None, "question": None}
    return base | values


def _render(shells: list[dict[str, Any]], width: int) -> list[str]:
    console = Console(width=width, no_color=True, file=None)
    with console.capture() as captured:
        console.print(render.shells_table(shells, now=NOW, width=width))
    return [line.rstrip() for line in captured.get().splitlines()]


def test_the_exit_as_people_read_it_and_timeouts_named() -> None:
    assert render.exit_text(_status(status="killed", exit_code=-15, signal="SIGTERM")) == "143"
    assert render.exit_text(_status(status="killed", exit_code=-9)) == "137"
    assert render.exit_text(_status(status="failed", exit_code=2)) == "2"
    assert render.exit_text(_status(status="running", exit_code=None)) == "-"
    assert render.exit_text(_status(status="lost", exit_code=None)) == "-"
    assert render.status_text(_status(status="killed", timed_out=True)) == "timed out"
    assert render.status_text(_status(status="killed")) == "killed"


def test_a_coordination_run_shows_its_question_and_progress() -> None:
    run = _status(status="running", command=["/venv/bin/mgcoord", "--automation", "--config", "c.yaml",
                                             "--instance-id", "0a1b2c3d", "What is 17 * 23?"],
                  question="What is  17 * 23?", coordination={"phase": "voting", "completion_percentage": 65})
    assert render.what_text(run) == "[voting 65%] What is 17 * 23?"
    assert render.what_text(_status(command=["/usr/bin/python3", "-c", "print(1)"])) == "python3 -c 'print(1)'"


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_table_fits_its_width_and_keeps_names_readable(width: int) -> None:
    shells = [_status(shell_id=f"shell_{i:08x}", name=f"experiment-{i}", status=s, exit_code=c,
                      command="python3 train.py --epochs 100 --learning-rate 0.001 --batch-size 64")
              for i, (s, c) in enumerate([("running", None), ("killed", -15), ("failed", 1)])]
    lines = _render(shells, width)
    assert max(len(line) for line in lines) <= width
    assert lines[0].split() == ["ID", "NAME", "STATUS", "AGE", "TIME", "EXIT", "WHAT"]
    rows = [line.split() for line in lines[1:]]
    assert [row[0] for row in rows] == ["00000000", "00000001", "00000002"], "short ids"
    assert [row[1] for row in rows] == ["experiment-0", "experiment-1", "experiment-2"], "names whole"
    assert rows[1][5] == "143"
    assert all("python3" in line for line in lines[1:])


def test_a_cost_column_only_when_a_run_shown_has_a_cost_and_cluster_shells_marked() -> None:
    plain = _status(shell_id="shell_00000001", name="local", command="make test")
    remote = _status(shell_id="shell_00000002", name="remote", status="running", backend="ray",
                     command="python3 train.py")
    lines = _render([plain, remote], 80)
    assert lines[0].split() == ["ID", "NAME", "STATUS", "AGE", "TIME", "EXIT", "WHAT"]
    assert lines[1].endswith(" make test") and lines[2].endswith(" ray: python3 train.py")
    paid = _status(shell_id="shell_00000003", name="paid", question="What is 17 * 23?",
                   coordination={"phase": "completed", "completion_percentage": 100, "cost_usd": 0.0123})
    lines = _render([plain, remote, paid], 80)
    assert max(len(line) for line in lines) <= 80
    assert lines[0].split() == ["ID", "NAME", "STATUS", "AGE", "TIME", "EXIT", "COST", "WHAT"]
    assert [line.split()[6] for line in lines[1:]] == ["-", "-", "$0.0123"]
    assert lines[3].endswith("[completed 100%] What is 17 * 23?")
