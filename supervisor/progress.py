"""Showing a shell on screen until it ends: a live rich view on a terminal, plain lines in a pipe.

Used by `mgsup start --wait`, `mgsup status --follow` and `mgsup wait`. Updates come from
`Supervisor.watch` (file watching); the rendering itself lives in `render.py`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from rich.console import Console, RenderableType
from rich.live import Live

from . import render
from .core import Supervisor

# Output that goes to a file or a pipe is read later, in an editor or by grep: do not cut it at
# rich's default of 80 columns.
PIPE_WIDTH = 200


def follow(sup: Supervisor, shell_id: str, timeout: float | None, screen: Console, *,
           plain: bool, kill_on_stall: bool = False) -> dict[str, Any]:
    """Wait for `shell_id` to end and return its final status, showing progress on `screen`.

    On a terminal: a live view. Elsewhere: a plain line per change (with `plain`), or nothing.
    TimeoutError when `timeout` seconds pass first; `kill_on_stall` as in `Supervisor.wait_shell`.

    >>> final = follow(Supervisor(), "shell_0a1b2c3d", None, console(), plain=True)
    """
    if screen.is_terminal:
        view = render.ShellView(sup.get_shell_status(shell_id))
        with Live(view, console=screen, refresh_per_second=4):
            for status in sup.watch(shell_id, timeout=timeout, kill_on_stall=kill_on_stall):
                view.update(status)
        return status
    if not plain:
        return sup.wait_shell(shell_id, timeout=timeout, kill_on_stall=kill_on_stall)
    last = ""
    for status in sup.watch(shell_id, timeout=timeout, kill_on_stall=kill_on_stall):
        line = render.plain_line({**status, "duration_seconds": None})
        if line != last:
            click.echo(render.plain_line(status))
            last = line
    for line in render.plain_summary(status):
        click.echo(line)
    return status


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr); as wide as the terminal, or PIPE_WIDTH in a pipe."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty() or os.environ.get("COLUMNS"):
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=PIPE_WIDTH)


def show(renderable: RenderableType) -> None:
    """Print on stdout; in a pipe, without the padding that fills table cells to their width."""
    screen = console()
    if screen.is_terminal:
        screen.print(renderable)
        return
    with screen.capture() as captured:
        screen.print(renderable)
    for line in captured.get().splitlines():
        click.echo(line.rstrip())
