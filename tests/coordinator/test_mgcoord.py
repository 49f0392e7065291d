"""mgcoord run as a user would: a real subprocess per test, in a temporary run directory."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from coord_helpers import (
    DEMO_CONFIG,
    Result,
    WaitFor,
    child_env,
    command_agent,
    processes_mentioning,
    run_mgcoord,
    scripted,
    start_mgcoord,
    write_config,
)

from supervisor.automation.schema import StatusDocument

pytestmark = pytest.mark.timeout(60)

QUESTION = "What is 17 * 23?"
STATUS_RECORDER = Path(__file__).resolve().parent / "status_recorder.py"


def _status(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(result.value("STATUS")).read_text())
    StatusDocument.model_validate(data)
    return data


def _assert_contract_lines(result: Result, *, winner: bool) -> None:
    lines = result.lines
    assert lines[0].startswith("LOG_DIR: /")
    assert lines[1] == f"STATUS: {lines[0][len('LOG_DIR: ') :]}/status.json"
    assert lines[2].startswith("QUESTION: ")
    assert lines[3] == "[Coordination in progress - monitor status.json for real-time updates]"
    assert lines[4] == ""
    if winner:
        assert [line.split(":")[0] for line in lines[5:9]] == ["WINNER", "ANSWER_FILE", "DURATION", "ANSWER_PREVIEW"]
        assert re.fullmatch(r"DURATION: \d+\.\ds", lines[7])
        body = lines[9:]
    else:
        assert lines[5].startswith("ERROR: ")
        body = lines[6:]
    assert body[0] == ""
    assert re.fullmatch(r"COMPLETED: \d+ agents, \d+\.\ds total", body[1])
    assert len(body) == 2


def test_demo_runs_with_real_coordination(run_dir: Path) -> None:
    result = run_mgcoord("--automation", "--config", str(DEMO_CONFIG), QUESTION, cwd=run_dir)
    assert result.returncode == 0, result.stderr
    _assert_contract_lines(result, winner=True)
    log_dir = Path(result.value("LOG_DIR"))
    assert log_dir.parent == run_dir / ".massgen" / "massgen_logs"
    assert re.fullmatch(r"log_\d{8}_\d{6}_\d{6}", log_dir.name)
    winner = result.value("WINNER")
    answer_file = Path(result.value("ANSWER_FILE"))
    assert answer_file == log_dir / "final" / winner / "answer.txt"
    answer = answer_file.read_text()
    assert "391" in answer and "agent1" in answer and "agent2" in answer  # built from both answers
    assert result.value("ANSWER_PREVIEW") == " ".join(answer.splitlines())[:200] + "..."
    assert result.value("COMPLETED").startswith("2 agents, ")

    status = _status(result)
    assert status["coordination"]["phase"] == "completed"
    assert status["meta"]["exit_code"] == 0
    assert status["results"]["winner"] == winner
    assert sum(status["results"]["votes"].values()) == 2
    assert len(status["results"]["votes"]) == 2  # two distinct answers
    assert sum(a["times_restarted"] for a in status["agents"].values()) >= 1
    assert {a["status"] for a in status["agents"].values()} == {"completed"}

    for name in ("execution_metadata.yaml", "coordination_events.json", "snapshot_mappings.json", "massgen.log"):
        assert (log_dir / name).is_file(), name
    metadata = yaml.safe_load((log_dir / "execution_metadata.yaml").read_text())
    assert metadata["question"] == QUESTION
    assert metadata["config"]["agents"][0]["backend"]["command"][1].startswith("${agents}")  # the config as given
    events = json.loads((log_dir / "coordination_events.json").read_text())
    kinds = [e["event_type"] for e in events["events"]]
    assert {"new_answer", "vote", "restart", "final_answer"} <= set(kinds)
    assert set(events["events"][0]) == {"timestamp", "event_type", "agent_id", "details", "context"}
    mappings = json.loads((log_dir / "snapshot_mappings.json").read_text())
    assert {m["type"] for m in mappings.values()} == {"answer", "vote", "final_answer"}
    for mapping in mappings.values():
        folder = Path(mapping["path"])
        assert (folder / "context.txt").is_file() and (folder / "workspace").is_dir()
    for agent_id in status["agents"]:
        assert (log_dir / "agent_outputs" / f"{agent_id}.txt").read_text()
    assert (log_dir / "final" / winner / "workspace").is_dir()


def test_a_copy_of_the_demo_config_runs_from_anywhere(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "demo.yaml"
    copy.parent.mkdir()
    copy.write_text(DEMO_CONFIG.read_text())
    result = run_mgcoord("--automation", "--config", str(copy), QUESTION, cwd=run_dir)
    assert result.returncode == 0, result.stderr
    assert "391" in Path(result.value("ANSWER_FILE")).read_text()


def test_status_json_is_valid_at_every_write(run_dir: Path, tmp_path: Path) -> None:
    history = tmp_path / "status_history.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(STATUS_RECORDER), "--automation", "--config", str(DEMO_CONFIG), QUESTION],
        cwd=run_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(STATUS_HISTORY=str(history)),
    )
    assert process.stdout is not None
    log_dir = Path(process.stdout.readline().split(": ", 1)[1].strip())
    status_path = Path(process.stdout.readline().split(": ", 1)[1].strip())
    assert status_path == log_dir / "status.json"
    assert status_path.is_file()  # STATUS is printed after the first write
    # A reader polling the file sees whole documents only.
    observed: list[str] = []
    while True:
        finished = process.poll() is not None
        text = status_path.read_text()
        if not observed or observed[-1] != text:
            StatusDocument.model_validate(json.loads(text))
            observed.append(text)
        if finished:
            break
        time.sleep(0.005)
    process.communicate(timeout=10)
    assert process.returncode == 0
    # Every write, in order, as the run made it.
    versions = [(r["text"], r["answer_exists"]) for r in map(json.loads, history.read_text().splitlines())]
    assert set(observed) <= {text for text, _ in versions}
    assert observed[-1] == versions[-1][0]
    assert len(versions) >= 5
    percentages = []
    phases = set()
    for index, (text, answer_exists) in enumerate(versions):
        data = json.loads(text)
        StatusDocument.model_validate(data)
        last = index == len(versions) - 1
        percentage = data["coordination"]["completion_percentage"]
        percentages.append(percentage)
        phases.add(data["coordination"]["phase"])
        assert ("exit_code" in data["meta"]) == last
        assert (percentage == 100) == last
        assert (data["coordination"]["phase"] == "completed") == last
        assert data["meta"]["log_dir"] == str(log_dir)
        if last:
            assert answer_exists
            assert data["meta"]["exit_code"] == 0
            assert data["results"]["final_answer_preview"]
    assert percentages == sorted(percentages)
    assert {"initial_answer", "enforcement", "presentation", "completed"} <= phases
    statuses = {a["status"] for text, _ in versions for a in json.loads(text)["agents"].values()}
    assert {"streaming", "answered", "voted", "restarting", "completed"} <= statuses


def test_validate_cli(run_dir: Path) -> None:
    ok = run_mgcoord("--validate", str(DEMO_CONFIG), cwd=run_dir)
    assert ok.returncode == 0 and ok.stdout.startswith(f"{DEMO_CONFIG}: valid")
    bad = run_dir / "bad.yaml"
    bad.write_text(
        "agents:\n  - id: a\n    backend: {type: command, command: [x]}\n  - id: b\n    backend: {type: foo}\n"
    )
    text = run_mgcoord("--validate", str(bad), cwd=run_dir)
    assert text.returncode == 1
    assert "error: agents[1].backend.type: unknown backend type 'foo'" in text.stdout
    as_json = run_mgcoord("--validate", str(bad), "--json", cwd=run_dir)
    assert as_json.returncode == 1
    document = json.loads(as_json.stdout)
    assert document["valid"] is False
    assert document["errors"][0]["location"] == "agents[1].backend.type"
    assert isinstance(document["warnings"], list)


def test_validate_also_takes_the_config_as_the_guide_spells_it(run_dir: Path) -> None:
    guide = run_mgcoord("--validate", "--config", str(DEMO_CONFIG), cwd=run_dir)
    assert guide.returncode == 0 and guide.stdout.startswith(f"{DEMO_CONFIG}: valid"), guide
    alone = run_mgcoord("--validate", cwd=run_dir)
    assert alone.returncode == 1 and "mgcoord --validate CONFIG" in alone.stderr and not alone.stdout
    both = run_mgcoord("--validate", str(DEMO_CONFIG), "--config", str(DEMO_CONFIG), cwd=run_dir)
    assert both.returncode == 1 and "one config" in both.stderr and not both.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--automation", "--config", "missing.yaml", QUESTION], "cannot read config"),
        (["--automation", "--config", "bad.yaml", QUESTION], "agents[0].backend.type"),
        (["--automation", "--config", "openai.yaml", QUESTION], "NO_SUCH_KEY_VAR"),
        (["--automation", "--config", "bad.yaml"], "QUESTION"),
        (["--automation", "--config", "bad.yaml", "--instance-id", "XYZ", QUESTION], "instance-id"),
        (["--automation", "--config", "bad.yaml", "--agent-timeout", "-1", QUESTION], "greater than 0"),
        (["--automation", "--bogus-option", QUESTION], "bogus"),
    ],
)
def test_configuration_errors_exit_1(run_dir: Path, args: list[str], needle: str) -> None:
    (run_dir / "bad.yaml").write_text("agents:\n  - id: a\n    backend: {type: nope}\n")
    (run_dir / "openai.yaml").write_text(
        "agents:\n  - id: a\n    backend: {type: openai, model: m, api_key_env: NO_SUCH_KEY_VAR}\n"
    )
    result = run_mgcoord(*args, cwd=run_dir)
    assert result.returncode == 1, result
    assert needle in result.stderr + result.stdout
    assert "LOG_DIR" not in result.stdout
    assert not (run_dir / ".massgen").exists()


def test_all_agents_failing_exits_2(run_dir: Path) -> None:
    config = write_config(
        run_dir / "c.yaml",
        [
            command_agent("crasher", scripted("crash", run_dir)),
            command_agent("babbler", scripted("garbage", run_dir)),
        ],
    )
    result = run_mgcoord("--automation", "--config", str(config), QUESTION, cwd=run_dir)
    assert result.returncode == 2, result
    _assert_contract_lines(result, winner=False)
    assert "all agents failed" in result.value("ERROR")
    status = _status(result)
    assert status["coordination"]["phase"] == "error" and status["meta"]["exit_code"] == 2
    errors = {agent_id: info["error"]["message"] for agent_id, info in status["agents"].items()}
    assert "exited with code 3" in errors["crasher"] and "scripted crash" in errors["crasher"]
    assert "invalid JSON" in errors["babbler"]
    assert {info["status"] for info in status["agents"].values()} == {"error"}


def test_failed_presentation_exits_2(run_dir: Path) -> None:
    config = write_config(run_dir / "c.yaml", [command_agent("a", scripted("present_crash", run_dir))])
    result = run_mgcoord("--automation", "--config", str(config), QUESTION, cwd=run_dir)
    assert result.returncode == 2
    assert "final presentation by a failed" in result.value("ERROR")


def test_faulty_agents_are_left_out_and_reported(run_dir: Path) -> None:
    config = write_config(
        run_dir / "c.yaml",
        [
            command_agent("good", scripted("answer", run_dir, text="391")),
            command_agent("crasher", scripted("crash", run_dir)),
            command_agent("babbler", scripted("garbage", run_dir)),
            command_agent("rogue", scripted("unknown_vote", run_dir, delay=0.3)),
            command_agent("sleeper", scripted("sleep", run_dir)),
        ],
        agent_timeout=2,
    )
    result = run_mgcoord("--automation", "--config", str(config), QUESTION, cwd=run_dir)
    assert result.returncode == 0, result
    assert result.value("WINNER") == "good"
    assert result.value("ANSWER_PREVIEW") == "final: 391"
    agents = _status(result)["agents"]
    assert agents["good"]["status"] == "completed"
    assert agents["good"]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert agents["crasher"]["status"] == "error"
    assert agents["babbler"]["status"] == "error"
    assert agents["rogue"]["status"] == "error" and "agent99" in agents["rogue"]["error"]["message"]
    assert agents["sleeper"]["status"] == "timeout"
    assert agents["sleeper"]["error"]["type"] == "timeout"
    log = (Path(result.value("LOG_DIR")) / "massgen.log").read_text()
    assert "agent99" in log and "scripted crash" in log


def test_orchestrator_timeout_with_an_answer_exits_3_and_saves_it(run_dir: Path) -> None:
    config = write_config(
        run_dir / "c.yaml",
        [
            command_agent("a", scripted("answer_then_sleep", run_dir, text="best so far")),
            command_agent("b", scripted("sleep", run_dir)),
        ],
        orchestrator_timeout=1.5,
    )
    result = run_mgcoord("--automation", "--config", str(config), QUESTION, cwd=run_dir)
    assert result.returncode == 3, result
    _assert_contract_lines(result, winner=True)
    assert result.value("WINNER") == "a"
    assert Path(result.value("ANSWER_FILE")).read_text() == "final: best so far"
    status = _status(result)
    assert status["coordination"]["phase"] == "timeout"
    assert status["meta"]["exit_code"] == 3
    assert status["results"]["final_answer_preview"] == "final: best so far"
    assert status["agents"]["b"]["status"] == "timeout"


def test_orchestrator_timeout_without_answer_exits_3(run_dir: Path) -> None:
    config = write_config(run_dir / "c.yaml", [command_agent("a", scripted("sleep", run_dir))], agent_timeout=30)
    result = run_mgcoord(
        "--automation", "--config", str(config), "--orchestrator-timeout", "0.8", QUESTION, cwd=run_dir
    )
    assert result.returncode == 3, result
    _assert_contract_lines(result, winner=False)
    assert "orchestrator timeout" in result.value("ERROR")
    assert _status(result)["coordination"]["phase"] == "timeout"


# Every signal whose default action ends a process and that a program may catch (Python itself
# ignores SIGPIPE and SIGXFSZ).
ENDING_SIGNALS = [
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM,
    signal.SIGVTALRM, signal.SIGPROF, signal.SIGXCPU, signal.SIGIO, signal.SIGPWR, signal.SIGSTKFLT,
]


@pytest.mark.parametrize("sig", ENDING_SIGNALS, ids=lambda sig: sig.name)
def test_signal_mid_run_exits_4_and_ends_every_agent(run_dir: Path, sig: signal.Signals, wait_for: WaitFor) -> None:
    config = write_config(
        run_dir / "c.yaml",
        [
            command_agent("a", scripted("spawn_and_sleep", run_dir)),
            command_agent("b", scripted("sleep", run_dir)),
        ],
        agent_timeout=60,
    )
    process = start_mgcoord("--automation", "--config", str(config), QUESTION, cwd=run_dir)
    # Both agents and a's detached grandchild are running.
    wait_for(lambda: len([p for p in processes_mentioning(str(run_dir)) if p.pid != process.pid]) >= 3)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=15)
    result = Result(process.returncode, stdout, stderr)
    assert result.returncode == 4, result
    _assert_contract_lines(result, winner=False)
    assert sig.name in result.value("ERROR")
    status = _status(result)
    assert status["coordination"]["phase"] == "interrupted"
    assert status["meta"]["exit_code"] == 4
    assert status["coordination"]["completion_percentage"] == 100
    assert processes_mentioning(str(run_dir)) == []


def test_the_final_sweep_ends_processes_started_while_it_runs(run_dir: Path) -> None:
    # The agent leaves a detached child that, told to stop, starts another detached process and exits.
    config = write_config(run_dir / "c.yaml", [command_agent("a", scripted("respawner", run_dir))])
    result = run_mgcoord("--automation", "--config", str(config), QUESTION, cwd=run_dir)
    assert result.returncode == 0, result
    assert (run_dir / "respawner.ready").is_file()
    assert processes_mentioning(str(run_dir)) == []


def test_a_signal_during_the_final_sweep_neither_kills_the_run_nor_spares_agents(run_dir: Path) -> None:
    # The respawner's child keeps the sweep busy for its grace period: the signal arrives mid-sweep.
    config = write_config(run_dir / "c.yaml", [command_agent("a", scripted("respawner", run_dir))])
    process = start_mgcoord("--automation", "--config", str(config), QUESTION, cwd=run_dir)
    assert process.stdout is not None
    lines = []
    while not lines or not lines[-1].startswith("COMPLETED: "):
        line = process.stdout.readline()
        assert line, f"mgcoord ended early: {lines}"
        lines.append(line.rstrip("\n"))
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=15)
    result = Result(process.returncode, "\n".join(lines) + "\n" + stdout, stderr)
    status = _status(result)
    assert result.returncode == status["meta"]["exit_code"] == 0, result
    _assert_contract_lines(result, winner=True)
    assert processes_mentioning(str(run_dir)) == []


def test_parallel_copies_of_one_config_share_nothing(run_dir: Path) -> None:
    copies = 3
    with ThreadPoolExecutor(copies) as pool:
        results = list(
            pool.map(
                lambda i: run_mgcoord("--automation", "--config", str(DEMO_CONFIG), f"What is {i} * 23?", cwd=run_dir),
                range(copies),
            )
        )
    assert [r.returncode for r in results] == [0] * copies, [r.stderr for r in results]
    log_dirs = {r.value("LOG_DIR") for r in results}
    assert len(log_dirs) == copies
    instance_ids = set()
    for index, result in enumerate(results):
        status = _status(result)
        instance_ids.add(status["meta"]["instance_id"])
        assert str(index * 23) in Path(result.value("ANSWER_FILE")).read_text()
    assert len(instance_ids) == copies
    workspaces = sorted(p.name for p in (run_dir / ".massgen" / "workspaces").iterdir())
    for folder in ("demo_solver", "demo_reviewer", "demo_snapshots", "demo_temp"):
        assert sorted(w for w in workspaces if w.rsplit("_", 1)[0] == folder) == sorted(
            f"{folder}_{iid}" for iid in instance_ids
        )


def test_instance_id_and_log_dir_options(run_dir: Path) -> None:
    log_dir = run_dir / "my-logs"
    result = run_mgcoord(
        "--automation",
        "--config",
        str(DEMO_CONFIG),
        "--instance-id",
        "0badcafe",
        "--log-dir",
        str(log_dir),
        QUESTION,
        cwd=run_dir,
    )
    assert result.returncode == 0, result.stderr
    assert result.value("LOG_DIR") == str(log_dir)
    assert (run_dir / ".massgen" / "workspaces" / "demo_solver_0badcafe" / "work.txt").is_file()
    metadata = yaml.safe_load((log_dir / "execution_metadata.yaml").read_text())
    assert metadata["instance_id"] == "0badcafe"
    assert "--instance-id" in metadata["cli_args"]


def test_console_script(run_dir: Path) -> None:
    if shutil.which("mgcoord") is None:
        pytest.skip("mgcoord is not installed on PATH")
    done = subprocess.run(
        ["mgcoord", "--validate", str(DEMO_CONFIG), "--json"],
        cwd=run_dir,
        capture_output=True,
        text=True,
        timeout=20,
        env=child_env(),
        check=False,
    )
    assert done.returncode == 0 and json.loads(done.stdout)["valid"] is True


def test_without_automation_the_full_answer_follows_the_summary(run_dir: Path) -> None:
    result = run_mgcoord("--config", str(DEMO_CONFIG), QUESTION, cwd=run_dir)
    assert result.returncode == 0, result.stderr
    answer = Path(result.value("ANSWER_FILE")).read_text()
    assert result.stdout.endswith("\n" + answer.rstrip("\n") + "\n")


def test_unwritable_log_dir_is_an_execution_error(run_dir: Path) -> None:
    blocker = run_dir / "file"
    blocker.write_text("")
    result = run_mgcoord(
        "--automation", "--config", str(DEMO_CONFIG), "--log-dir", str(blocker / "logs"), QUESTION, cwd=run_dir
    )
    assert result.returncode == 2, result
    assert result.stdout.startswith("ERROR: ")
