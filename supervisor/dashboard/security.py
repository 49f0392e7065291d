"""Who may use the dashboard: a token, then a cookie; POST with a CSRF token for anything that changes state.

The server prints its URL with a random token (as Jupyter does). A request that carries the token
in its query gets the token as an HttpOnly, SameSite=Strict cookie and is redirected to the same
address without it, so the token does not stay in the address bar or the history. Every other
request must carry that cookie, or it gets 401. Requests that change state must be POSTs with the
page's CSRF token in a header, from the dashboard's own origin: a form or a script on another site
can do neither. Served on loopback, the Host header must name a loopback address too, so a
hostile DNS name that resolves to 127.0.0.1 reaches nothing. Every response carries a content
security policy that allows only the dashboard's own scripts and styles, so text a job printed can
never run as a script, even if it reached the page unescaped.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_HEADER = "x-csrf-token"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
SAFE_METHODS = frozenset({"GET", "HEAD"})
HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
UNAUTHORIZED_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mgsup dashboard: 401</title>
</head><body><h1>401: this dashboard needs its token</h1>
<p>Open the address that <code>mgsup dashboard</code> printed when it started (it ends with
<code>?token=…</code>). The token is then kept in a cookie for this browser.</p></body></html>"""


@dataclass(frozen=True)
class Secrets:
    """The token of the printed URL, the cookie that carries it, and the CSRF token pages send back."""

    port: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def cookie(self) -> str:
        # Cookies ignore the port: a name per port keeps two dashboards on one host apart.
        return f"mgsup_dashboard_{self.port}"

    def url(self, host: str, path: str = "/") -> str:
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"http://{shown}:{self.port}{path}?{urlencode({'token': self.token})}"


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class Guard:
    """ASGI middleware: the token, the cookie, the CSRF check, the Host check and the security headers."""

    def __init__(self, app: ASGIApp, keys: Secrets, *, loopback: bool) -> None:
        self.app = app
        self.keys = keys
        self.loopback = loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in HEADERS.items() if k.encode() not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        refusal = self._refusal(Request(scope))
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Response | None:
        """The response that refuses `request`, or None when it may go on."""
        host = request.url.hostname or ""
        if self.loopback and host not in LOOPBACK_NAMES:
            return _error(request, 400, f"this dashboard is served on loopback only; {host!r} is not a loopback "
                                        "address")
        given = request.query_params.get("token")
        if given is not None:
            if not _same(given, self.keys.token):
                return _error(request, 401, "wrong token: open the URL that mgsup dashboard printed")
            query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = URL(path=request.url.path, query=urlencode(query))
            redirect = RedirectResponse(str(target), status_code=303)
            redirect.set_cookie(self.keys.cookie, self.keys.token, httponly=True, samesite="strict", path="/")
            return redirect
        if not _same(request.cookies.get(self.keys.cookie), self.keys.token):
            return _error(request, 401, "this dashboard needs its token: open the URL that mgsup dashboard printed")
        if request.method in SAFE_METHODS:
            return None
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin is not None and origin != own:
            return _error(request, 403, f"cross-site request refused (origin {origin})")
        if request.headers.get("sec-fetch-site", "same-origin") != "same-origin":
            return _error(request, 403, "cross-site request refused")
        if not _same(request.headers.get(CSRF_HEADER), self.keys.csrf):
            return _error(request, 403, "missing or wrong CSRF token: reload the dashboard page and try again")
        return None


def _error(request: Request, code: int, message: str) -> Response:
    if code == 401 and "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(UNAUTHORIZED_PAGE, status_code=401)
    return JSONResponse({"error": message}, status_code=code)
