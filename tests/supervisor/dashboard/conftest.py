"""Fixtures of the dashboard tests: the app under starlette's TestClient, a real server, a real Chromium.

`client` serves the dashboard of the test's home in-process (with the lifespan, so the Hub watches
the home) and carries the cookie; `anonymous` is the same app without it. `served` runs the real
command line, `mgsup --home H dashboard --port 0`, and reads the URL it prints. `browser` is Debian's
Chromium driven by Playwright (never a downloaded browser); where it is missing the browser tests
are skipped, except under CI (`CI=true`), where .ci/run installs it and its absence is a failure.

Screenshots: the `shoot` fixture's `shoot(page, name)` writes `<name>.png` into $MGSUP_SCREENSHOTS when that is set
(e.g. `MGSUP_SCREENSHOTS=docs/img`), and does nothing otherwise, so a normal run leaves the tree alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from supervisor import Supervisor
from supervisor.dashboard import Secrets, create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
URL_LINE = re.compile(r"(http://\S+)\?token=(\S+)")
SERVER_START_SECONDS = 30


@dataclass
class Dash:
    client: TestClient
    keys: Secrets
    sup: Supervisor

    def post(self, path: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
        return self.client.post(path, json=body or {}, headers={"x-csrf-token": self.keys.csrf, **headers})


def _app_client(sup: Supervisor, experiment_dirs: list[Path] | None = None) -> tuple[TestClient, Secrets]:
    keys = Secrets(port=8765)
    app = create_app(sup, keys, experiment_dirs=experiment_dirs or [])
    return TestClient(app, base_url="http://127.0.0.1:8765"), keys


@pytest.fixture
def dash(home: Supervisor) -> Iterator[Dash]:
    """The dashboard of the test's home in-process, with the cookie set."""
    client, keys = _app_client(home)
    with client:
        client.cookies.set(keys.cookie, keys.token)
        yield Dash(client, keys, home)


@pytest.fixture
def dash_factory(home: Supervisor) -> Iterator[Callable[..., Dash]]:
    """Dashboards with other options, e.g. `dash_factory(experiment_dirs=[folder])`."""
    opened: list[TestClient] = []

    def make(**options: Any) -> Dash:
        client, keys = _app_client(home, **options)
        client.__enter__()
        opened.append(client)
        client.cookies.set(keys.cookie, keys.token)
        return Dash(client, keys, home)

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@dataclass
class Served:
    base: str
    token: str
    process: subprocess.Popen[str]

    @property
    def url(self) -> str:
        return f"{self.base}?token={self.token}"


@pytest.fixture
def served(home: Supervisor, tmp_path: Path) -> Iterator[Served]:
    """`mgsup dashboard --port 0` on the test's home, as a real process; stopped (by its pid) afterwards."""
    log = tmp_path / "dashboard.stderr"
    with log.open("w") as stderr, subprocess.Popen(
            [sys.executable, "-m", "supervisor", "--home", str(home.home), "dashboard", "--port", "0"],
            stdout=subprocess.PIPE, stderr=stderr, text=True) as process:
        try:
            assert process.stdout is not None
            for line in process.stdout:
                found = URL_LINE.search(line)
                if found:
                    break
            else:
                pytest.fail(f"the dashboard printed no URL: {log.read_text()}")
            yield Served(found.group(1), found.group(2), process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright.

    One per module, not per session: Playwright's sync API keeps an event loop running in this
    thread while it is open, and tests elsewhere that call `asyncio.run` must not find it there.
    """
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    """A fresh browser context (no cookies) with one page that has opened the dashboard with its token."""
    context = browser.new_context(viewport={"width": 1400, "height": 860})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(served.url)
    tab.wait_for_selector("#live.on")
    yield tab
    context.close()
    assert not errors, f"the page raised: {errors}"


def _process_state(pid: int) -> str:
    # The state letter follows the command name in parentheses, which may itself hold spaces or ')'.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


@pytest.fixture
def process_state() -> Callable[[int], str]:
    """`process_state(pid)`: the kernel's one-letter state of a process (`T` when stopped by SIGSTOP)."""
    return _process_state


@pytest.fixture
def shoot() -> Callable[..., None]:
    """`shoot(page, name)`: a screenshot as $MGSUP_SCREENSHOTS/<name>.png when that is set, else nothing."""

    def take(page: Any, name: str, *, full_page: bool = False) -> None:
        folder = os.environ.get("MGSUP_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)

    return take
