"""The runs page's list: filters by status and recipe, page size, and pages by the API's cursors.

The list takes the same query as `GET /api/runs` (paging.py's cursors), so a page address and an API query
page alike; what the page cannot use (a status that is none, a cursor this service did not make) is said on
the page rather than raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, status

from corpusmill.service.context import services
from corpusmill.service.page_render import PageError
from corpusmill.service.paging import BadCursor, decode_cursor, encode_cursor
from corpusmill.service.store import RUN_STATUSES

PAGE_SIZES = (25, 50, 100, 200, 500)
DEFAULT_PAGE_SIZE = 100  # as `GET /api/runs`


def _run_filters(query: Mapping[str, str]) -> dict[str, Any]:
    """The runs list's status, recipe, page size and cursor, checked as `GET /api/runs` checks them."""
    wanted = query.get("status", "").strip()
    if wanted and wanted.upper() not in RUN_STATUSES:
        raise PageError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{wanted!r} is not a run status; use one of {', '.join(RUN_STATUSES)}.",
        )
    limit = query.get("limit", "").strip() or str(DEFAULT_PAGE_SIZE)
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise PageError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{limit!r} is not a page size; use a number from 1 to 1000.",
        )
    cursor = query.get("cursor", "").strip()
    try:
        before = decode_cursor(cursor) if cursor else None
    except BadCursor:
        raise PageError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "That page's address is not one this service made; start again from the newest runs.",
        ) from None
    return {
        "status": wanted.upper(),
        "recipe": query.get("recipe", "").strip(),
        "limit": int(limit),
        "before": before,
    }


def _runs_url(filters: dict[str, Any], cursor: str | None = None) -> str:
    """The address of a runs page with these filters (those set), starting after `cursor`."""
    params: dict[str, Any] = {key: filters[key] for key in ("status", "recipe") if filters[key]}
    if filters["limit"] != DEFAULT_PAGE_SIZE:
        params["limit"] = filters["limit"]
    if cursor:
        params["cursor"] = cursor
    return "/runs" + (f"?{urlencode(params)}" if params else "")


def runs_list(request: Request) -> tuple[int, dict[str, Any]]:
    """The runs page's status and data: one page of runs, newest first, with the filters and the choices the
    form offers, the address of the next (older) page when there is one, and of the first when not on it."""
    store = services(request).store
    listing: dict[str, Any] = {
        "statuses": RUN_STATUSES,
        "recipe_names": [name for name, _, _ in store.recipe_names()],
        "filters": {"status": "", "recipe": "", "limit": DEFAULT_PAGE_SIZE, "before": None},
        "page_sizes": PAGE_SIZES,
        "runs": [],
        "older": None,
        "newest": None,
        "error": None,
    }
    try:
        filters = listing["filters"] = _run_filters(request.query_params)
    except PageError as exc:
        listing["error"] = exc.message
        return exc.status_code, listing
    found = store.runs(
        statuses=[filters["status"]] if filters["status"] else None,
        recipe=filters["recipe"] or None,
        limit=filters["limit"] + 1,
        before_id=filters["before"],
    )
    listing["runs"] = runs = found[: filters["limit"]]
    if len(found) > len(runs):
        listing["older"] = _runs_url(filters, encode_cursor(runs[-1].id))
    if filters["before"] is not None:
        listing["newest"] = _runs_url(filters)
    listing["page_sizes"] = sorted({*PAGE_SIZES, filters["limit"]})
    return status.HTTP_200_OK, listing
