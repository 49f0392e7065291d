"""What a cluster start accepts: the address, the resources, and what is refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor import ClusterUnavailable, InvalidRequest, Supervisor
from supervisor.automation import runners
from supervisor.cluster import submission
from supervisor.cluster.address import normalize


@pytest.mark.parametrize(("given", "expected"), [
    ("127.0.0.1:8265", "http://127.0.0.1:8265"),
    ("http://head.example:8265/", "http://head.example:8265"),
    ("  https://head.example  ", "https://head.example"),
])
def test_an_address_is_a_dashboard_url(given: str, expected: str) -> None:
    assert normalize(given) == expected


@pytest.mark.parametrize(("given", "says"), [
    ("ray://127.0.0.1:10001", "not the address of a Ray dashboard"),
    ("", "must be the address of a Ray dashboard"),
    ("http://127.0.0.1:99999", "not a valid address"),
    ("http://127.0.0.1:8265/api/jobs", "has a path"),
])
def test_what_is_not_a_dashboard_url_is_refused(given: str, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says):
        normalize(given)


def test_the_environment_chooses_the_cluster(home: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MGSUP_CLUSTER", "127.0.0.1:8265")
    assert Supervisor(home.home).cluster == "http://127.0.0.1:8265"
    monkeypatch.setenv("MGSUP_CLUSTER", "ray://x:1")
    with pytest.raises(InvalidRequest, match=r"\$MGSUP_CLUSTER"):
        Supervisor(home.home)
    monkeypatch.delenv("MGSUP_CLUSTER")
    assert Supervisor(home.home).cluster is None


def test_resources_default_to_one_cpu_and_are_checked() -> None:
    assert submission.resources().as_dict() == {"CPU": 1.0, "GPU": 0.0}
    assert submission.resources(0.5, 1, {"big": 2}).as_dict() == {"CPU": 0.5, "GPU": 1.0, "big": 2.0}
    for bad, says in (((-1, None, None), "cpus must be a number >= 0"),
                      ((None, float("nan"), None), "gpus must be"),
                      ((None, None, {"CPU": 1}), "ask for CPU with cpus"),
                      ((None, None, {"x": True}), "resource 'x' must be"),
                      ((None, None, ["x"]), "must be a mapping")):
        with pytest.raises(InvalidRequest, match=says):
            submission.resources(*bad)


def test_a_bad_request_to_a_cluster_writes_nothing(home: Supervisor, tmp_path: Path) -> None:
    sup = Supervisor(home.home, cluster="http://127.0.0.1:1")
    with pytest.raises(InvalidRequest, match="cwd does not exist"):
        sup.start_shell("true", cwd=tmp_path / "missing")
    with pytest.raises(InvalidRequest, match="cpus must be"):
        sup.start_shell("true", cwd=tmp_path, cpus=-2)
    # A program name is looked up on the node's PATH, not here: the request goes on to the (absent) cluster.
    with pytest.raises(ClusterUnavailable):
        sup.start_shell(["no-such-program-here"], cwd=tmp_path)
    # A coordination run's runner likewise; only what travels with it is checked here.
    config = tmp_path / "run.yaml"
    config.write_text("agents: []\n")
    with pytest.raises(InvalidRequest, match="outside the run's working directory"):
        sup.start_coordination(config, "q?", runner="../runner", cwd=tmp_path)
    # Folders travel by name: two of one name (here the config's and mgsup's own package) are refused.
    with pytest.raises(InvalidRequest, match="would both travel to the Ray cluster as 'supervisor'"):
        sup.start_coordination(Path(__file__), "q?", cwd=tmp_path)
    with pytest.raises(ClusterUnavailable):
        sup.start_coordination(config, "q?", runner="massgen", cwd=tmp_path, env={"PATH": "/nowhere"})
    assert not (Path(home.home) / "shells").exists() or not list((Path(home.home) / "shells").iterdir())


def test_resources_need_a_cluster(home: Supervisor, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="asked of a Ray cluster"):
        home.start_shell("true", cwd=tmp_path, gpus=1)
    with pytest.raises(InvalidRequest, match="asked of a Ray cluster"):
        home.start_coordination(Path(__file__), "q?", cwd=tmp_path, resources={"x": 1})
    assert not (Path(home.home) / "shells").exists()


def test_a_config_outside_the_working_directory_travels_as_its_folder(tmp_path: Path) -> None:
    mgcoord = runners.for_node("mgcoord", cwd=tmp_path)
    inside = submission.coordination("shell_0a1b2c3d", tmp_path / "sub" / "c.yaml", "q", runner=mgcoord,
                                     workdir=tmp_path, timeout=None, env={}, env_names=[], name=None)
    outside = submission.coordination("shell_0a1b2c3d", Path("/elsewhere/configs/c.yaml"), "q", runner=mgcoord,
                                      workdir=tmp_path, timeout=None, env={"OPENAI_API_KEY": "sk-x"},
                                      env_names=["OPENAI_API_KEY"], name=None)
    assert '"config": "sub/c.yaml", "folder": null' in inside.entrypoint
    assert '"config": "c.yaml", "folder": "configs"' in outside.entrypoint
    assert outside.runtime_env["py_modules"][-1] == "/elsewhere/configs"
    # The working directory travels as a py_modules entry too (Ray replaces a working_dir under running jobs).
    assert outside.runtime_env["py_modules"][2] == str(tmp_path) and "working_dir" not in outside.runtime_env
    assert f'"workdir": "{tmp_path.name}"' in outside.entrypoint
    assert {".massgen/", ".mgsup/", ".git/"} <= set(outside.runtime_env["excludes"])
    # The caller's values travel in Ray's record of the job, never in the entrypoint (a process list shows it).
    assert outside.runtime_env["env_vars"]["OPENAI_API_KEY"] == "sk-x" and "sk-x" not in outside.entrypoint


def test_a_budget_is_refused_on_a_cluster_before_anything_is_written(home: Supervisor) -> None:
    config = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
    # Nothing listens there: the refusal must come before the cluster is asked anything.
    sup = Supervisor(home.home, cluster="http://127.0.0.1:9")
    with pytest.raises(InvalidRequest, match=r"budget .* not available for cluster shells"):
        sup.start_coordination(config, "What is 2 + 2?", budget={"max_tokens": 1000})
    assert not (home.home / "shells").exists() or not any((home.home / "shells").iterdir())


def test_a_batch_budget_is_refused_on_a_cluster(tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(repo / "scripts" / "batch.py"), "--run", str(repo / "configs" /
                          "demo.yaml"), "What is 2 + 2?", "--out", str(out), "--home",
                           str(tmp_path / "home"), "--cluster", "http://127.0.0.1:9", "--budget-tokens", "100"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "--budget-tokens and --budget-usd are not available on a cluster" in done.stderr
    assert not out.exists() and not (tmp_path / "home").exists()
