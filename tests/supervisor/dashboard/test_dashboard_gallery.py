"""A busy home as a person sees it: every kind of shell, a coordination run in progress, a batch folder.

Besides checking that each is shown (status colours, a progress bar on its way, the batch table and
its plot), this is where the screenshots of docs/ come from:
`MGSUP_SCREENSHOTS=docs/img python -m pytest tests/supervisor/dashboard -k "gallery or browser"`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from supervisor import Supervisor
from supervisor.experiments import ab_plan, run_experiments

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "configs" / "demo.yaml"
DEMO_SOLO = REPO / "configs" / "demo_solo.yaml"
SCRIPTED = REPO / "tests" / "coordinator" / "agents" / "scripted_agent.py"
WAIT_MS = 60_000


def slow_config(folder: Path, agents: int = 3, delay: float = 1.5) -> Path:
    """A coordination config whose agents each take `delay` seconds per turn, so the run is seen on its way."""
    command = [sys.executable, str(SCRIPTED), "answer", "--delay", str(delay)]
    config = {
        "agents": [{"id": name, "backend": {"type": "command", "command": command}}
                   for name in ("planner", "coder", "critic")[:agents]],
        "orchestrator": {"max_new_answers_per_agent": 1},
        "timeout_settings": {"orchestrator_timeout_seconds": 120, "agent_timeout_seconds": 30},
    }
    path = folder / "slow.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_gallery_of_a_busy_home(page: Any, shoot: Callable[..., None], home: Supervisor, served: Any, tmp_path: Path,
                                wait_for: Callable[..., Any]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    batch = tmp_path / "ab-demo"
    plan = ab_plan(DEMO, DEMO_SOLO, ["What is 17 * 23?", "What is 6 * 7?"])
    batch_done = threading.Event()
    runner = threading.Thread(target=lambda: (run_experiments(plan, batch, supervisor=home), batch_done.set()),
                              daemon=True)
    runner.start()
    for _ in range(3):
        home.wait_shell(home.start_shell("python3 -c 'print(\"step\")'", name="etl-step", cwd=work), timeout=30)
    home.start_shell("echo building; exit 2", name="build", cwd=work)
    killed = home.start_shell("sleep 300", name="stuck-download", cwd=work)
    home.kill_shell(killed, grace=0.5)
    home.start_shell("for i in $(seq 1 100000); do echo \"epoch $i: loss=0.$((99999 - i))\"; sleep 0.3; done",
                     name="train", cwd=work)
    home.start_coordination(DEMO, "What is 12 * 12?", cwd=work, name="review")
    slow = home.start_coordination(slow_config(tmp_path), "Plan the migration of the billing service", cwd=work,
                                   name="planning")
    wait_for(batch_done.is_set, timeout=120, what="the batch")

    # The table: every status colour, and the slow run's bar on its way.
    page.wait_for_function(f"() => Number(document.querySelector('tr[data-id=\"{slow}\"] .progress')"
                           "?.dataset.percent) > 0", timeout=WAIT_MS)
    for status in ("running", "stopped", "failed", "killed"):
        assert page.locator(f"#shells tbody tr.s-{status}").count() > 0, status
    assert page.locator("#chips .chip").count() >= 6
    shoot(page, "shells")

    page.goto(f"{served.base}shells/{slow}")
    page.locator("#agents .agent").first.wait_for(timeout=WAIT_MS)
    # Into the voting, so the agents' lanes show a few changes.
    page.wait_for_function("() => Number(document.querySelector('.progress.big').dataset.percent) >= 40",
                           timeout=WAIT_MS)
    assert page.locator("#coordination").is_visible()
    shoot(page, "shell-running-coordination", full_page=True)

    page.goto(f"{served.base}experiments")
    page.locator(".folder").first.wait_for(timeout=WAIT_MS)
    assert page.locator(".folder h2").first.text_content() == "ab-demo"
    shoot(page, "experiments")
    page.locator(".folder").first.click()
    page.wait_for_function("() => document.querySelectorAll('#runs tbody tr').length === 4", timeout=WAIT_MS)
    page.wait_for_function("() => document.querySelector('#plot').naturalWidth > 0", timeout=WAIT_MS)
    assert page.locator("#labels tbody tr").count() == 2
    shoot(page, "experiment", full_page=True)
    home.kill_shell(slow, grace=1)
