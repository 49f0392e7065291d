"""The one admission path: the concurrency limit and the queue, shared by every process on a home.

Stdlib only, because monitors run it too: when a job ends, its monitor hands the freed slot to the
oldest queued shell, so the queue drains even when every caller has exited. All decisions happen
under an exclusive flock on `<home>/admission.lock`; a slot is a marker file `<home>/running/<id>`,
a queue entry is `<home>/queue/<time_ns>-<id>`, so admission costs O(limit + queue length), not
O(shells on record). Groups and dependencies (`schedule.py`) are decided here too.

Reading a shell's state never acts: `view` says how the state reads (a `running` shell whose
monitor is gone reads `lost`). Acting on it is `settle`: stop what is left of the job, record
`lost`, hand the slot on. Only admission itself and the calls documented to settle (kill, wait and
watch, clean) call it.
"""

from __future__ import annotations

import fcntl
import os

from . import layout as lay
from . import lifecycle, schedule
from .host import REAL, Host

# A slot reserved by a process that died before its monitor reported is given back after this long.
STARTUP_GRACE = 30.0
# A process that dies right after launching a monitor leaves it between fork and exec for a moment,
# not yet recognisable as a monitor: this long is waited before its shell is given up.
MONITOR_APPEAR = 0.2
LOST_GRACE = 1.0
DEFAULT_LIMIT = 10
MAX_LIMIT = 100_000
SIGTERM = 15
SIGKILL = 9
QUEUE_STAMP_DIGITS = 20
# Ends the queue entry of a shell with a group or dependencies: only such an entry needs its spec read.
PLANNED = "+"
MONITOR_DIED = "the monitor process died without recording how the job ended"
STARTER_DIED = "the process starting this shell died before the job started"
QUEUER_DIED = "the process queueing this shell died before it was queued"


class Admission:
    """The outcome of one admission decision."""

    def __init__(self, taken: dict[str | None, int] | None = None) -> None:
        self.admitted = False
        self.queued = False
        # The shell will never start (a shell it was to start after did not succeed); its state says why.
        self.ended = False
        # The group whose limit kept the shell out, when that (and not the home's limit) did.
        self.full_group: str | None = None
        # Slots taken, by group (None: shells of no group).
        self.taken = dict(taken or {})
        self.to_start: list[str] = []

    @property
    def active(self) -> int:
        return sum(self.taken.values())

    def room(self, limit: int, group: str | None, group_limits: dict[str, int]) -> bool:
        """Whether a shell of `group` fits under the home's `limit` and its group's limit."""
        if self.active >= limit:
            return False
        return group is None or group not in group_limits or self.taken.get(group, 0) < group_limits[group]

    def take(self, group: str | None) -> None:
        self.taken[group] = self.taken.get(group, 0) + 1


class Locked:
    """Hold the admission lock of `layout` (an exclusive flock, released when the fd closes).

    Refuses (lay.UnsafeHome) a home that others could write to: what is decided under the lock
    may start the shells it holds.
    """

    def __init__(self, layout: lay.Layout) -> None:
        self.layout = layout
        self.fd = -1

    def __enter__(self) -> None:
        problem = self.layout.unsafe()
        if problem:
            raise lay.UnsafeHome(problem)
        # A home copied, restored or partly deleted may lack its subdirectories; decisions need them.
        self.layout.ensure()
        self.fd = os.open(self.layout.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def admit(layout: lay.Layout, limit: int, shell_id: str | None = None, *, queue: bool = False,
          env: dict[str, str] | None = None, plan: schedule.Plan | None = None, host: Host = REAL) -> Admission:
    """Give free slots to queued shells (oldest first), then to `shell_id` when one is left.

    With `shell_id`, writes its first state: `starting` when admitted, `queued` when `queue` is
    true and no slot is free (its environment then waits in an owner-only file). Otherwise the
    result has neither flag set and nothing is written. Shells in `to_start` must be started
    with `start_admitted` after the lock is released. OSError (a full disk) leaves nothing of
    `shell_id` in the queue or the slots.
    """
    orphans: list[str] = []
    if shell_id is not None and plan is None:
        plan = schedule.plan_of(layout, shell_id)
    with Locked(layout):
        group_limits = schedule.group_limits(layout)
        active = _count_active(layout, orphans, host, by_group=bool(group_limits))
        if not orphans:
            return _decide(layout, limit, active, group_limits, shell_id, plan, queue=queue, env=env, host=host)
    # A slot whose owner died stays taken until what is left of its job is stopped, which takes
    # time: done outside the lock. One that could not be reclaimed (a home this process cannot
    # write) still counts against the limit.
    for orphan in orphans:
        settle(layout, orphan, host)
    with Locked(layout):
        return _decide(layout, limit, None, None, shell_id, plan, queue=queue, env=env, host=host)


def _decide(layout: lay.Layout, limit: int, taken: dict[str | None, int] | None,
            group_limits: dict[str, int] | None, shell_id: str | None, plan: schedule.Plan | None, *, queue: bool,
            env: dict[str, str] | None, host: Host) -> Admission:
    """The admission itself, under the lock, with `taken` slots taken (by group, when a group has a limit;
    None: counted now) and the home's `group_limits` (None: read now).

    A queued shell that cannot start yet (its group is full, it waits for other shells) keeps its
    place without holding up those behind it; one whose dependency failed ends here.
    """
    if group_limits is None:
        group_limits = schedule.group_limits(layout)
    if taken is None:
        taken = _count_active(layout, [], host, by_group=bool(group_limits))
    now = host.now()
    result = Admission(taken)
    for entry, queued_id in queue_entries(layout):
        planned = entry.endswith(PLANNED)
        if not planned and result.active >= limit:
            continue  # nothing to decide for it until a slot frees: no file is read
        if lay.safe_dir(layout.shell_dir(queued_id)):
            # Not a directory this user made (a link, another owner): never started from here.
            _unlink(os.path.join(layout.queue, entry))
            continue
        waiting = schedule.plan_of(layout, queued_id) if planned else schedule.Plan(None, [])
        verdict, why = schedule.dependencies(layout, waiting.after)
        if verdict == schedule.FAIL:
            _never_starts(layout, queued_id, why, now, entry)
            continue
        if verdict == schedule.WAIT or not result.room(limit, waiting.group, group_limits):
            continue
        state = _read_state(layout, queued_id) or lifecycle.new(now, queued=True)
        _reserve(layout, queued_id, now, host, waiting.group)
        try:
            lay.write_json(layout.file(queued_id, lay.STATE), {**state, "status": "starting"}, durable=False)
        except FileNotFoundError:
            # Its record was removed while it waited (`clean` of a damaged record): the slot goes on.
            _unlink(os.path.join(layout.running, queued_id))
            _unlink(os.path.join(layout.queue, entry))
            continue
        except OSError:
            # A full disk: it keeps its place in the queue for the next hand-off.
            _unlink(os.path.join(layout.running, queued_id))
            raise
        _unlink(os.path.join(layout.queue, entry))
        result.to_start.append(queued_id)
        result.take(waiting.group)
    if shell_id is None or plan is None:
        return result
    verdict, why = schedule.dependencies(layout, plan.after)
    if verdict == schedule.FAIL:
        _never_starts(layout, shell_id, why, now, None)
        result.ended = True
    elif verdict == schedule.GO and result.room(limit, plan.group, group_limits):
        _reserve(layout, shell_id, now, host, plan.group)
        try:
            lay.write_json(layout.file(shell_id, lay.STATE), lifecycle.new(now, queued=False), durable=False)
        except OSError:
            _unlink(os.path.join(layout.running, shell_id))
            raise
        result.admitted = True
        result.take(plan.group)
    elif queue or verdict == schedule.WAIT:
        # The entry comes first: a reader that finds the state `queued` also finds its place.
        mark = PLANNED if plan.group or plan.after else ""
        entry = os.path.join(layout.queue, f"{host.clock_ns():0{QUEUE_STAMP_DIGITS}d}-{shell_id}{mark}")
        try:
            lay.write_json(layout.file(shell_id, lay.ENV), env or {})
            os.close(os.open(entry, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
            lay.write_json(layout.file(shell_id, lay.STATE), lifecycle.new(now, queued=True))
        except OSError:
            _unlink(entry)
            _discard_env(layout, shell_id)
            raise
        result.queued = True
    elif result.active < limit:
        result.full_group = plan.group
    return result


def _never_starts(layout: lay.Layout, shell_id: str, why: str | None, now: float, entry: str | None) -> None:
    """End a shell that waits for others as `failed`, since one of them did not succeed."""
    state = _read_state(layout, shell_id) or lifecycle.new(now, queued=True)
    lay.write_json(layout.file(shell_id, lay.STATE), lifecycle.dependency_failed(state, now, why or "not started"))
    if entry is not None:
        _unlink(os.path.join(layout.queue, entry))
    _discard_env(layout, shell_id)


def queue_entries(layout: lay.Layout) -> list[tuple[str, str]]:
    """The queue, oldest first: (entry name, shell id). Files that are not entries are ignored.

    An entry is `<time_ns>-<shell id>`, with PLANNED after it for a shell with a group or dependencies.
    """
    try:
        names = sorted(os.listdir(layout.queue))
    except FileNotFoundError:
        return []
    entries = []
    for name in names:
        stamp, dash, shell_id = name[:QUEUE_STAMP_DIGITS], name[QUEUE_STAMP_DIGITS:QUEUE_STAMP_DIGITS + 1], \
            name[QUEUE_STAMP_DIGITS + 1:].removesuffix(PLANNED)
        if stamp.isdigit() and stamp.isascii() and dash == "-" and lay.is_shell_id(shell_id):
            entries.append((name, shell_id))
    return entries


def start_admitted(layout: lay.Layout, shell_ids: list[str], host: Host = REAL) -> None:
    """Start the monitors of queued shells that `admit` gave a slot to."""
    for shell_id in shell_ids:
        try:
            host.spawn_monitor(layout.home, shell_id, None, layout.file(shell_id, lay.MONITOR_LOG))
        except OSError as exc:
            monitor_failed(layout, shell_id, f"the monitor could not be started: {exc.strerror}", host)
        except RuntimeError:
            monitor_failed(layout, shell_id, None, host)


def monitor_failed(layout: lay.Layout, shell_id: str, reason: str | None, host: Host = REAL) -> None:
    """Settle a shell whose monitor did not answer: `reason` when it never ran, else it died on the way.

    A monitor that reported why the job could not start has recorded that itself. One that died
    may have started the job first (its tag finds it): the job is stopped before the slot is given
    back, and the shell is `lost`. Whatever still claims to be its monitor is stopped first: one
    that hangs, or a child of the dead one caught before its exec (it still carries the monitor's
    environment, not the job's tag), must not run the job of a settled shell. A monitor that
    recorded `running` before it died is settled like any other.
    """
    state = _read_state(layout, shell_id) or {}
    if state.get("status") == "running":
        settle(layout, shell_id, host)
    if state.get("status") != "starting":
        return
    host.stop_monitors(layout.shell_dir(shell_id), SIGKILL, 0.0)
    host.stop_job(shell_id, state, SIGTERM, LOST_GRACE)
    now = host.now()
    ended = (lifecycle.not_started(state, now, reason) if reason is not None
             else lifecycle.lost(state, now, "the monitor died before it started the job"))
    try:
        lay.write_json(layout.file(shell_id, lay.STATE), ended)
    except OSError:
        return  # the slot stays taken; the next admission settles it
    start_admitted(layout, release(layout, shell_id, host), host)


def release(layout: lay.Layout, shell_id: str, host: Host = REAL) -> list[str]:
    """Give back the slot of an ended shell; returns the queued shells to start in its place.

    With nothing queued there is nothing to decide: entries join the queue only under the lock,
    so one that joins later was counted against the limit after this slot was freed. Slots of
    dead owners are then reclaimed by the next admission, as they would be if no shell had ended.
    """
    with Locked(layout):
        _unlink(os.path.join(layout.running, shell_id))
        if not queue_entries(layout):
            return []
    return admit(layout, limit_of(layout, shell_id), host=host).to_start


def dequeue(layout: lay.Layout, shell_id: str, host: Host = REAL) -> bool:
    """Remove a queued shell from the queue; False when it is not (or no longer) waiting there."""
    with Locked(layout):
        entries = [entry for entry, queued_id in queue_entries(layout) if queued_id == shell_id]
        if not entries:
            return False
        state = _read_state(layout, shell_id) or lifecycle.new(host.now(), queued=True)
        lay.write_json(layout.file(shell_id, lay.STATE), lifecycle.removed_from_queue(state, host.now()))
        for entry in entries:
            _unlink(os.path.join(layout.queue, entry))
        _discard_env(layout, shell_id)
        return True


def view(layout: lay.Layout, shell_id: str, state: lifecycle.State, host: Host = REAL) -> lifecycle.State:
    """How `state` reads: `lost` when the process that should be looking after the shell is gone.

    Side-effect free: nothing is written, signalled or started (that is `settle`). A `starting`
    shell whose starter died reads as it is until `settle` has waited for its monitor, or until
    STARTUP_GRACE has passed with no monitor in sight.
    """
    status = state.get("status")
    if status in lifecycle.SUPERVISED:
        if host.is_alive(state.get("monitor_pid"), state.get("monitor_start")):
            return state
        message = MONITOR_DIED
    elif status == "queued":
        if _queue_position(layout, shell_id) is not None or _marker_alive(layout, shell_id, host):
            return state
        message = QUEUER_DIED
    elif status == "starting":
        if (_owner_alive(layout, shell_id, host) or _marker_age(layout, shell_id, host) < STARTUP_GRACE
                or host.monitors_of(layout.shell_dir(shell_id))):
            return state
        message = STARTER_DIED
    else:
        return state
    # The monitor writes its final state before it exits: read again now that it is known gone.
    fresh = _read_state(layout, shell_id)
    if fresh is None or fresh.get("status") != status:
        return fresh or state
    return lifecycle.lost(fresh, host.now(), message)


def settle(layout: lay.Layout, shell_id: str, host: Host = REAL) -> lifecycle.State | None:
    """Record `lost` for a shell whose supervising process vanished, and act on it; the state after.

    Whatever is left of a lost job is stopped first (found by its tag, its recorded pid, process
    group and session): no process may run without a supervisor, and the slot stays taken until
    then. A queued shell at the head of the queue hands free slots on (a dead monitor may hold
    the one it waits for). Bounded: at most MONITOR_APPEAR waiting for a monitor on its way, and
    LOST_GRACE (then SIGKILL) for a job's leftovers.
    """
    state = _read_state(layout, shell_id)
    if state is None or lay.safe_dir(layout.shell_dir(shell_id)):
        return None  # nothing to act on, or a record this user did not make: its pids are not to be trusted
    status = state.get("status")
    if status in lifecycle.SUPERVISED:
        if host.is_alive(state.get("monitor_pid"), state.get("monitor_start")):
            return state
        message = MONITOR_DIED
    elif status == "starting":
        if _owner_alive(layout, shell_id, host) or _monitor_coming(layout, shell_id, host):
            return state
        message = STARTER_DIED
    elif status == "queued":
        position = _queue_position(layout, shell_id)
        if position == 0:
            try:
                start_admitted(layout, admit(layout, limit_of(layout, shell_id), host=host).to_start, host)
            except OSError:
                return state  # a home this reader cannot write: someone who can will hand the slot on
            return _read_state(layout, shell_id) or state
        if position is not None or _marker_alive(layout, shell_id, host):
            return state
        message = QUEUER_DIED
    else:
        return state
    fresh = _read_state(layout, shell_id)
    if fresh is None or fresh.get("status") != status:
        return fresh or state
    # Stopped before the end is recorded: until then the shell keeps its slot, and a settler that
    # dies half way leaves it for the next one rather than a job running uncounted.
    host.stop_job(shell_id, fresh, SIGTERM, LOST_GRACE)
    fresh = _read_state(layout, shell_id)
    if fresh is None or fresh.get("status") != status:
        return fresh or state  # settled by another process meanwhile
    lost = lifecycle.lost(fresh, host.now(), message)
    try:
        lay.write_json(layout.file(shell_id, lay.STATE), lost)
    except OSError:
        # A home this process cannot write (read-only, full): `lost` all the same; the first
        # settler that can write records it and gives the slot back.
        return lost
    _discard_env(layout, shell_id)
    start_admitted(layout, release(layout, shell_id, host), host)
    return lost


def limit_of(layout: lay.Layout, shell_id: str) -> int:
    """The limit that the shell was started under, which its monitor applies when it frees its slot."""
    try:
        limit = lay.read_json(layout.file(shell_id, lay.SPEC))["max_concurrent"]
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_LIMIT
    valid = isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= MAX_LIMIT
    return limit if valid else DEFAULT_LIMIT


def _reserve(layout: lay.Layout, shell_id: str, now: float, host: Host, group: str | None) -> None:
    pid, start = host.me()
    lay.write_json(os.path.join(layout.running, shell_id), {"pid": pid, "start": start, "at": now, "group": group},
                   durable=False)


def _queue_position(layout: lay.Layout, shell_id: str) -> int | None:
    """Where `shell_id` waits in the queue (0: next to start), or None when it is not there."""
    for position, (_, queued_id) in enumerate(queue_entries(layout)):
        if queued_id == shell_id:
            return position
    return None


def _marker(layout: lay.Layout, shell_id: str) -> dict[str, object]:
    try:
        marker = lay.read_json(os.path.join(layout.running, shell_id))
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _owner_alive(layout: lay.Layout, shell_id: str, host: Host) -> bool:
    """Whether the process that reserved the slot of `shell_id` still runs."""
    marker = _marker(layout, shell_id)
    return host.is_alive(marker.get("pid"), marker.get("start"))


def _marker_age(layout: lay.Layout, shell_id: str, host: Host) -> float:
    """How long ago the slot of `shell_id` was reserved (infinite when there is no readable marker)."""
    at = _marker(layout, shell_id).get("at")
    if isinstance(at, bool) or not isinstance(at, int | float):
        return float("inf")
    return host.now() - at


def _marker_alive(layout: lay.Layout, shell_id: str, host: Host) -> bool:
    return _owner_alive(layout, shell_id, host) or _marker_age(layout, shell_id, host) < STARTUP_GRACE


def _monitor_coming(layout: lay.Layout, shell_id: str, host: Host) -> bool:
    """Whether a monitor of `shell_id` is on its way although the process that launched it died."""
    shell_dir = layout.shell_dir(shell_id)
    if host.monitors_of(shell_dir):
        return True
    if _marker_age(layout, shell_id, host) >= STARTUP_GRACE:
        return False
    host.sleep(MONITOR_APPEAR)
    return bool(host.monitors_of(shell_dir))


def _count_active(layout: lay.Layout, orphans: list[str], host: Host, *, by_group: bool) -> dict[str | None, int]:
    """The slots taken, by group; frees those of ended shells, and lists in `orphans` those whose owner died.

    Names in `running/` that are not shell ids are not slots: never counted, never removed. Without
    `by_group` (no group has a limit) every slot counts under None, and no slot marker is read for it.
    """
    taken: dict[str | None, int] = {}
    for shell_id in os.listdir(layout.running):
        if not lay.is_shell_id(shell_id):
            continue
        state = _read_state(layout, shell_id) or {}
        status = state.get("status")
        if status in lifecycle.SUPERVISED:
            if not host.is_alive(state.get("monitor_pid"), state.get("monitor_start")):
                orphans.append(shell_id)
        elif status == "starting":
            if not _owner_alive(layout, shell_id, host):
                orphans.append(shell_id)
        elif not (status == "queued" and _marker_alive(layout, shell_id, host)):
            _unlink(os.path.join(layout.running, shell_id))
            continue
        group = _marker(layout, shell_id).get("group") if by_group else None
        key = group if isinstance(group, str) else None
        taken[key] = taken.get(key, 0) + 1
    return taken


def _read_state(layout: lay.Layout, shell_id: str) -> lifecycle.State | None:
    """The raw state of `shell_id`, or None when it is missing or damaged."""
    try:
        state = lay.read_json(layout.file(shell_id, lay.STATE))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("status"), str) else None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        pass  # a stray directory where a marker or an entry would be: not ours to remove


def _discard_env(layout: lay.Layout, shell_id: str) -> None:
    _unlink(layout.file(shell_id, lay.ENV))


def set_group_limit(layout: lay.Layout, group: str, limit: int | None, home_limit: int,
                    host: Host = REAL) -> None:
    """Set (None: remove) the most shells of `group` running at once, and start the queued shells it lets in."""
    with Locked(layout):
        schedule.write_group_limit(layout, group, limit)
    start_admitted(layout, admit(layout, home_limit, host=host).to_start, host)
