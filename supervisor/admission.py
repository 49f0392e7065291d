"""The one admission path: the concurrency limit and the queue, shared by every process on a home.

Stdlib only, because monitors run it too: when a job ends, its monitor hands the freed slot to the
oldest queued shell, so the queue drains even when every caller has exited. All decisions happen
under an exclusive flock on `<home>/admission.lock`; a slot is a marker file `<home>/running/<id>`,
a queue entry is `<home>/queue/<time_ns>-<id>`, so admission costs O(limit), not O(shells on record).
"""

from __future__ import annotations

import fcntl
import os
import time

from . import layout as lay
from . import lifecycle, proc

# A slot reserved by a process that died before its monitor reported is given back after this long.
STARTUP_GRACE = 30.0
# A process that dies right after launching a monitor leaves it between fork and exec for a moment,
# not yet recognisable as a monitor: this long is waited before its shell is given up.
MONITOR_APPEAR = 0.2
LOST_GRACE = 1.0
DEFAULT_LIMIT = 10


class Admission:
    """The outcome of one admission decision."""

    def __init__(self) -> None:
        self.admitted = False
        self.queued = False
        self.active = 0
        self.to_start: list[str] = []


class locked:
    """Hold the admission lock of `layout` (an exclusive flock, released when the fd closes)."""

    def __init__(self, layout: lay.Layout) -> None:
        self.layout = layout
        self.path = layout.lock
        self.fd = -1

    def __enter__(self) -> None:
        # A home copied, restored or partly deleted may lack its subdirectories; decisions need them.
        self.layout.ensure()
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def admit(layout: lay.Layout, limit: int, shell_id: str | None = None, *, queue: bool = False,
          env: dict[str, str] | None = None) -> Admission:
    """Give free slots to queued shells (oldest first), then to `shell_id` when one is left.

    With `shell_id`, writes its first state: `starting` when admitted, `queued` when `queue` is
    true and no slot is free (its environment then waits in an owner-only file). Otherwise the
    result has neither flag set and nothing is written. Shells in `to_start` must be started
    with `start_admitted` after the lock is released.
    """
    orphans: list[str] = []
    with locked(layout):
        active = _count_active(layout, orphans)
        if not orphans:
            return _decide(layout, limit, active, shell_id, queue=queue, env=env)
    # A slot whose owner died stays taken until what is left of its job is stopped, which takes
    # time: done outside the lock. One that could not be reclaimed (a home this process cannot
    # write) still counts against the limit.
    for orphan in orphans:
        state = _read_state(layout, orphan)
        if state is not None:
            reconcile(layout, orphan, state)
    with locked(layout):
        return _decide(layout, limit, _count_active(layout, []), shell_id, queue=queue, env=env)


def _decide(layout: lay.Layout, limit: int, active: int, shell_id: str | None, *, queue: bool,
            env: dict[str, str] | None) -> Admission:
    """The admission itself, under the lock, with `active` slots taken."""
    now = time.time()
    result = Admission()
    result.active = active
    for entry in sorted(os.listdir(layout.queue)):
        if result.active >= limit:
            break
        queued_id = entry.partition("-")[2]
        _reserve(layout, queued_id, now)
        os.unlink(os.path.join(layout.queue, entry))
        state = _read_state(layout, queued_id) or lifecycle.new(now, queued=True)
        try:
            lay.write_json(layout.file(queued_id, lay.STATE), {**state, "status": "starting"}, durable=False)
        except FileNotFoundError:
            # Its record was removed while it waited (`clean` of a damaged record): the slot goes on.
            os.unlink(os.path.join(layout.running, queued_id))
            continue
        result.to_start.append(queued_id)
        result.active += 1
    if shell_id is None:
        return result
    if result.active < limit:
        _reserve(layout, shell_id, now)
        lay.write_json(layout.file(shell_id, lay.STATE), lifecycle.new(now, queued=False), durable=False)
        result.admitted = True
        result.active += 1
    elif queue:
        lay.write_json(layout.file(shell_id, lay.ENV), env or {})
        lay.write_json(layout.file(shell_id, lay.STATE), lifecycle.new(now, queued=True))
        entry = os.path.join(layout.queue, f"{time.time_ns():020d}-{shell_id}")
        os.close(os.open(entry, os.O_CREAT | os.O_WRONLY, 0o600))
        result.queued = True
    return result


def start_admitted(layout: lay.Layout, shell_ids: list[str]) -> None:
    """Start the monitors of queued shells that `admit` gave a slot to."""
    for shell_id in shell_ids:
        try:
            proc.spawn_monitor(layout.home, shell_id, None, layout.file(shell_id, lay.MONITOR_LOG))
        except OSError as exc:
            monitor_failed(layout, shell_id, f"the monitor could not be started: {exc.strerror}")
        except RuntimeError:
            monitor_failed(layout, shell_id, None)


def monitor_failed(layout: lay.Layout, shell_id: str, reason: str | None) -> None:
    """Settle a shell whose monitor did not answer: `reason` when it never ran, else it died on the way.

    A monitor that reported why the job could not start has recorded that itself. One that died
    may have started the job first (its tag finds it): the job is stopped before the slot is given
    back, and the shell is `lost`. A monitor that recorded `running` before it died is reconciled
    like any other.
    """
    state = _read_state(layout, shell_id) or {}
    if state.get("status") == "running":
        reconcile(layout, shell_id, state)
    if state.get("status") != "starting":
        return
    proc.stop(lambda: proc.tagged(shell_id), 15, LOST_GRACE, time.sleep)
    now = time.time()
    ended = (lifecycle.not_started(state, now, reason) if reason is not None
             else lifecycle.lost(state, now, "the monitor died before it started the job"))
    lay.write_json(layout.file(shell_id, lay.STATE), ended)
    start_admitted(layout, release(layout, shell_id))


def release(layout: lay.Layout, shell_id: str) -> list[str]:
    """Give back the slot of an ended shell; returns the queued shells to start in its place."""
    with locked(layout):
        try:
            os.unlink(os.path.join(layout.running, shell_id))
        except FileNotFoundError:
            pass
    return admit(layout, limit_of(layout, shell_id)).to_start


def dequeue(layout: lay.Layout, shell_id: str) -> bool:
    """Remove a queued shell from the queue; False when it is not (or no longer) waiting there."""
    with locked(layout):
        entries = [e for e in os.listdir(layout.queue) if e.endswith(f"-{shell_id}")]
        if not entries:
            return False
        for entry in entries:
            os.unlink(os.path.join(layout.queue, entry))
        _discard_env(layout, shell_id)
        state = _read_state(layout, shell_id) or lifecycle.new(time.time(), queued=True)
        lay.write_json(layout.file(shell_id, lay.STATE), lifecycle.removed_from_queue(state, time.time()))
        return True


def reconcile(layout: lay.Layout, shell_id: str, state: lifecycle.State) -> lifecycle.State:
    """Record `lost` for a shell whose supervising process vanished without recording an end.

    Whatever is left of a lost job is killed: no process may run without a supervisor.
    """
    status = state.get("status")
    if status == "running":
        if proc.is_alive(state.get("monitor_pid"), state.get("monitor_start")):
            return state
        message = "the monitor process died without recording how the job ended"
    elif status == "starting":
        if _owner_alive(layout, shell_id) or _monitor_coming(layout, shell_id):
            return state
        message = "the process starting this shell died before the job started"
    elif status == "queued":
        position = _queue_position(layout, shell_id)
        if position == 0:
            # A monitor that died may hold the slot this shell waits for; nobody else would notice.
            try:
                _drain(layout, shell_id)
            except OSError:
                return state  # a home this reader cannot write: someone who can will hand the slot on
            return _read_state(layout, shell_id) or state
        if position is not None or _marker_alive(layout, shell_id):
            return state
        message = "the process queueing this shell died before it was queued"
    else:
        return state
    # The monitor writes its final state before it exits: read again now that it is known dead.
    fresh = _read_state(layout, shell_id)
    if fresh is None or fresh.get("status") != status:
        return fresh or state
    # Stopped before the end is recorded: until then the shell keeps its slot, and a reader that
    # dies half way leaves it for the next one to settle rather than a job running uncounted.
    proc.stop(lambda: proc.tagged(shell_id), 15, LOST_GRACE, time.sleep)
    fresh = _read_state(layout, shell_id)
    if fresh is None or fresh.get("status") != status:
        return fresh or state  # settled by another reader meanwhile
    lost = lifecycle.lost(fresh, time.time(), message)
    try:
        lay.write_json(layout.file(shell_id, lay.STATE), lost)
    except OSError:
        # A home this reader cannot write (read-only, full): report `lost` all the same; the first
        # reader that can write records it and gives the slot back.
        return lost
    _discard_env(layout, shell_id)
    start_admitted(layout, release(layout, shell_id))
    return lost


def limit_of(layout: lay.Layout, shell_id: str) -> int:
    """The limit that the shell was started under, which its monitor applies when it frees its slot."""
    try:
        return int(lay.read_json(layout.file(shell_id, lay.SPEC))["max_concurrent"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_LIMIT


def _reserve(layout: lay.Layout, shell_id: str, now: float) -> None:
    me = os.getpid()
    marker = {"pid": me, "start": proc.start_ticks(me), "at": now}
    lay.write_json(os.path.join(layout.running, shell_id), marker, durable=False)


def _queue_position(layout: lay.Layout, shell_id: str) -> int | None:
    """Where `shell_id` waits in the queue (0: next to start), or None when it is not there."""
    try:
        entries = sorted(os.listdir(layout.queue))
    except FileNotFoundError:
        return None
    for position, entry in enumerate(entries):
        if entry.endswith(f"-{shell_id}"):
            return position
    return None


def _drain(layout: lay.Layout, shell_id: str) -> None:
    """Reclaim the slots of dead monitors and start queued shells in them."""
    start_admitted(layout, admit(layout, limit_of(layout, shell_id)).to_start)


def _marker(layout: lay.Layout, shell_id: str) -> dict[str, float]:
    try:
        marker = lay.read_json(os.path.join(layout.running, shell_id))
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _owner_alive(layout: lay.Layout, shell_id: str) -> bool:
    """Whether the process that reserved the slot of `shell_id` still runs."""
    marker = _marker(layout, shell_id)
    return proc.is_alive(marker.get("pid"), marker.get("start"))  # type: ignore[arg-type]


def _marker_alive(layout: lay.Layout, shell_id: str) -> bool:
    return _owner_alive(layout, shell_id) or time.time() - _marker(layout, shell_id).get("at", 0) < STARTUP_GRACE


def _monitor_coming(layout: lay.Layout, shell_id: str) -> bool:
    """Whether a monitor of `shell_id` is on its way although the process that launched it died."""
    if proc.monitors_of(shell_id):
        return True
    if time.time() - _marker(layout, shell_id).get("at", 0) >= STARTUP_GRACE:
        return False
    time.sleep(MONITOR_APPEAR)
    return bool(proc.monitors_of(shell_id))


def _count_active(layout: lay.Layout, orphans: list[str]) -> int:
    """The slots taken; frees those of ended shells, and lists in `orphans` those whose owner died."""
    active = 0
    for shell_id in os.listdir(layout.running):
        if shell_id.startswith("."):
            continue
        state = _read_state(layout, shell_id) or {}
        status = state.get("status")
        if status == "running":
            active += 1
            if not proc.is_alive(state.get("monitor_pid"), state.get("monitor_start")):
                orphans.append(shell_id)
        elif status == "starting":
            active += 1
            if not _owner_alive(layout, shell_id):
                orphans.append(shell_id)
        elif status == "queued" and _marker_alive(layout, shell_id):
            active += 1
        else:
            os.unlink(os.path.join(layout.running, shell_id))
    return active


def _read_state(layout: lay.Layout, shell_id: str) -> lifecycle.State | None:
    try:
        state = lay.read_json(layout.file(shell_id, lay.STATE))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _discard_env(layout: lay.Layout, shell_id: str) -> None:
    try:
        os.unlink(layout.file(shell_id, lay.ENV))
    except FileNotFoundError:
        pass
