"""Following a cluster shell: a bounded, backed-off poll of Ray's Job API (nothing on the node to watch here).

Each poll is one status read (one or two small HTTP requests). The pause starts short, doubles
while nothing changes, never exceeds POLL_MAX, and starts short again after a change, so a job's
start and end are seen quickly and a long run costs a request every few seconds. A cluster that
stops answering is tolerated for UNREACHABLE_PATIENCE seconds (a head restarting, a network blip).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .. import lifecycle
from ..errors import ClusterUnavailable

if TYPE_CHECKING:
    from ..core import Supervisor

POLL_FIRST = 0.2
POLL_MAX = 2.0
UNREACHABLE_PATIENCE = 30.0


class Pace:
    """The pace of polling one cluster shell: how long to pause next, and how long its cluster may stay away.

    >>> pace = Pace()
    >>> pace.pause(changed=False), pace.pause(changed=False), pace.pause(changed=True)
    (0.4, 0.8, 0.2)
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._pause = POLL_FIRST
        self._unreachable_since: float | None = None

    def pause(self, *, changed: bool) -> float:
        """Short after a change, doubling while nothing changes, at most POLL_MAX."""
        self._pause = POLL_FIRST if changed else min(POLL_MAX, self._pause * 2)
        return self._pause

    def answered(self) -> None:
        self._unreachable_since = None

    def tolerate(self) -> bool:
        """After a read found the cluster unreachable: whether to carry on (it has not been away for long)."""
        now = self.clock()
        if self._unreachable_since is None:
            self._unreachable_since = now
        return now - self._unreachable_since <= UNREACHABLE_PATIENCE


def poll_changes(sup: Supervisor, shell_id: str, timeout: float | None,
                 changed: Callable[[dict[str, Any], dict[str, Any] | None], bool],
                 sleep: Callable[[float], None] = time.sleep) -> Iterator[dict[str, Any]]:
    """Yield the status of `shell_id` now and whenever `changed` says so, ending with its final status.

    TimeoutError when `timeout` seconds pass first.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    last: dict[str, Any] | None = None
    pace = Pace()
    while True:
        status: dict[str, Any] | None
        try:
            status = sup.get_shell_status(shell_id)
            pace.answered()
        except ClusterUnavailable:
            if not pace.tolerate():
                raise
            status = last
        fresh = False
        if status is not None and changed(status, last):
            fresh, last = True, status
            yield status
        if status is not None and lifecycle.is_ended(status):
            return
        wait = pace.pause(changed=fresh)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                state = status["status"] if status else "unknown"
                raise TimeoutError(f"{shell_id} is still {state} after {timeout:g} s")
            wait = min(wait, left)
        sleep(wait)
