"""The dashboard's ASGI application: routes, static files, the guard, and the Hub running beside them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..core import Supervisor
from . import routes, streams
from .hub import Hub
from .security import Guard, Secrets

ROUTES = [
    Route("/", routes.shells_page),
    Route("/shells/{shell_id}", routes.shell_page),
    Route("/experiments", routes.experiments_page),
    Route("/experiments/{key}", routes.experiment_page),
    Route("/experiments/{key}/plot.png", routes.plot_png),
    Route("/api/shells", routes.shells_json),
    Route("/api/shells/{shell_id}", routes.shell_json),
    Route("/api/shells/{shell_id}/output", routes.output_json),
    Route("/api/shells/{shell_id}/kill", routes.kill_action, methods=["POST"]),
    Route("/api/shells/{shell_id}/restart", routes.restart_action, methods=["POST"]),
    Route("/api/shells/{shell_id}/pause", routes.pause_action, methods=["POST"]),
    Route("/api/shells/{shell_id}/resume", routes.resume_action, methods=["POST"]),
    Route("/api/clean", routes.clean_action, methods=["POST"]),
    Route("/api/experiments", routes.experiments_json),
    Route("/api/experiments/{key}", routes.experiment_json),
    Route("/events/shells", streams.table_events),
    Route("/events/shells/{shell_id}", streams.shell_events),
    Route("/events/experiments", streams.experiments_events),
    Route("/events/experiments/{key}", streams.experiment_events),
    Mount("/static", StaticFiles(packages=[("supervisor.dashboard", "static")]), name="static"),
]


def create_app(sup: Supervisor, keys: Secrets, *, loopback: bool = True,
               experiment_dirs: Iterable[str | os.PathLike[str]] = ()) -> Starlette:
    """The dashboard of `sup`'s home, guarded by `keys` (see `security`).

    The Hub starts and stops with the application (its lifespan), so use it under a server or
    `with TestClient(app)`.

    >>> app = create_app(Supervisor(), Secrets(port=8765))
    """
    folders = list(experiment_dirs)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.hub = Hub(sup, experiment_dirs=folders)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(app.state.hub.run)
            yield
            app.state.hub.stop()
            tasks.cancel_scope.cancel()

    app = Starlette(routes=ROUTES, middleware=[Middleware(Guard, keys=keys, loopback=loopback)], lifespan=lifespan)
    app.state.keys = keys
    return app
