"""Pages about runs beyond a run's own page: any two runs' mixtures compared, and a run's job logs.

Both change nothing, so they are open GET pages like the rest; what they cannot show (no such run, no
report, a cluster that does not answer) is a message on the page with the status the API would give.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse

from corpusmill.service.artifacts import ArtifactMissing, read_mixture
from corpusmill.service.context import services
from corpusmill.service.jobs import JobNotFound
from corpusmill.service.mixdiff import NoMixture, mixture_diff
from corpusmill.service.page_render import PageError, render
from corpusmill.service.store import ACTIVE, Run, Store

router = APIRouter(include_in_schema=False)
DEFAULT_TAIL = 2000  # lines of a log page; a long job prints far more than a browser shows comfortably


def _run_id(value: str | None, which: str) -> int:
    try:
        run_id = int(value or "")
    except ValueError:
        raise PageError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"{which}: {value!r} is not a run number"
        ) from None
    if run_id < 1:
        raise PageError(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{which}: {value!r} is not a run number")
    return run_id


def _run(store: Store, run_id: int) -> Run:
    run = store.run(run_id)
    if run is None:
        raise PageError(status.HTTP_404_NOT_FOUND, f"There is no run #{run_id}.")
    return run


def _mixture(run: Run) -> dict[str, Any]:
    try:
        return read_mixture(run.run_dir or "")
    except ArtifactMissing:
        raise PageError(
            status.HTTP_404_NOT_FOUND, f"Run #{run.id} has no mixture report (status {run.status})."
        ) from None


def _comparison(store: Store, before_id: int, after_id: int) -> tuple[Run, Run, list[dict[str, Any]]]:
    """Both runs and their per-domain difference, as `GET /api/mixture-diff` computes it; PageError says why
    not (no such run 404, no report 404, a report without a mixture 409)."""
    before, after = _run(store, before_id), _run(store, after_id)
    mixtures = _mixture(before), _mixture(after)
    try:
        return before, after, mixture_diff(*mixtures)
    except NoMixture as exc:
        raise PageError(status.HTTP_409_CONFLICT, f"Nothing to compare: {exc}.") from None


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request) -> HTMLResponse:
    """Any two runs' mixtures side by side; with no runs named, just the form that names them."""
    given = {key: request.query_params.get(key, "").strip() for key in ("before", "after")}
    context: dict[str, Any] = {"given": given, "before": None, "after": None, "comparison": None}
    if not given["before"] and not given["after"]:
        return render(request, "compare.html", error=None, **context)
    try:
        ids = _run_id(given["before"], "before"), _run_id(given["after"], "after")
        context["before"], context["after"], context["comparison"] = _comparison(
            services(request).store, *ids
        )
    except PageError as exc:
        return render(request, "compare.html", status_code=exc.status_code, error=exc.message, **context)
    return render(request, "compare.html", error=None, **context)


def _tail(value: str | None) -> int | None:
    """Lines to show: the last DEFAULT_TAIL unless asked; `0` (or `all`) for every line."""
    if value is None or not value.strip():
        return DEFAULT_TAIL
    if value.strip().lower() == "all":
        return None
    try:
        lines = int(value)
    except ValueError:
        raise PageError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"tail: {value!r} is not a number of lines (0 shows them all).",
        ) from None
    if lines < 0:
        raise PageError(status.HTTP_422_UNPROCESSABLE_CONTENT, f"tail: {value!r} is not a number of lines.")
    return lines or None


def _logs(request: Request, run: Run) -> str:
    """The job's output, with the API's errors said as pages: 404 for a job Ray does not know, 502 for a
    cluster that does not answer."""
    try:
        return services(request).manager.logs(run)
    except JobNotFound:
        raise PageError(
            status.HTTP_404_NOT_FOUND,
            f"Ray has no logs for run #{run.id} (its job is unknown to the cluster).",
        ) from None
    except Exception as exc:  # the Jobs API's client raises plain errors for a cluster it cannot reach
        raise PageError(status.HTTP_502_BAD_GATEWAY, f"Cannot reach Ray: {exc}") from None


@router.get("/runs/{run_id}/logs", response_class=HTMLResponse)
def logs_page(run_id: int, request: Request) -> HTMLResponse:
    """The run's job logs as a page (its last lines by default), escaped like every text of the pages."""
    store = services(request).store
    context: dict[str, Any] = {"run_id": run_id, "run": store.run(run_id), "text": None, "tail": DEFAULT_TAIL}
    try:
        context["tail"] = tail = _tail(request.query_params.get("tail"))
        lines = _logs(request, _run(store, run_id)).splitlines()
    except PageError as exc:
        return render(request, "logs.html", status_code=exc.status_code, error=exc.message, **context)
    shown = lines[-tail:] if tail else lines
    context.update(text="\n".join(shown), total=len(lines), shown=len(shown))
    context["active"] = context["run"].status in ACTIVE
    return render(request, "logs.html", error=None, **context)
