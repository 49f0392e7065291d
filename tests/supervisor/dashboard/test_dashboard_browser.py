"""The dashboard in a real headless Chromium, served by the real `mgsup dashboard` on 127.0.0.1.

Each test waits for what a person would see (polling the page with a deadline), never for a fixed time.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from processes import tagged

from supervisor import Supervisor

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "configs" / "demo.yaml"
WAIT_MS = 30_000
INJECTION = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\"><b>bold?</b>"


def shows(page: Any, method: str, text: str) -> None:
    """Wait until the stdout pane's text `includes` / `endsWith` `text` (a JavaScript string literal)."""
    page.wait_for_function(f"() => document.querySelector('#out-stdout').textContent.{method}({text})",
                           timeout=WAIT_MS)


def row(page: Any, shell_id: str) -> Any:
    return page.locator(f'#shells tbody tr[data-id="{shell_id}"]')



def test_a_shell_started_from_python_appears_and_its_output_follows(
        page: Any, shoot: Callable[..., None], home: Supervisor, tmp_path: Path) -> None:
    page.evaluate("() => { window.__loaded = 'once'; }")
    go = tmp_path / "go"
    shell_id = home.start_shell(f"echo first line; while [ ! -e {go} ]; do sleep 0.05; done; "
                                "for i in $(seq 1 400); do echo tick $i; done; echo last line", name="follow-me")
    row(page, shell_id).wait_for(timeout=WAIT_MS)
    assert row(page, shell_id).get_attribute("data-status") == "running"
    assert page.evaluate("() => window.__loaded") == "once"  # no reload
    shoot(page, "shells-table")

    page.locator(f'a[href="/shells/{shell_id}"]').click()
    shows(page, "includes", "'first line'")
    page.evaluate("() => { window.__loaded = 'shell page'; }")
    go.touch()
    shows(page, "includes", "'last line'")
    page.wait_for_function("() => document.querySelector('#status-pill').textContent === 'stopped'", timeout=WAIT_MS)
    text = page.locator("#out-stdout").text_content()
    assert text == "first line\n" + "".join(f"tick {i}\n" for i in range(1, 401)) + "last line\n"
    # Following: the end of the output is in view.
    assert page.evaluate("() => { const p = document.querySelector('#out-stdout');"
                         " return p.scrollTop + p.clientHeight >= p.scrollHeight - 30; }")
    assert page.evaluate("() => window.__loaded") == "shell page"


def test_load_earlier_fetches_the_output_before_the_window(page: Any, home: Supervisor, served: Any) -> None:
    shell_id = home.start_shell("seq 1 30000")  # ~170 KB: more than the first window
    home.wait_shell(shell_id, timeout=30)
    page.goto(f"{served.base}shells/{shell_id}")
    shows(page, "endsWith", "'30000\\n'")
    shown = page.locator("#out-stdout").text_content()
    assert not shown.startswith("1\n")
    button = page.locator("#earlier")
    while button.is_visible():
        button.click()
        page.wait_for_function("() => !document.querySelector('#earlier').disabled", timeout=WAIT_MS)
    assert page.locator("#out-stdout").text_content() == "".join(f"{i}\n" for i in range(1, 30001))


def test_a_demo_coordination_run_moves_its_progress_bar_and_shows_the_winner(
        page: Any, shoot: Callable[..., None], home: Supervisor, tmp_path: Path) -> None:
    # Record every percentage the table shows, from before the run starts.
    page.evaluate("""() => {
        window.__percents = [];
        new MutationObserver(() => {
            for (const bar of document.querySelectorAll('#shells tbody tr .progress')) {
                const value = Number(bar.dataset.percent);
                if (window.__percents[window.__percents.length - 1] !== value) window.__percents.push(value);
            }
        }).observe(document.querySelector('#shells tbody'), {subtree: true, childList: true, attributes: true});
    }""")
    shell_id = home.start_coordination(DEMO, "What is 17 * 23?", cwd=tmp_path, name="demo")
    row(page, shell_id).wait_for(timeout=WAIT_MS)
    page.wait_for_function(f"() => document.querySelector('tr[data-id=\"{shell_id}\"] .progress')"
                           "?.dataset.percent === '100'", timeout=WAIT_MS)
    assert "reviewer" in row(page, shell_id).locator(".progress .label").text_content()
    percents = page.evaluate("() => window.__percents")
    assert len(set(percents)) >= 2, percents
    assert percents == sorted(percents), percents
    assert percents[-1] == 100
    shoot(page, "shells-coordination")

    page.locator(f'a[href="/shells/{shell_id}"]').click()
    page.locator("#winner").wait_for(timeout=WAIT_MS)
    assert "reviewer" in page.locator("#winner").text_content()
    page.wait_for_function("() => document.querySelector('#answer').textContent.includes('391')", timeout=WAIT_MS)
    assert page.locator("#coord-percent").text_content() == "100%"
    assert page.locator("#agents .agent").count() == 2
    shoot(page, "shell-coordination", full_page=True)


def test_the_kill_button_kills_the_whole_tree(page: Any, shoot: Callable[..., None], home: Supervisor, served: Any,
                                              wait_for: Callable[..., Any]) -> None:
    shell_id = home.start_shell("sleep 300 & (setsid sleep 300 &); sh -c 'sleep 300'", name="tree")
    wait_for(lambda: len(tagged(shell_id)) >= 4, what="the job's tree")
    processes = tagged(shell_id)
    page.goto(f"{served.base}shells/{shell_id}")
    page.locator("#kill").click()
    page.locator("#confirm").wait_for(state="visible")
    page.locator("#grace").fill("1")
    shoot(page, "kill-confirmation")
    page.locator("#confirm-ok").click()
    page.wait_for_function("() => document.querySelector('#status-pill').textContent === 'killed'", timeout=WAIT_MS)
    # The pushed status may arrive before the POST's answer, which closes the dialog.
    page.locator("#confirm").wait_for(state="hidden", timeout=WAIT_MS)
    assert [p.pid for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert home.get_shell_status(shell_id)["status"] == "killed"


def confirm(page: Any, ok: str) -> None:
    """Answer the open confirmation with its OK button, which says `ok`, and wait for it to close."""
    page.locator("#confirm").wait_for(state="visible")
    assert page.locator("#confirm-ok").text_content() == ok
    page.locator("#confirm-ok").click()
    page.locator("#confirm").wait_for(state="hidden")


def test_pause_and_resume_stop_and_continue_the_job_in_the_table_and_on_its_page(
        page: Any, shoot: Callable[..., None], home: Supervisor, served: Any, wait_for: Callable[..., Any],
        process_state: Callable[[int], str]) -> None:
    page.evaluate("() => { window.__loaded = 'once'; }")
    # One process, no shell: a shell caught in vfork by the pause shows `D`, not `T`.
    shell_id = home.start_shell(["sleep", "300"], name="napper")
    pid = home.get_shell_status(shell_id)["pid"]
    line = row(page, shell_id)
    line.wait_for(timeout=WAIT_MS)
    assert line.get_by_role("button", name=f"resume {shell_id}").count() == 0

    line.get_by_role("button", name=f"pause {shell_id}").click()
    assert "SIGSTOP" in page.locator("#confirm-text").text_content()
    shoot(page, "pause-confirmation")
    confirm(page, "Pause")
    page.wait_for_function(f"() => document.querySelector('tr[data-id=\"{shell_id}\"]')?.dataset.status === 'paused'",
                           timeout=WAIT_MS)
    wait_for(lambda: process_state(pid) == "T", timeout=30, what="the job stopped")
    assert line.get_by_role("button", name=f"pause {shell_id}").count() == 0
    page.locator("#chips .s-paused").click()
    page.wait_for_function("() => document.querySelectorAll('#shells tbody tr').length === 1", timeout=WAIT_MS)
    assert page.locator("#shells tbody tr").get_attribute("data-id") == shell_id
    shoot(page, "shells-paused")

    line.get_by_role("button", name=f"resume {shell_id}").click()
    confirm(page, "Resume")
    page.wait_for_function("() => document.querySelectorAll('#shells tbody tr').length === 0", timeout=WAIT_MS)
    wait_for(lambda: process_state(pid) != "T", timeout=30, what="the job continuing")
    assert home.get_shell_status(shell_id)["status"] == "running"
    assert page.evaluate("() => window.__loaded") == "once"  # pushed, not reloaded

    page.goto(f"{served.base}shells/{shell_id}")
    pill = "() => document.querySelector('#status-pill').textContent === '{}'"
    page.wait_for_function(pill.format("running"), timeout=WAIT_MS)
    page.evaluate("() => { window.__loaded = 'shell page'; }")
    assert page.locator("#resume").is_hidden()
    page.locator("#pause").click()
    confirm(page, "Pause")
    page.wait_for_function(pill.format("paused"), timeout=WAIT_MS)
    wait_for(lambda: process_state(pid) == "T", timeout=30, what="the job stopped")
    assert page.locator("#pause").is_hidden()
    page.locator("#resume").click()
    confirm(page, "Resume")
    page.wait_for_function(pill.format("running"), timeout=WAIT_MS)
    wait_for(lambda: process_state(pid) != "T", timeout=30, what="the job continuing")
    assert page.evaluate("() => window.__loaded") == "shell page"
    home.kill_shell(shell_id, grace=1)


def test_pausing_a_shell_that_ended_meanwhile_says_why_in_the_dialog(page: Any, home: Supervisor,
                                                                     tmp_path: Path) -> None:
    go = tmp_path / "go"
    shell_id = home.start_shell(f"while [ ! -e {go} ]; do sleep 0.05; done")
    row(page, shell_id).get_by_role("button", name=f"pause {shell_id}").click()
    page.locator("#confirm").wait_for(state="visible")
    go.touch()
    home.wait_shell(shell_id, timeout=30)
    page.locator("#confirm-ok").click()
    error = page.locator("#confirm-error")
    error.wait_for(state="visible", timeout=WAIT_MS)
    assert error.text_content() == (f"{shell_id} is stopped: only a running shell can be paused and only a paused "
                                    "one resumed")
    assert page.locator("#confirm").is_visible()
    page.get_by_role("button", name="Cancel").click()
    page.locator("#confirm").wait_for(state="hidden")
    assert home.get_shell_status(shell_id)["status"] == "stopped"


def test_the_restart_button_asks_then_opens_the_new_shell(page: Any, shoot: Callable[..., None], home: Supervisor,
                                                         served: Any) -> None:
    old = home.start_shell("echo restarted; sleep 300", name="svc")
    page.goto(f"{served.base}shells/{old}")
    page.locator("#restart").click()
    page.locator("#confirm").wait_for(state="visible")
    assert "killed first" in page.locator("#confirm-text").text_content()
    shoot(page, "restart-confirmation")
    page.locator("#confirm-ok").click()
    page.wait_for_url(lambda url: "/shells/shell_" in url and old not in url, timeout=WAIT_MS)
    new = page.url.rsplit("/", 1)[1]
    assert home.get_shell_status(new)["restarted_from"] == old
    assert home.get_shell_status(old)["status"] == "killed"
    page.wait_for_function("() => document.querySelector('#out-stdout').textContent.includes('restarted')",
                           timeout=WAIT_MS)
    home.kill_shell(new)


def test_cancelling_the_confirmation_kills_nothing(page: Any, home: Supervisor) -> None:
    shell_id = home.start_shell("sleep 300")
    row(page, shell_id).get_by_role("button", name=f"kill {shell_id}").click()
    page.locator("#confirm").wait_for(state="visible")
    page.get_by_role("button", name="Cancel").click()
    page.locator("#confirm").wait_for(state="hidden")
    assert home.get_shell_status(shell_id)["status"] == "running"


def test_a_request_without_the_token_gets_401(browser: Any, served: Any) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(served.base)
        assert response.status == 401
        assert "needs its token" in page.content()
        response = page.goto(served.url)
        assert response.status == 200
        assert page.url == served.base  # the token left the address bar
        [cookie] = context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert cookie["value"] == served.token
    finally:
        context.close()


class _AttackerPage(http.server.BaseHTTPRequestHandler):
    html = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def attacker(served: Any, home: Supervisor) -> Iterator[tuple[int, str]]:
    """Another site on 127.0.0.1 whose page posts a kill to the dashboard; yields (port, shell id)."""
    shell_id = home.start_shell("sleep 300")
    _AttackerPage.html = (
        f'<form id="f" method="POST" action="{served.base}api/shells/{shell_id}/kill" '
        'enctype="text/plain"><input name=\'{"grace": 0, "x": "\' value=\'"}\'></form>'
        f'<script>fetch("{served.base}api/shells/{shell_id}/kill", {{method: "POST", mode: "no-cors", '
        'credentials: "include", body: "{}"}).finally(() => document.getElementById("f").submit());</script>'
    ).encode()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = http.server.HTTPServer(("127.0.0.1", port), _AttackerPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port, shell_id
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize(("host", "refusal"), [("127.0.0.1", 403), ("localhost", 401)])
def test_a_cross_site_post_is_refused(page: Any, home: Supervisor, attacker: tuple[int, str], host: str,
                                      refusal: int) -> None:
    # 127.0.0.1:<other port> is another origin of the same site: the cookie goes along, the CSRF check
    # refuses. localhost is another site: the SameSite cookie stays home.
    port, shell_id = attacker
    with page.expect_response(lambda r: r.request.method == "POST" and r.request.resource_type == "document") as sent:
        page.goto(f"http://{host}:{port}/")
    assert sent.value.status == refusal
    assert home.get_shell_status(shell_id)["status"] == "running"


def test_a_job_printing_markup_shows_it_as_text(page: Any, shoot: Callable[..., None], home: Supervisor,
                                                served: Any) -> None:
    shell_id = home.start_shell(["printf", "%s\\n%s\\n", INJECTION, "done"], name="markup")
    home.wait_shell(shell_id, timeout=30)
    row(page, shell_id).wait_for(timeout=WAIT_MS)
    page.goto(f"{served.base}shells/{shell_id}")
    shows(page, "includes", "'done'")
    assert page.locator("#out-stdout").text_content() == f"{INJECTION}\ndone\n"
    page.wait_for_function("() => document.querySelector('#status-pill').textContent === 'stopped'", timeout=WAIT_MS)
    assert INJECTION in page.locator("#command").text_content()
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("#out-stdout script, #out-stdout img, #out-stdout b, #command b").count() == 0
    shoot(page, "shell-output")
