"""What the pages can change: log in and out, start or rerun a recipe version, cancel a run, pause or resume a
schedule, delete a recipe no schedule uses.

Every action is a plain HTML form POST (the pages have no scripts) that needs a valid session cookie AND the
session's CSRF token in the form (see session.py); without both it is 403 and nothing happens. The actions
call the same parts the API routes call (RunManager, Scheduler, Store), not the API over HTTP, and answer
with a 303 back to a page that shows what happened as a flash message.
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from corpusmill.service.context import services
from corpusmill.service.page_render import render
from corpusmill.service.recipe_delete import RecipeInUse, delete_recipe
from corpusmill.service.runs import RunStateError
from corpusmill.service.scheduler import ScheduleError
from corpusmill.service.session import (
    clear_session,
    csrf_ok,
    flash,
    new_session_value,
    set_session,
    token_matches,
)
from corpusmill.service.store import FAILED, Run

router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 64 * 1024  # a login or an action form is a few hundred bytes


def form_fields(body: bytes) -> dict[str, str]:
    """An urlencoded form's fields, the first value of each (UTF-8, the pages' charset; a stray byte does not
    fail the form)."""
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


async def _form(request: Request) -> dict[str, str]:
    """The posted form's fields; an oversized or non-form body reads as empty."""
    body = await request.body()
    return {} if len(body) > MAX_FORM_BYTES else form_fields(body)


def local_target(target: str | None, fallback: str = "/runs") -> str:
    """Only a path on this site may be a redirect target (no `//host`, no scheme)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


def forbidden(request: Request) -> HTMLResponse:
    """The answer to an action without a session or with another session's CSRF token: 403, nothing done."""
    return render(
        request,
        "forbidden.html",
        status_code=status.HTTP_403_FORBIDDEN,
        message="This action needs a login with the service token, from a form of these pages "
        "(its CSRF token did not match, or the session has expired).",
    )


async def authorized(request: Request) -> dict[str, str] | None:
    """The form when the request has a valid session and the session's CSRF token; else None."""
    form = await _form(request)
    return form if csrf_ok(request, form.get("csrf", "")) else None


def back(target: str, message: str) -> RedirectResponse:
    """Where an action ends: a 303 to a page (so a reload does not post again) that shows `message` once."""
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    flash(response, message)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/runs") -> HTMLResponse:
    """The form that takes the service token."""
    return render(request, "login.html", next=local_target(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """A valid token starts a session (a signed cookie, never the token itself); a wrong one is 403."""
    form = await _form(request)
    target = local_target(form.get("next"))
    if not token_matches(request, form.get("token", "")):
        return render(
            request,
            "login.html",
            status_code=status.HTTP_403_FORBIDDEN,
            next=target,
            error="That is not this service's token.",
        )
    response = back(target, "Logged in.")
    set_session(response, new_session_value(request))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (a form of the pages, so CSRF-checked like any action)."""
    if await authorized(request) is None:
        return forbidden(request)
    response = back("/runs", "Logged out.")
    clear_session(response)
    return response


def _started(run: Run, what: str) -> RedirectResponse:
    """Back to the new run's page; a run Ray refused is already FAILED, and the flash says so."""
    if run.status == FAILED:
        return back(f"/runs/{run.id}", f"Run #{run.id} of {what} could not be submitted; see its error.")
    return back(f"/runs/{run.id}", f"Run #{run.id} of {what} started.")


@router.post("/recipes/{name}/versions/{version}/run")
async def run_version(name: str, version: int, request: Request) -> Response:
    """Rebuild one recipe version now, as `POST /api/recipes/{name}/runs` does."""
    if await authorized(request) is None:
        return forbidden(request)
    svc = services(request)
    recipe = svc.store.recipe(name, version)
    if recipe is None:
        return back("/recipes", f"Recipe {name} has no version {version}.")
    return _started(await run_in_threadpool(svc.manager.trigger, recipe), f"{name} v{version}")


@router.post("/runs/{run_id}/rerun")
async def rerun(run_id: int, request: Request) -> Response:
    """A new run of the same recipe version as run `run_id`."""
    if await authorized(request) is None:
        return forbidden(request)
    svc = services(request)
    old = svc.store.run(run_id)
    recipe = svc.store.recipe(old.recipe, old.version) if old else None
    if old is None or recipe is None:
        return back("/runs", f"There is no run {run_id} to rerun.")
    return _started(await run_in_threadpool(svc.manager.trigger, recipe), f"{recipe.name} v{recipe.version}")


@router.post("/runs/{run_id}/cancel")
async def cancel(run_id: int, request: Request) -> Response:
    """Stop a run, as `POST /api/runs/{id}/cancel` does."""
    if await authorized(request) is None:
        return forbidden(request)
    svc = services(request)
    run = svc.store.run(run_id)
    if run is None:
        return back("/runs", f"There is no run {run_id}.")
    try:
        await run_in_threadpool(svc.manager.cancel, run)
    except RunStateError as exc:
        return back(f"/runs/{run_id}", f"Not cancelled: {exc}.")
    return back(f"/runs/{run_id}", f"Run #{run_id} is being cancelled.")


async def _set_paused(schedule_id: int, paused: bool, request: Request) -> Response:
    """Back to the page the button was on: the form's `next` (a schedule's own page), else the list."""
    form = await authorized(request)
    if form is None:
        return forbidden(request)
    target = local_target(form.get("next"), "/schedules")
    svc = services(request)
    schedule = svc.store.schedule(schedule_id)
    if schedule is None:
        return back(target, f"There is no schedule {schedule_id}.")
    try:
        svc.scheduler.change(schedule, paused=paused)
    except ScheduleError as exc:
        return back(target, f"Schedule #{schedule_id} unchanged: {exc}")
    return back(target, f"Schedule #{schedule_id} {'paused' if paused else 'resumed'}.")


@router.post("/schedules/{schedule_id}/pause")
async def pause(schedule_id: int, request: Request) -> Response:
    """Pause a schedule, as `PATCH /api/schedules/{id}` with `paused: true` does."""
    return await _set_paused(schedule_id, True, request)


@router.post("/schedules/{schedule_id}/resume")
async def resume(schedule_id: int, request: Request) -> Response:
    """Resume a schedule; its next tick is computed from now."""
    return await _set_paused(schedule_id, False, request)


@router.post("/recipes/{name}/delete")
async def delete(name: str, request: Request) -> Response:
    """Delete a recipe with all its versions, only while no schedule uses it and no run of it is in flight."""
    if await authorized(request) is None:
        return forbidden(request)
    svc = services(request)
    try:
        deleted = delete_recipe(svc.store, name, svc.clock())
    except RecipeInUse as exc:
        return back(f"/recipes/{quote(name, safe='')}", f"Not deleted: {exc}")
    if not deleted:
        return back("/recipes", f"There is no recipe {name}.")
    return back("/recipes", f"Recipe {name} deleted.")
