"""The JSON API: recipes and their versions, runs (trigger, follow, cancel, logs, artifacts, report, diff),
schedules. Reads are open; every call that changes something needs the bearer token (see auth.py). Every error
has one shape (errors.py), and each route lists in `responses=` the errors it can return, so the OpenAPI
document tells clients what to expect."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

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
from corpusmill.service.errors import ApiError, responses
from corpusmill.service.jobs import JobNotFound
from corpusmill.service.mixdiff import NoMixture, mixture_diff
from corpusmill.service.models import (
    Artifact,
    MixtureDiff,
    RecipeDetail,
    RecipeIn,
    RecipeOut,
    RecipeSummary,
    RunOut,
    ScheduleIn,
    ScheduleOut,
    SchedulePatch,
    TriggerIn,
)
from corpusmill.service.paging import BadCursor, decode_cursor, encode_cursor
from corpusmill.service.recipe_delete import RecipeInUse
from corpusmill.service.recipe_delete import delete_recipe as remove_recipe
from corpusmill.service.recipes import register_recipe
from corpusmill.service.runs import RunStateError
from corpusmill.service.scheduler import ScheduleError
from corpusmill.service.store import RUN_STATUSES, Run

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
    responses=responses(401, 403, 413, 422),
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
            raise ApiError(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                'send {"yaml": "<recipe>"} as JSON, or the recipe itself as application/yaml',
                "invalid_request",
                {"problems": [e["msg"] for e in exc.errors()]},
            ) from None
    else:
        text = body.decode("utf-8", errors="replace")
    try:
        recipe, created = await run_in_threadpool(
            register_recipe, svc.store, text, svc.clock(), svc.settings.jobs_share_this_disk()
        )
    except RecipeError as exc:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "invalid recipe: " + "; ".join(exc.problems),
            "invalid_recipe",
            {"problems": exc.problems},
        ) from None
    if not created:
        response.status_code = status.HTTP_200_OK
    return RecipeOut.of(recipe, full=False, created=created)


@router.get("/recipes", response_model=list[RecipeSummary], summary="List recipes")
def list_recipes(svc: Svc) -> Any:
    """Every registered recipe with its newest version and the URL of its YAML and versions."""
    summaries = []
    for name, version, updated_at in svc.store.recipe_names():
        latest = svc.store.recipe(name, version)
        summaries.append(
            RecipeSummary(
                name=name,
                latest_version=version,
                updated_at=updated_at,
                fingerprint=latest.fingerprint if latest else "",
                url=f"/api/recipes/{quote(name)}",
            )
        )
    return summaries


@router.get(
    "/recipes/{name}", response_model=RecipeDetail, responses=responses(404, 422), summary="One recipe"
)
def get_recipe(name: str, svc: Svc) -> Any:
    """A recipe's newest version with its YAML, and every version (YAML included), oldest first."""
    versions = svc.store.recipe_versions(name)
    if not versions:
        raise _missing(f"there is no recipe {name!r}")
    full = [RecipeOut.of(v, full=True) for v in versions]
    return RecipeDetail(name=name, latest=full[-1], versions=full)


@router.delete(
    "/recipes/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=AUTH,
    responses=responses(401, 403, 404, 409, 422),
    summary="Delete a recipe",
)
def delete_recipe(name: str, svc: Svc) -> None:
    """Delete a recipe that no schedule uses and no run is building (409 names them); its finished runs stay
    listed, each with the recipe it ran in its run directory. Registering the name again goes on numbering."""
    try:
        deleted = remove_recipe(svc.store, name, svc.clock())
    except RecipeInUse as exc:
        raise ApiError(status.HTTP_409_CONFLICT, str(exc), "recipe_in_use", exc.holders) from exc
    if not deleted:
        raise _missing(f"there is no recipe {name!r}")


@router.get(
    "/recipes/{name}/versions",
    response_model=list[RecipeOut],
    responses=responses(404, 422),
    summary="List a recipe's versions",
)
def list_versions(name: str, svc: Svc) -> Any:
    """Every version of a recipe with its YAML, oldest first."""
    versions = svc.store.recipe_versions(name)
    if not versions:
        raise _missing(f"there is no recipe {name!r}")
    return [RecipeOut.of(v, full=True) for v in versions]


@router.get(
    "/recipes/{name}/versions/{version}",
    response_model=RecipeOut,
    responses=responses(404, 422),
    summary="One recipe version",
)
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
    responses=responses(401, 403, 404, 413, 422),
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


@router.get("/runs", response_model=list[RunOut], responses=responses(422), summary="List runs")
def list_runs(
    request: Request,
    response: Response,
    svc: Svc,
    status_: Annotated[
        str | None,
        Query(alias="status", description=f"Only runs in this status: {', '.join(RUN_STATUSES)}."),
    ] = None,
    recipe: Annotated[str | None, Query(description="Only runs of this recipe.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Runs per page.")] = 100,
    cursor: Annotated[
        str | None, Query(description="Where the page starts: the X-Next-Cursor of the previous page.")
    ] = None,
) -> Any:
    """Runs, newest first, with status, progress, times and Ray job ids. When more runs follow, the response
    has `X-Next-Cursor` and a `Link: <...>; rel="next"` header; pages are stable while new runs are added."""
    statuses = None
    if status_:
        if status_.upper() not in RUN_STATUSES:
            raise ApiError(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"{status_!r} is not a run status; use one of {', '.join(RUN_STATUSES)}",
                "invalid_request",
                {"allowed": list(RUN_STATUSES)},
            )
        statuses = [status_.upper()]
    try:
        before = decode_cursor(cursor) if cursor is not None else None
    except BadCursor:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "the cursor is not one this service made; use the X-Next-Cursor of a previous page",
            "invalid_cursor",
        ) from None
    found = svc.store.runs(statuses=statuses, recipe=recipe, limit=limit + 1, before_id=before)
    page = found[:limit]
    if len(found) > limit:
        after = encode_cursor(page[-1].id)
        response.headers["X-Next-Cursor"] = after
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=after)}>; rel="next"'
    return [RunOut.of(r) for r in page]


@router.get("/runs/{run_id}", response_model=RunOut, responses=responses(404, 422), summary="One run")
def get_run(run_id: int, svc: Svc) -> Any:
    """A run with its latest progress snapshot."""
    return RunOut.of(_run(svc, run_id))


@router.post(
    "/runs/{run_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=AUTH,
    response_model=RunOut,
    responses=responses(401, 403, 404, 409, 422),
    summary="Cancel a run",
)
def cancel(run_id: int, svc: Svc) -> Any:
    """Stop the run's Ray job (a queued run is cancelled at once); 409 if the run already ended."""
    try:
        return RunOut.of(svc.manager.cancel(_run(svc, run_id)))
    except RunStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


@router.get(
    "/runs/{run_id}/logs",
    response_class=PlainTextResponse,
    responses=responses(404, 422, 502, json_route=False),
    summary="A run's job logs",
)
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


@router.get(
    "/runs/{run_id}/artifacts",
    response_model=list[Artifact],
    responses=responses(404, 422),
    summary="A run's artifacts",
)
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
    responses={200: {"content": {"application/octet-stream": {}}}, **responses(404, 422, json_route=False)},
    summary="Download an artifact",
)
def download(run_id: int, path: str, svc: Svc, request: Request) -> Any:
    """One file of the run directory (streamed from object storage when the run lies there); anything outside
    it is 404."""
    run = _run(svc, run_id)
    try:
        return file_response(
            safe_file(run.run_dir or "", path), download=True, ranged="range" in request.headers
        )
    except ArtifactMissing:
        raise _missing(f"run {run_id} has no file {path!r}") from None


@router.get("/runs/{run_id}/report", responses=responses(404, 422), summary="A run's mixture report (JSON)")
def report(run_id: int, svc: Svc) -> Any:
    """The run's report/mixture.json; the HTML page is at /runs/{run_id}/report/."""
    run = _run(svc, run_id)
    try:
        return read_mixture(run.run_dir or "")
    except ArtifactMissing:
        raise _missing(f"run {run_id} has no report yet (status {run.status})") from None


@router.get(
    "/mixture-diff",
    response_model=MixtureDiff,
    responses=responses(404, 409, 422),
    summary="Compare two runs' mixtures",
)
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
    responses=responses(401, 403, 404, 413, 422),
    summary="Create a schedule",
)
def create_schedule(body: ScheduleIn, svc: Svc) -> Any:
    """Rebuild a recipe on a cron schedule (read in `timezone`, default UTC); an incremental schedule builds
    each run on its last successful one. 422 names a bad cron expression, time zone or webhook URL."""
    if svc.store.recipe(body.recipe, body.version) is None:  # unknown recipe: 404, as in every route
        raise _missing(
            f"recipe {body.recipe!r} has no version {body.version}"
            if body.version is not None
            else f"there is no recipe {body.recipe!r}"
        )
    try:
        return ScheduleOut.of(svc.scheduler.add(**body.model_dump()))
    except ScheduleError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None


@router.get(
    "/schedules", response_model=list[ScheduleOut], responses=responses(422), summary="List schedules"
)
def list_schedules(
    svc: Svc,
    deleted: Annotated[bool, Query(description="Include deleted schedules (they have deleted_at).")] = False,
) -> Any:
    """Every schedule with its next tick (null while paused)."""
    return [ScheduleOut.of(s) for s in svc.store.schedules(include_deleted=deleted)]


def _schedule(svc: Services, schedule_id: int) -> Any:
    """An undeleted schedule; 404 otherwise (saying so when it was deleted: its runs still name it)."""
    schedule = svc.store.schedule(schedule_id, include_deleted=True)
    if schedule is None:
        raise _missing(f"there is no schedule {schedule_id}")
    if schedule.deleted_at is not None:
        raise _missing(
            f"schedule {schedule_id} was deleted at {schedule.deleted_at.isoformat()}; "
            "GET /api/schedules?deleted=true lists it"
        )
    return schedule


@router.get(
    "/schedules/{schedule_id}",
    response_model=ScheduleOut,
    responses=responses(404, 422),
    summary="One schedule",
)
def get_schedule(schedule_id: int, svc: Svc) -> Any:
    """A schedule with its next tick."""
    return ScheduleOut.of(_schedule(svc, schedule_id))


@router.patch(
    "/schedules/{schedule_id}",
    dependencies=AUTH,
    response_model=ScheduleOut,
    responses=responses(401, 403, 404, 413, 422),
    summary="Pause/change",
)
def patch_schedule(schedule_id: int, body: SchedulePatch, svc: Svc) -> Any:
    """Pause or resume a schedule, or change its cron expression, time zone, incremental switch, overlap or
    catch-up rule, or webhook URL ("" removes it)."""
    try:
        return ScheduleOut.of(svc.scheduler.change(_schedule(svc, schedule_id), **body.model_dump()))
    except ScheduleError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None


@router.delete(
    "/schedules/{schedule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=AUTH,
    responses=responses(401, 403, 404, 422),
    summary="Delete",
)
def delete_schedule(schedule_id: int, svc: Svc) -> None:
    """Delete a schedule: it never fires again and is no longer listed (nor found: 404); its runs stay and
    keep its id, which is never given to another schedule."""
    _schedule(svc, schedule_id)
    if not svc.store.delete_schedule(schedule_id, svc.clock()):
        raise _missing(f"there is no schedule {schedule_id}")
