"""How every page is drawn: the Jinja environment (autoescaping on: recipe names, errors and log text are
data, never markup), its filters, and what each page gets besides its own data: the login state, the
session's CSRF token for action forms, and the flash message left by the action before the redirect."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from corpusmill.service.session import clear_flash, csrf_token, logged_in, pending_flash


def utc_text(value: dt.datetime | None) -> str:
    """A time as the pages write it: `2031-01-01 12:00:00 UTC` (– for none)."""
    return "–" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:,}"


def _duration(seconds: float | None) -> str:
    """`1 h 02 min`, `3 min 05 s`, `12 s`, `0.4 s`: how long, at the precision people read it (a tenth of a
    second under ten seconds, so a quick step does not read as taking no time)."""
    if seconds is None:
        return "–"
    if 0 <= seconds < 9.95:
        return f"{seconds:.1f} s"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def _documents_read(progress: dict[str, Any] | None) -> int | None:
    if not progress:
        return None
    counts = [
        s["docs_out"] for step in progress.get("steps", []) for s in step["stages"] if s["label"] == "00-read"
    ]
    return sum(counts) if counts else None


env = Environment(
    loader=PackageLoader("corpusmill.service", "templates"), autoescape=select_autoescape(["html"])
)
env.filters.update(
    when=utc_text,
    num=_num,
    duration=_duration,
    documents_read=_documents_read,
    urlpath=lambda p: quote(str(p), safe="/"),
    urlpart=lambda p: quote(str(p), safe=""),
)


def compile_templates() -> int:
    """Compile every page template now (Jinja keeps them): the first visitors after a start would otherwise
    wait while a page's template compiles, holding up every request in flight meanwhile. Returns how many."""
    names = [name for name in env.list_templates() if name.endswith(".html")]
    for name in names:
        env.get_template(name)
    return len(names)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page from its template, with the session's state (logged in, CSRF token) and the pending flash."""
    message = pending_flash(request)
    context.setdefault("refresh", None)
    context.update(
        logged_in=logged_in(request), csrf=csrf_token(request) or "", flash=message, path=request.url.path
    )
    response = HTMLResponse(env.get_template(template).render(**context), status_code=status_code)
    if message is not None:
        clear_flash(response)
    return response


class PageError(Exception):
    """What a page cannot show, said to the reader, with the HTTP status the page gets."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
