"""POSIX paths are bytes: a run whose cwd, config or log directory holds bytes that are not UTF-8
works, prints those paths with their exact bytes, and keeps every file it writes readable (a real
mgcoord per test, on the demo config: no API key, no network)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from coord_helpers import DEMO_CONFIG, child_env, mgcoord_argv

from coordinator.events import read_events
from supervisor.automation.schema import StatusDocument

pytestmark = pytest.mark.timeout(60)

LATIN1_E = b"\xe9"  # "é" in Latin-1: not UTF-8 on its own


def _mgcoord(*args: bytes | str, cwd: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """Run mgcoord in `cwd`; its exit code, its stdout lines by key (as bytes), and its stderr."""
    done = subprocess.run(mgcoord_argv(*(os.fsdecode(a) for a in args)), cwd=cwd, capture_output=True,
                          timeout=50, env=child_env(), check=False)
    lines = dict(line.partition(b": ")[::2] for line in done.stdout.splitlines() if b": " in line)
    return done.returncode, lines, done.stderr


def _status(path: bytes) -> dict[str, Any]:
    with open(path, "rb") as f:
        raw = f.read()
    raw.decode("utf-8")  # the file is UTF-8 throughout
    data: dict[str, Any] = json.loads(raw)
    StatusDocument.model_validate(data)
    return data


def _assert_readable_log(log_dir: bytes) -> None:
    """Every file the run wrote is UTF-8; the JSON ones parse and keep the path's bytes."""
    for folder, _, names in os.walk(log_dir):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                f.read().decode("utf-8")
    events = read_events(Path(os.fsdecode(log_dir)) / "coordination_events.json")["events"]
    snapshots = [e["details"]["snapshot"] for e in events if "snapshot" in e["details"]]
    assert snapshots and all(os.fsencode(s).startswith(log_dir + b"/") and os.path.isdir(s) for s in snapshots)
    with open(os.path.join(log_dir, b"snapshot_mappings.json"), "rb") as f:
        mappings = json.loads(f.read())
    assert all(os.path.isdir(entry["path"]) for entry in mappings.values())
    with open(os.path.join(log_dir, b"massgen.log"), "rb") as f:
        assert b"Logging error" not in f.read()


def test_a_run_in_a_directory_whose_name_is_not_utf8(run_dir: Path) -> None:
    cwd = os.fsencode(run_dir) + b"/d" + LATIN1_E
    os.mkdir(cwd)
    code, lines, stderr = _mgcoord("--automation", "--config", str(DEMO_CONFIG), "What is 2+2?", cwd=cwd)
    assert code == 0, stderr
    assert b"Traceback" not in stderr
    log_dir = lines[b"LOG_DIR"]
    assert log_dir.startswith(cwd + b"/.massgen/massgen_logs/log_")
    assert lines[b"STATUS"] == log_dir + b"/status.json"
    answer_file = lines[b"ANSWER_FILE"]
    assert answer_file.startswith(log_dir + b"/final/")
    with open(answer_file, "rb") as f:
        assert b"4" in f.read()
    status = _status(lines[b"STATUS"])
    assert os.fsencode(status["meta"]["log_dir"]) == log_dir
    assert status["coordination"]["phase"] == "completed" and status["results"]["winner"] is not None
    # The byte is kept as a JSON escape (the rest of the file stays plain UTF-8).
    with open(lines[b"STATUS"], "rb") as f:
        assert b"/d\\udce9/" in f.read()
    _assert_readable_log(log_dir)


def test_config_log_dir_and_question_with_bytes_that_are_not_utf8(run_dir: Path) -> None:
    folder = os.fsencode(run_dir) + b"/c" + LATIN1_E
    os.mkdir(folder)
    config = folder + b"/demo\xff.yaml"
    shutil.copyfile(DEMO_CONFIG, config)
    log_dir = os.fsencode(run_dir) + b"/logs\xff"
    code, lines, stderr = _mgcoord("--automation", "--config", config, "--log-dir", log_dir, b"What is 2+2?\xff",
                                   cwd=os.fsencode(run_dir))
    assert code == 0, stderr
    assert (lines[b"LOG_DIR"], lines[b"STATUS"]) == (log_dir, log_dir + b"/status.json")
    assert lines[b"ANSWER_FILE"].startswith(log_dir + b"/final/") and os.path.isfile(lines[b"ANSWER_FILE"])
    # The question is text, not a path: its stray byte is shown as U+FFFD, on stdout and in status.json.
    assert lines[b"QUESTION"] == "What is 2+2?\ufffd".encode()
    status = _status(lines[b"STATUS"])
    assert status["meta"]["question"] == "What is 2+2?\ufffd"
    assert os.fsencode(status["meta"]["log_dir"]) == log_dir
    _assert_readable_log(log_dir)


def test_a_config_error_names_the_path_with_its_bytes(run_dir: Path) -> None:
    config = os.fsencode(run_dir) + b"/missing" + LATIN1_E + b".yaml"
    code, lines, stderr = _mgcoord("--automation", "--config", config, "q", cwd=os.fsencode(run_dir))
    assert code == 1 and b"Traceback" not in stderr
    assert lines[b"ERROR"].startswith(b"invalid config " + config + b": ")
    assert os.listdir(run_dir) == [], "nothing is written"
