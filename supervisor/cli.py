"""The `mgsup` command line: a thin adapter over `supervisor.core.Supervisor`.

Each verb parses its options, calls the library and prints the result. Errors become exit codes in
one place (`main`), always as a single `mgsup: error: ...` line on stderr. The entry point is
`verbs.main`, which answers the commonest invocations without importing this module.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from . import audit as audit_log
from . import lifecycle, progress, render, request, verbs
from .automation import runners
from .cli_control import env_pairs, group, pause, restart, resume
from .core import Supervisor
from .errors import SupervisorError
from .exitcodes import EPILOG, EXIT_WAIT_TIMEOUT, job_exit_code
from .logfollow import STDERR_MARK, Interleaved, copy_output


class Session:
    """The global options, and the Supervisor built from them on first use."""

    def __init__(self, home: str | None, max_concurrent: int | None, cluster: str | None = None) -> None:
        self.home = home
        self.max_concurrent = max_concurrent
        self.cluster = cluster
        self._sup: Supervisor | None = None

    @property
    def sup(self) -> Supervisor:
        if self._sup is None:
            self._sup = Supervisor(self.home, max_concurrent=self.max_concurrent, cluster=self.cluster)
        return self._sup


pass_session = click.make_pass_decorator(Session)


@click.group(epilog=EPILOG, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", metavar="PATH", help="State directory. Default: $MGSUP_HOME, else "
              "$XDG_STATE_HOME/mgsup, else ~/.local/state/mgsup.")
@click.option("--max-concurrent", type=click.IntRange(min=1), metavar="N",
              help="Most shells running at once in this home. Default: $MGSUP_MAX_CONCURRENT, else 10.")
@click.option("--cluster", metavar="ADDRESS", help="Start shells as jobs of this Ray cluster: the URL of its "
              "dashboard, e.g. http://127.0.0.1:8265. Default: $MGSUP_CLUSTER, else on this machine. Cluster "
              "shells are read, waited for and killed like the others, whatever this option says.")
@click.version_option(package_name="mgsup", prog_name="mgsup")
@click.pass_context
def cli(ctx: click.Context, home: str | None, max_concurrent: int | None, cluster: str | None) -> None:
    """mgsup: start, watch and stop background jobs and coordination runs.

    Shells are recorded in a state directory shared by every mgsup command, Python caller and agent
    tool on the machine; a shell keeps running after the command that started it has exited.
    """
    ctx.obj = Session(home, max_concurrent, cluster)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


# -- start ----------------------------------------------------------------------------------------


def _resource_pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, float] | None:
    resources = {}
    for item in values:
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError(item)
            resources[key] = float(value)
        except ValueError:
            raise click.BadParameter(f"{item!r} is not of the form NAME=AMOUNT", ctx, param) from None
    return resources or None


@cli.command(context_settings={"allow_interspersed_args": False},
             short_help="Start a job in the background and print its shell id.")
@click.option("--name", help="A name for the shell (letters, digits, '.', '_', '-'): other verbs take it in place "
              "of the id, meaning the newest shell with that name.")
@click.option("--cwd", metavar="DIR", help="Working directory of the job. Default: the current directory.")
@click.option("--env", "env", multiple=True, metavar="NAME=VALUE", callback=env_pairs,
              help="Set an environment variable for the job (repeatable); laid over the current environment.")
@click.option("--timeout", type=float, metavar="S", help="Kill the job after S seconds of running (status: killed, "
              "timed_out: true); with --retries, per attempt.")
@click.option("--queue", is_flag=True, help="At the concurrency limit, queue the shell instead of failing; "
              "it starts by itself when a slot frees.")
@click.option("--group", metavar="G", help="Put the shell in group G; 'mgsup group G --max N' limits how many of "
              "the group run at once.")
@click.option("--after", "after", multiple=True, metavar="REF", help="Start only once shell REF has ended "
              "successfully (repeatable: all of them); if one does not, this shell ends failed without running.")
@click.option("--retries", type=click.IntRange(min=0), default=0, metavar="N", help="Run the job again, up to N "
              "times, when it fails, times out or crashes (never after a kill).")
@click.option("--retry-delay", type=float, default=0.0, metavar="S", help="Seconds between a failed attempt and "
              "the next. Default: 0.")
@click.option("--merge-output", is_flag=True, help="Write the job's stderr into its stdout, keeping the exact "
              "order of their lines.")
@click.option("--isolate", is_flag=True, help="Run in a fresh workspace <cwd>/.mgsup/workspaces/<name>_<suffix>.")
@click.option("--wait", is_flag=True, help="Wait for the shell to end and exit with its exit code, streaming its "
              "output (a coordination run: its progress).")
@click.option("--kill-on-stall", is_flag=True, help="With --wait: kill a coordination run whose status.json "
              "stops changing for $MGSUP_STALL_SECONDS (default 60).")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON instead of the shell id.")
@click.option("--config", metavar="CONFIG", help='Start a coordination run of CONFIG (a path from the current '
              'directory, whatever --cwd); the argument is the QUESTION: mgsup start --config CONFIG "QUESTION".')
@click.option("--runner", metavar="R", help="With --config: the program that runs it: mgcoord, massgen (the "
              "real MassGen on PATH), or a command ('uv run massgen', a path). Default: $MGSUP_RUNNER, else "
              "mgcoord.")
@click.option("--cpus", type=float, metavar="N", help="With --cluster: CPUs the job needs on its node (default 1; "
              "Ray queues the job until they are free).")
@click.option("--gpus", type=float, metavar="N", help="With --cluster: GPUs the job needs on its node.")
@click.option("--resources", "resources", multiple=True, metavar="NAME=AMOUNT", callback=_resource_pairs,
              help="With --cluster: an amount of a custom Ray resource the job needs (repeatable).")
@click.option("--max-tokens", type=click.IntRange(min=1), metavar="N", help="With --config: stop the run once "
              "it reports more than N tokens (outcome budget_exceeded), even after this command has exited.")
@click.option("--max-cost", type=click.FloatRange(min=0, min_open=True), metavar="USD", help="With --config: "
              "stop the run once it costs more than USD (the runner's figure, else its tokens priced by "
              "prices.yaml).")
@click.option("--max-duration", type=click.FloatRange(min=0, min_open=True), metavar="S", help="With --config: "
              "stop the run once it has run S seconds, time paused not counted (interrupted first, unlike --timeout).")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="-- COMMAND [ARG...] | QUESTION")
@pass_session
def start(session: Session, name: str | None, cwd: str | None, env: dict[str, str], timeout: float | None,
          queue: bool, group: str | None, after: tuple[str, ...], retries: int, retry_delay: float,
          merge_output: bool, isolate: bool, wait: bool, kill_on_stall: bool, as_json: bool, config: str | None,
          runner: str | None, cpus: float | None, gpus: float | None, resources: dict[str, float] | None,
          max_tokens: int | None, max_cost: float | None, max_duration: float | None,
          args: tuple[str, ...]) -> None:
    """Start a job in the background and print its shell id.

    One argument after -- is a shell command line, run under /bin/sh -c (so pipes, ';' and
    variables work); several arguments are run directly as a program and its arguments.
    With --config, the one argument is the question of a coordination run
    (RUNNER --automation --config CONFIG "QUESTION"; mgcoord also gets --instance-id <suffix>).
    With --wait, a run that ends without a final answer exits 122 even when its runner exited 0,
    and one stopped for passing its budget (--max-tokens, --max-cost, --max-duration) exits 123.

    \b
    Examples:
      mgsup start -- 'sleep 1; echo hi'
      mgsup start --name py --env DEBUG=1 -- python3 script.py --fast
      mgsup start --queue --timeout 600 -- ./long-job.sh
      mgsup start --wait -- make test                  output streamed, exit code passed on
      mgsup start --name tests --after build --retries 2 -- make test
      mgsup start --group gpu --queue -- python3 train.py
      mgsup start --config configs/demo.yaml --wait "What is 17 * 23?"
      mgsup start --config massgen.yaml --runner massgen --env OPENAI_API_KEY=sk-... "What is 17 * 23?"
      mgsup --cluster http://127.0.0.1:8265 start --cpus 2 -- python3 train.py
      mgsup start --config two_models.yaml --max-tokens 200000 --max-cost 2.50 "Summarise RFC 9110"
    """
    sup = session.sup
    if kill_on_stall and not wait:
        raise click.UsageError("--kill-on-stall needs --wait")
    if runner is not None and config is None:
        raise click.UsageError("--runner needs --config (it chooses the program of a coordination run)")
    budget = {key: value for key, value in (("max_tokens", max_tokens), ("max_cost_usd", max_cost),
                                            ("max_duration_seconds", max_duration)) if value is not None}
    if budget and config is None:
        raise click.UsageError("--max-tokens, --max-cost and --max-duration need --config (budgets hold "
                               "coordination runs)")
    if config is not None:
        if isolate or merge_output:
            raise click.UsageError("--isolate and --merge-output do not apply to a coordination run (--config)")
        if len(args) != 1:
            raise click.UsageError('give the question as one quoted argument: mgsup start --config CONFIG '
                                   '"QUESTION"')
        # A path typed on the command line is read from where it was typed, like --cwd itself; the
        # library alone would read a relative one from the run's cwd.
        config_path = os.path.abspath(os.path.expanduser(config))
        shell_id = sup.start_coordination(config_path, args[0], runner=runners.parse(runner) if runner else None,
                                          cwd=cwd, env=env or None, timeout=timeout, queue=queue, name=name,
                                          group=group, after=list(after), retries=retries, retry_delay=retry_delay,
                                          cpus=cpus, gpus=gpus, resources=resources, budget=budget or None)
    else:
        if not args:
            raise click.UsageError("no command given: mgsup start [OPTIONS] -- COMMAND [ARG...]")
        command: str | list[str] = args[0] if len(args) == 1 else list(args)
        shell_id = sup.start_shell(command, cwd=cwd, env=env or None, name=name, timeout=timeout, queue=queue,
                                   isolate=isolate, group=group, after=list(after), retries=retries,
                                   retry_delay=retry_delay, merge_output=merge_output, cpus=cpus, gpus=gpus,
                                   resources=resources)
    if not wait:
        if as_json:
            _print_json(sup.get_shell_status(shell_id))
        else:
            click.echo(shell_id)
        return
    if as_json:
        final = _follow(sup, shell_id, None, progress.console(stderr=True), plain=False, kill_on_stall=kill_on_stall)
        _print_json(final)
    else:
        click.echo(shell_id)
        final = _show_until_end(sup, shell_id, kill_on_stall=kill_on_stall)
    raise click.exceptions.Exit(job_exit_code(final))


# -- watching ---------------------------------------------------------------------------------------

REF_HELP = ("REF is a shell id, a unique prefix of its 8 hex characters, a name (the newest shell with that "
            "name) or 'last' (the newest shell).")


def _filters(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that choose which shells `status` and `list` show."""
    for option in reversed((
        click.option("--status", "status_filter", type=click.Choice(lifecycle.STATUSES),
                     help="Only shells in this status."),
        click.option("--group", metavar="G", help="Only shells of group G."),
        click.option("--name", "name_filter", metavar="NAME", help="Only shells with this name, or whose name "
                     "matches this pattern ('train-*')."),
    )):
        command = option(command)
    return command


@cli.command(short_help="A table of the newest shells, or the details of one.")
@click.argument("ref", metavar="[REF]", required=False)
@_filters
@click.option("--limit", type=click.IntRange(min=0), metavar="N", help=f"Show the newest N shells (0: all). "
              f"Default: {render.TABLE_ROWS} in the table, all with --json.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the list of statuses, or one status "
              "(with --follow: one JSON document per line, per change).")
@click.option("--follow", is_flag=True, help="Keep showing the shell until it ends (file watching): its output "
              "as it is written, or a coordination run's progress.")
@pass_session
def status(session: Session, ref: str | None, status_filter: str | None, group: str | None,
           name_filter: str | None, limit: int | None, as_json: bool, follow: bool) -> None:
    """Show a table of shells, newest first, or the details and progress of one.

    The table has each shell's short id, name, status ('timed out' for a timeout), age, run time,
    exit code (as 'mgsup wait' exits: 143 for SIGTERM), and what it runs: its command, or a
    coordination run's progress and question. REF names one shell: an id, a unique prefix of
    its hex digits, a name, or 'last'.

    \b
    Examples:
      mgsup status                          the 20 newest shells
      mgsup status --status running --group gpu
      mgsup status build                    details of the newest shell named build
      mgsup status last --follow            its output (or progress) until it ends
    """
    sup = session.sup
    if ref is None:
        if follow:
            raise click.UsageError("--follow needs a REF")
        if as_json:
            _print_json(sup.list_shells(status_filter, group=group, name=name_filter, newest_first=True,
                                        limit=limit or None))
            return
        rows = render.TABLE_ROWS if limit is None else limit or None
        shells = sup.list_shells(status_filter, group=group, name=name_filter, newest_first=True)
        if not shells:
            filtered = status_filter or group or name_filter
            click.echo(f"no shells {'match' if filtered else 'on record'} in {sup.home}")
            return
        screen = progress.console()
        progress.show(render.shells_table(shells[:rows], width=screen.width))
        if rows is not None and len(shells) > rows:
            click.echo(render.older_note(len(shells) - rows), err=True)
        return
    if status_filter or group or name_filter or limit is not None:
        raise click.UsageError("--status, --group, --name and --limit choose rows of the table: give them without REF")
    shell_id = sup.resolve(ref)
    if follow and as_json:
        for update in sup.watch(shell_id):
            click.echo(json.dumps(update))
    elif follow:
        _show_until_end(sup, shell_id)
    else:
        current = sup.get_shell_status(shell_id)
        if as_json:
            _print_json(current)
        else:
            progress.show(render.details(current))


@cli.command(name="list", short_help="One tab-separated line per shell, newest first.")
@_filters
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Only the newest N shells.")
@click.option("--json", "as_json", is_flag=True, help="Print the statuses as one JSON list.")
@pass_session
def list_(session: Session, status_filter: str | None, group: str | None, name_filter: str | None,
          limit: int | None, as_json: bool) -> None:
    """List shells, newest first: one tab-separated line each (id, status, exit code, name, what it runs).

    The exit code is the one 'mgsup wait' exits with (143 for SIGTERM; '-' until the shell ends).

    \b
    Examples:
      mgsup list --status failed
      mgsup list --name 'train-*' --limit 5
    """
    shells = session.sup.list_shells(status_filter, group=group, name=name_filter, newest_first=True, limit=limit)
    if as_json:
        _print_json(shells)
        return
    for s in shells:
        click.echo(render.list_line(s))


@cli.command(short_help="Print a shell's output, or follow it.")
@click.argument("ref", metavar="REF")
@click.option("--tail", type=click.IntRange(min=0), metavar="N", help="Start from the last N lines (of each stream).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new output until the shell ends.")
@click.option("--stdout", "only", flag_value="stdout", help="Only the job's stdout, exactly as written.")
@click.option("--stderr", "only", flag_value="stderr", help="Only the job's stderr, exactly as written.")
@pass_session
def logs(session: Session, ref: str, tail: int | None, follow: bool, only: str | None) -> None:
    """Print a shell's output: both streams, each stderr line marked '[stderr] ', or one of them.

    The two streams are separate files: without --follow, stdout comes first, then stderr; with
    --follow, new output appears as it is written. A job started with --merge-output has one
    stream, in the exact order it was written. Invalid UTF-8 is shown as U+FFFD.

    \b
    Examples:
      mgsup logs build                      the newest shell named build
      mgsup logs last --tail 50 --follow
      mgsup logs 0a1b --stderr > errors.txt
    """
    sup = session.sup
    shell_id = sup.resolve(ref)

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    sinks = {only: write} if only else Interleaved(write, _stderr_mark()).sinks()
    copy_output(sup, shell_id, sinks, tail_lines=tail, follow=follow)


@cli.command(short_help="Wait for a shell to end; exit with its code.")
@click.argument("ref", metavar="REF")
@click.option("--timeout", type=float, metavar="S", help=f"Give up after S seconds (exit {EXIT_WAIT_TIMEOUT}).")
@click.option("--kill-on-stall", is_flag=True, help="Kill a coordination run whose status.json stops changing "
              "for $MGSUP_STALL_SECONDS (default 60).")
@click.option("--json", "as_json", is_flag=True, help="Print the final status as JSON.")
@pass_session
def wait(session: Session, ref: str, timeout: float | None, kill_on_stall: bool, as_json: bool) -> None:
    """Wait for a shell to end and exit with its exit code (progress on stderr when it is a terminal).

    A coordination run that ended without a final answer exits 122 even when its runner exited 0.
    """
    sup = session.sup
    final = _follow(sup, sup.resolve(ref), timeout, progress.console(stderr=True), plain=False,
                    kill_on_stall=kill_on_stall)
    if as_json:
        _print_json(final)
    raise click.exceptions.Exit(job_exit_code(final))


# -- stopping ---------------------------------------------------------------------------------------


@cli.command(short_help="Kill shells with their whole process tree.")
@click.argument("refs", nargs=-1, metavar="REF...")
@click.option("--all", "kill_all", is_flag=True, help="Kill every running, paused and queued shell of the home.")
@click.option("--signal", "sig", default="SIGTERM", show_default=True, metavar="SIG",
              help="Signal sent first (name or number).")
@click.option("--grace", type=float, default=5.0, show_default=True, metavar="S",
              help="Seconds to wait after SIG before SIGKILL.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON list.")
@pass_session
def kill(session: Session, refs: tuple[str, ...], kill_all: bool, sig: str, grace: float, as_json: bool) -> None:
    """Kill shells with their whole process tree; queued shells are removed from the queue.

    Queued shells go first (so that no killed shell hands its slot to one of them), then the
    others in parallel.

    \b
    Examples:
      mgsup kill build tests
      mgsup kill --all --grace 1
    """
    if kill_all == bool(refs):
        raise click.UsageError("give REFs or --all (not both)")
    results = session.sup.kill_many("all" if kill_all else refs, signal=int(sig) if sig.isdigit() else sig,
                                     grace=grace)
    if as_json:
        _print_json(results)
        return
    for line in verbs.kill_lines(results):
        click.echo(line)


@cli.command(short_help="Remove the records and logs of ended shells.")
@click.argument("refs", nargs=-1, metavar="[REF...]")
@click.option("--older-than", metavar="DURATION", help="Only shells that ended more than DURATION ago "
              "(90s, 15m, 2h, 7d, 1w).")
@click.option("--all", "everything", is_flag=True, help="Also kill and remove shells that have not ended.")
@click.option("--json", "as_json", is_flag=True, help="Print the removed shell ids as one JSON list.")
@pass_session
def clean(session: Session, refs: tuple[str, ...], older_than: str | None, everything: bool, as_json: bool) -> None:
    """Remove the records and logs of ended shells: all of them, or those named (with --all: of every shell).

    A named shell that has not ended is an error (nothing is removed) unless --all kills it first.

    \b
    Examples:
      mgsup clean --older-than 7d
      mgsup clean build last
    """
    age = None if older_than is None else request.duration("--older-than", older_than)
    removed = session.sup.clean(refs or None, everything=everything, older_than=age)
    if as_json:
        _print_json(removed)
        return
    for shell_id in removed:
        click.echo(shell_id)
    click.echo(f"removed {len(removed)} shell{'' if len(removed) == 1 else 's'}", err=True)


@cli.command(short_help="Serve the tools over MCP on stdin/stdout.")
@click.option("--policy", "policy_file", metavar="FILE", help="Serve under the tool policy in FILE (YAML, see "
              "docs/guardrails.md). A file that cannot be used is an error (exit 2): the server never runs "
              "unrestricted by mistake.")
@pass_session
def mcp(session: Session, policy_file: str | None) -> None:
    """Serve the supervisor tools over MCP on stdin/stdout (for agents and MCP clients).

    Every tool call is appended to the home's audit log (mgsup audit).
    """
    # Read before anything is served, so that a bad file stops here with one line.
    policy = None
    if policy_file is not None:
        from .tools.policy import load_policy

        policy = load_policy(policy_file)
    # The server builds its Supervisor from the environment; pass the global options on that way.
    if session.home is not None:
        os.environ["MGSUP_HOME"] = os.path.abspath(os.path.expanduser(session.home))
    if session.max_concurrent is not None:
        os.environ["MGSUP_MAX_CONCURRENT"] = str(session.max_concurrent)
    if session.cluster is not None:
        os.environ["MGSUP_CLUSTER"] = session.cluster
    try:
        server = importlib.import_module("supervisor.tools.mcp_server")
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("supervisor.tools"):
            raise SupervisorError("the MCP server is not part of this installation "
                                  "(module supervisor.tools.mcp_server is missing)") from exc
        raise
    server.main(policy)


@cli.command(short_help="Show the agent tools' audit log.")
@click.option("--tail", type=click.IntRange(min=0), metavar="N", help="Only the last N calls.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as one JSON list.")
@pass_session
def audit(session: Session, tail: int | None, as_json: bool) -> None:
    """Show the calls agents made through the tools (MCP and dispatch), oldest first.

    Each line: time, surface, tool, the policy's decision (allowed, denied, invalid), the result
    (ok, error) and what the call touched or why it failed. Environment values are never recorded.
    """
    records = audit_log.read(session.sup.home, tail=tail)
    if as_json:
        _print_json(records)
    elif records:
        for record in records:
            click.echo(audit_log.describe(record))
    else:
        click.echo(f"no tool calls on record in {session.sup.home}", err=True)


@cli.command(short_help="Serve a live web dashboard of the home.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Any address but loopback lets other machines reach it (with a warning).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--open", "open_browser", is_flag=True, help="Open the dashboard in a web browser.")
@click.option("--experiments", "experiment_dirs", multiple=True, metavar="DIR",
              type=click.Path(exists=True, file_okay=False),
              help="Also show this batch results folder (repeatable); folders that shells run in are found anyway.")
@pass_session
def dashboard(session: Session, host: str, port: int, open_browser: bool, experiment_dirs: tuple[str, ...]) -> None:
    """Serve a live web view of the home: shells, their output, coordination progress, batch results.

    Prints the URL to open, with a random token: every request needs it (then a cookie). Kill, restart,
    pause, resume and clean ask for confirmation. Ctrl-C stops the dashboard; the shells go on.
    """
    from .dashboard.server import serve

    serve(session.sup, host=host, port=port, open_browser=open_browser, experiment_dirs=experiment_dirs)


def _follow(sup: Supervisor, shell_id: str, timeout: float | None, screen: Console, *, plain: bool,
            kill_on_stall: bool = False) -> dict[str, Any]:
    """`progress.follow`; on Ctrl-C the message says that only the watching stopped, not the shell."""
    try:
        return progress.follow(sup, shell_id, timeout, screen, plain=plain, kill_on_stall=kill_on_stall)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_still_running(shell_id)) from None


def _show_until_end(sup: Supervisor, shell_id: str, *, kill_on_stall: bool = False) -> dict[str, Any]:
    """Show a shell until it ends and return its final status: a plain shell's output as it is written
    (its stdout on stdout, its stderr on stderr), then one line on stderr saying how it ended; the
    progress of a coordination run (or of any run watched for stalls)."""
    current = sup.get_shell_status(shell_id)
    if kill_on_stall or current["question"] is not None or current["log_dir"] is not None:
        return _follow(sup, shell_id, None, progress.console(), plain=True, kill_on_stall=kill_on_stall)

    def writer(stream: Any) -> Callable[[str], None]:
        def write(text: str) -> None:
            stream.write(text)
            stream.flush()
        return write

    try:
        copy_output(sup, shell_id, {"stdout": writer(sys.stdout), "stderr": writer(sys.stderr)}, follow=True)
        final = sup.wait_shell(shell_id)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_still_running(shell_id)) from None
    click.echo(render.plain_line(final), err=True)
    return final


def _still_running(shell_id: str) -> str:
    return f"{shell_id} keeps running ('mgsup kill {shell_id}' stops it)"


def _stderr_mark() -> str:
    """How `logs` marks a stderr line: in red on a terminal that takes colour."""
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        return click.style(STDERR_MARK, fg="red")
    return STDERR_MARK


for _verb in (restart, pause, resume, group):
    cli.add_command(_verb)


# -- entry point ------------------------------------------------------------------------------------


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def main(argv: list[str] | None = None) -> int:
    """Run `mgsup` and return its exit code; every error is one `mgsup: error: ...` line on stderr."""
    try:
        code = cli.main(args=argv, prog_name="mgsup", standalone_mode=False)
        sys.stdout.flush()
        return code if isinstance(code, int) else 0
    except click.UsageError as exc:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        return _fail(exc.format_message() + where, exc.exit_code)
    except click.ClickException as exc:
        return _fail(exc.format_message(), exc.exit_code)
    except click.Abort as exc:
        # click turns a KeyboardInterrupt into Abort: what the command said about it is the cause.
        cause = exc.__cause__
        return verbs.failure(cause if isinstance(cause, KeyboardInterrupt) else KeyboardInterrupt())
    except (Exception, KeyboardInterrupt) as exc:
        return verbs.failure(exc)


def _fail(message: str, code: int) -> int:
    return verbs.fail(message, code)
