"""Error responses of OpenAI-compatible servers, read into what a client can act on.

vLLM, llama.cpp, TGI and hosted APIs each word and shape their errors differently; the backend needs to know
only a few things from them: the message, whether the context was exceeded (and what the context is, when
the message says), and whether the server objects to the response format or to log-probabilities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

BODY_SNIPPET = 300  # characters of a response body kept in a message

_CONTEXT_ERROR = re.compile(
    r"context[ _-]?(?:length|size|window)|n_ctx|`inputs` tokens \+ `max_new_tokens`", re.IGNORECASE
)
_CONTEXT_LIMIT = (
    re.compile(r"maximum context length is (\d+)", re.IGNORECASE),
    re.compile(r"must be <= (\d+)", re.IGNORECASE),
    re.compile(r"context (?:length|size|window) (?:is|of) (\d+)", re.IGNORECASE),
)
_STRUCTURED_ERROR = re.compile(r"response_format|json_schema|schema|grammar", re.IGNORECASE)
_LOGPROBS_ERROR = re.compile(r"logprob", re.IGNORECASE)
# Validation errors (pydantic's, in vLLM) echo the whole request after the reason; only the reason tells what
# the server objects to.
_ECHOED_INPUT = re.compile(r"input_value=|\[type=")


@dataclass(frozen=True)
class ServerError:
    """An error response read the way OpenAI-compatible servers write it: message, code, type, limits."""

    status: int
    message: str
    code: str | None = None
    kind: str | None = None
    context_limit: int | None = None

    @classmethod
    def read(cls, response: httpx.Response) -> ServerError:
        """Take the message out of `{"error": {...}}`, `{"error": "..."}`, `{"detail": ...}` or plain text."""
        message, code, kind, limit = response.text[:BODY_SNIPPET], None, None, None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            error = body.get("error", body)
            if isinstance(error, dict):
                text = error.get("message") or error.get("detail") or body.get("message")
                message = str(text) if text else message
                code = None if error.get("code") is None else str(error.get("code"))
                kind = None if error.get("type") is None else str(error.get("type"))
                n_ctx = error.get("n_ctx")  # llama.cpp's exceed_context_size_error
                if isinstance(n_ctx, int) and not isinstance(n_ctx, bool) and n_ctx > 0:
                    limit = n_ctx
            elif isinstance(error, str):
                message = error
        if limit is None:
            for pattern in _CONTEXT_LIMIT:
                match = pattern.search(message)
                if match:
                    limit = int(match.group(1))
                    break
        return cls(response.status_code, message, code, kind, limit)

    @property
    def context_exceeded(self) -> bool:
        """Whether the prompt (plus `max_tokens`) did not fit the server's context."""
        return (
            self.code == "context_length_exceeded"
            or self.kind == "exceed_context_size_error"
            or bool(_CONTEXT_ERROR.search(self.message))
        )

    @property
    def reason(self) -> str:
        """The message without the request a validation error echoes after it."""
        return _ECHOED_INPUT.split(self.message, maxsplit=1)[0]

    @property
    def mentions_structured_output(self) -> bool:
        """Whether the server objects to the `response_format` (a 400 about the schema or JSON mode)."""
        return self.status in (400, 422) and bool(_STRUCTURED_ERROR.search(self.reason))

    @property
    def mentions_logprobs(self) -> bool:
        """Whether the server objects to log-probabilities."""
        return self.status in (400, 422) and bool(_LOGPROBS_ERROR.search(self.reason))
