"""The everyday verbs on cluster shells, where no request to the cluster is needed: references, what is
refused (the local home's scheduling, pause), and clean of an ended cluster shell whose cluster is away."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from supervisor import InvalidRequest, Supervisor, lifecycle
from supervisor import layout as lay
from supervisor.models import Spec


@pytest.fixture
def away() -> str:
    """The address of a cluster that is not there (a closed port): any request to it fails."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _record(sup: Supervisor, cluster: str, shell_id: str, *, name: str | None = None, status: str = "running",
            created: float = 1.0) -> str:
    """A cluster shell's record, as a start and later reads leave it."""
    sup.store.create(Spec(shell_id=shell_id, name=name, command="sleep 60", argv=["/bin/sh", "-c", "sleep 60"],
                          cwd="/", created=created, backend="ray", cluster=cluster))
    ended = {"end_time": 3.0, "exit_code": 0} if status in lifecycle.ENDED else {}
    lay.write_json(sup.layout.file(shell_id, lay.STATE), {**lifecycle.new(created, queued=False), "status": status,
                                                          "start_time": 2.0, **ended})
    return shell_id


def test_the_local_homes_scheduling_is_refused_for_a_cluster_start(home: Supervisor, tmp_path: Path,
                                                                   away: str) -> None:
    sup = Supervisor(home.home, cluster=away)
    (tmp_path / "run.yaml").write_text("agents: []\n")
    refused = (({"group": "gpu"}, "group is"), ({"after": ["last"]}, "after is"), ({"retries": 2}, "retries is"),
               ({"retries": 1, "retry_delay": 5.0}, "retries, retry_delay are"))
    for options, named in refused:
        # Refused before the cluster is asked (it is not there): the message is about the options.
        with pytest.raises(InvalidRequest, match=f"^{named} scheduled by the local home and not available for "
                                                 r"cluster shells \(Ray holds their queue\)"):
            sup.start_shell("true", cwd=tmp_path, **options)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequest, match=f"^{named} scheduled by the local home"):
            sup.start_coordination("run.yaml", "q?", cwd=tmp_path, **options)  # type: ignore[arg-type]
    assert sup.list_shells() == [] and not (home.home / "groups.json").exists()


def test_a_cluster_shell_is_named_paused_never_and_started_after_never(home: Supervisor, tmp_path: Path,
                                                                       away: str) -> None:
    shell_id = _record(home, away, "shell_0a1b2c3d", name="train")
    state_file = Path(home.layout.file(shell_id, lay.STATE))
    before = state_file.read_bytes()
    # A reference is resolved from the local record alone, with the cluster away.
    assert home.resolve("train") == home.resolve("0a1b") == home.resolve("last") == shell_id
    for act, verb in ((home.pause, "paused"), (home.resume, "resumed")):
        with pytest.raises(InvalidRequest, match=f"^{shell_id} runs on the Ray cluster at {away}, and a Ray job cannot "
                                                 f"be {verb}: only local shells can"):
            act("train")
    with pytest.raises(InvalidRequest, match=f"^after names the cluster shell {shell_id}: a shell can start after "
                                             "local shells only"):
        home.start_shell("true", cwd=tmp_path, after=["train"])
    assert [s["shell_id"] for s in home.list_shells()] == [shell_id]
    assert state_file.read_bytes() == before
    home.store.remove(shell_id)  # nothing of it runs anywhere


def test_clean_removes_an_ended_cluster_shell_whose_cluster_is_away(home: Supervisor, away: str) -> None:
    ended = _record(home, away, "shell_0a1b2c3d", name="done", status="stopped")
    running = _record(home, away, "shell_4e5f6a7b", name="busy", created=2.0)
    # The running one keeps its record: its last known status says it may still run.
    with pytest.raises(InvalidRequest, match=f"not ended: {running} \\(running\\)"):
        home.clean(["busy"])
    assert home.clean(["done"]) == [ended]
    assert home.clean() == []
    assert [s["shell_id"] for s in home.list_shells()] == [running]
    home.store.remove(running)
