"""The local copy of a cluster job: output appended once, a run's status and answer kept, updates that died undone."""

from __future__ import annotations

import json
from pathlib import Path

from supervisor import Supervisor
from supervisor import layout as lay
from supervisor.cluster.framing import record
from supervisor.cluster.mirror import Mirror, run_dir

SHELL = "shell_0a1b2c3d"
BANNER = "Runtime env is setting up.\nRunning entrypoint for job shell_0a1b2c3d: ...\n"


def _mirror(home: Supervisor) -> tuple[Mirror, Path]:
    Path(home.layout.shell_dir(SHELL)).mkdir(parents=True)
    return Mirror(home.layout, SHELL), Path(home.layout.file(SHELL, lay.STDOUT))


def test_each_update_appends_only_what_is_new(home: Supervisor) -> None:
    mirror, stdout = _mirror(home)
    log = BANNER + record("begin", {}) + "one\n"
    assert mirror.take(log) is None
    assert mirror.take(log) is None
    end = {"status": "stopped", "exit_code": 0}
    assert mirror.take(log + "two\n" + record("end", end) + "Ray's closing line\n") == end
    assert stdout.read_text() == "one\ntwo\n"
    assert mirror.take(log + "anything") == end  # the end is final


def test_an_update_that_died_half_way_is_written_again(home: Supervisor) -> None:
    mirror, stdout = _mirror(home)
    log = BANNER + record("begin", {}) + "kept\n"
    mirror.take(log)
    with open(stdout, "a") as f:
        f.write("half of an upd")  # appended, but the cursor was never saved
    mirror.take(log + "next\n")
    assert stdout.read_text() == "kept\nnext\n"


def test_a_runs_status_and_answer_are_kept_with_local_paths(home: Supervisor) -> None:
    mirror, _ = _mirror(home)
    status = {"coordination": {"phase": "completed", "completion_percentage": 100}}
    node_answer = "/node/wd/.massgen/massgen_logs/log_1/final/agent_b/answer.txt"
    log = (BANNER + record("begin", {}) + f"ANSWER_FILE: {node_answer}\nERROR: none really\n"
           + record("status", status) + record("answer", {"path": node_answer, "text": "42\n"})
           + record("end", {"status": "stopped"}))
    mirror.take(log)
    mirror.finish(log, coordination_run=True)
    folder = Path(run_dir(home.layout, SHELL))
    assert json.loads((folder / "status.json").read_text()) == status
    assert (folder / "final" / "agent_b" / "answer.txt").read_text() == "42\n"
    printed = lay.read_json(home.layout.file(SHELL, lay.PRINTED))
    assert printed == {"log_dir": str(folder), "status_file": str(folder / "status.json"),
                       "answer_file": str(folder / "final" / "agent_b" / "answer.txt"), "error": "none really"}


def test_a_job_that_never_began_keeps_rays_log_as_its_stderr(home: Supervisor) -> None:
    mirror, stdout = _mirror(home)
    log = BANNER + "/bin/sh: 1: exec: python3: not found\n"
    assert mirror.take(log) is None
    mirror.finish(log, coordination_run=False)
    assert not stdout.exists()
    assert Path(home.layout.file(SHELL, lay.STDERR)).read_text() == log
