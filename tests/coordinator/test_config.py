"""Config loading: substitution, validation with located errors, runtime problems."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from coord_helpers import DEMO_CONFIG, REPO

from coordinator.config import CommandBackendConfig, load_config, runtime_problems

pytestmark = pytest.mark.timeout(10)

ONE_AGENT = "agents:\n  - id: a\n    backend: {type: command, command: [x]}\n"


def _load(tmp_path: Path, text: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    report = load_config(path, run_cwd=tmp_path)
    return (
        [(i.location, i.message) for i in report.errors],
        [(i.location, i.message) for i in report.warnings],
    )


def test_demo_config_is_valid() -> None:
    report = load_config(DEMO_CONFIG, run_cwd=Path.cwd())
    assert report.valid, report.errors
    assert report.config is not None
    backend = report.config.agents[0].backend
    assert isinstance(backend, CommandBackendConfig)
    assert backend.command[0] == sys.executable
    assert Path(backend.command[1]).resolve().is_file()


def test_substitutes_config_dir_and_cwd(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "c.yaml"
    path.parent.mkdir()
    path.write_text(
        "agents:\n  - id: a\n    system_message: 'in ${cwd}'\n"
        "    backend: {type: command, command: ['${config_dir}/x.py', '${unknown}']}\n"
    )
    report = load_config(path, run_cwd=tmp_path)
    assert report.config is not None
    agent = report.config.agents[0]
    assert isinstance(agent.backend, CommandBackendConfig)
    assert agent.backend.command == [f"{path.parent}/x.py", "${unknown}"]
    assert agent.system_message == f"in {tmp_path}"
    assert report.raw["agents"][0]["system_message"] == "in ${cwd}"


@pytest.mark.parametrize(
    ("text", "location", "fragment"),
    [
        (
            "agents:\n  - id: a\n    backend: {type: command, command: [x]}\n  - id: b\n    backend: {type: foo}\n",
            "agents[1].backend.type",
            "unknown backend type 'foo'",
        ),
        ("agents:\n  - id: a\n    backend: {command: [x]}\n", "agents[0].backend.type", "backend type is required"),
        ("agents:\n  - id: a\n    backend: {type: command}\n", "agents[0].backend.command", "required"),
        ("agents:\n  - id: a\n    backend: {type: command, command: []}\n", "agents[0].backend.command", ""),
        ("agents:\n  - id: a\n    backend: {type: openai}\n", "agents[0].backend.model", "required"),
        (
            "agents:\n  - id: a\n    backend: {type: command, command: [x], cwd: /abs}\n",
            "agents[0].backend.cwd",
            "relative",
        ),
        ("agents:\n  - id: a/b\n    backend: {type: command, command: [x]}\n", "agents[0].id", "invalid agent id"),
        (
            "agents:\n  - id: a\n    backend: {type: command, command: [x]}\n  - id: a\n"
            "    backend: {type: command, command: [x]}\n",
            "agents[1].id",
            "duplicate agent id 'a'",
        ),
        (
            "agents:\n  - id: a\n    colour: red\n    backend: {type: command, command: [x]}\n",
            "agents[0].colour",
            "unknown key",
        ),
        ("agents: []\n", "agents", ""),
        (
            ONE_AGENT + "orchestrator: {max_new_answers_per_agent: 0}\n",
            "orchestrator.max_new_answers_per_agent",
            "greater than or equal to 1",
        ),
        (
            ONE_AGENT + "orchestrator: {snapshot_storage: ../up}\n",
            "orchestrator.snapshot_storage",
            "'..'",
        ),
        (
            ONE_AGENT + "timeout_settings: {agent_timeout_seconds: -1}\n",
            "timeout_settings.agent_timeout_seconds",
            "greater than 0",
        ),
        ("agents:\n  - id: a\n    backend: {type: command, command: [x]\n", "line 4, column 1", "invalid YAML"),
        ("", "(root)", "config is empty"),
        ("- just a list\n", "(root)", "config is a list"),
    ],
)
def test_each_error_is_located(tmp_path: Path, text: str, location: str, fragment: str) -> None:
    errors, _ = _load(tmp_path, text)
    assert any(loc == location and fragment in message for loc, message in errors), errors


def test_reports_every_error_at_once(tmp_path: Path) -> None:
    errors, _ = _load(
        tmp_path,
        "agents:\n  - id: a\n    backend: {type: nope}\n  - backend: {type: command}\n"
        "timeout_settings: {agent_timeout_seconds: 0}\n",
    )
    locations = {loc for loc, _ in errors}
    assert {
        "agents[0].backend.type",
        "agents[1].id",
        "agents[1].backend.command",
        "timeout_settings.agent_timeout_seconds",
    } <= locations


def test_unreadable_file(tmp_path: Path) -> None:
    report = load_config(tmp_path / "missing.yaml", run_cwd=tmp_path)
    assert not report.valid
    assert report.errors[0].location == "(file)"
    assert "cannot read config" in report.errors[0].message


def test_warnings_for_unknown_backend_keys_and_missing_programs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MY_KEY", raising=False)
    errors, warnings = _load(
        tmp_path,
        "ui: {theme: dark}\nagents:\n  - id: a\n    backend: {type: command, command: [no-such-program-xyz], x: 1}\n"
        "  - id: b\n    backend: {type: openai, model: m, api_key_env: MY_KEY}\n",
    )
    assert errors == []
    locations = {loc for loc, _ in warnings}
    assert {"ui", "agents[0].backend.x", "agents[0].backend.command[0]", "agents[1].backend.api_key_env"} <= locations


def test_missing_api_key_is_a_runtime_problem(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("agents:\n  - id: a\n    backend: {type: openai, model: m, api_key_env: KEY_X}\n")
    report = load_config(path, run_cwd=tmp_path)
    assert report.config is not None
    problems = runtime_problems(report.config, {})
    assert [(p.location, "KEY_X" in p.message) for p in problems] == [("agents[0].backend.api_key_env", True)]
    assert runtime_problems(report.config, {"KEY_X": "k"}) == []


def test_report_as_json_document(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("agents:\n  - id: a\n    backend: {type: foo}\n")
    document = load_config(path, run_cwd=tmp_path).as_dict()
    assert document["valid"] is False
    assert document["errors"][0]["location"] == "agents[0].backend.type"
    assert document["warnings"] == []


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path: Path) -> None:
    report = load_config(path, run_cwd=Path.cwd())
    assert report.valid, report.errors


def test_a_config_that_is_not_utf8_is_one_located_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(ONE_AGENT.encode() + "# café\n".encode("latin-1"))
    report = load_config(path, run_cwd=tmp_path)
    assert [(i.location, i.message) for i in report.errors] == [("line 4", "config is not UTF-8 text (byte 0xe9)")]
    assert report.config is None


def _laughs(levels: int, width: int = 9) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nbomb: *l{levels}\n" + ONE_AGENT


def test_yaml_alias_expansion_is_bounded(tmp_path: Path) -> None:
    # Nine levels of nine aliases: 387 million strings once expanded, from a 600-byte file.
    errors, _ = _load(tmp_path, _laughs(9))
    assert errors == [("(file)", "the config expands to more than 100,000 values (YAML aliases used too often?)")]
    # Aliases used with measure are fine.
    errors, warnings = _load(tmp_path, _laughs(2))
    assert errors == [] and ("bomb", "unknown top-level key, ignored") in warnings


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("loop: &a [1, *a]\n" + ONE_AGENT, "a YAML alias is used inside the mapping or list it names"),
        ("deep: " + "[" * 150 + "]" * 150 + "\n" + ONE_AGENT, "nested deeper than 100 levels"),
        ("deep: " + "[" * 5000 + "]" * 5000 + "\n" + ONE_AGENT, "invalid YAML: nested too deeply"),
    ],
    ids=["self-reference", "deep", "deeper-than-the-parser"],
)
def test_endless_and_deep_yaml_is_an_error(tmp_path: Path, text: str, message: str) -> None:
    errors, _ = _load(tmp_path, text)
    assert len(errors) == 1 and errors[0][0] == "(file)" and message in errors[0][1]


@pytest.mark.parametrize(
    ("backend", "location"),
    [
        ("{type: command, command: [x], max_output_bytes: 100}", "agents[0].backend.max_output_bytes"),
        ("{type: command, command: [x], max_output_bytes: 2000000000}", "agents[0].backend.max_output_bytes"),
        ("{type: command, command: [x], max_output_bytes: '5MB'}", "agents[0].backend.max_output_bytes"),
        ("{type: command, command: [x], max_output_bytes: true}", "agents[0].backend.max_output_bytes"),
        ("{type: openai, model: m, max_response_bytes: 0}", "agents[0].backend.max_response_bytes"),
        ("{type: openai, model: m, max_response_bytes: 1.5e6}", "agents[0].backend.max_response_bytes"),
    ],
)
def test_byte_limits_are_validated(tmp_path: Path, backend: str, location: str) -> None:
    errors, _ = _load(tmp_path, f"agents:\n  - id: a\n    backend: {backend}\n")
    assert [loc for loc, _ in errors] == [location]


def test_byte_limits_are_read(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "agents:\n  - id: a\n    backend: {type: command, command: [x], max_output_bytes: 65536}\n"
        "  - id: b\n    backend: {type: openai, model: m, max_response_bytes: 1073741824}\n"
    )
    report = load_config(path, run_cwd=tmp_path)
    assert report.config is not None
    a, b = (agent.backend for agent in report.config.agents)
    assert a.max_output_bytes == 65536  # type: ignore[union-attr]
    assert b.max_response_bytes == 2**30  # type: ignore[union-attr]


def test_agent_ids_are_short(tmp_path: Path) -> None:
    errors, _ = _load(tmp_path, "agents:\n  - id: " + "a" * 65 + "\n    backend: {type: command, command: [x]}\n")
    assert [loc for loc, _ in errors] == ["agents[0].id"]
    assert "up to 64" in errors[0][1] and len(errors[0][1]) < 200
