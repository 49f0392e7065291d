"""Serving the dashboard: bind the address, print the URL with its token, run uvicorn until interrupted."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import webbrowser
from collections.abc import Iterable
from typing import TextIO

import uvicorn

from ..core import Supervisor
from ..errors import InvalidRequest, SupervisorError
from .app import create_app
from .security import Secrets

# Open event streams end on their own when the server stops; don't wait long for anything else.
SHUTDOWN_SECONDS = 2


def is_loopback(host: str) -> bool:
    """Whether every address `host` resolves to is a loopback address (127.0.0.0/8, ::1)."""
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in found)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port` (port 0: any free port); InvalidRequest when that is impossible."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
        return socket.create_server(address[:2], family=family)
    except socket.gaierror as exc:
        raise InvalidRequest(f"cannot listen on {host!r}: {exc.strerror}; give an address such as 127.0.0.1") from None
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise SupervisorError(f"cannot listen on {host}:{port}: {reason}; choose another --port "
                              "(0 picks a free one)") from None


def serve(sup: Supervisor, *, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = False,
          experiment_dirs: Iterable[str | os.PathLike[str]] = (), out: TextIO = sys.stdout,
          err: TextIO = sys.stderr) -> None:
    """Serve the dashboard of `sup`'s home until interrupted, after printing its URL (with the token).

    >>> serve(Supervisor(), port=0)  # prints http://127.0.0.1:<port>/?token=...
    """
    loopback = is_loopback(host)
    sock = bind(host, port)
    keys = Secrets(port=sock.getsockname()[1])
    url = keys.url(host)
    if not loopback:
        print(f"mgsup: warning: the dashboard listens on {host}, which other machines may reach: anyone with "
              "the URL below can see and kill your shells. Use --host 127.0.0.1 unless you mean it.",
              file=err, flush=True)
    print(f"mgsup dashboard of {sup.home}\n  {url}\n(Ctrl-C stops it)", file=out, flush=True)
    app = create_app(sup, keys, loopback=loopback, experiment_dirs=experiment_dirs)
    if open_browser:
        webbrowser.open(url)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=SHUTDOWN_SECONDS)
    uvicorn.Server(config).run(sockets=[sock])
