"""The tool policy through `dispatch`: each rule allows what it should, refuses the rest quoting the rule,
and a refused call starts, kills or writes nothing (real shells in a temporary home)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from supervisor import Supervisor
from supervisor.tools import dispatch
from supervisor.tools.policy import Policy, PolicyError, load_policy

pytestmark = pytest.mark.timeout(60)


def policy_file(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def call(name: str, arguments: dict[str, Any], policy: Policy | None) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(dispatch(name, arguments, policy=policy))
    return result


def test_an_allowed_start_runs(home: Supervisor, tmp_path: Path) -> None:
    policy = load_policy(policy_file(tmp_path, 'commands: {allow: ["python3 *"], deny: ["*rm -rf*"]}\n'))
    started = call("start_shell", {"command": ["python3", "-c", "print('allowed')"]}, policy)
    assert started["status"] in ("running", "stopped"), started
    waited = call("wait_shell", {"shell_id": started["shell_id"], "timeout": 30}, policy)
    assert (waited["status"], waited["exit_code"]) == ("stopped", 0)
    assert home.get_shell_output(started["shell_id"])["stdout"] == "allowed\n"


@pytest.mark.parametrize(("command", "quoted", "why"), [
    ("rm -rf {victim}", 'commands.deny: "*rm -rf*"', "matches it"),
    (["python3", "-c", "import shutil; shutil.rmtree('{victim}')", "rm -rf"], 'commands.deny: "*rm -rf*"',
     "matches it"),
    ("sh -c 'rmdir {victim}'", 'commands.allow: ["python3 *"]', "matches none of these patterns"),
    ("python3 -c pass; rmdir {victim}", 'commands.allow: ["python3 *"]', 'contains ";"'),
    ("python3 -c pass && rmdir {victim}", 'commands.allow: ["python3 *"]', 'contains "&"'),
])
def test_a_command_the_patterns_refuse_is_denied_and_runs_nothing(home: Supervisor, tmp_path: Path,
                                                                  command: str | list[str], quoted: str,
                                                                  why: str) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    policy = load_policy(policy_file(tmp_path, 'commands: {allow: ["python3 *"], deny: ["*rm -rf*"]}\n'))
    given = command.format(victim=victim) if isinstance(command, str) else [
        part.format(victim=victim) for part in command]
    answer = call("start_shell", {"command": given}, policy)
    assert set(answer) == {"error"}
    assert answer["error"].startswith(f"denied by the policy rule {quoted} (policy {tmp_path / 'policy.yaml'}): ")
    assert why in answer["error"]
    assert home.list_shells() == []
    assert victim.is_dir()


def test_deny_wins_over_allow(home: Supervisor, tmp_path: Path) -> None:
    policy = load_policy(policy_file(tmp_path, 'commands: {allow: ["python3 *"], deny: ["*curl*"]}\n'))
    answer = call("start_shell", {"command": ["python3", "-c", "print('curl')"]}, policy)
    assert 'commands.deny: "*curl*"' in answer["error"]
    assert home.list_shells() == []


def test_a_coordination_run_is_matched_as_its_runner_command_line(home: Supervisor, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("agents: []\n")
    policy = load_policy(policy_file(tmp_path, 'commands: {allow: ["massgen *"]}\n'))
    answer = call("start_coordination", {"config": str(config), "question": "q?"}, policy)
    assert f'the command "mgcoord --automation --config {config} q?" matches none' in answer["error"]
    assert home.list_shells() == []


@pytest.fixture
def rooted(tmp_path: Path) -> dict[str, Path]:
    """A root with a folder inside, a folder outside, and a symlink inside the root that points outside."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "inside").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    return {"root": root, "outside": outside, "policy": policy_file(tmp_path, f"cwd_roots: [{str(root)!r}]\n")}


@pytest.mark.parametrize("cwd", ["{outside}", "{root}/escape", "{root}/inside/../../outside", "{root}/escape/.."])
def test_a_cwd_that_resolves_outside_the_roots_is_denied(home: Supervisor, rooted: dict[str, Path],
                                                         cwd: str) -> None:
    given = cwd.format(**rooted)
    answer = call("start_shell", {"command": "touch made", "cwd": given}, load_policy(rooted["policy"]))
    real = os.path.realpath(given)
    assert answer["error"].startswith(f'denied by the policy rule cwd_roots: ["{rooted["root"]}"]')
    assert f'resolves to "{real}", which is not inside "{rooted["root"]}"' in answer["error"]
    assert home.list_shells() == []
    assert not list(rooted["outside"].iterdir())


def test_a_cwd_inside_the_roots_runs_there_by_its_real_path(home: Supervisor, rooted: dict[str, Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    policy = load_policy(rooted["policy"])
    started = call("start_shell", {"command": "touch made", "cwd": f"{rooted['root']}/escape/../inside"}, policy)
    # The kernel resolves escape/.. to the parent of where the link points: outside the root.
    assert "error" in started
    started = call("start_shell", {"command": "touch made", "cwd": f"{rooted['root']}/inside/../inside"}, policy)
    home.wait_shell(started["shell_id"], timeout=30)
    assert (rooted["root"] / "inside" / "made").is_file()
    assert home.get_shell_status(started["shell_id"])["cwd"] == str(rooted["root"] / "inside")
    # Without cwd, a start runs in the server's directory: outside the roots here, so refused.
    monkeypatch.chdir(rooted["outside"])
    assert "the default working directory resolves to" in call("start_shell", {"command": "true"}, policy)["error"]


def test_env_names_outside_the_list_are_denied(home: Supervisor, tmp_path: Path) -> None:
    policy = load_policy(policy_file(tmp_path, "env_names: [OPENAI_API_KEY]\n"))
    answer = call("start_shell", {"command": "true", "env": ["OPENAI_API_KEY=k", "LD_PRELOAD=/x.so"]}, policy)
    assert answer["error"].startswith('denied by the policy rule env_names: ["OPENAI_API_KEY"]')
    assert '"LD_PRELOAD" is not allowed' in answer["error"]
    assert home.list_shells() == []
    started = call("start_shell", {"command": "test \"$OPENAI_API_KEY\" = k", "env": ["OPENAI_API_KEY=k"]}, policy)
    assert home.wait_shell(started["shell_id"], timeout=30)["exit_code"] == 0


def test_a_timeout_above_the_cap_is_refused_and_a_missing_one_is_set_to_it(home: Supervisor, tmp_path: Path) -> None:
    policy = load_policy(policy_file(tmp_path, "max_timeout_seconds: 60\n"))
    answer = call("start_shell", {"command": "true", "timeout": 120}, policy)
    assert answer["error"].startswith("denied by the policy rule max_timeout_seconds: 60")
    assert "timeout 120 seconds is more than that; ask for at most 60" in answer["error"]
    assert home.list_shells() == []
    capped = call("start_shell", {"command": "true"}, policy)
    assert capped["policy"] == "set by the policy: timeout=60.0"
    assert home.store.spec(capped["shell_id"]).timeout == 60
    kept = call("start_shell", {"command": "true", "timeout": 30}, policy)
    assert "policy" not in kept and home.store.spec(kept["shell_id"]).timeout == 30


def test_isolate_is_forced(home: Supervisor, tmp_path: Path) -> None:
    policy = load_policy(policy_file(tmp_path, "isolate: true\n"))
    started = call("start_shell", {"command": "pwd", "cwd": str(tmp_path), "name": "job"}, policy)
    status = home.wait_shell(started["shell_id"], timeout=30)
    assert status["cwd"] == str(tmp_path / ".mgsup" / "workspaces" / f"job_{started['shell_id'][6:]}")
    assert started["policy"] == "set by the policy: isolate=True"


def test_read_only_refuses_starts_and_kills_and_allows_reads(home: Supervisor, tmp_path: Path) -> None:
    running = home.start_shell(["sleep", "30"])
    config = tmp_path / "c.yaml"
    config.write_text("agents: []\n")
    policy = load_policy(policy_file(tmp_path, "read_only: true\n"))
    refused = {
        "start_shell": call("start_shell", {"command": "touch x", "cwd": str(tmp_path)}, policy),
        "start_coordination": call("start_coordination", {"config": str(config), "question": "q"}, policy),
        "kill_shell": call("kill_shell", {"shell_id": running}, policy),
        "wait_shell": call("wait_shell", {"shell_id": running, "timeout": 0, "kill_on_stall": True}, policy),
    }
    for tool, answer in refused.items():
        assert answer["error"].startswith("denied by the policy rule read_only: true"), (tool, answer)
    assert "kill_on_stall kills the shell" in refused["wait_shell"]["error"]
    assert [s["shell_id"] for s in home.list_shells()] == [running]
    assert home.get_shell_status(running)["status"] == "running"
    assert not (tmp_path / "x").exists()
    assert call("get_shell_status", {"shell_id": running}, policy)["status"] == "running"
    assert call("list_shells", {}, policy)["total"] == 1
    assert "stdout" in call("get_shell_output", {"shell_id": running}, policy)
    assert call("wait_shell", {"shell_id": running, "timeout": 0.1}, policy)["wait_expired"] is True
    home.kill_shell(running, grace=1)


def test_the_session_cap_counts_the_shells_of_one_policy_object(home: Supervisor, tmp_path: Path) -> None:
    path = policy_file(tmp_path, "max_shells_per_session: 2\n")
    policy = load_policy(path)
    # A start that fails does not use up the session's allowance.
    assert "cwd does not exist" in call("start_shell", {"command": "true", "cwd": "/no/such/dir"}, policy)["error"]
    first = call("start_shell", {"command": "true"}, policy)
    second = call("start_shell", {"command": "true"}, policy)
    third = call("start_shell", {"command": "true"}, policy)
    assert "shell_id" in first and "shell_id" in second
    assert third["error"].startswith("denied by the policy rule max_shells_per_session: 2")
    assert "this session has started 2 shells already" in third["error"]
    assert len(home.list_shells()) == 2
    # Another session (another object) has its own allowance.
    assert "shell_id" in call("start_shell", {"command": "true"}, load_policy(path))


def test_concurrent_starts_never_pass_the_session_cap(home: Supervisor, tmp_path: Path) -> None:
    policy = load_policy(policy_file(tmp_path, "max_shells_per_session: 3\n"))
    answers: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: answers.append(call("start_shell", {"command": "true"}, policy)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum("shell_id" in a for a in answers) == 3
    assert sum("max_shells_per_session" in a.get("error", "") for a in answers) == 5
    assert len(home.list_shells()) == 3 and policy.started == 3


@pytest.mark.parametrize(("text", "problem"), [
    ("comands: {allow: ['x']}\n", "comands: unknown rule"),
    ("commands: {allow: 'python3 *'}\n", "commands.allow: Input should be a valid list"),
    ("isolate: sometimes\n", "isolate: Input should be a valid boolean"),
    ("max_timeout_seconds: -5\n", "max_timeout_seconds: Input should be greater than 0"),
    ("max_budget: {max_tokens: 1.5}\n", "max_budget.max_tokens: Input should be a valid integer"),
    ("max_shells_per_session: '3'\n", "max_shells_per_session: Input should be a valid integer"),
    ("", "the policy is empty; expected a mapping of rules"),
    ("- read_only\n", "the policy is a list; expected a mapping of rules"),
    ("read_only: [\n", "invalid YAML: line 2, column 1"),
])
def test_a_malformed_policy_is_refused_with_one_clear_line(tmp_path: Path, text: str, problem: str) -> None:
    path = policy_file(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(f"policy {path}: ") and problem in message
    assert "\n" not in message


def test_an_unreadable_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read it: No such file or directory"):
        load_policy(tmp_path / "missing.yaml")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe")
    with pytest.raises(PolicyError, match="not UTF-8 text"):
        load_policy(tmp_path / "binary.yaml")


def test_relative_roots_are_taken_from_the_policy_files_folder(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    policy = load_policy(policy_file(tmp_path / "conf", "cwd_roots: [runs, ~/x]\n"))
    assert policy.roots == [str(tmp_path / "conf" / "runs"), os.path.realpath(os.path.expanduser("~/x"))]
    assert Policy().check("start_shell", {"command": "anything at all"}) == {"command": "anything at all"}


def test_a_budget_above_the_cap_is_refused_and_a_missing_one_is_set_to_it(home: Supervisor, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("agents: []\n")
    policy = load_policy(policy_file(tmp_path, "max_budget: {max_tokens: 5000, max_cost_usd: 1.0}\n"))
    base = {"config": str(config), "question": "q", "cwd": str(tmp_path)}
    denied = call("start_coordination", {**base, "budget": {"max_tokens": 6000}}, policy)
    assert denied["error"].startswith("denied by the policy rule max_budget.max_tokens: 5000")
    assert "max_tokens 6000 is more than that; ask for at most 5000" in denied["error"]
    assert home.list_shells() == []
    within = call("start_coordination", {**base, "budget": {"max_tokens": 100}}, policy)
    assert home.store.spec(within["shell_id"]).budget == {"max_tokens": 100, "max_cost_usd": 1.0}
    assert within["policy"] == "set by the policy: budget={'max_tokens': 100, 'max_cost_usd': 1.0}"
    capped = call("start_coordination", base, policy)
    assert home.store.spec(capped["shell_id"]).budget == {"max_tokens": 5000, "max_cost_usd": 1.0}
    for shell in home.list_shells():
        home.wait_shell(shell["shell_id"], timeout=30)
