"""Ray's job status mapped to the shell lifecycle, with and without the runner's end record."""

from __future__ import annotations

from supervisor import lifecycle
from supervisor.cluster.client import Job
from supervisor.cluster.jobstate import SUBMIT_GRACE, advance

NEW = lifecycle.new(100.0, queued=False)


def test_pending_is_queued_and_running_records_when_it_was_seen() -> None:
    queued = advance(NEW, Job("PENDING"), None, 101.0)
    assert (queued["status"], queued["queued_at"]) == ("queued", 101.0)
    running = advance(queued, Job("RUNNING"), None, 102.0)
    assert (running["status"], running["start_time"]) == ("running", 102.0)
    assert advance(running, Job("RUNNING"), None, 150.0) is running


def test_the_runners_end_record_is_the_outcome() -> None:
    running = advance(NEW, Job("RUNNING"), None, 102.0)
    end = {"status": "killed", "exit_code": -15, "signal": "SIGTERM", "timed_out": True, "start_time": 102.5,
           "end_time": 110.0, "rusage": {"user_seconds": 0.1}, "message": None, "pid": 4242, "host": "node"}
    # Ray only saw the runner exit 143 and says FAILED; the monitor on the node knows it was a timeout.
    final = advance(running, Job("FAILED", exit_code=143), end, 111.0)
    assert {k: final[k] for k in ("status", "exit_code", "signal", "timed_out", "start_time", "end_time")} == {
        "status": "killed", "exit_code": -15, "signal": "SIGTERM", "timed_out": True, "start_time": 102.5,
        "end_time": 110.0}
    assert final["pid"] is None  # a pid on another machine is not one to show or signal here


def test_without_an_end_record_rays_status_decides() -> None:
    running = advance(NEW, Job("RUNNING"), None, 102.0)
    failed = advance(running, Job("FAILED", exit_code=127, message="Job entrypoint command failed\nmore"), None, 103)
    assert (failed["status"], failed["exit_code"], failed["message"]) == ("failed", 127,
                                                                         "Ray: Job entrypoint command failed")
    assert advance(running, Job("SUCCEEDED", exit_code=0), None, 103.0)["status"] == "stopped"
    stopped = advance(running, Job("STOPPED"), None, 103.0)
    assert (stopped["status"], stopped["message"]) == ("killed", "stopped by Ray")
    never = advance(NEW, Job("STOPPED", end_time=104.0), None, 105.0)
    assert (never["status"], never["start_time"], never["end_time"]) == ("killed", None, 104.0)
    assert never["message"] == "stopped by Ray before the job started"


def test_a_job_ray_does_not_know_is_lost_once_its_submission_had_time() -> None:
    assert advance(NEW, None, None, 100.0 + SUBMIT_GRACE / 2) is NEW
    lost = advance(NEW, None, None, 100.0 + SUBMIT_GRACE + 1)
    assert lost["status"] == "lost" and "no record of this job" in lost["message"]


def test_an_ended_state_never_changes() -> None:
    ended = lifecycle.exited(NEW, 120.0, 0, killed=False, timed_out=False)
    assert advance(ended, Job("FAILED", exit_code=9), None, 130.0) is ended
