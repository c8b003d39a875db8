"""A schedule's own page, and the forms that create, change and delete schedules from the pages.

Everything the schedule API does (`POST/PATCH/DELETE /api/schedules`) can be done here with plain form
POSTs, checked like every page action (session cookie and CSRF token, see page_actions.py), and calling the
same Scheduler and Store methods the API calls. A form the scheduler refuses (bad cron expression, unknown
time zone or recipe, a select value outside its choices) is drawn again with status 422, the error and what
was typed, so nothing has to be typed twice; a form it accepts answers 303 to the schedule's page.

A deleted schedule's page still renders, marked deleted and without forms, because its runs still name it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from corpusmill.service.context import services
from corpusmill.service.page_actions import authorized, back, forbidden
from corpusmill.service.page_render import render
from corpusmill.service.scheduler import CATCH_UP, OVERLAP, ScheduleError, next_tick
from corpusmill.service.store import Run, Schedule, Store

router = APIRouter(include_in_schema=False)

OVERLAP_WORDS = {
    "skip": "fire nothing for the tick while the schedule's last run is still queued or running",
    "queue": "hold the new run and start it when the older run ends (at most one run waits)",
    "cancel": "cancel the older run and start the new one",
}
CATCH_UP_WORDS = {
    "one": "ticks missed while the service was down fire one run at start-up, not one run each",
    "none": "ticks missed while the service was down fire nothing; the schedule waits for its next tick",
}
MACRO_WORDS = {
    "@hourly": "at minute 0 of every hour",
    "@daily": "every day at 00:00",
    "@weekly": "every Sunday at 00:00",
    "@monthly": "on the 1st of every month at 00:00",
    "@yearly": "on 1 January at 00:00",
    "@annually": "on 1 January at 00:00",
}
TICKS_SHOWN = 3
MAX_RUNS = 200  # the newest runs of the schedule shown on its page
CHECKED = "on"  # what a ticked checkbox posts; absent means unticked
TEXT_FIELDS = ("cron", "timezone", "webhook_url", "version")
NEW_DEFAULTS = {
    "recipe": "",
    "version": "",
    "cron": "",
    "timezone": "UTC",
    "incremental": "",
    "overlap": "skip",
    "catch_up": "one",
    "webhook_url": "",
    "paused": "",
}


@dataclass(frozen=True)
class Tick:
    """One coming tick, in UTC (how ticks are stored) and in the schedule's zone (how its cron reads)."""

    utc: dt.datetime
    local: str


def upcoming(schedule: Schedule, now: dt.datetime, count: int = TICKS_SHOWN) -> list[Tick]:
    """The next `count` ticks: from the stored next tick when active, from now for a paused schedule (what
    resuming would give); none for a deleted one."""
    if schedule.deleted_at is not None:
        return []
    zone = ZoneInfo(schedule.timezone)
    tick = schedule.next_run_at if not schedule.paused else next_tick(schedule.cron, now, schedule.timezone)
    ticks = []
    for _ in range(count):
        ticks.append(Tick(tick, tick.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")))
        tick = next_tick(schedule.cron, tick, schedule.timezone)
    return ticks


def schedule_runs(store: Store, schedule: Schedule) -> list[Run]:
    """The schedule's newest runs, newest first."""
    return store.runs(schedule_id=schedule.id, limit=MAX_RUNS)


def form_values(schedule: Schedule | None) -> dict[str, str]:
    """What a form shows before anything is typed: a schedule's fields, or a new schedule's defaults."""
    if schedule is None:
        return dict(NEW_DEFAULTS)
    return {
        "recipe": schedule.recipe,
        "version": str(schedule.version or ""),
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "incremental": CHECKED if schedule.incremental else "",
        "overlap": schedule.overlap,
        "catch_up": schedule.catch_up,
        "webhook_url": schedule.webhook_url or "",
        "paused": CHECKED if schedule.paused else "",
    }


def _typed(form: dict[str, str], base: dict[str, str]) -> dict[str, str]:
    """The form's fields over `base` (text stripped, checkboxes absent when unticked): what to refill."""
    typed = {**base, "incremental": "", "paused": ""}
    for key in base:
        if key in form:
            typed[key] = form[key].strip() if key in TEXT_FIELDS else form[key]
    return typed


def _checkbox(typed: dict[str, str], field: str) -> bool:
    """A checkbox's state; a value no checkbox of these pages posts is refused, not read as ticked."""
    value = typed.get(field, "")
    if value not in ("", CHECKED):
        raise ScheduleError(f"{field} must be ticked or not, not {value!r}")
    return value == CHECKED


def _version(text: str) -> int | None:
    """A pinned version number, or None (blank: the newest version at each tick)."""
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ScheduleError(
            f"version must be a version number (1, 2, ...) or blank for the newest, not {text!r}"
        )
    return int(text)


def new_schedule_fields(typed: dict[str, str]) -> dict[str, Any]:
    """Scheduler.add's arguments from a create form; ScheduleError for a checkbox or version it cannot be."""
    return {
        "recipe": typed["recipe"],
        "version": _version(typed["version"]),
        "cron": typed["cron"],
        "timezone": typed["timezone"] or "UTC",
        "incremental": _checkbox(typed, "incremental"),
        "overlap": typed["overlap"],
        "catch_up": typed["catch_up"],
        "webhook_url": typed["webhook_url"] or None,
        "paused": _checkbox(typed, "paused"),
    }


def changed_fields(schedule: Schedule, typed: dict[str, str]) -> dict[str, Any]:
    """Scheduler.change's arguments from an edit form: only the fields that differ from the schedule, so an
    untouched cron or time zone does not move the next tick."""
    changes: dict[str, Any] = {}
    if " ".join(typed["cron"].split()) != schedule.cron:
        changes["cron"] = typed["cron"]
    for field in ("timezone", "overlap", "catch_up"):
        if typed[field] != getattr(schedule, field):
            changes[field] = typed[field]
    if typed["webhook_url"] != (schedule.webhook_url or ""):
        changes["webhook_url"] = typed["webhook_url"]  # "" removes the hook
    incremental = _checkbox(typed, "incremental")
    if incremental != schedule.incremental:
        changes["incremental"] = incremental
    return changes


def schedule_choices() -> dict[str, Any]:
    """The select options every schedule form offers, with their meaning in words."""
    return {
        "overlaps": [(value, OVERLAP_WORDS[value]) for value in OVERLAP],
        "catch_ups": [(value, CATCH_UP_WORDS[value]) for value in CATCH_UP],
    }


def render_schedules(
    request: Request,
    show_deleted: bool = False,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    """The schedules list with its create form (refilled with `values` and showing `error` after a refused
    create); deleted schedules are listed only when asked for."""
    store = services(request).store
    return render(
        request,
        "schedules.html",
        status_code=status_code,
        schedules=store.schedules(include_deleted=show_deleted),
        show_deleted=show_deleted,
        recipes=[name for name, _, _ in store.recipe_names()],
        values=values or form_values(None),
        error=error,
        overlap_words=OVERLAP_WORDS,
        catch_up_words=CATCH_UP_WORDS,
        **schedule_choices(),
    )


def render_schedule(
    request: Request,
    schedule: Schedule,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    """A schedule's page, its edit form refilled with `values` and showing `error` after a refused edit."""
    svc = services(request)
    return render(
        request,
        "schedule.html",
        status_code=status_code,
        s=schedule,
        runs=schedule_runs(svc.store, schedule),
        ticks=upcoming(schedule, svc.clock()),
        cron_words=MACRO_WORDS.get(schedule.cron),
        overlap_words=OVERLAP_WORDS,
        catch_up_words=CATCH_UP_WORDS,
        values=values or form_values(schedule),
        error=error,
        **schedule_choices(),
    )


@router.get("/schedules/{schedule_id}", response_class=HTMLResponse)
def schedule_page(schedule_id: int, request: Request) -> HTMLResponse:
    """One schedule: what it builds, when (its next ticks in UTC and its zone), its policies in words, its
    runs, and the forms that change or delete it when logged in; a deleted schedule is shown, marked so."""
    schedule = services(request).store.schedule(schedule_id, include_deleted=True)
    if schedule is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"there is no schedule {schedule_id}")
    return render_schedule(request, schedule)


@router.post("/schedules/new")
async def create(request: Request) -> Response:
    """Create a schedule, as `POST /api/schedules` does; a refused one redraws the form with what was typed."""
    form = await authorized(request)
    if form is None:
        return forbidden(request)
    svc = services(request)
    typed = _typed(form, form_values(None))
    try:
        schedule = await run_in_threadpool(lambda: svc.scheduler.add(**new_schedule_fields(typed)))
    except ScheduleError as exc:
        return render_schedules(
            request, values=typed, error=str(exc), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
        )
    return back(f"/schedules/{schedule.id}", f"Schedule #{schedule.id} created.")


@router.post("/schedules/{schedule_id}/edit")
async def edit(schedule_id: int, request: Request) -> Response:
    """Change a schedule's cron, zone, policies or webhook, as `PATCH /api/schedules/{id}` does, passing only
    the fields that changed; a refused change redraws the form with what was typed."""
    form = await authorized(request)
    if form is None:
        return forbidden(request)
    svc = services(request)
    schedule = svc.store.schedule(schedule_id, include_deleted=True)
    if schedule is None:
        return back("/schedules", f"There is no schedule {schedule_id}.")
    if schedule.deleted_at is not None:
        return back(f"/schedules/{schedule_id}", f"Schedule #{schedule_id} is deleted; it cannot be changed.")
    typed = _typed(form, form_values(schedule))
    try:
        changes = changed_fields(schedule, typed)
        if changes:
            await run_in_threadpool(lambda: svc.scheduler.change(schedule, **changes))
    except ScheduleError as exc:
        return render_schedule(
            request, schedule, typed, str(exc), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
        )
    if not changes:
        return back(f"/schedules/{schedule_id}", f"Schedule #{schedule_id} unchanged: nothing differed.")
    return back(f"/schedules/{schedule_id}", f"Schedule #{schedule_id} changed.")


@router.post("/schedules/{schedule_id}/delete")
async def delete(schedule_id: int, request: Request) -> Response:
    """Delete a schedule, as `DELETE /api/schedules/{id}` does: it never fires again, its page and runs stay."""
    if await authorized(request) is None:
        return forbidden(request)
    svc = services(request)
    if svc.store.schedule(schedule_id, include_deleted=True) is None:
        return back("/schedules", f"There is no schedule {schedule_id}.")
    if not await run_in_threadpool(svc.store.delete_schedule, schedule_id, svc.clock()):
        return back(f"/schedules/{schedule_id}", f"Schedule #{schedule_id} was already deleted.")
    return back(f"/schedules/{schedule_id}", f"Schedule #{schedule_id} deleted.")
