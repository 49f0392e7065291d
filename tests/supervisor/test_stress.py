"""A short seeded run of the stress campaign (scripts/stress.py): random starts, kills, waits and
reads from several processes on one home, with monitors SIGKILLed and SIGSTOPped, then a check
of the invariants (the limit held, every shell ended with its output, nothing left running).

Callers are not SIGKILLed here: a shell whose caller died before its monitor ran keeps its slot
for admission.STARTUP_GRACE, far longer than this test may take. Longer campaigns do that:
`python scripts/stress.py --seed N --duration 120`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "stress.py"


@pytest.mark.timeout(15)
def test_a_short_campaign_keeps_every_invariant(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--seed", "11", "--duration", "3", "--workers", "3", "--limit", "2",
         "--no-worker-kills", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=14, check=False)
    report = done.stdout + done.stderr
    assert "VIOLATION" not in report and done.returncode == 0, report
    assert "jobs ran; at most" in report, report
