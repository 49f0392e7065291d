"""The dashboard: from a state change to the browser showing it, and the cost of 1,000 shells.

    python scripts/bench_dashboard.py            # prints the tables
    python scripts/bench_dashboard.py --write    # also replaces its section of docs/benchmarks.md

Latency is measured in the browser: a real `mgsup dashboard` serves a real headless Chromium
(Debian's, driven by Playwright). For a shell's end, the browser notes (Date.now(), in a
MutationObserver) when the row turns `stopped`, and the script subtracts the time the monitor
wrote the final state.json (its mtime): same machine, same clock. For output, the job prints its
own clock on each line and the browser notes when each line appears. The 1,000 shells are ended
records written with the library (as bench_status.py does); the table's first page is timed in
the server (the Hub's cached statuses shaped into the page), over HTTP, and in the browser.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from bench_common import REPO, Result, Table, at_most, call_times, main, ms, percentile, poll, temp_home
from bench_status import _write_records

from supervisor import Supervisor
from supervisor import layout as lay
from supervisor.dashboard import views

CHROMIUM = "/usr/bin/chromium"
# Under 0.1 s a change reads as instant; a page of the table within one 60 Hz frame cannot cause jank.
SHOWN_TARGET = 0.100
PAGE_TARGET = 0.016
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
DOC = REPO / "docs" / "benchmarks.md"
SECTION = re.compile(r"^## Dashboard.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
RECORD_TIMES = """() => {
    window.__seen = {};
    new MutationObserver(() => {
        for (const tr of document.querySelectorAll('#shells tbody tr')) {
            const key = tr.dataset.id + ' ' + tr.dataset.status;
            if (!(key in window.__seen)) window.__seen[key] = Date.now() / 1000;
        }
    }).observe(document.querySelector('#shells tbody'), {subtree: true, childList: true, attributes: true});
}"""
RECORD_LINES = """() => {
    window.__lines = [];
    const pre = document.querySelector('#out-stdout');
    new MutationObserver(() => {
        const now = Date.now() / 1000;
        const lines = pre.textContent.split('\\n');
        for (let i = window.__lines.length; i < lines.length - 1; i++) window.__lines.push([lines[i], now]);
    }).observe(pre, {childList: true, characterData: true, subtree: true});
}"""


@contextmanager
def dashboard(sup: Supervisor) -> Iterator[tuple[str, str]]:
    """`mgsup dashboard --port 0` on the home of `sup`: yields (base URL, token); stopped by its pid."""
    argv = [sys.executable, "-m", "supervisor", "--home", str(sup.home), "dashboard", "--port", "0"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            found = re.search(r"(http://\S+)\?token=(\S+)", line)
            if found:
                yield found.group(1), found.group(2)
                return
        raise RuntimeError("the dashboard printed no URL")
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Chromium's singleton socket path must stay short: a deep $TMPDIR makes it abort.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True,
                                             env={**os.environ, "TMPDIR": "/tmp"})
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 900})
        finally:
            browser.close()


def run(quick: bool) -> Result:
    """Browser latency of status and output changes, and the cost of the table with 1,000 shells."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium")
    samples, records = (3, 30) if quick else (25, 1000)
    result = Result("dashboard", f"Dashboard: latency to the browser, and {records:,} shells")
    latency = Table(["change", "p50", "p90", "min", "max", "samples"],
                    caption="from the change on disk to the browser showing it (Date.now() in the page)")
    with temp_home(max_concurrent=4) as sup, chromium() as page:
        with dashboard(sup) as (base, token):
            page.goto(f"{base}?token={token}")
            page.wait_for_selector("#live.on")
            page.evaluate(RECORD_TIMES)
            # The home is new: its shells/ folder, which the dashboard watches, appears with the first shell.
            _end_latency(sup, page, 1)
            ends = _end_latency(sup, page, samples)
            latency.rows.append(_row("a shell's end (row turns `stopped`)", ends))
            latency.rows.append(_row("a line of output (shell page, following)", _output_latency(sup, page, base,
                                                                                              samples)))
        result.tables.append(latency)
        for shell in sup.list_shells():
            sup.store.remove(shell["shell_id"])
        cost, page_times = _table_cost(sup, page, records, quick)
        result.tables.append(cost)
    result.verdicts += [
        at_most("state change shown in the browser: p50 < 100 ms", percentile(ends, 50), SHOWN_TARGET, ms,
                "p50 from a shell's end on disk to its row in the browser"),
        at_most(f"a page of the table with {records:,} shells < 16 ms", percentile(page_times, 50), PAGE_TARGET, ms,
                "p50 in the server"),
    ]
    result.notes.append(
        "The dashboard re-reads only the shells whose files changed (inotify through watchfiles, 10 ms after the "
        "last event of a burst) and pushes the page to the browser as a server-sent event; the browser updates "
        "the row in place. The table is paged (100 rows), so the browser's work does not grow with the home.")
    return result


def _row(what: str, values: list[float]) -> list[str]:
    return [what, ms(percentile(values, 50)), ms(percentile(values, 90)), ms(min(values)), ms(max(values)),
            str(len(values))]


def _end_latency(sup: Supervisor, page: Any, samples: int) -> list[float]:
    values = []
    for _ in range(samples):
        shell_id = sup.start_shell(["sleep", "0.2"])
        sup.wait_shell(shell_id, timeout=30)
        written = os.stat(sup.layout.file(shell_id, lay.STATE)).st_mtime
        key = f"{shell_id} stopped"
        page.wait_for_function(f"() => {json.dumps(key)} in window.__seen", timeout=30_000)
        values.append(page.evaluate(f"() => window.__seen[{json.dumps(key)}]") - written)
    return values


def _output_latency(sup: Supervisor, page: Any, base: str, samples: int) -> list[float]:
    # Prints until killed: lines written before the page's recorder is installed are not counted, so a
    # slow page load must not leave the recorder short of samples.
    script = "import time\nwhile True:\n    time.sleep(0.25); print(f'{time.time():.6f}')"
    shell_id = sup.start_shell([sys.executable, "-c", script])
    page.goto(f"{base}shells/{shell_id}")
    page.wait_for_selector("#live.on")
    page.evaluate(RECORD_LINES)
    page.wait_for_function(f"() => window.__lines.length >= {samples}", timeout=60_000)
    lines = page.evaluate("() => window.__lines")
    sup.kill_shell(shell_id, grace=1.0)
    return [seen - float(text) for text, seen in lines if re.fullmatch(r"\d+\.\d+", text)]


def _table_cost(sup: Supervisor, page: Any, records: int, quick: bool) -> tuple[Table, list[float]]:
    _write_records(sup, records)
    table = Table(["step", "p50", "p90", "runs"], caption=f"the shells table with {records:,} shells on record")
    runs = 3 if quick else 15
    load = call_times(3 if quick else 5, sup.list_shells)
    table.rows.append(_cost_row(f"reading every status (the Hub's first load, {records:,} shells)", load))
    statuses = sup.list_shells()
    query = views.Query()
    page_times = call_times(runs, lambda: json.dumps(views.table(statuses, query, time.time())))
    table.rows.append(_cost_row("one page of the table from the Hub (filter, sort, 100 rows, JSON)", page_times))
    # A new connection per request: with a kept-alive one, httpx's client adds ~40 ms (delayed ACK), curl does not.
    with dashboard(sup) as (base, token), httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
        client.get(f"{base}?token={token}", follow_redirects=True)
        poll(lambda: client.get(f"{base}api/shells").json()["total"] == records, 60, "the Hub's first load")
        http_times = call_times(runs, lambda: client.get(f"{base}api/shells").raise_for_status())
        table.rows.append(_cost_row("`GET /api/shells` over HTTP (first page, a new connection each)", http_times))
        page.goto(f"{base}?token={token}")
        shown = min(records, views.PER_PAGE)
        browser_times = []
        for _ in range(runs):
            began = time.perf_counter()
            page.reload()
            page.wait_for_function(f"() => document.querySelectorAll('#shells tbody tr').length === {shown}",
                                   timeout=30_000)
            browser_times.append(time.perf_counter() - began)
        table.rows.append(_cost_row(f"browser: reload until the {shown} rows are drawn", browser_times))
    return table, page_times


def _cost_row(what: str, values: list[float]) -> list[str]:
    return [what, ms(percentile(values, 50)), ms(percentile(values, 90)), str(len(values))]



def write_section(result: Result, path: Path = DOC) -> None:
    """Replace this benchmark's section of docs/benchmarks.md (or add it before `## Reproducing`), and its
    rows in the `## Targets` table, as bench_all.py would write them."""
    text = path.read_text() if path.exists() else "# mgsup benchmarks\n\n"
    lines = text.splitlines()
    for verdict in result.verdicts:
        word = "not measured" if verdict.met is None else "met" if verdict.met else "**not met**"
        row = f"| {verdict.target} | {word} | {verdict.detail} |"
        at = next((i for i, line in enumerate(lines) if line.startswith(f"| {verdict.target} |")), None)
        if at is not None:
            lines[at] = row
        elif "## Targets" in lines:
            end = lines.index("## Targets")
            while end < len(lines) and not lines[end].startswith("|"):
                end += 1
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            lines.insert(end, row)
    text = "\n".join(lines) + "\n"
    section = result.markdown().rstrip() + "\n\n"
    if SECTION.search(text):
        text = SECTION.sub(lambda _: section, text, count=1)
    elif "## Reproducing" in text:
        text = text.replace("## Reproducing", section + "## Reproducing", 1)
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    if "--write" in sys.argv:
        sys.argv.remove("--write")
        outcome = run("--quick" in sys.argv)
        print(outcome.markdown())
        write_section(outcome)
        print(f"wrote {DOC}", file=sys.stderr)
    else:
        main(run)
