"""The `mgsup` verbs that act on shells after their start: restart, pause, resume, and group limits.

Thin adapters over `Supervisor`, registered on the `mgsup` group by `cli.py`; the Session (the
global options) comes through click's context object.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from . import progress, render

if TYPE_CHECKING:
    from .cli import Session


def env_pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """The values of a repeatable `--env NAME=VALUE` option, as a dict."""
    env = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not of the form NAME=VALUE", ctx, param)
        env[key] = value
    return env


@click.command(short_help="Run a shell's command again, as a new shell.")
@click.argument("ref", metavar="REF")
@click.option("--env", "env", multiple=True, metavar="NAME=VALUE", callback=env_pairs,
              help="Give an environment variable (repeatable): the start's --env values are not kept, only their "
                   "names, so each must be given again or be set in this environment.")
@click.option("--queue", is_flag=True, help="At the concurrency limit, queue the new shell instead of failing.")
@click.option("--json", "as_json", is_flag=True, help="Print the new shell's status as JSON instead of its id.")
@click.pass_obj
def restart(session: Session, ref: str, env: dict[str, str], queue: bool, as_json: bool) -> None:
    """Start what shell REF ran again, as a new shell, and print the new id.

    The same command (a coordination run: its config and question), directory, name, timeout,
    group, retries and output setting; its status says restarted_from. A shell that has not
    ended is killed first. Environment values given with --env at the start are never stored:
    the variables it set must be set here or given again with --env.

    \b
    Examples:
      mgsup restart build
      mgsup restart last --env API_KEY="$API_KEY"
    """
    sup = session.sup
    shell_id = sup.restart(ref, env=env or None, queue=queue)
    if as_json:
        click.echo(json.dumps(sup.get_shell_status(shell_id), indent=2))
    else:
        click.echo(shell_id)


def _switch(session: Session, refs: tuple[str, ...], as_json: bool, act: str) -> None:
    sup = session.sup
    shell_ids = list(dict.fromkeys(sup.resolve(ref) for ref in refs))
    statuses = [getattr(sup, act)(shell_id) for shell_id in shell_ids]
    if as_json:
        click.echo(json.dumps(statuses, indent=2))
        return
    for status in statuses:
        click.echo(f"{status['shell_id']} {status['status']}")


@click.command(short_help="Stop a shell's whole process tree until resumed.")
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@click.option("--json", "as_json", is_flag=True, help="Print the statuses as one JSON list.")
@click.pass_obj
def pause(session: Session, refs: tuple[str, ...], as_json: bool) -> None:
    """Pause running shells: every process of each tree is stopped (SIGSTOP) until 'mgsup resume'.

    A paused shell keeps its slot, and its timeout does not run; 'mgsup kill' still ends it.

    \b
    Example:
      mgsup pause train && mgsup resume train
    """
    _switch(session, refs, as_json, "pause")


@click.command(short_help="Continue a paused shell.")
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@click.option("--json", "as_json", is_flag=True, help="Print the statuses as one JSON list.")
@click.pass_obj
def resume(session: Session, refs: tuple[str, ...], as_json: bool) -> None:
    """Resume paused shells: every process of each tree continues (SIGCONT), and so does its timeout."""
    _switch(session, refs, as_json, "resume")


@click.command(short_help="Show groups, or set a group's own limit.")
@click.argument("name", metavar="[GROUP]", required=False)
@click.option("--max", "max_concurrent", type=click.IntRange(min=1), metavar="N",
              help="Let at most N shells of GROUP run at once (the home's limit still applies to all).")
@click.option("--no-limit", is_flag=True, help="Remove GROUP's own limit.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def group(session: Session, name: str | None, max_concurrent: int | None, no_limit: bool, as_json: bool) -> None:
    """Show the groups (their limits, running and queued shells), or set GROUP's limit.

    Shells join a group with 'mgsup start --group GROUP'. Beyond its limit, a shell of the group
    waits in the queue (with --queue) while shells of other groups may start.

    \b
    Examples:
      mgsup group gpu --max 2
      mgsup group
    """
    sup = session.sup
    if (max_concurrent is not None or no_limit) and name is None:
        raise click.UsageError("--max and --no-limit need a GROUP")
    if max_concurrent is not None and no_limit:
        raise click.UsageError("give --max or --no-limit, not both")
    if max_concurrent is not None or no_limit:
        assert name is not None
        shown: list[dict[str, Any]] = [sup.set_group_limit(name, max_concurrent)]
    else:
        shown = [g for g in sup.groups() if name is None or g["group"] == name]
        if name is not None and not shown:
            shown = [{"group": name, "max_concurrent": None, "running": 0, "queued": 0, "shells": 0}]
    if as_json:
        click.echo(json.dumps(shown if name is None else shown[0], indent=2))
        return
    if not shown:
        click.echo(f"no groups in {sup.home}")
        return
    progress.show(render.groups_table(shown))
