"""A request body larger than the service accepts is refused with 413 before anything parses it.

Recipes are a few kilobytes, so a multi-megabyte body is a mistake (or an attack) and parsing it first would
only cost time and memory. A declared `Content-Length` over the limit is refused at once, without reading the
body; a chunked body (no length) is counted as it streams, and the read that crosses the limit raises a 413
HTTPException, which the API's error handlers turn into the usual error body. A page's form (a recipe
uploaded from the browser) gets a short HTML page saying the same, with a way back.
"""

from __future__ import annotations

import html
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corpusmill.service.errors import ApiError, error_body, is_api


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"the request body is larger than this service accepts ({limit:,} bytes); recipes are much smaller",
        "request_too_large",
        {"limit_bytes": limit},
    )


def _page(message: str) -> bytes:
    """A page for a browser whose form was too large (no template: the app's pages are not reached)."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Request too large</title></head>"
        f"<body><h1>Request too large</h1><p>{html.escape(message)}.</p>"
        '<p><a href="/recipes">Back to the recipes</a></p></body></html>'
    ).encode()


class BodySizeLimit:
    """ASGI middleware: at most `limit` bytes of request body."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _too_large(self.limit)
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        error = _too_large(self.limit)
        if is_api(scope.get("path", "")):
            body = json.dumps(error_body(413, str(error.detail), error.code, error.extra)).encode()
            content_type = b"application/json"
        else:
            body, content_type = _page(str(error.detail)), b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
