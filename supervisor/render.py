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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.table import Table
    from rich.text import Text

StatusDict = Mapping[str, Any]

STATUS_STYLES = {
    "queued": "yellow",
    "running": "bold cyan",
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


def list_line(status: StatusDict) -> str:
    """The line of `mgsup list`: id, status, exit code, name and command, tab-separated."""
    exit_code = "-" if status["exit_code"] is None else str(status["exit_code"])
    return "\t".join((status["shell_id"], status["status"], exit_code, status["name"] or "-",
                      command_text(status["command"])))


# The columns of `mgsup status`: (header, rich column options). NAME and COMMAND are the ones rich
# narrows on a small screen; their cells are cut to one line with an ellipsis rather than wrapped.
TABLE_COLUMNS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("SHELL", {"no_wrap": True}),
    ("NAME", {"min_width": 4, "max_width": 16}),
    ("STATUS", {"no_wrap": True}),
    ("PID", {"justify": "right", "no_wrap": True}),
    ("AGE", {"justify": "right", "no_wrap": True}),
    ("DURATION", {"justify": "right", "no_wrap": True}),
    ("EXIT", {"justify": "right", "no_wrap": True}),
    ("PROGRESS", {"no_wrap": True}),
    ("COST", {"justify": "right", "no_wrap": True}),
    ("COMMAND", {"min_width": 12}),
)
_CUT = ("NAME", "COMMAND")


def shell_row(s: StatusDict, now: float | None = None) -> list[str]:
    """The cells of one shell's row in the table of `mgsup status`, as plain text."""
    return [s["shell_id"], s.get("name") or "-", s["status"],
            str(s["pid"]) if s.get("pid") else "ray" if s.get("backend") == "ray" else "-",
            age(s.get("created_at"), now), human_seconds(live_duration(s, now)),
            "-" if s.get("exit_code") is None else str(s["exit_code"]), progress_text(s), cost_text(s),
            command_text(s["command"], program_name=True)]


def shells_table(shells: list[dict[str, Any]], now: float | None = None) -> Table:
    """The table of `mgsup status`: one row per shell, oldest first."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1))
    for header, options in TABLE_COLUMNS:
        table.add_column(header, **options)
    for s in shells:
        row = shell_row(s, now)
        table.add_row(*(styled_status(cell) if header == "STATUS"
                        else Text(cell, no_wrap=True, overflow="ellipsis") if header in _CUT else cell
                        for (header, _), cell in zip(TABLE_COLUMNS, row, strict=True)))
    return table


def plain_table(shells: list[dict[str, Any]], width: int, now: float | None = None) -> list[str] | None:
    """The lines `shells_table` shows on a screen `width` columns wide without colour, when no cell
    needs rich's care: None when one is not plain ASCII, one is cut (a long name), or the table is
    too wide and rich would narrow columns. Trailing spaces are left out, as `progress.show` does.
    """
    rows = [[header for header, _ in TABLE_COLUMNS], *(shell_row(s, now) for s in shells)]
    if not all(cell.isascii() and cell.isprintable() for row in rows for cell in row):
        return None
    # rich reads markup ([bold]) and emoji codes (:smile:) in the cells it is given as strings.
    if any(c in cell for row in rows for (header, _), cell in zip(TABLE_COLUMNS, row, strict=True)
           if header not in (*_CUT, "STATUS") for c in "[:"):
        return None
    widths = [max(options.get("min_width", 0), *(len(row[i]) for row in rows))
              for i, (_, options) in enumerate(TABLE_COLUMNS)]
    name = [header for header, _ in TABLE_COLUMNS].index("NAME")
    if widths[name] > TABLE_COLUMNS[name][1]["max_width"] or sum(widths) + 2 * (len(widths) - 1) > width:
        return None
    right = [options.get("justify") == "right" for _, options in TABLE_COLUMNS]
    return ["  ".join(cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(row, widths, right, strict=True))
            .rstrip() for row in rows]


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
    ended = status.get("status") not in ("queued", "running")
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
    if value is None:
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
        words.append(f"progress={coordination.get('completion_percentage')}%")
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
