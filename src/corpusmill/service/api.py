"""The JSON API: recipes and their versions, runs (trigger, follow, cancel, logs, artifacts, report, diff),
schedules. Reads are open; every call that changes something needs the bearer token (see auth.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from corpusmill.core.recipe import RecipeError
from corpusmill.service.artifacts import (
    ArtifactMissing,
    artifact_list,
    file_response,
    read_mixture,
    safe_file,
)
from corpusmill.service.auth import require_token
from corpusmill.service.context import Services, services
from corpusmill.service.jobs import JobNotFound
from corpusmill.service.mixdiff import NoMixture, mixture_diff
from corpusmill.service.models import (
    Artifact,
    MixtureDiff,
    RecipeIn,
    RecipeOut,
    RecipeSummary,
    RunOut,
    ScheduleIn,
    ScheduleOut,
    SchedulePatch,
    TriggerIn,
)
from corpusmill.service.recipes import register_recipe
from corpusmill.service.runs import RunStateError
from corpusmill.service.scheduler import ScheduleError
from corpusmill.service.store import Run

router = APIRouter(prefix="/api")
Svc = Annotated[Services, Depends(services)]
AUTH = [Depends(require_token)]

_RECIPE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": RecipeIn.model_json_schema()},
            "application/yaml": {"schema": {"type": "string", "description": "The recipe YAML itself."}},
        },
    }
}


def _missing(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=what)


def _run(svc: Services, run_id: int) -> Run:
    run = svc.store.run(run_id)
    if run is None:
        raise _missing(f"there is no run {run_id}")
    return run


@router.post(
    "/recipes",
    status_code=status.HTTP_201_CREATED,
    dependencies=AUTH,
    response_model=RecipeOut,
    openapi_extra=_RECIPE_BODY,
    summary="Register a recipe (a new version when it changed)",
)
async def post_recipe(request: Request, response: Response, svc: Svc) -> Any:
    """Validate a recipe as `corpusmill validate` does and store it (201; 200 if unchanged); 422 lists the problems."""
    body = await request.body()
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        try:
            text = RecipeIn.model_validate_json(body).yaml
        except ValidationError as exc:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail={"message": 'send {"yaml": "<recipe>"}', "problems": [e["msg"] for e in exc.errors()]},
            ) from None
    else:
        text = body.decode("utf-8", errors="replace")
    try:
        recipe, created = await run_in_threadpool(register_recipe, svc.store, text, svc.clock())
    except RecipeError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail={"message": "invalid recipe", "problems": exc.problems},
        ) from None
    if not created:
        response.status_code = status.HTTP_200_OK
    return RecipeOut.of(recipe, full=False, created=created)


@router.get("/recipes", response_model=list[RecipeSummary], summary="List recipes")
def list_recipes(svc: Svc) -> Any:
    """Every registered recipe with its newest version."""
    return [RecipeSummary(name=n, latest_version=v, updated_at=t) for n, v, t in svc.store.recipe_names()]


@router.get("/recipes/{name}/versions", response_model=list[RecipeOut], summary="List a recipe's versions")
def list_versions(name: str, svc: Svc) -> Any:
    """Every version of a recipe, oldest first."""
    versions = svc.store.recipe_versions(name)
    if not versions:
        raise _missing(f"there is no recipe {name!r}")
    return [RecipeOut.of(v) for v in versions]


@router.get("/recipes/{name}/versions/{version}", response_model=RecipeOut, summary="One recipe version")
def get_version(name: str, version: int, svc: Svc) -> Any:
    """A version with its posted and normalised YAML."""
    recipe = svc.store.recipe(name, version)
    if recipe is None:
        raise _missing(f"recipe {name!r} has no version {version}")
    return RecipeOut.of(recipe, full=True)


@router.post(
    "/recipes/{name}/runs",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=AUTH,
    response_model=RunOut,
    summary="Rebuild now",
)
def trigger(name: str, svc: Svc, body: TriggerIn | None = None) -> Any:
    """Submit a run of the recipe (the newest version unless one is given) to Ray."""
    version = body.version if body else None
    recipe = svc.store.recipe(name, version)
    if recipe is None:
        raise _missing(
            f"recipe {name!r} has no version {version}" if version else f"there is no recipe {name!r}"
        )
    return RunOut.of(svc.manager.trigger(recipe))


@router.get("/runs", response_model=list[RunOut], summary="List runs")
def list_runs(
    svc: Svc,
    status_: Annotated[str | None, Query(alias="status", description="Only runs in this status.")] = None,
    recipe: Annotated[str | None, Query(description="Only runs of this recipe.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Runs, newest first, with status, progress, times and Ray job ids."""
    statuses = [status_.upper()] if status_ else None
    return [RunOut.of(r) for r in svc.store.runs(statuses=statuses, recipe=recipe, limit=limit)]


@router.get("/runs/{run_id}", response_model=RunOut, summary="One run")
def get_run(run_id: int, svc: Svc) -> Any:
    """A run with its latest progress snapshot."""
    return RunOut.of(_run(svc, run_id))


@router.post(
    "/runs/{run_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=AUTH,
    response_model=RunOut,
    summary="Cancel a run",
)
def cancel(run_id: int, svc: Svc) -> Any:
    """Stop the run's Ray job (a queued run is cancelled at once); 409 if the run already ended."""
    try:
        return RunOut.of(svc.manager.cancel(_run(svc, run_id)))
    except RunStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


@router.get("/runs/{run_id}/logs", response_class=PlainTextResponse, summary="A run's job logs")
def logs(
    run_id: int,
    svc: Svc,
    tail: Annotated[int | None, Query(ge=1, description="Only the last N lines.")] = None,
) -> Any:
    """The Ray job's output, from the Jobs API."""
    run = _run(svc, run_id)
    try:
        text = svc.manager.logs(run)
    except JobNotFound:
        raise _missing(f"Ray has no logs for run {run_id} (its job is unknown to the cluster)") from None
    except Exception as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=f"cannot reach Ray: {exc}") from None
    if tail:
        text = "\n".join(text.splitlines()[-tail:]) + "\n"
    return PlainTextResponse(text)


@router.get("/runs/{run_id}/artifacts", response_model=list[Artifact], summary="A run's artifacts")
def artifacts(run_id: int, svc: Svc) -> Any:
    """Every output file of a finished run (path, bytes, sha256), from its manifest.json."""
    run = _run(svc, run_id)
    try:
        return artifact_list(run.run_dir or "")
    except ArtifactMissing:
        raise _missing(f"run {run_id} has no manifest.json yet (status {run.status})") from None


@router.get(
    "/runs/{run_id}/artifacts/{path:path}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
    summary="Download an artifact",
)
def download(run_id: int, path: str, svc: Svc) -> Any:
    """One file of the run directory (streamed from object storage when the run lies there); anything outside
    it is 404."""
    run = _run(svc, run_id)
    try:
        return file_response(safe_file(run.run_dir or "", path), download=True)
    except ArtifactMissing:
        raise _missing(f"run {run_id} has no file {path!r}") from None


@router.get("/runs/{run_id}/report", summary="A run's mixture report (JSON)")
def report(run_id: int, svc: Svc) -> Any:
    """The run's report/mixture.json; the HTML page is at /runs/{run_id}/report/."""
    run = _run(svc, run_id)
    try:
        return read_mixture(run.run_dir or "")
    except ArtifactMissing:
        raise _missing(f"run {run_id} has no report yet (status {run.status})") from None


@router.get("/mixture-diff", response_model=MixtureDiff, summary="Compare two runs' mixtures")
def diff(
    svc: Svc,
    before: Annotated[int, Query(description="The run to compare from.")],
    after: Annotated[int, Query(description="The run to compare to.")],
) -> Any:
    """Per domain: tokens and shares in each run, and the change."""
    data = []
    for run_id in (before, after):
        run = _run(svc, run_id)
        try:
            data.append(read_mixture(run.run_dir or ""))
        except ArtifactMissing:
            raise _missing(f"run {run_id} has no report yet (status {run.status})") from None
    try:
        return MixtureDiff(before=before, after=after, mixtures=mixture_diff(data[0], data[1]))
    except NoMixture as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


@router.post(
    "/schedules",
    status_code=status.HTTP_201_CREATED,
    dependencies=AUTH,
    response_model=ScheduleOut,
    summary="Create a schedule",
)
def create_schedule(body: ScheduleIn, svc: Svc) -> Any:
    """Rebuild a recipe on a cron schedule (UTC); an incremental schedule builds each run on its last
    successful one."""
    try:
        return ScheduleOut.of(
            svc.scheduler.add(body.recipe, body.version, body.cron, body.paused, body.incremental)
        )
    except ScheduleError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None


@router.get("/schedules", response_model=list[ScheduleOut], summary="List schedules")
def list_schedules(svc: Svc) -> Any:
    """Every schedule with its next tick."""
    return [ScheduleOut.of(s) for s in svc.store.schedules()]


def _schedule(svc: Services, schedule_id: int) -> Any:
    schedule = svc.store.schedule(schedule_id)
    if schedule is None:
        raise _missing(f"there is no schedule {schedule_id}")
    return schedule


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut, summary="One schedule")
def get_schedule(schedule_id: int, svc: Svc) -> Any:
    """A schedule with its next tick."""
    return ScheduleOut.of(_schedule(svc, schedule_id))


@router.patch(
    "/schedules/{schedule_id}", dependencies=AUTH, response_model=ScheduleOut, summary="Pause/change"
)
def patch_schedule(schedule_id: int, body: SchedulePatch, svc: Svc) -> Any:
    """Pause or resume a schedule, change its cron expression, or switch incremental runs on or off."""
    try:
        return ScheduleOut.of(
            svc.scheduler.change(
                _schedule(svc, schedule_id), cron=body.cron, paused=body.paused, incremental=body.incremental
            )
        )
    except ScheduleError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None


@router.delete(
    "/schedules/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=AUTH, summary="Delete"
)
def delete_schedule(schedule_id: int, svc: Svc) -> None:
    """Remove a schedule (its runs stay)."""
    if not svc.store.delete_schedule(schedule_id):
        raise _missing(f"there is no schedule {schedule_id}")
