"""Server-rendered pages: runs, one run with live progress, its mixture report, schedules, recipes.

Jinja2 templates shipped in the package, with autoescaping on (recipe names, errors and log text are data,
never markup), inline CSS and no scripts: a page of a run in flight refreshes itself with a meta tag. The
mixture report is the run's own `report/index.html`, which is self-contained (charts drawn inline), served
as a file of the run directory under the same rules as artifacts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from corpusmill.service.artifacts import ArtifactMissing, artifact_list, file_response, safe_file
from corpusmill.service.context import services
from corpusmill.service.store import ACTIVE

router = APIRouter(include_in_schema=False)
REFRESH_S = 3
MAX_ARTIFACT_ROWS = 500  # a big run has thousands of files; the API lists them all


def _when(value: dt.datetime | None) -> str:
    return "–" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:,}"


def _documents_read(progress: dict[str, Any] | None) -> int | None:
    if not progress:
        return None
    counts = [
        s["docs_out"] for step in progress.get("steps", []) for s in step["stages"] if s["label"] == "00-read"
    ]
    return sum(counts) if counts else None


_env = Environment(
    loader=PackageLoader("corpusmill.service", "templates"), autoescape=select_autoescape(["html"])
)
_env.filters.update(when=_when, num=_num, documents_read=_documents_read, urlpath=lambda p: quote(str(p)))


def render(template: str, **context: Any) -> HTMLResponse:
    """A page from its template."""
    return HTMLResponse(_env.get_template(template).render(**context))


@router.get("/")
def home() -> RedirectResponse:
    """The runs list is the front page."""
    return RedirectResponse("/runs", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request) -> HTMLResponse:
    """Every run, newest first; refreshes while any is in flight."""
    runs = services(request).store.runs(limit=500)
    refresh = REFRESH_S if any(r.status in ACTIVE for r in runs) else None
    return render("runs.html", runs=runs, refresh=refresh)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(run_id: int, request: Request) -> HTMLResponse:
    """One run: facts, what it builds on, error, live progress, artifacts and the link to its report."""
    store = services(request).store
    run = store.run(run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"there is no run {run_id}")
    artifacts: list[dict[str, Any]] = []
    has_report = False
    if run.run_dir:
        with contextlib.suppress(ArtifactMissing):
            artifacts = artifact_list(run.run_dir)
        with contextlib.suppress(ArtifactMissing):
            safe_file(run.run_dir, "report/index.html")
            has_report = True
    base_run = store.run(run.base_run_id) if run.base_run_id else None
    refresh = REFRESH_S if run.status in ACTIVE else None
    return render(
        "run.html",
        run=run,
        base_run=base_run,
        artifacts=artifacts[:MAX_ARTIFACT_ROWS],
        artifacts_total=len(artifacts),
        has_report=has_report,
        refresh=refresh,
    )


@router.get("/runs/{run_id}/report/{path:path}")
def report_file(run_id: int, path: str, request: Request) -> Response:
    """The run's report page (and any file beside it), only from inside the run's report folder."""
    run = services(request).store.run(run_id)
    if run is None or not run.run_dir:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"there is no run {run_id}")
    try:
        return file_response(safe_file(f"{run.run_dir}/report", path or "index.html"), download=False)
    except ArtifactMissing:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"run {run_id}'s report has no {path!r}"
        ) from None


@router.get("/runs/{run_id}/report")
def report_redirect(run_id: int) -> RedirectResponse:
    """The report page's address ends in a slash, so its relative links resolve inside the report folder."""
    return RedirectResponse(f"/runs/{run_id}/report/", status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/schedules", response_class=HTMLResponse)
def schedules_page(request: Request) -> HTMLResponse:
    """Every schedule with its next tick and pause state."""
    return render("schedules.html", schedules=services(request).store.schedules(), refresh=None)


@router.get("/recipes", response_class=HTMLResponse)
def recipes_page(request: Request) -> HTMLResponse:
    """Every recipe with its newest version."""
    store = services(request).store
    recipes = [store.recipe(name) for name, _, _ in store.recipe_names()]
    return render("recipes.html", recipes=[r for r in recipes if r is not None], refresh=None)
