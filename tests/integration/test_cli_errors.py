"""The one place where errors become exit codes, help texts, and the `mcp` verb.

Some tests call `supervisor.cli.main` in-process, to provoke failures no real input can cause.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from supervisor import Supervisor, cli

from .conftest import Mgsup


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_unexpected_error_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Supervisor, status: str | None = None) -> list[dict[str, object]]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Supervisor, "list_shells", broken)
    monkeypatch.delenv("MGSUP_DEBUG", raising=False)
    code, out, err = run_main(capsys, "--home", str(tmp_path), "list")
    assert (code, out) == (1, "")
    assert err == "mgsup: error: unexpected RuntimeError: disk on fire (set MGSUP_DEBUG=1 for the traceback)\n"
    monkeypatch.setenv("MGSUP_DEBUG", "1")
    code, _, err = run_main(capsys, "--home", str(tmp_path), "list")
    assert code == 1 and "Traceback" in err and err.endswith("(set MGSUP_DEBUG=1 for the traceback)\n")


def test_interrupt_exits_130(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Supervisor, status: str | None = None) -> list[dict[str, object]]:
        raise KeyboardInterrupt

    monkeypatch.setattr(Supervisor, "list_shells", interrupted)
    code, out, err = run_main(capsys, "--home", str(tmp_path), "list")
    # click ends the line a terminal shows "^C" on before the message.
    assert (code, out, err.lstrip("\n")) == (130, "", "mgsup: error: interrupted\n")


def test_an_interrupted_wait_says_the_shell_keeps_running(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Supervisor, shell_id: str, *args: object, **kwargs: object) -> dict[str, object]:
        raise KeyboardInterrupt

    monkeypatch.setattr(Supervisor, "wait_shell", interrupted)
    code, out, err = run_main(capsys, "--home", str(tmp_path), "wait", "shell_0a1b2c3d")
    assert (code, out, err.lstrip("\n")) == (
        130, "", "mgsup: error: interrupted; shell_0a1b2c3d keeps running ('mgsup kill shell_0a1b2c3d' stops it)\n")


def test_usage_errors_exit_2_with_one_line(mgsup: Mgsup) -> None:
    for args, message in ((["--bogus"], "No such option '--bogus'"),
                          (["frobnicate"], "No such command 'frobnicate'"),
                          (["--max-concurrent", "0", "list"], "0 is not in the range x>=1"),
                          (["wait"], "Missing argument 'SHELL_ID'")):
        result = mgsup.run(*args)
        assert result.code == 2 and message in result.error_line(), (args, result)
    bad_env = mgsup.run("start", "--", "true", env={"MGSUP_MAX_CONCURRENT": "lots"})
    assert bad_env.code == 2 and "MGSUP_MAX_CONCURRENT must be a whole number" in bad_env.error_line()
    assert mgsup.shell_dirs() == []


def test_help_documents_every_verb_and_the_exit_codes(mgsup: Mgsup, capsys: pytest.CaptureFixture[str]) -> None:
    top = mgsup.ok("--help")
    for text in ("Exit codes:", "124", "125", "mgsup start -- 'sleep 1; echo hi'"):
        assert text in top
    commands = top.split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(commands) == 10 and not [line for line in commands if line.endswith("...")], commands
    for verb in ("start", "status", "list", "logs", "wait", "kill", "clean", "mcp", "dashboard"):
        code, out, _ = run_main(capsys, verb, "--help")
        assert code == 0 and out.startswith("Usage: mgsup " + verb), verb
    assert run_main(capsys)[:2] == (0, run_main(capsys, "--help")[1])


def test_mcp_without_the_tools_package_is_a_clear_error(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "supervisor.tools.mcp_server", None)
    code, _, err = run_main(capsys, "mcp")
    assert code == 1
    assert err == ("mgsup: error: the MCP server is not part of this installation "
                   "(module supervisor.tools.mcp_server is missing)\n")


def test_mcp_serves_with_the_global_options(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, str | None] = {}
    server = types.ModuleType("supervisor.tools.mcp_server")
    server.main = lambda policy: seen.update(  # type: ignore[attr-defined]
        home=__import__("os").environ.get("MGSUP_HOME"), limit=__import__("os").environ.get("MGSUP_MAX_CONCURRENT"),
        policy=policy)
    monkeypatch.setitem(sys.modules, "supervisor.tools.mcp_server", server)
    monkeypatch.delenv("MGSUP_HOME", raising=False)
    monkeypatch.delenv("MGSUP_MAX_CONCURRENT", raising=False)
    assert run_main(capsys, "--home", str(tmp_path / "h"), "--max-concurrent", "3", "mcp") == (0, "", "")
    assert seen == {"home": str(tmp_path / "h"), "limit": "3", "policy": None}
