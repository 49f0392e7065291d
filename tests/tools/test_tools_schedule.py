"""Scheduling arguments through `dispatch` (OpenAI function calling): group, after, retries, retry_delay,
merge_output and the list filter by group; errors a model can act on that start nothing; and the tool
policy, which these arguments must not get around."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from supervisor import Supervisor
from supervisor.tools import dispatch, openai_tools
from supervisor.tools.policy import Policy

pytestmark = pytest.mark.timeout(60)
PY = sys.executable


def call(name: str, arguments: dict[str, Any], policy: Policy | None = None) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(dispatch(name, arguments, policy=policy))
    return result


def strict_call(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """A call as a model in strict mode sends it: every property, null for those it leaves to the default."""
    [tool] = openai_tools("chat", names=[name])
    schema = tool["function"]["parameters"]
    arguments = {key: given.get(key) for key in schema["properties"]}
    jsonschema.validate(arguments, schema)
    return call(name, arguments)


def test_strict_calls_carry_the_scheduling_arguments(home: Supervisor, tmp_path: Path) -> None:
    first = strict_call("start_shell", {"command": "echo one", "name": "one", "group": "batch"})
    home.wait_shell(first["shell_id"], timeout=30)
    second = strict_call("start_shell", {"command": "echo two", "group": "batch", "after": ["one"], "retries": 1,
                                         "retry_delay": 0.5, "merge_output": True})
    assert (second["group"], second["after"], second["retries"]) == ("batch", [first["shell_id"]], 1)
    spec = home.store.spec(second["shell_id"])
    assert (spec.group, spec.after, spec.retries, spec.retry_delay, spec.merge_output) == (
        "batch", [first["shell_id"]], 1, 0.5, True)
    # Nulls are the defaults: no group, no dependencies, one attempt, stderr kept apart.
    plain = strict_call("start_shell", {"command": "echo three"})
    spec = home.store.spec(plain["shell_id"])
    assert (spec.group, spec.after, spec.retries, spec.retry_delay, spec.merge_output) == (None, [], 0, 0.0, False)
    assert not {"group", "after", "attempt", "retries"} & set(plain)
    listed = strict_call("list_shells", {"group": "batch"})
    assert [s["shell_id"] for s in listed["shells"]] == [second["shell_id"], first["shell_id"]]


def test_the_compact_view_shows_scheduling_only_when_set(home: Supervisor) -> None:
    plain = call("start_shell", {"command": "exit 3"})
    retried = call("start_shell", {"command": "exit 3", "retries": 1, "group": "ci", "after": [plain["shell_id"]]})
    assert not {"group", "after", "attempt", "retries"} & set(call("wait_shell", {"shell_id": plain["shell_id"]}))
    # Its dependency failed: it ends failed without running, and says which shell it waited for.
    ended = call("wait_shell", {"shell_id": retried["shell_id"], "timeout": 30})
    assert (ended["status"], ended["group"], ended["after"]) == ("failed", "ci", [plain["shell_id"]])
    assert plain["shell_id"] in ended["message"]
    detail = call("get_shell_status", {"shell_id": retried["shell_id"], "detail": True})
    assert (detail["group"], detail["after"], detail["retries"]) == ("ci", [plain["shell_id"]], 1)


def test_a_failing_command_is_run_again_until_its_retries_are_spent(home: Supervisor) -> None:
    started = call("start_shell", {"command": "echo try; exit 4", "retries": 2})
    ended = call("wait_shell", {"shell_id": started["shell_id"], "timeout": 30})
    assert (ended["status"], ended["exit_code"], ended["attempt"], ended["retries"]) == ("failed", 4, 3, 2)
    assert call("get_shell_output", {"shell_id": started["shell_id"]})["stdout"] == "try\n" * 3


def test_a_group_limit_holds_for_tool_starts(home: Supervisor) -> None:
    home.set_group_limit("gpu", 1)
    running = call("start_shell", {"command": ["sleep", "60"], "group": "gpu"})
    refused = call("start_shell", {"command": "true", "group": "gpu"})
    assert refused["error"].startswith("Maximum concurrent shells of group 'gpu' (1) reached: nothing was started. "
                                       "Call start_shell again with queue=true")
    assert [s["shell_id"] for s in home.list_shells()] == [running["shell_id"]]
    waiting = call("start_shell", {"command": "echo next", "group": "gpu", "queue": True})
    assert waiting["status"] == "queued"
    assert call("kill_shell", {"shell_id": running["shell_id"], "grace": 1})["outcome"] == "killed"
    assert call("wait_shell", {"shell_id": waiting["shell_id"], "timeout": 30})["status"] == "stopped"


def test_list_shells_filters_by_group_and_pages_within_it(home: Supervisor) -> None:
    ids = [call("start_shell", {"command": "true", "group": "ci"})["shell_id"] for _ in range(3)]
    call("start_shell", {"command": "true"})
    page = call("list_shells", {"group": "ci", "limit": 2})
    assert [s["shell_id"] for s in page["shells"]] == ids[:0:-1] and page["total"] == 3
    assert page["hint"] == "1 older shells not shown: call list_shells with offset=2, limit=2, group='ci'"
    assert call("list_shells", {"group": "none-such"})["total"] == 0
    assert call("list_shells", {"group": "no spaces"})["error"].startswith("invalid request: invalid group 'no spaces'")
    for shell_id in ids:
        home.wait_shell(shell_id, timeout=30)


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"after": ["biuld"]}, "unknown shell 'biuld' in after: no shell on record has this id or name, and nothing was "
                           "started; did you mean 'build'? call list_shells to see the shells on record, then call "
                           "start_shell again with after naming shells that exist"),
    ({"after": ["shell_00000000"]}, "unknown shell 'shell_00000000' in after"),
    ({"group": "a/b"}, "invalid request: invalid group 'a/b': use 1-64 letters, digits, '.', '_' or '-', starting "
                       "with a letter or digit. Correct the arguments and call start_shell again"),
    ({"retries": -1}, "invalid arguments for start_shell: retries: Input should be greater than or equal to 0. "
                      "Correct them and call start_shell again"),
    ({"retries": 1001}, "retries: Input should be less than or equal to 1000"),
    ({"retries": 1, "retry_delay": -2}, "retry_delay: Input should be greater than or equal to 0"),
    ({"after": "build"}, "after: Input should be a valid list"),
])
def test_bad_scheduling_arguments_are_errors_that_start_nothing(home: Supervisor, tmp_path: Path,
                                                                arguments: dict[str, Any], expected: str) -> None:
    build = home.start_shell("true", name="build")
    home.wait_shell(build, timeout=30)
    answer = call("start_shell", {"command": f"touch {tmp_path / 'x'}", **arguments})
    assert set(answer) == {"error"} and expected in answer["error"], answer
    assert [s["shell_id"] for s in home.list_shells()] == [build]
    assert not (tmp_path / "x").exists()


def test_an_ambiguous_after_reference_lists_the_candidates(home: Supervisor) -> None:
    # Among 17 ids, some two share their first hex digit (there are 16).
    ids = [home.start_shell("true", queue=True) for _ in range(17)]
    prefix = next(p for p in "0123456789abcdef" if sum(i[6] == p for i in ids) > 1)
    answer = call("start_shell", {"command": "true", "after": [prefix]})["error"]
    assert answer.startswith(f"'{prefix}' in after fits several shells, newest first: ")
    assert answer.endswith("call start_shell again with one of these ids in after")
    assert len(home.list_shells()) == 17
    for shell_id in ids:
        home.wait_shell(shell_id, timeout=30)


def test_start_coordination_takes_group_after_and_retries(home: Supervisor, tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
    blocker = home.start_shell(["sleep", "60"], name="blocker")
    run = call("start_coordination", {"config": str(config), "question": "What is 2 + 2?", "cwd": str(tmp_path),
                                      "group": "runs", "after": ["blocker"], "retries": 1, "retry_delay": 1})
    assert (run["status"], run["group"], run["after"], run["retries"]) == ("queued", "runs", [blocker], 1)
    spec = home.store.spec(run["shell_id"])
    assert (spec.group, spec.retries, spec.retry_delay) == ("runs", 1, 1.0)
    missing = call("start_coordination", {"config": str(config), "question": "q", "after": ["blokker"]})["error"]
    assert missing.startswith("unknown shell 'blokker' in after") and "call start_coordination again" in missing
    assert len(home.list_shells()) == 2
    # Its dependency killed: the run ends failed without running.
    home.kill_shell(blocker, grace=1)
    assert call("wait_shell", {"shell_id": run["shell_id"], "timeout": 30})["status"] == "failed"


# -- the policy ------------------------------------------------------------------------------------


def test_read_only_refuses_scheduled_starts(home: Supervisor, tmp_path: Path) -> None:
    build = home.start_shell("true", name="build")
    policy = Policy.from_mapping({"read_only": True})
    for arguments in ({"group": "ci"}, {"after": ["build"]}, {"retries": 3, "retry_delay": 1}, {"merge_output": True}):
        answer = call("start_shell", {"command": f"touch {tmp_path / 'x'}", **arguments}, policy)
        assert answer["error"].startswith("denied by the policy rule read_only: true"), arguments
    assert [s["shell_id"] for s in home.list_shells()] == [build]
    assert not (tmp_path / "x").exists()
    home.wait_shell(build, timeout=30)


def test_commands_and_roots_hold_whatever_the_scheduling(home: Supervisor, tmp_path: Path) -> None:
    allowed = home.start_shell("true", name="allowed")
    root = tmp_path / "root"
    root.mkdir()
    policy = Policy.from_mapping({"commands": {"allow": ["echo *"]}, "cwd_roots": [str(root)]})
    # A shell that waits for an allowed one is still a command the patterns must allow.
    refused = call("start_shell", {"command": ["touch", str(tmp_path / "x")], "after": ["allowed"], "group": "g",
                                   "retries": 2, "cwd": str(root)}, policy)
    assert refused["error"].startswith('denied by the policy rule commands.allow: ["echo *"]')
    outside = call("start_shell", {"command": ["echo", "hi"], "after": ["allowed"], "cwd": str(tmp_path)}, policy)
    assert outside["error"].startswith(f'denied by the policy rule cwd_roots: ["{root}"]')
    assert [s["shell_id"] for s in home.list_shells()] == [allowed]
    ok = call("start_shell", {"command": ["echo", "hi"], "after": ["allowed"], "group": "g", "cwd": str(root)},
              policy)
    assert call("wait_shell", {"shell_id": ok["shell_id"], "timeout": 30}, policy)["status"] == "stopped"
    assert not (tmp_path / "x").exists()


def test_max_timeout_bounds_all_attempts_of_a_start(home: Supervisor) -> None:
    policy = Policy.from_mapping({"max_timeout_seconds": 60})
    too_long = call("start_shell", {"command": "true", "retries": 2, "timeout": 30}, policy)["error"]
    assert too_long.startswith("denied by the policy rule max_timeout_seconds: 60 (inline policy): timeout 30 "
                               "seconds per attempt x 3 attempts (retries=2) is 90 seconds, more than that")
    waits = call("start_shell", {"command": "true", "retries": 2, "timeout": 15, "retry_delay": 10}, policy)["error"]
    assert "+ 20 seconds between them is 65 seconds, more than that" in waits
    no_room = call("start_shell", {"command": "true", "retries": 3, "retry_delay": 20}, policy)["error"]
    assert "waits 60 seconds between attempts, which leaves no time to run" in no_room
    assert home.list_shells() == []
    # Without a timeout each attempt gets its share; one that fits is kept as asked.
    shared = call("start_shell", {"command": "true", "retries": 2, "retry_delay": 3}, policy)
    assert shared["policy"] == "set by the policy: timeout=18.0"
    assert home.store.spec(shared["shell_id"]).timeout == 18
    fits = call("start_shell", {"command": "true", "retries": 1, "timeout": 30}, policy)
    assert "policy" not in fits and home.store.spec(fits["shell_id"]).timeout == 30
    for started in (shared, fits):
        home.wait_shell(started["shell_id"], timeout=30)


def test_retries_add_no_shells_to_the_session_count(home: Supervisor) -> None:
    policy = Policy.from_mapping({"max_shells_per_session": 1})
    started = call("start_shell", {"command": "exit 1", "retries": 2}, policy)
    assert call("wait_shell", {"shell_id": started["shell_id"], "timeout": 30}, policy)["attempt"] == 3
    assert policy.started == 1
    assert call("start_shell", {"command": "true"}, policy)["error"].startswith(
        "denied by the policy rule max_shells_per_session: 1")
