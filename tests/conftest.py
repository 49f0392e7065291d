"""Shared fixtures: a temporary state directory per test, and the "no process left behind" check.

`home` gives a test its own state directory (exported as $MGSUP_HOME, so the module-level API
and child processes use it too) and a `Supervisor` on it. The `reaper` runs around every test of
tests/supervisor, tests/integration and tests/docs: at teardown it kills every shell still running in the
homes the test used (the `home` fixture's, and any other under the test's tmp_path), then checks
with psutil that no process tagged `MGSUP_SHELL_ID=<id>` of those shells, and no monitor of
them, is still alive.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from faults import damaged_home, hostile, nobody, special_files, tiny_home  # noqa: F401  (fixtures for every test)

from supervisor import Supervisor, launch, lifecycle
from supervisor.proc import MONITOR_FILE, SHELL_ID_VAR

T = TypeVar("T")
TESTS = Path(__file__).parent
REAPED_DIRS = ("supervisor", "integration", "cluster", "docs")
# How long processes of killed shells may take to disappear (monitors exit after recording the end).
REAP_PATIENCE = 5.0


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy and return that; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what or predicate}")
        time.sleep(interval)


class Reaper:
    """The state directories a test used, and the processes that belong to their shells."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.homes: list[Path] = []

    def track(self, home: Path) -> None:
        self.homes.append(home)

    def all_homes(self) -> list[Path]:
        found = {home.resolve() for home in self.homes}
        found.update(shells.parent.resolve() for shells in self.tmp_path.rglob("shells") if shells.is_dir())
        return sorted(found)

    def shell_ids(self) -> set[str]:
        return {d.name for home in self.all_homes() if (home / "shells").is_dir()
                for d in (home / "shells").iterdir() if d.name.startswith("shell_")}

    def kill_running(self) -> list[str]:
        problems = []
        for home in self.all_homes():
            sup = Supervisor(home, max_concurrent=1000)
            try:
                shells = sup.list_shells()
            except Exception as exc:
                problems.append(f"list_shells({home}) failed: {exc!r}")
                continue
            for shell in shells:
                if shell["status"] in lifecycle.LIVE:
                    try:
                        sup.kill_shell(shell["shell_id"], grace=1.0)
                    except Exception as exc:
                        problems.append(f"kill_shell({shell['shell_id']}) failed: {exc!r}")
            # A launcher outlives its last start by its idle time; it holds no shell, so it just goes.
            launch.stop(str(home))
        return problems


    def leftovers(self) -> list[psutil.Process]:
        """Live processes of the shells of these homes: tagged jobs and their monitors."""
        return _processes_of(self.shell_ids())


def _processes_of(shell_ids: set[str]) -> list[psutil.Process]:
    if not shell_ids:
        return []
    found = []
    for p in psutil.process_iter():
        try:
            if p.status() == psutil.STATUS_ZOMBIE or p.pid == os.getpid():
                continue
            cmdline = p.cmdline()
            if MONITOR_FILE in cmdline and shell_ids.intersection(cmdline):
                found.append(p)
                continue
            if p.environ().get(SHELL_ID_VAR) in shell_ids:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _describe(processes: list[psutil.Process]) -> list[str]:
    out = []
    for p in processes:
        try:
            out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            out.append(f"{p.pid} (gone)")
    return out


# Where the tests of the real MassGen live; a run that selects any of them installs MassGen first.
MASSGEN_TESTS = ("integration/test_massgen_runs.py", "integration/test_massgen_surfaces.py",
                 "integration/test_massgen_budget.py", "scripts/test_bench_massgen.py",
                 "cluster/test_cluster_runners.py")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Install the real MassGen (its own venv, once per machine) before a run that includes its tests.

    Done once, by the controlling process (not by each xdist worker), so that a fresh checkout's
    `pytest` works as the README says; later runs find it built.
    """
    config = session.config
    if hasattr(config, "workerinput") or "not massgen" in (config.option.markexpr or ""):
        return
    wanted = [TESTS / name for name in MASSGEN_TESTS]
    given = [Path(arg.split("::")[0]).resolve() for arg in config.args] or [TESTS]
    if not any(test == arg or arg in test.parents for test in wanted for arg in given):
        return
    from fakes.massgen import _installer

    _installer().install()


@pytest.fixture(autouse=True)
def reaper(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Reaper]:
    """Kill what a test left running and fail it when any process of its shells survives."""
    reaper = Reaper(tmp_path)
    yield reaper
    if Path(request.node.path).relative_to(TESTS).parts[0] not in REAPED_DIRS:
        return
    problems = reaper.kill_running()
    deadline = time.monotonic() + REAP_PATIENCE
    left = reaper.leftovers()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = reaper.leftovers()
    described = _describe(left)
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass
    assert not problems, problems
    assert not left, f"processes left behind: {described}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reaper: Reaper) -> Iterator[Supervisor]:
    """A Supervisor on a fresh state directory, which is also $MGSUP_HOME for the test."""
    path = tmp_path / "home"
    monkeypatch.setenv("MGSUP_HOME", str(path))
    monkeypatch.delenv("MGSUP_MAX_CONCURRENT", raising=False)
    reaper.track(path)
    yield Supervisor(path)


@pytest.fixture(name="wait_for")
def _wait_for_fixture() -> Callable[..., Any]:
    """`wait_for` for tests (test modules cannot import from this conftest by name: there are several)."""
    return wait_for


@pytest.fixture
def sup_factory(home: Supervisor) -> Callable[..., Supervisor]:
    """Supervisors on the test's home with other settings, e.g. `sup_factory(max_concurrent=2)`."""

    def make(**kwargs: Any) -> Supervisor:
        return Supervisor(home.home, **kwargs)

    return make
