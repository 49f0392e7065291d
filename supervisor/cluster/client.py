"""The one adapter over Ray's Job Submission SDK: connecting, and Ray's untyped errors mapped to ours.

Ray reports every failure as a bare `RuntimeError("Request failed with status code N: ...")`
(an unknown job is 404; a duplicate id or a request on a job in the wrong state is a 500 with a
traceback), connection trouble as `ConnectionError` or `requests` errors, and a bad runtime_env as
`ValueError`. Here they become `ClusterUnavailable`, `InvalidRequest`, `JobMissing` or a
`SupervisorError` whose message says what was asked and what Ray answered.

Ray is imported on first use (about 0.6 s): reading local shells never pays for it.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import ClusterUnavailable, InvalidRequest, SupervisorError
from .address import host_port

# A head that does not answer a TCP connection within this long is unreachable (Ray's client has no timeout).
CONNECT_TIMEOUT = 5.0
# An address found unreachable is not tried again for this long in the same process: listing many shells of
# a cluster that is down costs one timeout, not one per shell.
UNREACHABLE_MEMORY = 10.0
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
EXTRA_HINT = "install Ray's job client with: pip install 'mgsup[ray]'"
_STATUS_CODE = re.compile(r"status code (\d{3})")
_EXCEPTION_NAME = re.compile(r"^[\w.]+(Error|Exception): ")
# Ray's SDK logs each package it zips and uploads at INFO; mgsup's own output must stay clean.
_CHATTY_LOGGERS = ("ray.dashboard.modules.dashboard_sdk", "ray._private.runtime_env.packaging",
                   "ray.dashboard.modules.job.sdk")


class JobMissing(SupervisorError, LookupError):
    """The cluster has no job with this submission id (never submitted, deleted, or the head restarted)."""


@dataclass(frozen=True)
class Job:
    """What Ray knows of one job: its status (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED) and outcome."""

    status: str
    exit_code: int | None = None
    message: str | None = None
    start_time: float | None = None
    end_time: float | None = None

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL


class Jobs:
    """The Job API of one cluster. Build it with `connect(address)`, which checks that the head answers."""

    def __init__(self, address: str, client: Any) -> None:
        self.address = address
        self._client = client

    def submit(self, shell_id: str, *, entrypoint: str, runtime_env: dict[str, Any], metadata: dict[str, str],
               cpus: float, gpus: float, resources: dict[str, float]) -> None:
        with _mapped(self.address, f"submit {shell_id}"):
            self._client.submit_job(entrypoint=entrypoint, submission_id=shell_id, runtime_env=runtime_env,
                                    metadata=metadata, entrypoint_num_cpus=cpus, entrypoint_num_gpus=gpus,
                                    entrypoint_resources=resources or None)

    def job(self, shell_id: str) -> Job:
        """Ray's view of the job; JobMissing when it has none."""
        with _mapped(self.address, f"read the status of {shell_id}"):
            info = self._client.get_job_info(shell_id)
        return Job(status=str(info.status.value), exit_code=info.driver_exit_code, message=info.message,
                   start_time=_seconds(info.start_time), end_time=_seconds(info.end_time))

    def logs(self, shell_id: str) -> str:
        """The job's whole log as Ray keeps it (Ray's lines, stdout and stderr merged)."""
        with _mapped(self.address, f"read the log of {shell_id}"):
            return str(self._client.get_job_logs(shell_id))

    def stop(self, shell_id: str) -> None:
        """Ask Ray to stop the job (asynchronous: its status turns STOPPED once its processes are gone)."""
        with _mapped(self.address, f"stop {shell_id}"):
            self._client.stop_job(shell_id)

    def delete(self, shell_id: str) -> None:
        """Remove an ended job's record and log from the cluster."""
        with _mapped(self.address, f"delete {shell_id}"):
            self._client.delete_job(shell_id)


_connected: dict[str, Jobs] = {}
_down: dict[str, tuple[float, ClusterUnavailable]] = {}
_connecting = threading.Lock()


def connect(address: str) -> Jobs:
    """The Job API of the cluster at `address` (normalized), shared within this process.

    Raises ClusterUnavailable when Ray is not installed or the head does not answer.
    """
    with _connecting:
        jobs = _connected.get(address)
        if jobs is None:
            known, error = _down.get(address, (0.0, None))
            if error is not None and time.monotonic() < known + UNREACHABLE_MEMORY:
                raise ClusterUnavailable(str(error))
            try:
                _check_reachable(address)
            except ClusterUnavailable as exc:
                _down[address] = (time.monotonic(), exc)
                raise
            sdk = _sdk()
            with _mapped(address, "connect"):
                jobs = Jobs(address, sdk.JobSubmissionClient(address))
            _connected[address] = jobs
        return jobs


def _sdk() -> Any:
    try:
        from ray import job_submission
    except ImportError as exc:
        raise ClusterUnavailable(f"shells on a Ray cluster need Ray, which is not installed here: {EXTRA_HINT}"
                                 ) from exc
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return job_submission


def _check_reachable(address: str) -> None:
    host, port = host_port(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ClusterUnavailable(_unreachable(address, exc.strerror or str(exc) or type(exc).__name__)) from None


def _unreachable(address: str, why: str) -> str:
    return (f"cannot reach the Ray cluster at {address} ({why}); is its head running (ray start --head), and is "
            "this the address of its dashboard (--cluster / $MGSUP_CLUSTER)?")


@contextmanager
def _mapped(address: str, action: str) -> Iterator[None]:
    """Ray's errors, raised by what runs inside, as ours."""
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError as exc:
        raise ClusterUnavailable(f"the Ray cluster at {address} refused to {action}: {_gist(str(exc))}") from None
    except OSError as exc:
        # ConnectionError from the SDK, and every `requests` error (they are OSErrors).
        raise ClusterUnavailable(_unreachable(address, _gist(str(exc)) or type(exc).__name__)) from None
    except ValueError as exc:
        raise InvalidRequest(f"the Ray cluster cannot {action}: {_gist(str(exc))}") from None
    except RuntimeError as exc:
        text = str(exc)
        if "ray[default]" in text:
            raise ClusterUnavailable(f"Ray is installed without its job client: {EXTRA_HINT}") from None
        found = _STATUS_CODE.search(text)
        code = int(found.group(1)) if found else None
        gist = _gist(text.split(": ", 1)[1] if found and ": " in text else text)
        if code == 404:
            raise JobMissing(f"the Ray cluster at {address} has no job for this shell ({gist})") from None
        if code in (400, 422):
            raise InvalidRequest(f"the Ray cluster at {address} refused to {action}: {gist}") from None
        if code in (502, 503, 504):
            raise ClusterUnavailable(_unreachable(address, f"HTTP {code}: {gist}")) from None
        raise SupervisorError(f"the Ray cluster at {address} failed to {action}: {gist}") from None


def _gist(text: str) -> str:
    """The line that says what went wrong: Ray's errors carry the server's traceback, whose last line is the error.

    >>> _gist("Traceback (most recent call last):\n  File ...\nValueError: Job x already exists.\n.\n.")
    'Job x already exists.'
    """
    lines = [line.strip() for line in text.splitlines() if line.strip(" .")]
    return _EXCEPTION_NAME.sub("", lines[-1]) if lines else text.strip()


def _seconds(milliseconds: int | None) -> float | None:
    return None if milliseconds is None else milliseconds / 1000.0
