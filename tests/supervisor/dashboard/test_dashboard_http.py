"""Every route of the dashboard and its errors, through starlette's TestClient on a real home.

The Hub runs for real (file watching on the test's home); shells are real processes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from processes import tagged

from supervisor import Supervisor
from supervisor.dashboard import hub as hub_module
from supervisor.experiments import Result
from supervisor.experiments.results import ResultsTable

pytestmark = pytest.mark.timeout(90)

GET_ROUTES = ["/", "/shells/shell_00000000", "/experiments", "/experiments/000000000000",
              "/experiments/000000000000/plot.png", "/api/shells", "/api/shells/shell_00000000",
              "/api/shells/shell_00000000/output", "/api/experiments", "/api/experiments/000000000000",
              "/events/shells", "/events/shells/shell_00000000", "/events/experiments",
              "/events/experiments/000000000000", "/static/dashboard.css", "/static/nothing.js"]
POST_ROUTES = ["/api/shells/shell_00000000/kill", "/api/shells/shell_00000000/restart",
               "/api/shells/shell_00000000/pause", "/api/shells/shell_00000000/resume", "/api/clean"]
SECRET = "s3cret-value-never-shown"


def listed(dash: Any, **params: Any) -> dict[str, Any]:
    response = dash.client.get("/api/shells", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def counted(dash: Any, *statuses: str) -> list[int]:
    counts = listed(dash)["counts"]
    return [counts[s] for s in statuses]


def ids(view: dict[str, Any]) -> list[str]:
    return [row["id"] for row in view["rows"]]



# -- the guard ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", GET_ROUTES)
def test_every_get_without_the_cookie_is_401(dash: Any, path: str) -> None:
    dash.client.cookies.clear()
    response = dash.client.get(path)
    assert response.status_code == 401
    assert "token" in response.json()["error"]


@pytest.mark.parametrize("path", POST_ROUTES)
def test_every_post_without_the_cookie_is_401_and_changes_nothing(dash: Any, path: str) -> None:
    shell_id = dash.sup.start_shell("sleep 30")
    dash.client.cookies.clear()
    response = dash.post(path.replace("shell_00000000", shell_id))
    assert response.status_code == 401
    assert dash.sup.get_shell_status(shell_id)["status"] == "running"


def test_a_browser_without_the_token_gets_a_page_that_says_what_to_do(dash: Any) -> None:
    dash.client.cookies.clear()
    response = dash.client.get("/", headers={"accept": "text/html"})
    assert response.status_code == 401
    assert "needs its token" in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_the_token_sets_an_httponly_samesite_cookie_and_leaves_the_address(dash: Any) -> None:
    dash.client.cookies.clear()
    response = dash.client.get(f"/shells/x?token={dash.keys.token}&status=running", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/shells/x?status=running"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{dash.keys.cookie}={dash.keys.token};")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert dash.client.get("/").status_code == 200


def test_a_wrong_token_is_401_and_sets_no_cookie(dash: Any) -> None:
    dash.client.cookies.clear()
    response = dash.client.get("/?token=guess", follow_redirects=False)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert dash.client.get("/api/shells").status_code == 401


def test_a_wrong_cookie_is_401(dash: Any) -> None:
    dash.client.cookies.set(dash.keys.cookie, "guess")
    assert dash.client.get("/api/shells").status_code == 401


def test_a_host_that_is_not_loopback_is_refused(dash: Any) -> None:
    response = dash.client.get("/api/shells", headers={"host": "evil.example:8765"})
    assert response.status_code == 400
    assert "loopback" in response.json()["error"]


@pytest.mark.parametrize("headers", [
    {"x-csrf-token": "guess"},
    {"x-csrf-token": ""},
    {"origin": "http://127.0.0.1:9999"},
    {"origin": "http://evil.example"},
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},
])
def test_a_post_that_fails_the_csrf_check_is_403_and_kills_nothing(dash: Any, headers: dict[str, str]) -> None:
    shell_id = dash.sup.start_shell("sleep 30")
    response = dash.client.post(f"/api/shells/{shell_id}/kill",
                                headers={"x-csrf-token": dash.keys.csrf, **headers}, json={})
    assert response.status_code == 403
    assert "refused" in response.json()["error"] or "CSRF" in response.json()["error"]
    assert dash.sup.get_shell_status(shell_id)["status"] == "running"


def test_a_post_without_a_csrf_header_is_403(dash: Any) -> None:
    shell_id = dash.sup.start_shell("sleep 30")
    response = dash.client.post(f"/api/shells/{shell_id}/kill", json={})
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]
    assert dash.sup.get_shell_status(shell_id)["status"] == "running"


def test_state_changes_only_by_post(dash: Any) -> None:
    shell_id = dash.sup.start_shell("sleep 30")
    assert dash.client.get(f"/api/shells/{shell_id}/kill").status_code == 405
    assert dash.client.get("/api/clean").status_code == 405
    assert dash.sup.get_shell_status(shell_id)["status"] == "running"


def test_every_response_forbids_foreign_scripts_and_framing(dash: Any) -> None:
    for response in (dash.client.get("/"), dash.client.get("/api/shells"), dash.client.get("/static/common.js")):
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"


def test_environment_values_are_never_shown(dash: Any) -> None:
    shell_id = dash.sup.start_shell("echo started; sleep 30", env={"API_TOKEN": SECRET})
    dash.sup.start_shell("sleep 30", queue=False, env={"OTHER": SECRET})
    pages = ["/", f"/shells/{shell_id}", "/api/shells", f"/api/shells/{shell_id}",
             f"/api/shells/{shell_id}/output?stream=stdout", f"/api/shells/{shell_id}/output?stream=stderr"]
    for path in pages:
        response = dash.client.get(path)
        assert response.status_code == 200
        assert SECRET not in response.text, path


# -- pages and static files ----------------------------------------------------------------------------

def test_pages_are_served_with_their_scripts_and_the_csrf_token(dash: Any) -> None:
    shell_id = dash.sup.start_shell("true")
    for path, script in (("/", "shells.js"), (f"/shells/{shell_id}", "shell.js"), ("/experiments", "experiments.js")):
        response = dash.client.get(path)
        assert response.status_code == 200
        assert f'<script src="/static/{script}"' in response.text
        assert f'content="{dash.keys.csrf}"' in response.text
        assert str(dash.sup.home) in response.text
    for name in ("dashboard.css", "common.js", "shells.js", "shell.js", "experiments.js", "experiment.js",
                 "favicon.svg"):
        assert dash.client.get(f"/static/{name}").status_code == 200, name


def test_unknown_pages_are_404(dash: Any) -> None:
    assert dash.client.get("/shells/shell_00000000").status_code == 404
    assert "no shell" in dash.client.get("/shells/shell_00000000").text
    assert dash.client.get("/experiments/000000000000").status_code == 404
    assert dash.client.get("/nowhere").status_code == 404
    assert dash.client.get("/static/nothing.js").status_code == 404


# -- the shells table -----------------------------------------------------------------------------------

def test_the_table_lists_newest_first_with_counts(dash: Any, wait_for: Callable[..., Any]) -> None:
    first = dash.sup.start_shell("exit 3", name="first")
    second = dash.sup.start_shell("sleep 30", name="second")
    dash.sup.wait_shell(first, timeout=30)
    wait_for(lambda: counted(dash, "failed", "running") == [1, 1], what="both shells")
    view = listed(dash)
    assert ids(view) == [second, first]
    assert view["counts"]["running"] == 1
    assert view["total"] == view["matched"] == 2
    row = view["rows"][1]
    assert (row["name"], row["status"], row["exit_code"], row["command"]) == ("first", "failed", 3, "exit 3")


def test_the_table_filters_by_status_and_name(dash: Any, wait_for: Callable[..., Any]) -> None:
    done = dash.sup.start_shell("true", name="alpha-done")
    running = dash.sup.start_shell("sleep 30", name="beta-run")
    dash.sup.wait_shell(done, timeout=30)
    wait_for(lambda: counted(dash, "stopped", "running") == [1, 1], what="both shells")
    assert ids(listed(dash, status="running")) == [running]
    assert ids(listed(dash, status="stopped")) == [done]
    assert ids(listed(dash, name="ALPHA")) == [done]
    assert ids(listed(dash, name=running[6:10])) == [running]
    nothing = listed(dash, status="running", name="alpha")
    assert nothing["rows"] == [] and nothing["matched"] == 0 and nothing["total"] == 2


def test_the_table_pages(dash: Any, wait_for: Callable[..., Any]) -> None:
    made = [dash.sup.start_shell("true") for _ in range(5)]
    wait_for(lambda: listed(dash)["total"] == 5, what="five shells")
    pages = [listed(dash, per_page=2, page=n) for n in (1, 2, 3)]
    assert [p["pages"] for p in pages] == [3, 3, 3]
    assert [i for p in pages for i in ids(p)] == list(reversed(made))
    assert listed(dash, per_page=2, page=9)["page"] == 3


@pytest.mark.parametrize(("params", "message"), [
    ({"page": "x"}, "page must be a whole number"),
    ({"page": "0"}, "page must be between"),
    ({"per_page": "100000"}, "per_page must be between"),
])
def test_bad_table_queries_are_400(dash: Any, params: dict[str, str], message: str) -> None:
    for path in ("/api/shells", "/events/shells"):
        response = dash.client.get(path, params=params)
        assert response.status_code == 400
        assert message in response.json()["error"]


def test_the_hub_sees_changes_by_file_watching_alone(home: Supervisor, monkeypatch: pytest.MonkeyPatch,
                                                      dash_factory: Callable[..., Any],
                                                      wait_for: Callable[..., Any]) -> None:
    # With the periodic re-read pushed out of reach, only the watcher can report these changes.
    monkeypatch.setattr(hub_module, "LIVENESS_SECONDS", 3600.0)
    home.store.ensure()
    dash = dash_factory()
    listed(dash)
    shell_id = home.start_shell("sleep 0.5")
    wait_for(lambda: shell_id in ids(listed(dash)), what="the new shell")
    wait_for(lambda: listed(dash)["rows"][0]["status"] == "stopped", what="its end")
    assert dash.post("/api/clean").status_code == 200
    wait_for(lambda: listed(dash)["total"] == 0, what="the cleaned table")


# -- one shell --------------------------------------------------------------------------------------------

def test_shell_details(dash: Any) -> None:
    shell_id = dash.sup.start_shell(["sh", "-c", "echo hi"], name="one")
    dash.sup.wait_shell(shell_id, timeout=30)
    details = dash.client.get(f"/api/shells/{shell_id}").json()
    assert details["status"]["shell_id"] == shell_id
    assert details["status"]["status"] == "stopped"
    assert details["row"]["name"] == "one"
    assert details["command_line"] == "sh -c 'echo hi'"
    assert details["timeline"] == [] and details["answer"] is None


def test_unknown_shells_are_404(dash: Any) -> None:
    for path in ("/api/shells/shell_00000000", "/api/shells/shell_00000000/output", "/events/shells/shell_00000000",
                 "/api/shells/nonsense"):
        response = dash.client.get(path)
        assert response.status_code == 404, path
        assert "no shell" in response.json()["error"]
    response = dash.post("/api/shells/shell_00000000/kill")
    assert response.status_code == 404


def test_output_windows_join_into_the_whole_log(dash: Any) -> None:
    script = "import sys\nfor i in range(3000): print(f'line {i} ' + 'é' * (i % 7))\nprint('ünfinished', end='')"
    shell_id = dash.sup.start_shell([sys.executable, "-c", script])
    dash.sup.wait_shell(shell_id, timeout=30)
    whole = Path(dash.sup.get_shell_status(shell_id)["stdout_path"]).read_bytes()
    last = dash.client.get(f"/api/shells/{shell_id}/output", params={"stream": "stdout", "window": 5000}).json()
    assert last["end"] == last["size"] == len(whole)
    assert last["text"].startswith("line ")  # cut at a whole line
    pieces, start = [last["text"]], last["start"]
    while start > 0:
        earlier = dash.client.get(f"/api/shells/{shell_id}/output",
                                  params={"stream": "stdout", "end": start, "window": 5000}).json()
        assert earlier["end"] == start
        pieces.insert(0, earlier["text"])
        start = earlier["start"]
    assert "".join(pieces).encode() == whole


@pytest.mark.parametrize(("params", "message"), [
    ({"stream": "both"}, "unknown stream"),
    ({"end": "-1"}, "end must be >= 0"),
    ({"window": "lots"}, "window must be a whole number"),
])
def test_bad_output_queries_are_400(dash: Any, params: dict[str, str], message: str) -> None:
    shell_id = dash.sup.start_shell("true")
    response = dash.client.get(f"/api/shells/{shell_id}/output", params=params)
    assert response.status_code == 400
    assert message in response.json()["error"]


# -- actions ------------------------------------------------------------------------------------------------

def test_kill_stops_the_whole_tree(dash: Any, wait_for: Callable[..., Any]) -> None:
    shell_id = dash.sup.start_shell("sleep 300 & (setsid sleep 300 &); sleep 300")
    wait_for(lambda: len(tagged(shell_id)) >= 3, what="the job's tree")
    processes = tagged(shell_id)
    response = dash.post(f"/api/shells/{shell_id}/kill", {"grace": 1})
    assert response.status_code == 200
    assert response.json() == {"shell_id": shell_id, "outcome": "killed", "status": "killed", "signal": "SIGTERM",
                               "message": None}
    assert [p.pid for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert dash.client.get(f"/api/shells/{shell_id}").json()["status"]["status"] == "killed"


@pytest.mark.parametrize(("body", "message"), [
    ({"grace": -1}, "grace"),
    ({"grace": "soon"}, "grace"),
    ({"signal": "SIGNOPE"}, "signal"),
])
def test_a_bad_kill_is_400_and_kills_nothing(dash: Any, body: dict[str, Any], message: str) -> None:
    shell_id = dash.sup.start_shell("sleep 30")
    response = dash.post(f"/api/shells/{shell_id}/kill", body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert dash.sup.get_shell_status(shell_id)["status"] == "running"


def test_a_body_that_is_not_a_json_object_is_400(dash: Any) -> None:
    shell_id = dash.sup.start_shell("sleep 30")
    for raw in (b"[1]", b"{nope"):
        response = dash.client.post(f"/api/shells/{shell_id}/kill", content=raw,
                                    headers={"x-csrf-token": dash.keys.csrf})
        assert response.status_code == 400
        assert "JSON object" in response.json()["error"]
    assert dash.sup.get_shell_status(shell_id)["status"] == "running"


def test_kill_of_an_ended_shell_says_so(dash: Any) -> None:
    shell_id = dash.sup.start_shell("true")
    dash.sup.wait_shell(shell_id, timeout=30)
    result = dash.post(f"/api/shells/{shell_id}/kill").json()
    assert result["status"] == "stopped" and result["message"] == "Process already terminated"
    assert result["outcome"] == "already_ended"


def test_kill_of_a_queued_shell_takes_it_out_of_the_queue(dash: Any) -> None:
    home = dash.sup.home
    busy = Supervisor(home, max_concurrent=1).start_shell("sleep 30")
    waiting = Supervisor(home, max_concurrent=1).start_shell("true", queue=True)
    result = dash.post(f"/api/shells/{waiting}/kill").json()
    assert (result["outcome"], result["status"]) == ("dequeued", "killed")
    dash.sup.kill_shell(busy)


def test_restart_runs_the_command_again_as_a_new_shell(dash: Any, wait_for: Callable[..., Any]) -> None:
    old = dash.sup.start_shell("echo again; sleep 30", name="again")
    response = dash.post(f"/api/shells/{old}/restart")
    assert response.status_code == 200
    new = response.json()["shell_id"]
    assert response.json() == {"shell_id": new, "restarted_from": old} and new != old
    assert dash.sup.get_shell_status(old)["status"] == "killed", "a live shell is killed first"
    assert dash.sup.get_shell_status(new)["restarted_from"] == old
    wait_for(lambda: dash.client.get(f"/api/shells/{new}").status_code == 200, what="the new shell in the hub")
    dash.sup.kill_shell(new)


def test_a_restart_that_needs_an_environment_value_is_400_and_kills_nothing(dash: Any,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MGSUP_DASH_TOKEN", raising=False)
    old = dash.sup.start_shell("sleep 30", env={"MGSUP_DASH_TOKEN": "x"})
    response = dash.post(f"/api/shells/{old}/restart")
    assert response.status_code == 400 and "MGSUP_DASH_TOKEN" in response.json()["error"]
    assert dash.sup.get_shell_status(old)["status"] == "running"
    assert len(dash.sup.list_shells()) == 1
    assert dash.post("/api/shells/shell_00000000/restart").status_code == 404


def test_pause_and_resume_stop_and_continue_the_whole_tree(dash: Any, wait_for: Callable[..., Any],
                                                          process_state: Callable[[int], str]) -> None:
    shell_id = dash.sup.start_shell("sleep 300 & sleep 300", name="nap")
    # Both sleeps running (a shell paused between its vfork and the exec would show `D`, not `T`).
    wait_for(lambda: sum(p.name() == "sleep" for p in tagged(shell_id)) == 2, what="the job's tree")
    pids = [p.pid for p in tagged(shell_id)]
    response = dash.post(f"/api/shells/{shell_id}/pause")
    assert response.status_code == 200, response.text
    assert (response.json()["shell_id"], response.json()["status"]) == (shell_id, "paused")
    wait_for(lambda: all(process_state(pid) == "T" for pid in pids), what="every process stopped")
    # Paused shells have their own filter, and its count.
    assert ids(listed(dash, status="paused")) == [shell_id]
    assert listed(dash)["counts"]["paused"] == 1
    assert dash.post(f"/api/shells/{shell_id}/pause").json()["status"] == "paused", "pausing again changes nothing"

    response = dash.post(f"/api/shells/{shell_id}/resume")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "running"
    wait_for(lambda: all(process_state(pid) != "T" for pid in pids), what="every process continuing")
    assert ids(listed(dash, status="running")) == [shell_id]


def _paused_or_running(dash: Any, verb: str, wait_for: Callable[..., Any],
                       process_state: Callable[[int], str]) -> tuple[str, int]:
    """A shell that `verb` applies to (running for pause, paused for resume), and its job's pid."""
    # One process, no shell: a shell that vforks shows `D` (waiting for its stopped child), not `T`.
    shell_id = dash.sup.start_shell(["sleep", "300"])
    pid = dash.sup.get_shell_status(shell_id)["pid"]
    if verb == "resume":
        dash.sup.pause(shell_id)
        # The kernel stops the process when the signal is delivered, a moment after `pause` returns.
        wait_for(lambda: process_state(pid) == "T", what="the job to be stopped")
    return shell_id, pid


@pytest.mark.parametrize("verb", ["pause", "resume"])
@pytest.mark.parametrize(("refusal", "code"), [("no cookie", 401), ("wrong CSRF token", 403), ("GET", 405)])
def test_a_refused_pause_or_resume_changes_nothing(dash: Any, process_state: Callable[[int], str],
                                                   wait_for: Callable[..., Any], verb: str, refusal: str,
                                                   code: int) -> None:
    shell_id, pid = _paused_or_running(dash, verb, wait_for, process_state)
    before = "paused" if verb == "resume" else "running"
    path = f"/api/shells/{shell_id}/{verb}"
    if refusal == "no cookie":
        dash.client.cookies.clear()
        response = dash.post(path)
        dash.client.cookies.set(dash.keys.cookie, dash.keys.token)
    elif refusal == "GET":
        response = dash.client.get(path)
    else:
        response = dash.post(path, **{"x-csrf-token": "guess"})
    assert response.status_code == code
    assert dash.sup.get_shell_status(shell_id)["status"] == before
    assert (process_state(pid) == "T") is (before == "paused")


@pytest.mark.parametrize("verb", ["pause", "resume"])
def test_pause_or_resume_of_an_ended_shell_is_400_with_the_reason(dash: Any, verb: str) -> None:
    shell_id = dash.sup.start_shell("true")
    dash.sup.wait_shell(shell_id, timeout=30)
    response = dash.post(f"/api/shells/{shell_id}/{verb}")
    assert response.status_code == 400
    assert response.json() == {"error": f"{shell_id} is stopped: only a running shell can be paused and only a "
                                        "paused one resumed"}
    assert dash.sup.get_shell_status(shell_id)["status"] == "stopped"


def test_resume_of_a_running_shell_changes_nothing(dash: Any, process_state: Callable[[int], str]) -> None:
    shell_id = dash.sup.start_shell("sleep 300")
    response = dash.post(f"/api/shells/{shell_id}/resume")
    assert response.status_code == 200
    assert response.json()["status"] == "running"
    assert process_state(dash.sup.get_shell_status(shell_id)["pid"]) != "T"


def test_pause_of_a_queued_or_unknown_shell_is_refused(dash: Any) -> None:
    home = dash.sup.home
    busy = Supervisor(home, max_concurrent=1).start_shell("sleep 30")
    waiting = Supervisor(home, max_concurrent=1).start_shell("true", queue=True)
    response = dash.post(f"/api/shells/{waiting}/pause")
    assert response.status_code == 400 and "is queued" in response.json()["error"]
    assert dash.sup.get_shell_status(waiting)["status"] == "queued"
    response = dash.post("/api/shells/shell_00000000/pause")
    assert response.status_code == 404 and "no shell" in response.json()["error"]
    dash.sup.kill_many([waiting, busy])


def test_clean_removes_ended_shells_only(dash: Any, wait_for: Callable[..., Any]) -> None:
    ended = dash.sup.start_shell("true")
    running = dash.sup.start_shell("sleep 30")
    dash.sup.wait_shell(ended, timeout=30)
    wait_for(lambda: listed(dash)["counts"]["running"] == 1, what="the running shell")
    response = dash.post("/api/clean")
    assert response.status_code == 200
    assert response.json() == {"removed": [ended]}
    assert ids(listed(dash)) == [running]
    assert dash.client.get(f"/api/shells/{ended}").status_code == 404


# -- experiment folders --------------------------------------------------------------------------------------

def write_table(folder: Path, shell_id: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = {
        "e1": Result(experiment_id="e1", label="A", config="a.yaml", question="q", shell_id=shell_id, status="stopped",
                     exit_code=0, winner="solver", duration_seconds=1.5, votes={"agent1.1": 2}, total_tokens=30),
        "e2": Result(experiment_id="e2", label="B", config="b.yaml", question="q", status="failed", exit_code=2,
                     duration_seconds=3.0),
    }
    ResultsTable(folder, rows).save()


def test_a_named_experiment_folder_shows_its_table_summary_and_plot(tmp_path: Path,
                                                                     dash_factory: Callable[..., Any]) -> None:
    folder = tmp_path / "batch"
    write_table(folder)
    dash = dash_factory(experiment_dirs=[folder])
    [entry] = dash.client.get("/api/experiments").json()["folders"]
    assert (entry["folder"], entry["runs"], entry["finished"], entry["succeeded"]) == (str(folder), 2, 2, 1)
    report = dash.client.get(f"/api/experiments/{entry['key']}").json()
    assert [(r["experiment_id"], r["outcome"]) for r in report["rows"]] == [("e1", "ok"), ("e2", "failed (exit 2)")]
    assert [s["label"] for s in report["labels"]] == ["A", "B"]
    assert report["better"] is None  # one run each: no test can tell them apart
    assert report["verdict"].startswith("no clear difference between A and B")
    plot = dash.client.get(f"/experiments/{entry['key']}/plot.png")
    assert plot.status_code == 200
    assert plot.content.startswith(b"\x89PNG")
    assert dash.client.get(f"/experiments/{entry['key']}").status_code == 200


def test_a_folder_that_shells_run_in_is_found(tmp_path: Path, dash: Any, wait_for: Callable[..., Any]) -> None:
    folder = tmp_path / "found"
    write_table(folder)
    shell_id = dash.sup.start_shell("true", cwd=folder)
    write_table(folder, shell_id)
    wait_for(lambda: dash.client.get("/api/experiments").json()["folders"], timeout=15, what="the discovered folder")
    [entry] = dash.client.get("/api/experiments").json()["folders"]
    report = dash.client.get(f"/api/experiments/{entry['key']}").json()
    assert report["rows"][0]["live"]["id"] == shell_id


def test_unknown_experiment_folders_are_404(dash: Any) -> None:
    for path in ("/api/experiments/000000000000", "/experiments/000000000000/plot.png",
                 "/events/experiments/000000000000"):
        response = dash.client.get(path)
        assert response.status_code == 404, path
        assert "no experiment folder" in response.json()["error"]


# -- event streams ------------------------------------------------------------------------------------------

def events(dash: Any, path: str) -> Iterator[tuple[str, Any]]:
    """The (event, data) pairs a stream sends; the stream closes when the caller stops iterating."""
    with dash.client.stream("GET", path) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                yield name, json.loads(line[6:])


def test_the_table_stream_pushes_changes_of_its_page(dash: Any, wait_for: Callable[..., Any]) -> None:
    first = dash.sup.start_shell("sleep 30")
    wait_for(lambda: ids(listed(dash, status="running")) == [first], what="the first shell")
    pushed = []
    for name, data in events(dash, "/events/shells?status=running"):
        assert name == "table"
        pushed.append(ids(data))
        if len(pushed) == 1:
            second = dash.sup.start_shell("sleep 30")
        elif ids(data) == [second, first]:
            dash.sup.kill_shell(first, grace=1)
        elif ids(data) == [second]:
            break
    assert pushed[0] == [first]
    assert pushed[-1] == [second]


def test_the_shell_stream_pushes_details_and_output(dash: Any, tmp_path: Path) -> None:
    go = tmp_path / "go"
    shell_id = dash.sup.start_shell(f"echo one; echo err >&2; while [ ! -e {go} ]; do sleep 0.05; done; echo two")
    seen: dict[str, str] = {"stdout": "", "stderr": ""}
    statuses = []
    for name, data in events(dash, f"/events/shells/{shell_id}?stdout=0&stderr=0"):
        if name == "details":
            statuses.append(data["status"]["status"])
        elif name == "output":
            seen[data["stream"]] += data["text"]
            if seen["stdout"] == "one\n" and seen["stderr"] == "err\n":
                go.touch()
        if statuses[-1:] == ["stopped"] and seen["stdout"] == "one\ntwo\n":
            break
    assert "running" in statuses
    assert seen == {"stdout": "one\ntwo\n", "stderr": "err\n"}


def test_the_shell_stream_starts_at_the_offsets_given(dash: Any) -> None:
    shell_id = dash.sup.start_shell("echo 0123456789")
    dash.sup.wait_shell(shell_id, timeout=30)
    for name, data in events(dash, f"/events/shells/{shell_id}?stdout=4"):
        if name == "output":
            assert (data["stream"], data["start"], data["end"], data["text"]) == ("stdout", 4, 11, "456789\n")
            break


def test_the_experiment_streams_send_the_folders_and_the_report(tmp_path: Path,
                                                                dash_factory: Callable[..., Any]) -> None:
    folder = tmp_path / "batch"
    write_table(folder)
    dash = dash_factory(experiment_dirs=[folder])
    name, listing = next(events(dash, "/events/experiments"))
    assert name == "experiments"
    [entry] = listing["folders"]
    name, report = next(events(dash, f"/events/experiments/{entry['key']}"))
    assert name == "report"
    assert [r["experiment_id"] for r in report["rows"]] == ["e1", "e2"]


def test_the_shell_stream_says_when_its_shell_is_cleaned(dash: Any) -> None:
    shell_id = dash.sup.start_shell("true")
    dash.sup.wait_shell(shell_id, timeout=30)
    names = []
    for name, _ in events(dash, f"/events/shells/{shell_id}"):
        names.append(name)
        if names == ["details"]:
            assert dash.post("/api/clean").json() == {"removed": [shell_id]}
    assert names[-1] == "gone"
