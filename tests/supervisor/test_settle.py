"""How a state reads (`admission.view`), what settling does (`admission.settle`), and the kill waits,
for each case of status, monitor alive, owner alive and queue position, against a scripted host.

The records are real files in a temporary home; only the machine is scripted (which processes live,
what a stop did, how much time passed), so each case runs in milliseconds without a real process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from supervisor import Supervisor, admission, lifecycle
from supervisor import layout as lay
from supervisor.host import Host

ME = (4242, 77)
JOB, MONITOR, OWNER = (1001, 11), (1002, 12), (1003, 13)
NOW = 1_800_000_000.0


@dataclass
class ScriptedHost(Host):
    """A machine where exactly the (pid, start) pairs in `alive` run, and time moves only by sleeping."""

    alive: set[tuple[int, int]] = field(default_factory=set)
    monitors: set[int] = field(default_factory=set)
    t: float = NOW
    mono: float = 0.0
    slept: float = 0.0
    stops: list[tuple[str, Any, int]] = field(default_factory=list)
    signals: list[tuple[Any, int]] = field(default_factory=list)
    spawned: list[str] = field(default_factory=list)
    on_sleep: Callable[[ScriptedHost], None] | None = None
    on_signal: Callable[[ScriptedHost], None] | None = None

    def __post_init__(self) -> None:
        super().__init__(lambda: self.t)

    def clock_ns(self) -> int:
        return int(self.t * 1e9)

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.mono += seconds
        self.t += seconds
        self.slept += seconds
        if self.on_sleep:
            self.on_sleep(self)

    def me(self) -> tuple[int, int | None]:
        return ME

    def is_alive(self, pid: object, ticks: object) -> bool:
        return (pid, ticks) in self.alive

    def monitors_of(self, shell_dir: str) -> set[int]:
        return set(self.monitors)

    def signal(self, pid: object, ticks: object, sig: int) -> None:
        self.signals.append((pid, sig))
        if self.on_signal:
            self.on_signal(self)

    def stop_job(self, shell_id: str, state: dict[str, Any], sig: int, grace: float) -> None:
        self.stops.append((shell_id, state.get("pid"), sig))
        self.alive.discard((state.get("pid"), state.get("pid_start")))  # type: ignore[arg-type]

    def stop_monitors(self, shell_dir: str, sig: int, grace: float) -> None:
        self.stops.append(("monitors", sorted(self.monitors), sig))
        self.monitors.clear()

    def stop_process(self, pid: object, ticks: object, sig: int, grace: float) -> None:
        self.stops.append(("process", pid, sig))
        self.alive.discard((pid, ticks))  # type: ignore[arg-type]

    def spawn_monitor(self, home: str, shell_id: str, env: dict[str, str] | None, log: str) -> int:
        self.spawned.append(shell_id)
        return JOB[0]


SID, OTHER = "shell_0000000a", "shell_0000000b"


@dataclass
class Home:
    layout: lay.Layout

    def shell(self, shell_id: str, status: str, *, marker: tuple[int, int] | None = None, marker_age: float = 1.0,
              queued: int | None = None, limit: int = 1, **fields: Any) -> None:
        """A shell in `status`; its slot marker written by `marker`; its place in the queue."""
        folder = Path(self.layout.shell_dir(shell_id))
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"shell_id": shell_id, "command": "true", "argv": ["true"], "cwd": "/", "created": NOW - 100,
                "max_concurrent": limit}
        (folder / "spec.json").write_text(json.dumps(spec))
        state = {**lifecycle.new(NOW - 100, queued=status == "queued"), "status": status, **fields}
        if status == "running":
            state |= {"pid": JOB[0], "pid_start": JOB[1], "monitor_pid": MONITOR[0], "monitor_start": MONITOR[1],
                      "start_time": NOW - 50}
        (folder / "state.json").write_text(json.dumps(state))
        if marker is not None:
            (Path(self.layout.running) / shell_id).write_text(
                json.dumps({"pid": marker[0], "start": marker[1], "at": NOW - marker_age}))
        if queued is not None:
            (Path(self.layout.queue) / f"{queued:020d}-{shell_id}").touch()

    def status(self, shell_id: str) -> str:
        return str(json.loads(Path(self.layout.file(shell_id, lay.STATE)).read_text())["status"])

    def slots(self) -> list[str]:
        return sorted(os.listdir(self.layout.running))


@pytest.fixture
def home(tmp_path: Path) -> Home:
    layout = lay.Layout(tmp_path / "home")
    layout.ensure()
    return Home(layout)


@dataclass(frozen=True)
class Case:
    status: str
    monitor_alive: bool = False
    owner_alive: bool = False
    position: int | None = None  # place in the queue, None when not in it
    marker: bool = True
    marker_age: float = 1.0
    monitor_seen: bool = False  # a process started as its monitor exists (not recorded yet)
    monitor_appears: bool = False  # ... and shows up during the MONITOR_APPEAR wait
    holder_alive: bool = True  # another shell holds the only slot; its monitor lives
    # expectations
    reads: str = ""
    settles_to: str = ""
    stopped: bool = False
    waited: bool = False
    started: bool = False


CASES = {
    "running, monitor alive": Case("running", monitor_alive=True, reads="running", settles_to="running"),
    "running, monitor dead": Case("running", reads="lost", settles_to="lost", stopped=True),
    "starting, owner alive": Case("starting", owner_alive=True, reads="starting", settles_to="starting"),
    "starting, owner dead, monitor on its way": Case("starting", monitor_seen=True, reads="starting",
                                                     settles_to="starting"),
    "starting, owner dead, monitor appears while waited for": Case(
        "starting", monitor_appears=True, reads="starting", settles_to="starting", waited=True),
    "starting, owner dead, no monitor": Case("starting", reads="starting", settles_to="lost", stopped=True,
                                             waited=True),
    "starting, owner dead, no monitor for longer than the grace": Case(
        "starting", marker_age=admission.STARTUP_GRACE + 1, reads="lost", settles_to="lost", stopped=True),
    "starting, no marker, no monitor": Case("starting", marker=False, reads="lost", settles_to="lost", stopped=True),
    "queued, second in line": Case("queued", position=1, marker=False, reads="queued", settles_to="queued"),
    "queued, first in line, the slot held by a live monitor": Case(
        "queued", position=0, marker=False, reads="queued", settles_to="queued"),
    "queued, first in line, the slot held by a dead monitor": Case(
        "queued", position=0, marker=False, holder_alive=False, reads="queued", settles_to="starting", started=True),
    "queued, being handed a slot": Case("queued", owner_alive=True, reads="queued", settles_to="queued"),
    "queued, nowhere in the queue, no marker": Case("queued", marker=False, reads="lost", settles_to="lost",
                                                    stopped=True),
    **{f"{ended}": Case(ended, reads=ended, settles_to=ended, marker=False) for ended in sorted(lifecycle.ENDED)},
}


def _arrange(home: Home, case: Case) -> ScriptedHost:
    host = ScriptedHost()
    # The slot another shell holds (its monitor alive or not), so a limit of 1 is full.
    if case.status == "queued":
        home.shell(OTHER, "running", marker=OWNER)
        if case.holder_alive:
            host.alive.add(MONITOR)
        if case.position == 1:
            home.shell("shell_000000ff", "queued", queued=1)
    home.shell(SID, case.status, marker=OWNER if case.marker else None, marker_age=case.marker_age,
               queued=2 if case.position is not None else None)
    if case.status != "queued" and case.monitor_alive:
        host.alive.add(MONITOR)
    if case.owner_alive:
        host.alive.add(OWNER)
    if case.status == "running":
        host.alive.add(JOB)
    if case.monitor_seen:
        host.monitors.add(MONITOR[0])
    if case.monitor_appears:
        host.on_sleep = lambda h: h.monitors.add(MONITOR[0])
    return host


@pytest.mark.parametrize("name", list(CASES))
def test_view_reports_and_settle_acts(home: Home, name: str) -> None:
    case = CASES[name]
    host = _arrange(home, case)
    raw = json.loads(Path(home.layout.file(SID, lay.STATE)).read_text())
    before = {p: p.stat().st_mtime_ns for p in Path(home.layout.home).rglob("*")}
    assert admission.view(home.layout, SID, raw, host)["status"] == case.reads
    assert (host.stops, host.spawned, host.slept) == ([], [], 0.0), "view acted"
    assert {p: p.stat().st_mtime_ns for p in Path(home.layout.home).rglob("*")} == before, "view wrote"

    settled = admission.settle(home.layout, SID, host)
    assert settled is not None and settled["status"] == case.settles_to
    assert home.status(SID) == case.settles_to, "what settle returns is what it recorded"
    assert bool([s for s in host.stops if s[0] == SID]) == case.stopped
    assert (host.slept > 0) == case.waited
    assert host.slept <= admission.MONITOR_APPEAR
    assert (SID in host.spawned) == case.started
    if case.stopped:
        assert SID not in home.slots(), "a settled shell keeps no slot"
        assert next(s for s in host.stops if s[0] == SID)[1] == (JOB[0] if case.status == "running" else None)


def test_a_lost_shell_keeps_its_slot_until_its_job_is_stopped(home: Home) -> None:
    """The stop comes before the slot is given back, so no new job runs beside the leftovers."""
    home.shell(SID, "running", marker=OWNER)
    host = ScriptedHost(alive={JOB})
    seen: list[list[str]] = []
    stop_job = host.stop_job

    def stop_and_look(shell_id: str, state: dict[str, Any], sig: int, grace: float) -> None:
        seen.append(home.slots())
        stop_job(shell_id, state, sig, grace)

    host.stop_job = stop_and_look  # type: ignore[method-assign]
    admission.settle(home.layout, SID, host)
    assert seen == [[SID]] and home.slots() == []


def test_admission_settles_an_orphaned_slot_before_deciding(home: Home) -> None:
    home.shell(OTHER, "running", marker=OWNER)
    host = ScriptedHost(alive={JOB})
    Path(home.layout.shell_dir(SID)).mkdir()
    result = admission.admit(home.layout, 1, SID, host=host)
    assert result.admitted and host.stops == [(OTHER, JOB[0], 15)]
    assert home.status(OTHER) == "lost" and home.slots() == [SID]



def test_a_freed_slot_goes_to_the_head_of_the_queue(home: Home) -> None:
    home.shell(OTHER, "stopped", marker=OWNER)
    home.shell(SID, "queued", queued=1)
    assert admission.release(home.layout, OTHER, ScriptedHost()) == [SID]
    assert home.status(SID) == "starting" and home.slots() == [SID] and os.listdir(home.layout.queue) == []


def test_a_freed_slot_with_nothing_queued_decides_nothing(home: Home) -> None:
    # An empty queue has no one to give the slot to: the release neither counts the other slots nor
    # settles an orphaned one (the next admission does, before it decides).
    home.shell(OTHER, "stopped", marker=OWNER)
    home.shell(SID, "running", marker=OWNER)
    host = ScriptedHost(alive={JOB})
    assert admission.release(home.layout, OTHER, host) == []
    assert home.slots() == [SID] and home.status(SID) == "running" and host.stops == []
    assert admission.admit(home.layout, 1, host=host).active == 0 and home.status(SID) == "lost"


def test_a_monitor_that_did_not_answer_is_stopped_before_its_job_and_the_slot_goes_back(home: Home) -> None:
    # A process still claiming to be the monitor (hung, or a child of the dead one before its exec) is
    # stopped first, so that it cannot start the job once the shell is settled; then the job by its tag.
    home.shell(SID, "starting", marker=OWNER)
    host = ScriptedHost(monitors={4242})
    admission.monitor_failed(home.layout, SID, None, host)
    assert host.stops == [("monitors", [4242], 9), (SID, None, 15)]
    assert home.status(SID) == "lost" and home.slots() == []

# -- the kill waits -----------------------------------------------------------------------------------


@pytest.fixture
def sup(home: Home) -> Callable[[ScriptedHost], Supervisor]:
    return lambda host: Supervisor(home.layout.home, max_concurrent=1, host=host)


def _record_end(home: Home, shell_id: str, **fields: Any) -> Callable[[ScriptedHost], None]:
    def monitor_answers(host: ScriptedHost) -> None:
        path = Path(home.layout.file(shell_id, lay.STATE))
        state = json.loads(path.read_text())
        path.write_text(json.dumps({**state, "end_time": host.t, **fields}))
        host.alive.discard(MONITOR)
    return monitor_answers


def test_kill_a_running_shell_whose_monitor_answers(home: Home, sup: Callable[[ScriptedHost], Supervisor]) -> None:
    home.shell(SID, "running", marker=OWNER)
    host = ScriptedHost(alive={MONITOR, JOB})
    host.on_signal = _record_end(home, SID, status="killed", exit_code=-15, signal="SIGTERM", kill_requested=True)
    assert sup(host).kill_shell(SID, grace=2) == {"shell_id": SID, "status": "killed", "signal": "SIGTERM"}
    assert host.signals == [(MONITOR[0], 15)] and host.stops == []
    assert json.loads(Path(home.layout.file(SID, lay.KILL_REQUEST)).read_text()) == {"signal": 15, "grace": 2.0}


def test_kill_a_running_shell_whose_monitor_does_not_answer(home: Home,
                                                            sup: Callable[[ScriptedHost], Supervisor]) -> None:
    home.shell(SID, "running", marker=OWNER)
    host = ScriptedHost(alive={MONITOR, JOB})
    assert sup(host).kill_shell(SID, grace=2)["status"] == "killed"
    # It waited the grace and the margin (virtual time), then stopped the monitor and the job itself.
    assert host.mono == pytest.approx(2 + 10, abs=0.05)
    assert host.stops == [("process", MONITOR[0], 9), (SID, JOB[0], 9)]
    final = json.loads(Path(home.layout.file(SID, lay.STATE)).read_text())
    assert (final["status"], final["exit_code"], final["kill_requested"]) == ("killed", -9, True)
    assert home.slots() == []


@pytest.mark.parametrize(("ended", "fields"), [
    ("by itself", {"status": "stopped", "exit_code": 0}),
    ("killed from outside", {"status": "killed", "exit_code": -9, "signal": "SIGKILL", "kill_requested": False}),
])
def test_kill_of_a_job_that_ended_otherwise_meanwhile(home: Home, sup: Callable[[ScriptedHost], Supervisor],
                                                     ended: str, fields: dict[str, Any]) -> None:
    home.shell(SID, "running", marker=OWNER)
    host = ScriptedHost(alive={MONITOR, JOB})
    host.on_signal = _record_end(home, SID, **fields)
    result = sup(host).kill_shell(SID)
    assert result == {"shell_id": SID, "status": fields["status"], "signal": None,
                      "message": "Process already terminated"}, ended


def test_kill_waits_for_a_starting_shell_to_run(home: Home, sup: Callable[[ScriptedHost], Supervisor]) -> None:
    home.shell(SID, "starting", marker=OWNER)
    host = ScriptedHost(alive={OWNER})

    def monitor_comes_up(h: ScriptedHost) -> None:
        if h.slept >= 0.5 and home.status(SID) == "starting":
            home.shell(SID, "running")
            h.alive |= {MONITOR, JOB}

    host.on_sleep = monitor_comes_up
    host.on_signal = _record_end(home, SID, status="killed", exit_code=-15, signal="SIGTERM", kill_requested=True)
    assert sup(host).kill_shell(SID)["status"] == "killed"
    assert 0.5 <= host.slept < 1.0


def test_kill_of_a_starting_shell_whose_starter_died_settles_it(home: Home,
                                                               sup: Callable[[ScriptedHost], Supervisor]) -> None:
    home.shell(SID, "starting", marker=OWNER)
    host = ScriptedHost()
    result = sup(host).kill_shell(SID)
    assert result["status"] == "lost" and result["message"] == "Process already terminated"
    assert host.slept == pytest.approx(admission.MONITOR_APPEAR)


def test_kill_of_a_queued_shell_removes_it(home: Home, sup: Callable[[ScriptedHost], Supervisor]) -> None:
    home.shell(OTHER, "running", marker=OWNER)
    home.shell(SID, "queued", queued=1)
    host = ScriptedHost(alive={MONITOR})
    assert sup(host).kill_shell(SID)["message"] == "Removed from queue"
    assert os.listdir(home.layout.queue) == [] and host.stops == [] and host.spawned == []
