"""A live web dashboard of one home: `mgsup dashboard`.

The browser gets pages from `templates/` and scripts and styles from `static/` (all shipped in the
package: no CDN, no build step), then its data as JSON, pushed by server-sent events whenever the
home changes. Where things live: `hub` (the statuses, kept current by file watching), `views`
(status dicts shaped for the pages), `windows` (output windows), `experiments` (batch folders),
`routes` and `streams` (HTTP and event endpoints), `security` (token, cookie, CSRF), `app`
(the ASGI application) and `server` (binding and uvicorn).

>>> from supervisor.dashboard import serve
>>> serve(Supervisor(), host="127.0.0.1", port=8765)
"""

from __future__ import annotations

from .app import create_app
from .security import Secrets
from .server import serve

__all__ = ["Secrets", "create_app", "serve"]
