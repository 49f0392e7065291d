"""Server-sent event streams: each page gets its data pushed as JSON the moment the Hub sees it change.

A stream sends the current state as soon as it opens, then only what changed: the table page the
browser looks at (with its filters), one shell's details and the new bytes of its output, or an
experiment folder's table. Nothing is polled: each stream waits on `Hub.changed`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import lifecycle
from ..errors import InvalidRequest, SupervisorError
from ..request import STREAMS
from . import views, windows
from .answer import final_answer
from .hub import LIVENESS_SECONDS, Hub
from .routes import error_response, hub_of, known_status, live_report, optional_int

PING_SECONDS = 15


def _event(name: str, data: Any) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data), event=name)


def _stream(events: AsyncIterator[ServerSentEvent]) -> EventSourceResponse:
    return EventSourceResponse(events, ping=PING_SECONDS, headers={"cache-control": "no-store"})


async def table_events(request: Request) -> Response:
    """`/events/shells?status=&group=&name=&page=&per_page=`: the table page, again whenever it changes."""
    try:
        query = views.Query.parse(request.query_params)
    except InvalidRequest as exc:
        return error_response(exc)
    return _stream(_table(hub_of(request), query))


async def _table(hub: Hub, query: views.Query) -> AsyncIterator[ServerSentEvent]:
    await hub.ready.wait()
    last: dict[str, Any] | None = None
    while True:
        looked = hub.seq
        page = views.table(hub.shells.values(), query, hub.clock())
        comparable = {**page, "now": None}
        if comparable != last:
            last = comparable
            yield _event("table", page)
        seen = looked
        while hub.list_seq <= looked:
            seen = await hub.changed(seen)


async def shell_events(request: Request) -> Response:
    """`/events/shells/{id}?stdout=OFFSET&stderr=OFFSET`: details on change, output after the offsets as written."""
    shell_id = request.path_params["shell_id"]
    try:
        offsets = {stream: optional_int(request.query_params, stream) for stream in STREAMS}
        await known_status(request, shell_id)
    except SupervisorError as exc:
        return error_response(exc)
    return _stream(_shell(hub_of(request), shell_id, offsets))


async def _shell(hub: Hub, shell_id: str, offsets: dict[str, int | None]) -> AsyncIterator[ServerSentEvent]:
    answer: str | None = None
    status_looked = output_looked = -1
    seen = hub.seq
    while True:
        if hub.status_seq.get(shell_id, 0) > status_looked or status_looked < 0:
            status_looked = hub.seq
            status = hub.status(shell_id)
            if status is None:
                # Newer than the hub's last look, or removed: a read now tells which.
                await hub.refresh([shell_id])
                status = hub.status(shell_id)
            if status is None:
                yield _event("gone", {"shell_id": shell_id})
                return
            if answer is None:
                answer = await anyio.to_thread.run_sync(final_answer, status)
            yield _event("details", views.details(status, hub.timelines.get(shell_id, []), answer, hub.clock()))
            output_looked = -1  # a change of status (its end above all) is a moment to look at the logs too
        more = False
        if hub.output_seq.get(shell_id, 0) > output_looked or output_looked < 0:
            output_looked = hub.seq
            for stream, offset in offsets.items():
                if offset is None:
                    continue
                try:
                    chunk = await anyio.to_thread.run_sync(partial(windows.since, hub.sup, shell_id, stream, offset))
                except SupervisorError:
                    continue  # removed meanwhile: the next look at its status says so
                if chunk["text"] or chunk["reset"]:
                    yield _event("output", chunk)
                offsets[stream] = chunk["end"]
                more = more or chunk["size"] > chunk["end"]
        if more:
            output_looked = -1  # a capped chunk: send the rest without waiting for another change
            continue
        quiet = seen
        seen = await hub.changed(seen, timeout=LIVENESS_SECONDS)
        if seen == quiet and not lifecycle.is_ended(hub.status(shell_id) or {}):
            # inotify misses what a job writes before the watch on its new folder is in place: look anyway.
            output_looked = -1


async def experiments_events(request: Request) -> Response:
    """`/events/experiments`: the list of experiment folders, again whenever one of them changes."""
    return _stream(_experiments(hub_of(request)))


async def _experiments(hub: Hub) -> AsyncIterator[ServerSentEvent]:
    await hub.ready.wait()
    last: list[dict[str, Any]] | None = None
    seen = -1
    while True:
        looked = (len(hub.experiments.folders), max(hub.experiment_seq.values(), default=0))
        listing = await anyio.to_thread.run_sync(hub.experiments.listing)
        if listing != last:
            last = listing
            yield _event("experiments", {"folders": listing})
        while (len(hub.experiments.folders), max(hub.experiment_seq.values(), default=0)) == looked:
            seen = await hub.changed(seen)


async def experiment_events(request: Request) -> Response:
    """`/events/experiments/{key}`: the folder's results table, live progress of its runs, and the plot's version."""
    hub = hub_of(request)
    key = request.path_params["key"]
    if key not in hub.experiments.folders:
        return JSONResponse({"error": f"no experiment folder {key!r}"}, status_code=404)
    return _stream(_experiment(hub, key))


async def _experiment(hub: Hub, key: str) -> AsyncIterator[ServerSentEvent]:
    last: dict[str, Any] | None = None
    seen = -1
    while True:
        looked = (hub.experiment_seq.get(key, 0), hub.list_seq)
        report = live_report(hub, await anyio.to_thread.run_sync(hub.experiments.report, key))
        if report != last:
            last = report
            yield _event("report", {**report, "now": hub.clock()})
        while (hub.experiment_seq.get(key, 0), hub.list_seq) == looked:
            seen = await hub.changed(seen)
