"""How `mgsup` shows shells: rich tables and live views for a terminal, plain lines for pipes.

Everything here turns status dicts (as `Supervisor.get_shell_status` returns them) into text; nothing
here reads the state directory or touches a process. rich is imported only by what builds rich
objects: the plain helpers serve commands that must start fast (`mgsup list`, `status` in a pipe).
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.table import Table
    from rich.text import Text

from .exitcodes import job_exit_code

StatusDict = Mapping[str, Any]

STATUS_STYLES = {
    "queued": "yellow",
    "running": "bold cyan",
    "paused": "yellow",
    "stopped": "green",
    "failed": "bold red",
    "killed": "magenta",
    "lost": "red",
}
AGENT_STYLES = {
    "waiting": "dim",
    "streaming": "cyan",
    "answered": "blue",
    "voted": "green",
    "restarting": "yellow",
    "error": "bold red",
    "timeout": "red",
    "completed": "bold green",
}


# C0 and C1 control characters: a job's command, paths and messages may carry terminal escapes
# (a window title, a cleared screen) that must be shown, never sent to the terminal.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    r"""`text` with its control characters written out as `\xNN`.

    >>> visible("a\x1b]0;title\x07b")
    'a\\x1b]0;title\\x07b'
    """
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def human_seconds(seconds: float | None) -> str:
    """A short duration: `0.4s`, `12s`, `3m05s`, `2h07m`, `3d04h`.

    >>> human_seconds(185)
    '3m05s'
    """
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def age(iso_time: str | None, now: float | None = None) -> str:
    """How long ago an ISO 8601 time was, as `human_seconds` writes it."""
    if not iso_time:
        return "-"
    now = time.time() if now is None else now
    return human_seconds(max(0.0, now - datetime.fromisoformat(iso_time).timestamp()))


def live_duration(status: StatusDict, now: float | None = None) -> float | None:
    """The shell's duration, still growing while it runs (the status dict froze it when it was read)."""
    if status.get("status") == "running" and status.get("start_time"):
        now = time.time() if now is None else now
        return max(0.0, now - datetime.fromisoformat(status["start_time"]).timestamp())
    duration = status.get("duration_seconds")
    return float(duration) if duration is not None else None


def command_text(command: str | list[str], *, program_name: bool = False) -> str:
    """The command as one line: a shell string as given, an argv list quoted as a shell would need it.

    `program_name` shows the program of an argv list by its name rather than its whole path (for tables).

    >>> command_text(["/usr/bin/mgcoord", "--config", "demo.yaml", "What is 17 * 23?"], program_name=True)
    "mgcoord --config demo.yaml 'What is 17 * 23?'"
    """
    if isinstance(command, str):
        text = command
    else:
        argv = list(command)
        if program_name and argv:
            argv[0] = os.path.basename(argv[0])
        text = shlex.join(argv)
    return visible(" ".join(text.split()))


def progress_text(status: StatusDict) -> str:
    """`phase 65%` for a coordination run, `-` for anything else."""
    coordination = status.get("coordination")
    if not coordination:
        return "-"
    phase = coordination.get("phase") or "starting"
    percent = coordination.get("completion_percentage")
    stalled = " (stalled)" if coordination.get("stalled") else ""
    return f"{phase} {percent}%{stalled}" if percent is not None else f"{phase}{stalled}"


def usd(value: float | None) -> str:
    """A cost: `$0.0027`, `$12.40`; `-` when unknown.

    >>> usd(0.0027), usd(12.4)
    ('$0.0027', '$12.40')
    """
    if value is None:
        return "-"
    return f"${value:.4f}" if abs(value) < 1 else f"${value:,.2f}"


def cost_text(status: StatusDict) -> str:
    """A coordination run's cost so far, `-` when it is not known."""
    return usd((status.get("coordination") or {}).get("cost_usd"))


def usage_text(status: StatusDict) -> str:
    """Tokens, cost (and where it comes from) and budget of a coordination run, as one line; "" for none.

    >>> usage_text({"coordination": {"tokens": {"input_tokens": 900, "output_tokens": 100, "total_tokens": 1000},
    ...             "cost_usd": 0.0027, "cost_source": "prices"}, "budget": {"max_tokens": 5000}})
    'tokens 1,000 (900 in, 100 out)  cost $0.0027 (priced by prices.yaml)  budget max_tokens 5,000'
    """
    coordination = status.get("coordination") or {}
    parts = []
    tokens = coordination.get("tokens")
    if tokens:
        parts.append(f"tokens {tokens['total_tokens']:,} ({tokens['input_tokens']:,} in, "
                     f"{tokens['output_tokens']:,} out)")
    if coordination.get("cost_usd") is not None:
        source = {"runner": " (reported by the runner)", "prices": " (priced by prices.yaml)"}
        parts.append(f"cost {usd(coordination['cost_usd'])}{source.get(str(coordination.get('cost_source')), '')}")
    if status.get("budget"):
        parts.append("budget " + ", ".join(f"{key} {_figure(key, value)}" for key, value in status["budget"].items()))
    return "  ".join(parts)


def exceeded_text(figure: Mapping[str, Any]) -> str:
    """The figure that passed a run's budget.

    >>> exceeded_text({"limit": "max_tokens", "budget": 1000, "used": 12000})
    'max_tokens: used 12,000, budget 1,000'
    """
    limit = str(figure.get("limit"))
    return f"{limit}: used {_figure(limit, figure.get('used'))}, budget {_figure(limit, figure.get('budget'))}"


def _figure(key: str, value: Any) -> str:
    if not isinstance(value, int | float):
        return str(value)
    if key == "max_cost_usd":
        return usd(float(value))
    if key == "max_duration_seconds":
        return human_seconds(float(value))
    return f"{value:,}"


def styled_status(status: str) -> Text:
    from rich.text import Text

    return Text(status, style=STATUS_STYLES.get(status, ""))


def short_id(shell_id: str) -> str:
    """The 8 hex characters of a shell id: what a table shows, and enough to name the shell."""
    return shell_id[len("shell_"):] if shell_id.startswith("shell_") else shell_id


def exit_text(status: StatusDict) -> str:
    """The exit as people read it, the code `mgsup wait` passes on: 143 for SIGTERM, not -15; `-` until it ends."""
    if status["status"] not in ("stopped", "failed", "killed"):
        return "-"
    return str(job_exit_code(dict(status)))


def status_text(status: StatusDict) -> str:
    """The status, with a timeout named as one (a timed-out shell is `killed`)."""
    return "timed out" if status["status"] == "killed" and status.get("timed_out") else status["status"]


def what_text(status: StatusDict) -> str:
    """What a shell runs, as a person knows it: a coordination run's progress and question, else its command."""
    if status.get("question"):
        question = visible(" ".join(status["question"].split()))
        return f"[{progress_text(status)}] {question}" if status.get("coordination") else question
    return command_text(status["command"], program_name=True)


def list_line(status: StatusDict) -> str:
    """The line of `mgsup list`: id, status, exit code (as `mgsup wait` exits), name and what it runs, tab-separated."""
    what = what_text(status) if status.get("question") else command_text(status["command"])
    return "\t".join((status["shell_id"], status_text(status), exit_text(status), status.get("name") or "-", what))


# How many shells the status table shows unless told otherwise: the newest, where a person looks first.
TABLE_ROWS = 20


def older_note(left_out: int) -> str:
    """The line (on stderr) under a status table that left out older shells."""
    return f"{left_out} older shells not shown (--limit 0 shows all)"


# NAME takes what it needs within these bounds; WHAT gets the rest of the width, at least _WHAT_MIN.
_NAME_WIDTH = (4, 16)
_WHAT_MIN = 12
_FIXED = ("ID", "STATUS", "AGE", "TIME", "EXIT")
_RIGHT = ("AGE", "TIME", "EXIT", "COST")


class TableLayout(NamedTuple):
    """The status table as plain text: its columns, one list of cells per shell, and the widths
    NAME and WHAT may take (cells longer than that are cut with an ellipsis)."""

    columns: tuple[str, ...]
    rows: list[list[str]]
    name_width: int
    what_width: int


def table_layout(shells: list[dict[str, Any]], now: float | None = None, width: int = 80) -> TableLayout:
    """The cells of `shells_table` and the widths of its cut columns, for a screen `width` columns wide."""
    cells = [{"ID": short_id(s["shell_id"]), "NAME": s.get("name") or "-", "STATUS": status_text(s),
              "AGE": age(s.get("created_at"), now), "TIME": human_seconds(live_duration(s, now)),
              "EXIT": exit_text(s), "COST": cost_text(s),
              "WHAT": ("ray: " if s.get("backend") == "ray" else "") + what_text(s)} for s in shells]
    # A cost column only when a run shown has one: most listings have none, and every column takes room.
    fixed_columns = (*_FIXED, "COST") if any(row["COST"] != "-" for row in cells) else _FIXED
    fixed = sum(max([len(column), *(len(row[column]) for row in cells)]) for column in fixed_columns)
    room = width - fixed - len(fixed_columns) - 1  # NAME and WHAT, after one space between each two columns
    name_width = min(_NAME_WIDTH[1], max([_NAME_WIDTH[0], *(len(row["NAME"]) for row in cells)]))
    name_width = max(_NAME_WIDTH[0], min(name_width, room - _WHAT_MIN))
    columns = ("ID", "NAME", "STATUS", "AGE", "TIME", "EXIT", *(("COST",) if "COST" in fixed_columns else ()), "WHAT")
    return TableLayout(columns, [[row[column] for column in columns] for row in cells], name_width,
                       max(_WHAT_MIN, room - name_width))


def shells_table(shells: list[dict[str, Any]], now: float | None = None, width: int = 80) -> Table:
    """The table of `mgsup status`: one row per shell, in the order given, fitting in `width` columns.

    Short ids, the exit as people read it, timeouts named, and a coordination run's question
    (with its progress) in place of the runner's command line, `ray: ` before a cluster shell's;
    a COST column when a run shown has a known cost. Pids are in `mgsup status REF`.
    """
    from rich.table import Table
    from rich.text import Text

    layout = table_layout(shells, now, width)
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1), collapse_padding=True)
    for column in layout.columns:
        if column == "NAME":
            table.add_column(column, no_wrap=True, width=layout.name_width, overflow="ellipsis")
        elif column == "WHAT":
            table.add_column(column, no_wrap=True, max_width=layout.what_width, overflow="ellipsis")
        else:
            table.add_column(column, no_wrap=True, justify="right" if column in _RIGHT else "left")
    for s, row in zip(shells, layout.rows, strict=True):
        # Every cell as Text: rich reads markup ([bold]) and emoji codes (:x:) in plain strings.
        table.add_row(*(Text(cell, style=STATUS_STYLES.get(s["status"], "") if column == "STATUS" else "",
                             no_wrap=True, overflow="ellipsis")
                        for column, cell in zip(layout.columns, row, strict=True)))
    return table


def plain_table(shells: list[dict[str, Any]], width: int, now: float | None = None) -> list[str] | None:
    """The lines `shells_table` shows on a screen `width` columns wide without colour, when no cell
    needs rich's care: None when one is not plain ASCII or is cut (a long name or command), or the
    table is wider than the screen. Trailing spaces are left out, as `progress.show` does.
    """
    layout = table_layout(shells, now, width)
    rows = [list(layout.columns), *layout.rows]
    if not all(cell.isascii() and cell.isprintable() for row in rows for cell in row):
        return None
    widths = [max(len(row[i]) for row in rows) for i in range(len(layout.columns))]
    name, what = layout.columns.index("NAME"), layout.columns.index("WHAT")
    if widths[name] > layout.name_width or widths[what] > layout.what_width:
        return None
    widths[name] = layout.name_width
    if sum(widths) + len(widths) - 1 > width:
        return None
    right = [column in _RIGHT for column in layout.columns]
    return [" ".join(cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(row, widths, right, strict=True))
            .rstrip() for row in rows]


def groups_table(groups: list[dict[str, Any]]) -> Table:
    """The table of `mgsup group`: each group's own limit and how many of its shells run, wait, exist."""
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1), collapse_padding=True)
    for column in ("GROUP", "MAX", "RUNNING", "QUEUED", "SHELLS"):
        table.add_column(column, no_wrap=True, justify="left" if column == "GROUP" else "right")
    for g in groups:
        table.add_row(g["group"], "-" if g["max_concurrent"] is None else str(g["max_concurrent"]), str(g["running"]),
                      str(g["queued"]), str(g["shells"]))
    return table


class ShellView:
    """A shell's status for a terminal: header, coordination progress, agents, votes and the outcome.

    Rendered again on every refresh of a `rich.live.Live`, so the elapsed time keeps moving between
    status updates; `update` swaps in the newest status.
    """

    def __init__(self, status: StatusDict) -> None:
        self.status = status

    def update(self, status: StatusDict) -> None:
        self.status = status

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield _view(self.status)


def _view(status: StatusDict) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    header = Text.assemble(
        (status["shell_id"], "bold"), f" ({status['name']})" if status.get("name") else "", "  ",
        styled_status(status["status"]),
        f"  pid {status['pid']}" if status.get("pid") and status["status"] == "running" else "",
        f"  {human_seconds(live_duration(status))}",
        f"  exit {status['exit_code']}" if status.get("exit_code") is not None else "",
        "  (timed out)" if status.get("timed_out") else "",
    )
    parts: list[RenderableType] = [header, Text(command_text(status["command"]), style="dim", overflow="ellipsis",
                                                no_wrap=True)]
    coordination = status.get("coordination")
    if coordination:
        parts.extend(_coordination_parts(coordination))
        if usage_text(status):
            parts.append(Text(usage_text(status)))
        parts.extend(_outcome_parts(status))
    elif status.get("status_file"):
        parts.append(Text("waiting for the run's status.json ...", style="dim"))
    if status.get("message"):
        parts.append(Text(visible(status["message"]), style="yellow"))
    return Group(*parts)


def _coordination_parts(coordination: Mapping[str, Any]) -> list[RenderableType]:
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    percent = coordination.get("completion_percentage") or 0
    bar = Table.grid(padding=(0, 1))
    bar.add_row(Text(f"{coordination.get('phase') or 'starting':<15}", style="bold"),
                ProgressBar(total=100, completed=percent, width=40), Text(f"{percent:>3}%"),
                Text("stalled" if coordination.get("stalled") else "", style="bold red"))
    agents = Table(box=None, header_style="bold", pad_edge=False)
    agents.add_column("AGENT")
    agents.add_column("STATUS")
    errors = coordination.get("errors") or {}
    if errors:
        agents.add_column("ERROR", overflow="ellipsis")
    for agent_id, agent_status in (coordination.get("agents") or {}).items():
        marker = " (active)" if agent_id == coordination.get("active_agent") else ""
        row: list[RenderableType] = [agent_id + marker,
                                     Text(agent_status or "-", style=AGENT_STYLES.get(agent_status or "", ""))]
        if errors:
            error = errors.get(agent_id)
            row.append((error or {}).get("message", "") if isinstance(error, dict) else str(error or ""))
        agents.add_row(*row)
    parts: list[RenderableType] = [bar, agents]
    votes = coordination.get("votes") or {}
    if votes:
        parts.append(Text("votes: " + "  ".join(f"{label}={count}" for label, count in votes.items())))
    return parts


# The outcome of a coordination run, as (coordination key, label) in the order shown.
OUTCOME = (("outcome", "outcome"), ("budget_exceeded", "budget exceeded"), ("winner", "winner"),
           ("final_answer_preview", "answer"), ("answer_file", "answer file"), ("error", "error"))
OUTCOME_STYLES = {"winner": "bold green", "error": "bold red", "budget_exceeded": "bold red"}
# Shown only once the shell has ended.
_AT_THE_END = ("outcome", "final_answer_preview")


def outcome(status: StatusDict) -> list[tuple[str, str, str]]:
    """(key, label, value) of each part of a run's outcome it has; the outcome and answer once the shell has ended."""
    coordination = status.get("coordination") or {}
    ended = status.get("status") in ("stopped", "failed", "killed", "lost")
    return [(key, label, visible(exceeded_text(coordination[key]) if key == "budget_exceeded"
                                 else str(coordination[key])))
            for key, label in OUTCOME if coordination.get(key) and (ended or key not in _AT_THE_END)]


def _outcome_parts(status: StatusDict) -> list[RenderableType]:
    from rich.text import Text

    return [Text.assemble((f"{label}: ", "bold red" if key == "error" else "bold"),
                          (value, OUTCOME_STYLES.get(key, "")))
            for key, label, value in outcome(status)]


def details(status: StatusDict) -> RenderableType:
    """`mgsup status SHELL_ID`: every key of the status, then the coordination view when there is one."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in status.items():
        if key == "coordination":
            continue
        shown: Text | str = styled_status(value) if key == "status" else _plain_value(value)
        grid.add_row(key, shown)
    if not status.get("coordination"):
        return grid
    return Group(grid, Text(""), ShellView(status))


def _plain_value(value: Any) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, list):
        return command_text(value)
    if isinstance(value, dict):
        return visible(", ".join(f"{k}={v}" for k, v in value.items()))
    return visible(str(value))


def plain_line(status: StatusDict) -> str:
    """One line for a pipe or a log: where the shell is, and how far its coordination run has come.

    >>> plain_line({"shell_id": "shell_0a1b2c3d", "status": "running", "pid": 42, "exit_code": None,
    ...             "duration_seconds": 1.5, "coordination": None})
    'shell_0a1b2c3d running pid=42 duration=1.5s'
    """
    words = [status["shell_id"], status["status"]]
    if status.get("pid") and status["status"] == "running":
        words.append(f"pid={status['pid']}")
    if status.get("exit_code") is not None:
        words.append(f"exit={status['exit_code']}")
    if status.get("timed_out"):
        words.append("timed_out")
    words.append(f"duration={human_seconds(status.get('duration_seconds'))}")
    coordination = status.get("coordination")
    if coordination:
        words.append(f"phase={coordination.get('phase')}")
        if coordination.get("completion_percentage") is not None:
            words.append(f"progress={coordination['completion_percentage']}%")
        agents = coordination.get("agents") or {}
        if agents:
            words.append("agents=" + ",".join(f"{a}:{s}" for a, s in agents.items()))
        if coordination.get("tokens"):
            words.append(f"tokens={coordination['tokens']['total_tokens']}")
        if coordination.get("cost_usd") is not None:
            words.append(f"cost={usd(coordination['cost_usd'])}")
        if coordination.get("stalled"):
            words.append("stalled")
    return " ".join(words)


def plain_summary(status: StatusDict) -> list[str]:
    """The closing lines of a followed run: winner, answer preview and answer file (or the error)."""
    lines = [f"{label}: {value}" for _, label, value in outcome(status)]
    if status.get("message"):
        lines.append(f"message: {visible(status['message'])}")
    return lines
