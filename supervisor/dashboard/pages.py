"""The HTML pages: one frame (`page.html`) around each page's body, filled with `string.Template`.

Pages carry no data of their own: their scripts fetch it and receive updates as JSON, and put it
into the page as text. The few values written here (the home's path, a shell id, the CSRF token)
are HTML-escaped.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from string import Template

NAV = ("shells", "experiments")


@cache
def _template(name: str) -> Template:
    return Template(resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8"))


def render(body: str, *, title: str, script: str, nav: str, csrf: str, home: str, **values: str) -> str:
    """The page whose body is the template `body`, with `values` (escaped) filled into it."""
    escaped = {key: html.escape(value) for key, value in values.items()}
    main = _template(body).substitute(escaped)
    frame = {"title": html.escape(title), "script": html.escape(script), "csrf": html.escape(csrf),
             "home": html.escape(home), "page": html.escape(body.removesuffix(".html")), "main": main}
    frame |= {f"nav_{name}": "active" if name == nav else "" for name in NAV}
    return _template("page.html").substitute(frame)
