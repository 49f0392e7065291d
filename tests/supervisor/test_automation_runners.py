"""Choosing the runner of a coordination run: names, paths, argv lists, $MGSUP_RUNNER, and bad input."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from supervisor import InvalidRequest, Supervisor
from supervisor.automation import runners

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.yaml"
# A runner that follows the automation contract just enough: it records its arguments.
FAKE_RUNNER = """#!/bin/sh
printf '%s\\n' "$@" > "$PWD/args.txt"
echo "LOG_DIR: $PWD/logs"
echo "[Coordination in progress - monitor status.json for real-time updates]"
echo "ERROR: nothing to answer with"
"""


def _program(folder: Path, name: str, text: str = FAKE_RUNNER, mode: int = 0o755) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    path.chmod(mode)
    return path


def test_parse() -> None:
    assert runners.parse("massgen") == "massgen"
    assert runners.parse("uv run massgen") == ["uv", "run", "massgen"]
    assert runners.parse("'/opt/my runner/massgen'") == "/opt/my runner/massgen"
    with pytest.raises(InvalidRequest, match="cannot read the runner"):
        runners.parse("'unclosed")


def test_resolve(tmp_path: Path) -> None:
    program = _program(tmp_path / "bin", "massgen")
    found = runners.resolve("massgen", path=str(tmp_path / "bin"), cwd=tmp_path)
    assert (found.kind, found.program) == ("massgen", [str(program)])
    assert found.argv("c.yaml", "q?", "0badcafe") == [str(program), "--automation", "--config", "c.yaml", "q?"]
    mgcoord = runners.resolve("mgcoord", path=None, cwd=tmp_path)
    assert mgcoord.argv("c.yaml", "q?", "0badcafe")[-3:] == ["--instance-id", "0badcafe", "q?"]
    listed = runners.resolve(["massgen", "--debug"], path=str(tmp_path / "bin"), cwd=tmp_path)
    assert listed.program == [str(program), "--debug"] and listed.kind == "massgen"
    relative = runners.resolve("./bin/massgen", path=None, cwd=tmp_path)
    assert relative.program == [str(tmp_path / "bin" / "massgen")]
    other = runners.resolve(str(_program(tmp_path / "bin", "my-runner")), path=None, cwd=tmp_path)
    assert other.kind == "command" and "--instance-id" not in other.argv("c", "q", "0badcafe")


def test_for_node_checks_only_what_travels_with_the_job(tmp_path: Path) -> None:
    # Names and absolute paths are found on the node; nothing of this machine's PATH counts.
    assert runners.for_node("mgcoord", cwd=tmp_path) == runners.ResolvedRunner("mgcoord", ["mgcoord"])
    assert runners.for_node("massgen", cwd=tmp_path) == runners.ResolvedRunner("massgen", ["massgen"])
    assert runners.for_node(["uv", "run", "massgen"], cwd=tmp_path).kind == "command"
    on_node = runners.for_node("/opt/massgen/bin/massgen", cwd=tmp_path)
    assert (on_node.kind, on_node.program) == ("massgen", ["/opt/massgen/bin/massgen"])
    # A relative program travels in the working directory: it is checked here and kept relative.
    _program(tmp_path / "bin", "my-runner")
    assert runners.for_node("./bin/my-runner", cwd=tmp_path).program == ["./bin/my-runner"]
    _program(tmp_path, "outside")
    for runner, message in (("masgen", "unknown runner 'masgen'"), ("./bin/missing", "runner program not found"),
                            ("../outside", "outside the run's working directory"), ([], "runner must be")):
        with pytest.raises(InvalidRequest, match=message):
            runners.for_node(runner, cwd=tmp_path / "bin")


def test_default_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runners.RUNNER_VAR, raising=False)
    assert runners.default_runner() == "mgcoord"
    monkeypatch.setenv(runners.RUNNER_VAR, "uv run massgen")
    assert runners.default_runner() == ["uv", "run", "massgen"]


@pytest.mark.parametrize(("runner", "message"), [
    ("masgen", "unknown runner 'masgen': use mgcoord or massgen"),
    ("massgen", "runner 'massgen' not found on the job's PATH"),
    (["no-such-runner", "--x"], "runner 'no-such-runner' not found on the job's PATH"),
    ("./missing/massgen", "runner program not found"),
    ("./plain.txt", "runner program is not executable"),
    ([], "runner must be mgcoord or massgen, a program path or a non-empty list of strings"),
    (5, "runner must be"),
])
def test_bad_runners_start_and_write_nothing(home: Supervisor, tmp_path: Path, runner: object, message: str) -> None:
    _program(tmp_path, "plain.txt", mode=0o644)
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(")):
        home.start_coordination(DEMO, "q?", runner=runner, cwd=tmp_path, env={"PATH": str(tmp_path / "empty")})  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == ["plain.txt"], "no home, no run folder"


def test_not_on_path_names_where_it_looked(home: Supervisor, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest) as caught:
        home.start_coordination(DEMO, "q?", runner="massgen", env={"PATH": "/nowhere:/also-not"})
    assert "/nowhere:/also-not" in str(caught.value)


def test_an_explicit_runner_gets_the_contract_arguments(home: Supervisor, tmp_path: Path) -> None:
    runner = _program(tmp_path / "bin", "massgen")
    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    sid = home.start_coordination(DEMO, "What is 6 * 7?", runner="massgen", cwd=work, env=env)
    final = home.wait_shell(sid, timeout=30)
    assert (work / "args.txt").read_text().splitlines() == ["--automation", "--config", str(DEMO), "What is 6 * 7?"]
    assert final["command"][0] == str(runner)
    assert (final["coordination"]["outcome"], final["coordination"]["error"]) == ("no_answer",
                                                                                   "nothing to answer with")


def test_mgsup_runner_chooses_the_default(home: Supervisor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _program(tmp_path / "bin", "my-runner")
    monkeypatch.setenv("MGSUP_RUNNER", f"{runner} --flag")
    sid = home.start_coordination(DEMO, "q?", cwd=tmp_path)
    home.wait_shell(sid, timeout=30)
    assert (tmp_path / "args.txt").read_text().splitlines()[0] == "--flag"
    assert stat.S_ISREG((tmp_path / "args.txt").stat().st_mode)
