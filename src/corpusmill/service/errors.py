"""One error shape for the whole JSON API, and the OpenAPI entries that document it.

Every error under `/api/` is `{"error": {"status", "code", "message", "detail"}}`, whatever raised it: a
route's HTTPException, FastAPI's request validation, the token check, the size limit, or a bug (500). Clients
can then branch on `code` and show `message` without knowing which layer refused them. Pages (everything not
under `/api/`) keep FastAPI's default errors: they are read by people in a browser, not parsed.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"

# The code a status gets when the raiser names none.
DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
}


class ErrorInfo(BaseModel):
    """What went wrong, for programs (`status`, `code`) and for people (`message`)."""

    status: int = Field(description="The HTTP status, repeated for clients that only see the body.")
    code: str = Field(description="A short snake_case name of the error, stable across releases.")
    message: str = Field(description="One sentence that says what is wrong and what to do.")
    detail: Any = Field(default=None, description="Structured data, e.g. the list of validation problems.")


class ErrorBody(BaseModel):
    """Every error response of the API."""

    error: ErrorInfo


class ApiError(HTTPException):
    """An HTTPException with its own `code` (e.g. `recipe_in_use`) and optional structured detail."""

    def __init__(
        self,
        status_code: int,
        message: str,
        code: str | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, detail=message, headers=headers)
        self.code = code or DEFAULT_CODES.get(status_code, f"http_{status_code}")
        self.extra = detail


def error_body(status: int, message: str, code: str | None = None, detail: Any = None) -> dict[str, Any]:
    """The JSON of an error response."""
    info = ErrorInfo(
        status=status,
        code=code or DEFAULT_CODES.get(status, f"http_{status}"),
        message=message,
        detail=detail,
    )
    return {"error": jsonable_encoder(info)}


def is_api(path: str) -> bool:
    """Whether a request path belongs to the JSON API (and so gets JSON errors)."""
    return path.startswith(API_PREFIX)


def _from_http(exc: StarletteHTTPException) -> tuple[str, str | None, Any]:
    """(message, code, detail) of an HTTPException, whichever way its `detail` was given."""
    if isinstance(exc, ApiError):
        return str(exc.detail), exc.code, exc.extra
    detail = exc.detail
    if isinstance(detail, dict) and "message" in detail:
        rest = {k: v for k, v in detail.items() if k != "message"}
        return str(detail["message"]), None, rest or None
    return str(detail), None, None


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not is_api(request.url.path):
        return await http_exception_handler(request, exc)
    message, code, detail = _from_http(exc)
    return JSONResponse(
        error_body(exc.status_code, message, code, detail), status_code=exc.status_code, headers=exc.headers
    )


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not is_api(request.url.path):
        return await request_validation_exception_handler(request, exc)
    problems = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    first = problems[0] if problems else None
    message = (
        f"the request is invalid: {_where(first['loc'])}: {first['msg']}"
        if first
        else "the request is invalid"
    )
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return JSONResponse(error_body(422, message, "invalid_request", {"problems": problems}), status_code=422)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Starlette logs the exception with its traceback after this response is sent; the body says nothing
    # about internals.
    if not is_api(request.url.path):
        return PlainTextResponse("Internal Server Error", status_code=500)
    return JSONResponse(
        error_body(500, "the service failed on this request; its log has the details", "internal_error"),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every API error take the shape above."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)


_DESCRIPTIONS = {
    401: "No API token: send `Authorization: Bearer <token>`.",
    403: "The API token is not valid for this service.",
    404: "Not found.",
    409: "Conflicts with the current state.",
    413: "The request body is larger than the service accepts.",
    422: "The request is invalid; `detail` lists the problems.",
    502: "The Ray cluster could not be reached.",
}


def responses(*statuses: int, json_route: bool = True) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route: each status with the error model as its schema. A route whose own
    responses are not JSON (`json_route=False`: logs, downloads) names the schema by reference, since FastAPI
    would file a `model` under the route's own media type; other routes put ErrorBody into the components."""
    if json_route:
        return {s: {"model": ErrorBody, "description": _DESCRIPTIONS.get(s, "Error.")} for s in statuses}
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    return {
        s: {
            "description": _DESCRIPTIONS.get(s, "Error."),
            "content": {"application/json": {"schema": schema}},
        }
        for s in statuses
    }
