"""An OpenAI-compatible chat endpoint (vLLM, SGLang, a hosted API) as the annotator.

Large annotators are served, not loaded: this backend posts each conversation to `/v1/chat/completions` with
temperature 0, asks for the top log-probabilities of every generated token (so scores become digit
expectations, as with the local backend) and, optionally, for JSON mode. Requests run concurrently on a small
thread pool sharing one connection pool; transient failures (connection errors, timeouts, 429 and 5xx) are
retried with exponential backoff and jitter, honouring `Retry-After`. What still fails comes back as an
`error` answer, which the cache retries on the next call instead of losing the document.

The API key comes from the argument or `CORPUSMILL_LLM_API_KEY`; it is sent as a Bearer header and kept out of
logs, error messages and the backend's repr.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from corpusmill.classifiers.answers import TokenLogprobs
from corpusmill.classifiers.backends import BackendAnswer, Conversation

logger = logging.getLogger(__name__)

API_KEY_ENV = "CORPUSMILL_LLM_API_KEY"
_BODY_SNIPPET = 300


def chat_completions_url(base_url: str) -> str:
    """Accept a server root, a `/v1` base or the full endpoint, and return the chat completions URL."""
    url = base_url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return f"{url}/chat/completions"
    return f"{url}/v1/chat/completions"


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (`Retry-After` as seconds or as an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _token_logprobs(choice: dict[str, Any]) -> tuple[TokenLogprobs, ...] | None:
    content = (choice.get("logprobs") or {}).get("content")
    if not content:
        return None
    tokens = []
    for entry in content:
        top = tuple((alt["token"], float(alt["logprob"])) for alt in entry.get("top_logprobs") or [])
        logprob = entry.get("logprob")
        tokens.append(TokenLogprobs(entry["token"], None if logprob is None else float(logprob), top))
    return tuple(tokens)


class HttpBackend:
    """Annotate through an OpenAI-compatible `/v1/chat/completions` endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        json_mode: bool = True,
        logprobs: bool = True,
        top_logprobs: int = 10,
        max_tokens: int = 256,
        name: str | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.url = chat_completions_url(base_url)
        self.model = model
        self.name = name or model
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.json_mode = json_mode
        self.logprobs = logprobs
        self.top_logprobs = top_logprobs
        self.max_tokens = max_tokens
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            timeout=timeout,
            headers=headers,
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
        )

    def __repr__(self) -> str:
        return f"HttpBackend(url={self.url!r}, model={self.model!r}, max_concurrency={self.max_concurrency})"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> HttpBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def annotate(self, messages_batch: Sequence[Conversation]) -> list[BackendAnswer]:
        """Ask for every conversation, up to `max_concurrency` at a time; answers come back in order."""
        if not messages_batch:
            return []
        workers = min(self.max_concurrency, len(messages_batch))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="annotate-http") as pool:
            return list(pool.map(self._ask, messages_batch))

    def _request_body(self, conversation: Conversation) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(conversation),
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        if self.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        return body

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2**attempt) * (0.5 + random.random() / 2)

    def _ask(self, conversation: Conversation) -> BackendAnswer:
        body = self._request_body(conversation)
        last_problem = "no attempt made"
        for attempt in range(self.max_retries + 1):
            try:
                response = self._client.post(self.url, json=body)
            except httpx.TransportError as exc:  # connection refused or reset, timeouts: worth another try
                last_problem = f"{type(exc).__name__}: {exc}"
                delay = self._backoff(attempt)
            except httpx.HTTPError as exc:  # a response we cannot read (bad encoding, redirect loop)
                return BackendAnswer(error=f"{self.url}: {type(exc).__name__}: {exc}")
            else:
                status = response.status_code
                if status == 429 or status >= 500:
                    last_problem = f"HTTP {status}: {response.text[:_BODY_SNIPPET]}"
                    asked = _retry_after(response)
                    delay = min(self.backoff_max, asked) if asked is not None else self._backoff(attempt)
                elif status >= 400:
                    hint = (
                        " (if the server rejects logprobs or response_format, turn them off)"
                        if status == 400
                        else ""
                    )
                    return BackendAnswer(
                        error=f"HTTP {status} from {self.url}: {response.text[:_BODY_SNIPPET]}{hint}"
                    )
                else:
                    return self._read(response)
            if attempt < self.max_retries:
                logger.warning(
                    "annotator request to %s failed (%s); retry %d/%d in %.1f s",
                    self.url,
                    last_problem,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)
        return BackendAnswer(error=f"{self.url} failed after {self.max_retries + 1} attempts: {last_problem}")

    def _read(self, response: httpx.Response) -> BackendAnswer:
        try:
            choice = response.json()["choices"][0]
            text = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return BackendAnswer(
                error=f"{self.url} returned no chat completion ({type(exc).__name__}): "
                f"{response.text[:_BODY_SNIPPET]}"
            )
        if text is None:
            return BackendAnswer(error=f"{self.url} returned a completion without content")
        try:
            token_logprobs = _token_logprobs(choice)
        except (KeyError, TypeError, ValueError) as exc:
            logger.debug("ignoring malformed logprobs from %s: %s", self.url, exc)
            token_logprobs = None
        return BackendAnswer(text=text, token_logprobs=token_logprobs)
