"""The pages, the JSON API and the actions of the dashboard, each a thin call into the Hub or the Supervisor."""

from __future__ import annotations

import html
import json
from functools import partial
from typing import Any

import anyio
from starlette import responses
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..automation.schema import escape_surrogates
from ..errors import InvalidRequest, LimitReached, ShellNotFound, SupervisorError
from . import pages, views, windows
from .answer import final_answer
from .experiments import PlotUnavailable
from .hub import Hub, StatusDict

ERROR_CODES: tuple[tuple[type[SupervisorError], int], ...] = (
    (ShellNotFound, 404), (InvalidRequest, 400), (LimitReached, 409))


class JSONResponse(responses.JSONResponse):
    """Starlette's JSON response, except that a path's bytes that are not UTF-8 stay exact, as escapes
    (see `escape_surrogates`): Starlette's own encoding refuses them."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return escape_surrogates(text).encode()


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


async def known_status(request: Request, shell_id: str) -> StatusDict:
    """The shell's status from the hub, else read now (it may be newer than the hub's last look)."""
    hub = hub_of(request)
    await hub.ready.wait()
    status = hub.status(shell_id)
    if status is None:
        status = await anyio.to_thread.run_sync(hub.sup.get_shell_status, shell_id)
    return status


def error_response(exc: Exception) -> JSONResponse:
    code = next((c for kind, c in ERROR_CODES if isinstance(exc, kind)), 500)
    return JSONResponse({"error": str(exc)}, status_code=code)


def _page(request: Request, body: str, *, title: str, script: str, nav: str, **values: str) -> HTMLResponse:
    hub = hub_of(request)
    return HTMLResponse(pages.render(body, title=title, script=script, nav=nav, csrf=request.app.state.keys.csrf,
                                     home=str(hub.sup.home), **values))


# -- pages ------------------------------------------------------------------------------------------

async def shells_page(request: Request) -> Response:
    return _page(request, "shells.html", title="Shells", script="shells.js", nav="shells")


async def shell_page(request: Request) -> Response:
    shell_id = request.path_params["shell_id"]
    try:
        await known_status(request, shell_id)
    except ShellNotFound as exc:
        return HTMLResponse(f"<!doctype html><title>not found</title><p>{html.escape(str(exc))}</p>"
                            '<p><a href="/">back to the shells</a></p>', status_code=404)
    return _page(request, "shell.html", title=shell_id, script="shell.js", nav="shells", shell_id=shell_id)


async def experiments_page(request: Request) -> Response:
    return _page(request, "experiments.html", title="Experiments", script="experiments.js", nav="experiments")


async def experiment_page(request: Request) -> Response:
    key = request.path_params["key"]
    if key not in hub_of(request).experiments.folders:
        return HTMLResponse('<!doctype html><title>not found</title><p>no such experiment folder</p>'
                            '<p><a href="/experiments">back to the experiments</a></p>', status_code=404)
    return _page(request, "experiment.html", title="Experiment", script="experiment.js", nav="experiments", key=key)


# -- JSON -------------------------------------------------------------------------------------------

async def shells_json(request: Request) -> Response:
    hub = hub_of(request)
    try:
        query = views.Query.parse(request.query_params)
    except InvalidRequest as exc:
        return error_response(exc)
    await hub.ready.wait()
    return JSONResponse(views.table(hub.shells.values(), query, hub.clock()))


async def shell_json(request: Request) -> Response:
    hub = hub_of(request)
    shell_id = request.path_params["shell_id"]
    try:
        # Read now rather than from the hub: whoever asks for one shell gets what is on disk this moment.
        status = await anyio.to_thread.run_sync(hub.sup.get_shell_status, shell_id)
    except SupervisorError as exc:
        return error_response(exc)
    answer = await anyio.to_thread.run_sync(final_answer, status)
    return JSONResponse(views.details(status, hub.timelines.get(shell_id, []), answer, hub.clock()))


async def output_json(request: Request) -> Response:
    """A window of one stream: `?stream=stdout&end=BYTES&window=BYTES` (end: default the end of the log)."""
    hub = hub_of(request)
    shell_id = request.path_params["shell_id"]
    params = request.query_params
    try:
        stream = params.get("stream", "stdout")
        end = optional_int(params, "end")
        window = optional_int(params, "window") or windows.WINDOW_BYTES
        result = await anyio.to_thread.run_sync(
            partial(windows.before, hub.sup, shell_id, stream, end, min(window, windows.LIVE_BYTES)))
    except SupervisorError as exc:
        return error_response(exc)
    return JSONResponse(result)


def optional_int(params: Any, key: str) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{key} must be a whole number of bytes, got {raw!r}") from None
    if value < 0:
        raise InvalidRequest(f"{key} must be >= 0, got {value}")
    return value


async def experiments_json(request: Request) -> Response:
    hub = hub_of(request)
    await hub.ready.wait()
    return JSONResponse({"folders": await anyio.to_thread.run_sync(hub.experiments.listing)})


async def experiment_json(request: Request) -> Response:
    hub = hub_of(request)
    key = request.path_params["key"]
    if key not in hub.experiments.folders:
        return JSONResponse({"error": f"no experiment folder {key!r}"}, status_code=404)
    return JSONResponse(live_report(hub, await anyio.to_thread.run_sync(hub.experiments.report, key)))


def live_report(hub: Hub, report: dict[str, Any]) -> dict[str, Any]:
    """The report with, for each run, its shell's current row (progress of runs still going)."""
    for run in report["rows"]:
        status = hub.status(run["shell_id"]) if run.get("shell_id") else None
        run["live"] = views.row(status) if status else None
    return report


async def plot_png(request: Request) -> Response:
    hub = hub_of(request)
    key = request.path_params["key"]
    if key not in hub.experiments.folders:
        return JSONResponse({"error": f"no experiment folder {key!r}"}, status_code=404)
    try:
        data = await anyio.to_thread.run_sync(hub.experiments.plot_png, key)
    except PlotUnavailable as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    return Response(data, media_type="image/png")


# -- actions (POST, CSRF-checked by the guard) -------------------------------------------------------

async def kill_action(request: Request) -> Response:
    """Kill a shell's whole tree: JSON body `{"grace": seconds, "signal": "SIGTERM"}`, both optional."""
    hub = hub_of(request)
    shell_id = request.path_params["shell_id"]
    try:
        body = await _json_body(request)
        kill = partial(hub.sup.kill_many, [shell_id], signal=body.get("signal", "SIGTERM"),
                       grace=body.get("grace", 5.0))
        [result] = await anyio.to_thread.run_sync(kill)
    except SupervisorError as exc:
        return error_response(exc)
    await hub.refresh([shell_id])
    return JSONResponse(result)


async def restart_action(request: Request) -> Response:
    """Run a shell's command again as a new shell (a live one is killed first); answers `{"shell_id": new id}`.

    The new shell runs in the dashboard's environment: variables the original start set are taken
    from there, and a restart that needs one it does not have is refused (400) with their names.
    """
    hub = hub_of(request)
    shell_id = request.path_params["shell_id"]
    try:
        await _json_body(request)
        new_id = await anyio.to_thread.run_sync(hub.sup.restart, shell_id)
    except SupervisorError as exc:
        return error_response(exc)
    await hub.refresh([shell_id, new_id])
    return JSONResponse({"shell_id": new_id, "restarted_from": shell_id})


async def pause_action(request: Request) -> Response:
    """Stop a running shell's whole tree until resumed; answers the shell's status, now `paused`."""
    return await _switch(request, pause=True)


async def resume_action(request: Request) -> Response:
    """Let a paused shell's whole tree continue; answers the shell's status, `running` again."""
    return await _switch(request, pause=False)


async def _switch(request: Request, *, pause: bool) -> Response:
    hub = hub_of(request)
    shell_id = request.path_params["shell_id"]
    try:
        await _json_body(request)
        # A queued or ended shell is InvalidRequest: a 400 whose message the confirmation dialog shows
        # (the shell may have ended while it was open).
        status = await anyio.to_thread.run_sync(hub.sup.pause if pause else hub.sup.resume, shell_id)
    except SupervisorError as exc:
        return error_response(exc)
    await hub.refresh([status["shell_id"]])
    return JSONResponse(status)


async def clean_action(request: Request) -> Response:
    """Remove the records and logs of every ended shell."""
    hub = hub_of(request)
    try:
        await _json_body(request)
        removed = await anyio.to_thread.run_sync(hub.sup.clean)
    except SupervisorError as exc:
        return error_response(exc)
    await hub.refresh(removed)
    return JSONResponse({"removed": removed})


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidRequest("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body
