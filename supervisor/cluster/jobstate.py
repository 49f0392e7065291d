"""A cluster shell's lifecycle, from what Ray says of its job and what the runner recorded: pure functions.

Ray's status maps to ours: PENDING -> `queued`, RUNNING -> `running`, SUCCEEDED -> `stopped`,
FAILED -> `failed` (with the job's exit code), STOPPED -> `killed`. When the runner wrote its `end`
record, that record is the outcome, as the monitor on the node saw it: a job ended by a signal or a
timeout is `killed` (signal, `timed_out`), exactly as a local shell would be, although Ray only sees
the runner exit with 128 + N and says FAILED.
"""

from __future__ import annotations

from typing import Any

from .. import lifecycle
from .client import Job

# Ray has not heard of a job that was recorded moments ago while its submission is still on its way.
SUBMIT_GRACE = 60.0
_FROM_RECORD = ("status", "exit_code", "signal", "timed_out", "start_time", "end_time", "rusage", "message")


def advance(state: dict[str, Any], job: Job | None, end: dict[str, Any] | None, now: float) -> dict[str, Any]:
    """The state after Ray reported `job` (None: Ray has no such job) and, once it ended, the runner's `end` record.

    >>> advance(lifecycle.new(0.0, queued=False), Job("PENDING"), None, 1.0)["status"]
    'queued'
    """
    if lifecycle.is_ended(state):
        return state
    if job is None:
        if state["status"] == "starting" and now - (state.get("created") or now) < SUBMIT_GRACE:
            return state
        return lifecycle.lost(state, now, "the Ray cluster has no record of this job: its head was restarted, "
                                          "or the job was deleted with `ray job delete`")
    if job.status == "PENDING":
        return state if state["status"] == "queued" else {**state, "status": "queued", "queued_at": now}
    if job.status == "RUNNING":
        return state if state["status"] == "running" else {**state, "status": "running", "start_time": now}
    if end is not None:
        return {**state, **{key: end.get(key) for key in _FROM_RECORD}, "timed_out": bool(end.get("timed_out"))}
    return _ended_by_ray(state, job, now)


def _ended_by_ray(state: dict[str, Any], job: Job, now: float) -> dict[str, Any]:
    """The outcome of a job whose runner left no `end` record: it never ran, or it was killed itself."""
    # Its start is what was seen here: a job stopped or failed before it began has none.
    ended = {**state, "end_time": job.end_time or now}
    said = (job.message or "").strip().splitlines()
    if job.status == "SUCCEEDED":
        return {**ended, "status": "stopped", "exit_code": 0}
    if job.status == "STOPPED":
        return {**ended, "status": "killed",
                "message": "stopped by Ray" + ("" if state["status"] == "running" else " before the job started")}
    return {**ended, "status": "failed", "exit_code": job.exit_code,
            "message": f"Ray: {said[0]}" if said else "the job failed on the cluster before it reported an outcome"}
