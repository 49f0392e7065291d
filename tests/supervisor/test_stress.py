"""A short seeded run of the stress campaign (scripts/stress.py): random starts, kills, waits and
reads from several processes on one home, with monitors SIGKILLed and SIGSTOPped (those of jobs
that cleared their environment too) and the home's tmpfs filled for a moment, then a check
of the invariants (the limit held, every shell ended with its output, nothing left running).

Callers are not SIGKILLed here: one killed while it writes a new shell's first state leaves a
record that reads `queued` for admission.STARTUP_GRACE (30 s) before it reads `lost`, longer
than this test may take. Longer campaigns do kill them:
`python scripts/stress.py --seed N --duration 120`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "stress.py"


@pytest.mark.timeout(15)
def test_a_short_campaign_keeps_every_invariant(tmp_path: Path) -> None:
    campaign = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--seed", "11", "--duration", "3", "--workers", "3", "--limit", "2",
         "--no-worker-kills", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        report, _ = campaign.communicate(timeout=12)
    except subprocess.TimeoutExpired:
        # Its workers and observer share its process group; the shells are the reaper's.
        os.killpg(campaign.pid, signal.SIGKILL)
        report, _ = campaign.communicate()
        pytest.fail(f"the campaign did not finish in time:\n{report}")
    finally:
        # A campaign killed before its end leaves its home's tmpfs (disk-full chaos) mounted.
        for line in Path("/proc/mounts").read_text().splitlines():
            if line.split()[1].startswith(str(tmp_path)):
                subprocess.run(["umount", "--lazy", line.split()[1]], check=False)
    assert "VIOLATION" not in report and campaign.returncode == 0, report
    assert "jobs ran; at most" in report, report
