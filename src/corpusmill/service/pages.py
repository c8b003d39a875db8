"""Server-rendered pages: runs, one run with live progress, its mixture report, schedules, recipes, and the
actions an operator takes from them once logged in (page_actions.py).

Jinja2 templates shipped in the package (page_render.py), inline CSS and no scripts: a page of a run in
flight refreshes itself with a meta tag, and every action is a form POST checked for a session and a CSRF
token. The mixture report is the run's own `report/index.html`, which is self-contained (charts drawn
inline), served as a file of the run directory under the same rules as artifacts.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from corpusmill.service.artifacts import ArtifactMissing, artifact_list, file_response, safe_file
from corpusmill.service.context import services
from corpusmill.service.page_actions import router as actions_router
from corpusmill.service.page_render import render
from corpusmill.service.recipe_register import router as recipe_register_router
from corpusmill.service.recipe_view import recipe_versions, schedules_of
from corpusmill.service.run_pages import router as run_pages_router
from corpusmill.service.run_view import run_view
from corpusmill.service.runs_listing import runs_list
from corpusmill.service.schedule_pages import form_values, render_schedules, schedule_choices
from corpusmill.service.schedule_pages import router as schedule_pages_router
from corpusmill.service.store import ACTIVE

router = APIRouter(include_in_schema=False)
router.include_router(actions_router)
router.include_router(recipe_register_router)
router.include_router(run_pages_router)
router.include_router(schedule_pages_router)
REFRESH_S = 3
MAX_ARTIFACT_ROWS = 500  # a big run has thousands of files; the API lists them all


@router.get("/")
def home() -> RedirectResponse:
    """The runs list is the front page."""
    return RedirectResponse("/runs", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request) -> HTMLResponse:
    """Runs, newest first, by status and recipe, a page at a time (the API's cursors; runs_listing.py);
    refreshes while any run shown is in flight."""
    status_code, listing = runs_list(request)
    refresh = REFRESH_S if any(r.status in ACTIVE for r in listing["runs"]) else None
    return render(request, "runs.html", status_code=status_code, refresh=refresh, **listing)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(run_id: int, request: Request, files_from: Annotated[int, Query(ge=0)] = 0) -> HTMLResponse:
    """One run: how it went (duration, documents, tokens, drops, warnings), what it builds on, error, live
    progress, artifacts with their checksums (MAX_ARTIFACT_ROWS at a time, from `files_from`), and the
    comparison with the run before it."""
    svc = services(request)
    run = svc.store.run(run_id)
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
    base_run = svc.store.run(run.base_run_id) if run.base_run_id else None
    refresh = REFRESH_S if run.status in ACTIVE else None
    return render(
        request,
        "run.html",
        run=run,
        view=run_view(svc.store, run, svc.clock()),
        active=run.status in ACTIVE,
        base_run=base_run,
        artifacts=artifacts[files_from : files_from + MAX_ARTIFACT_ROWS],
        artifacts_from=files_from,
        artifacts_page=MAX_ARTIFACT_ROWS,
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
        return file_response(
            safe_file(f"{run.run_dir}/report", path or "index.html"),
            download=False,
            ranged="range" in request.headers,
        )
    except ArtifactMissing:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"run {run_id}'s report has no {path!r}"
        ) from None


@router.get("/runs/{run_id}/report")
def report_redirect(run_id: int) -> RedirectResponse:
    """The report page's address ends in a slash, so its relative links resolve inside the report folder."""
    return RedirectResponse(f"/runs/{run_id}/report/", status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/schedules", response_class=HTMLResponse)
def schedules_page(request: Request, deleted: bool = False) -> HTMLResponse:
    """Every schedule with its cron, policies, next tick and pause state (the deleted ones too with
    `?deleted=1`), and the form that creates one (schedule_pages.py)."""
    return render_schedules(request, show_deleted=deleted)


@router.get("/recipes", response_class=HTMLResponse)
def recipes_page(request: Request) -> HTMLResponse:
    """Every recipe with its newest version."""
    store = services(request).store
    recipes = [store.recipe(name) for name, _, _ in store.recipe_names()]
    return render(request, "recipes.html", recipes=[r for r in recipes if r is not None])


@router.get("/recipes/{name}", response_class=HTMLResponse)
def recipe_page(name: str, request: Request) -> HTMLResponse:
    """One recipe: its versions newest first, each with its YAML, its diff from the one before and its runs."""
    store = services(request).store
    versions = recipe_versions(store, name)
    if not versions:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"there is no recipe {name!r}")
    return render(
        request,
        "recipe.html",
        name=name,
        versions=versions,
        schedules=schedules_of(store, name),
        schedule_values=form_values(None),
        **schedule_choices(),
    )
