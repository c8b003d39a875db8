"""An OpenAI-compatible chat endpoint (vLLM, llama.cpp, TGI, a hosted API) as the annotator.

Large annotators are served, not loaded: this backend posts each conversation to `/v1/chat/completions` and
reads the answer with the top log-probabilities of its tokens (so scores become digit expectations, as with
the local backend). Servers differ in what they can take and what they do by default, so the backend first
asks the server what it is (`server_info.probe_server`) and then:

- paces its requests. A server generates a few answers at once and queues the rest; a request waiting in
  that queue counts against its timeout, and a client that gives up leaves the server generating for nobody.
  With `concurrency=None` the backend starts with one request in flight and doubles the number while the
  median latency of a round stays within `LATENCY_TOLERANCE` times that of one request at a time, then goes
  back to the last level that kept it and stays (`pacing.AdaptiveConcurrency`). The probing rounds are ordinary
  document requests: nothing is generated twice. A fixed `concurrency` turns this off.
- samples neutrally: temperature 0, top_p 1, no presence or frequency penalty, and the server's own
  repetition penalty set to 1.0 by the name that server knows (`SERVER_PENALTIES`). llama.cpp applies a
  repeat penalty of 1.1 unless told otherwise, which pushes the six score digits of an answer away from the
  digits already written, and vLLM takes the model's own generation config (Qwen2.5 ships 1.05).
- constrains the answer to the taxonomy's JSON Schema (`structured="auto"`), falling back to JSON mode and
  then to no constraint when the server rejects the form, once per run.
- keeps the prompt within the context: `prompt_token_budget` is what a caller fits documents to
  (`fit.fit_document`); a prompt that still does not fit is refused by the server, whose message usually
  states the context, which is then learned, the document cut and the request sent once more.
- retries an answer cut at `max_tokens` (`finish_reason: length`) once with twice the tokens, then returns it
  marked `truncated`.

Transient failures (connection errors, timeouts, 429 and 5xx) are retried with exponential backoff and
jitter, honouring `Retry-After`. What still fails comes back as an `error` answer, which the cache retries on
the next call; an error the user has to fix comes with a `hint` naming the CLI flag or variable to change.

The API key comes from the argument or `CORPUSMILL_LLM_API_KEY`; it is sent as a Bearer header and kept out of
logs, error messages and the backend's repr.
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import math
import os
import random
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import httpx

from corpusmill.classifiers.annotations import STATUS_OFF_TAXONOMY, STATUS_OK, STATUS_TRUNCATED
from corpusmill.classifiers.answer_schema import json_schema_response_format
from corpusmill.classifiers.answers import TokenLogprobs, parse_answer
from corpusmill.classifiers.backends import BackendAnswer, Conversation
from corpusmill.classifiers.backends.pacing import AdaptiveConcurrency
from corpusmill.classifiers.backends.server_errors import BODY_SNIPPET, ServerError
from corpusmill.classifiers.backends.server_info import (
    LLAMA_CPP,
    TGI,
    UNKNOWN,
    VLLM,
    ServerInfo,
    probe_server,
)
from corpusmill.classifiers.fit import conversation_tokens, fit_conversation

logger = logging.getLogger(__name__)

API_KEY_ENV = "CORPUSMILL_LLM_API_KEY"

STRUCTURED_MODES = ("auto", "json_schema", "json_object", "off")
# What `auto` tries, strictest first; a server that rejects one form gets the next for the rest of the run.
_STRUCTURED_LADDER = ("json_schema", "json_object", "off")

# Sampling that reads the model's most likely answer and its unbent probabilities, sent explicitly because
# servers fill in absent fields from their own defaults or the model's generation config.
NEUTRAL_SAMPLING: dict[str, float] = {
    "temperature": 0,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
}
# The repetition penalty each server knows, turned off; a server of unknown kind gets every name (OpenAI-style
# servers ignore fields they do not know). TGI's chat API has no repetition penalty of its own.
SERVER_PENALTIES: dict[str, dict[str, float]] = {
    VLLM: {"repetition_penalty": 1.0},
    LLAMA_CPP: {"repeat_penalty": 1.0},
    TGI: {},
    UNKNOWN: {"repeat_penalty": 1.0, "repetition_penalty": 1.0},
}

# Tokens kept free of the context beyond `max_tokens`: the prompt is counted with Qwen2.5's tokenizer and
# chat template, and another model's tokenizer may need a few per cent more tokens for the same text.
CONTEXT_MARGIN_TOKENS = 16
CONTEXT_MARGIN_SHARE = 0.02


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


def context_margin(context: int) -> int:
    """Tokens kept free of a `context`-token window for tokenizers that count more than Qwen2.5's."""
    return CONTEXT_MARGIN_TOKENS + math.ceil(context * CONTEXT_MARGIN_SHARE)


@dataclass(frozen=True)
class _Reply:
    """One request's exchange after transport retries: the response, or why there is none."""

    response: httpx.Response | None = None
    error: str | None = None
    latency: float | None = None
    overloaded: bool = False


@dataclass(frozen=True)
class _Outcome:
    """One conversation's answer, with what the pacing needs: its latency and whether the server was full."""

    answer: BackendAnswer
    latency: float | None = None
    overloaded: bool = False


class HttpBackend:
    """Annotate through an OpenAI-compatible `/v1/chat/completions` endpoint.

    `timeout` bounds each request, including any time it waits in the server's queue (the pacing keeps that
    near zero). `context` is the server's context window in tokens; None asks the server (and, failing that,
    learns it from the first refusal). `structured` is "auto" (JSON Schema, then JSON mode, then nothing, as
    the server accepts), "json_schema", "json_object" or "off". `concurrency` fixes the requests in flight;
    None adapts it between 1 and `max_concurrency`.

    One stream at a time: `annotate_stream` (or `annotate`) is not meant to be called from two threads at
    once, while `stop`, `concurrency_now` and `prompt_token_budget` may be used from any thread.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int | None = None,
        max_concurrency: int = 32,
        timeout: float = 600.0,
        max_tokens: int = 256,
        context: int | None = None,
        structured: str = "auto",
        logprobs: bool = True,
        top_logprobs: int = 10,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        name: str | None = None,
    ) -> None:
        if structured not in STRUCTURED_MODES:
            raise ValueError(f"structured must be one of {', '.join(STRUCTURED_MODES)}, got {structured!r}")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        if context is not None and context < 1:
            raise ValueError(f"context must be at least 1 token (or None: ask the server), got {context}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self._pacer = AdaptiveConcurrency(concurrency, max_concurrency)
        self.url = chat_completions_url(base_url)
        self.base_url = base_url
        self.model = model
        self.name = name or model
        self.concurrency = concurrency
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.structured = structured
        self.logprobs = logprobs
        self.top_logprobs = top_logprobs
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._workers = concurrency if concurrency is not None else max_concurrency
        self._context_setting = context
        self._learned_context: int | None = None
        self._structured_now = _STRUCTURED_LADDER[0] if structured == "auto" else structured
        self._schema_format = json_schema_response_format()
        self._info: ServerInfo | None = None
        self._probe_lock = threading.Lock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            timeout=timeout,
            headers=headers,
            limits=httpx.Limits(max_connections=self._workers + 1, max_keepalive_connections=self._workers),
        )

    def __repr__(self) -> str:
        pacing = self.concurrency if self.concurrency is not None else f"adaptive<={self.max_concurrency}"
        return f"HttpBackend(url={self.url!r}, model={self.model!r}, concurrency={pacing})"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> HttpBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # What the server is and what fits it.

    @property
    def server_info(self) -> ServerInfo:
        """What the server said about itself (asked once, on first use; raises for an unlisted model)."""
        with self._probe_lock:
            if self._info is None:
                self._info = probe_server(self._client, self.base_url, self.model)
            return self._info

    @property
    def context(self) -> int | None:
        """The context window in tokens: as learned from a refusal, else as set, else as the server reports."""
        if self._learned_context is not None:
            return self._learned_context
        if self._context_setting is not None:
            return self._context_setting
        return self.server_info.context

    def _budget(self, context: int) -> int:
        budget = context - self.max_tokens - context_margin(context)
        limit = self.server_info.max_prompt_tokens
        if limit is not None:
            budget = min(budget, limit - context_margin(limit))
        if budget < 1:
            raise ValueError(
                f"a context of {context} tokens leaves no room for a prompt after {self.max_tokens} answer "
                f"tokens and a margin of {context_margin(context)}: lower --max-tokens or check --context"
            )
        return budget

    @property
    def prompt_token_budget(self) -> int | None:
        """Prompt tokens a conversation may take (Qwen2.5 count): the context less `max_tokens` and a margin.

        The margin (`context_margin`: 16 tokens plus 2% of the context) leaves room for models whose
        tokenizer needs more tokens than Qwen2.5's for the same text. None while the context is unknown.
        """
        context = self.context
        return None if context is None else self._budget(context)

    @property
    def concurrency_now(self) -> int:
        """Requests allowed in flight now (the fixed `concurrency`, or the adaptive level reached)."""
        return self._pacer.level

    @property
    def structured_now(self) -> str:
        """The structured-output form requests use now ("json_schema", "json_object" or "off")."""
        return self._structured_now

    # Asking.

    def stop(self) -> None:
        """Submit nothing more; a running `annotate_stream` ends once the requests in flight have answered.

        Safe from any thread (a signal handler's included); it lasts for the backend's lifetime.
        """
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """Whether `stop` was called."""
        return self._stop.is_set()

    def annotate_stream(self, conversations: Iterable[Conversation]) -> Iterator[tuple[int, BackendAnswer]]:
        """Ask for every conversation and yield `(index, answer)` in the order the answers arrive.

        Conversations are taken from the iterable only as a request slot frees, and never more requests are
        in flight than `concurrency_now`. After `stop`, or when the consumer closes the iterator, nothing more
        is submitted and the requests in flight are awaited (a server would otherwise generate them for
        nobody).
        """
        self.server_info  # noqa: B018 - probe before the first request: the kind decides the sampling fields
        source = enumerate(conversations)
        exhausted = False
        pending: dict[Future[_Outcome], tuple[int, int]] = {}
        pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="annotate-http")
        try:
            while True:
                while not exhausted and not self._stop.is_set() and len(pending) < self._pacer.level:
                    try:
                        index, conversation = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    pending[pool.submit(self._ask, conversation)] = (index, self._pacer.epoch)
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index, epoch = pending.pop(future)
                    outcome = future.result()
                    self._pacer.record(epoch, outcome.latency, outcome.overloaded)
                    yield index, outcome.answer
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def annotate(self, messages_batch: Sequence[Conversation]) -> list[BackendAnswer]:
        """Ask for every conversation, paced as `annotate_stream`; answers come back in order.

        After `stop`, conversations not yet asked come back as errors (the cache asks them again next run).
        """
        if not messages_batch:
            return []
        answers: list[BackendAnswer | None] = [None] * len(messages_batch)
        for index, answer in self.annotate_stream(messages_batch):
            answers[index] = answer
        return [
            answer if answer is not None else BackendAnswer(error="not asked: the backend was stopped")
            for answer in answers
        ]

    # One conversation.

    def _request_body(self, conversation: Conversation, max_tokens: int, structured: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(conversation),
            "max_tokens": max_tokens,
            **NEUTRAL_SAMPLING,
            **SERVER_PENALTIES.get(self.server_info.kind, SERVER_PENALTIES[UNKNOWN]),
        }
        if structured == "json_schema":
            body["response_format"] = self._schema_format
        elif structured == "json_object":
            body["response_format"] = {"type": "json_object"}
        if self.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        return body

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2**attempt) * (0.5 + random.random() / 2)

    def _post(self, body: dict[str, Any]) -> _Reply:
        """Post once, retrying what may pass (transport errors, 429, 5xx) with backoff."""
        last_problem = "no attempt made"
        overloaded = False
        for attempt in range(self.max_retries + 1):
            started = time.monotonic()
            try:
                response = self._client.post(self.url, json=body)
            except httpx.TransportError as exc:  # connection refused or reset, timeouts: worth another try
                last_problem = f"{type(exc).__name__}: {exc}"
                delay = self._backoff(attempt)
            except httpx.HTTPError as exc:  # a response we cannot read (bad encoding, redirect loop)
                return _Reply(error=f"{self.url}: {type(exc).__name__}: {exc}", overloaded=overloaded)
            else:
                latency = time.monotonic() - started
                status = response.status_code
                # Some servers answer a prompt too long for the context with a 5xx: that will not pass.
                if (status == 429 or status >= 500) and not ServerError.read(response).context_exceeded:
                    overloaded = True
                    last_problem = f"HTTP {status}: {response.text[:BODY_SNIPPET]}"
                    asked = _retry_after(response)
                    delay = min(self.backoff_max, asked) if asked is not None else self._backoff(attempt)
                else:
                    return _Reply(response=response, latency=latency, overloaded=overloaded)
            if attempt < self.max_retries:
                logger.warning(
                    "annotator request to %s failed (%s); retry %d/%d in %.1f s",
                    self.url, last_problem, attempt + 1, self.max_retries, delay,
                )  # fmt: skip
                if self._stop.wait(delay):
                    return _Reply(
                        error=f"{self.url}: stopped while retrying ({last_problem})", overloaded=overloaded
                    )
        return _Reply(
            error=f"{self.url} failed after {self.max_retries + 1} attempts: {last_problem}",
            overloaded=overloaded,
        )

    def _ask(self, conversation: Conversation) -> _Outcome:
        """One conversation to its final answer: fitted, retried once if cut, once more if refused as long."""
        conversation = list(conversation)
        shown: str | None = None
        try:
            fitted = self._fit(conversation, self.context)
        except ValueError as exc:  # the prompt alone is too long for the context
            hint = "lower --max-tokens, or set --context if the server's context is larger"
            return _Outcome(BackendAnswer(error=f"{exc} ({hint})", hint=hint))
        if fitted is not None:
            conversation, shown = fitted
        max_tokens = self.max_tokens
        latency: float | None = None
        overloaded = retried_context = retried_length = False
        while True:
            structured = self._structured_now
            reply = self._post(self._request_body(conversation, max_tokens, structured))
            overloaded = overloaded or reply.overloaded
            if reply.response is None:
                return _Outcome(BackendAnswer(error=reply.error, shown_text=shown), latency, overloaded)
            response = reply.response
            if response.status_code >= 400:
                failure = ServerError.read(response)
                if failure.context_exceeded and not retried_context:
                    retried_context = True
                    refitted = self._refit(conversation, failure)
                    if refitted is not None:
                        conversation, shown = refitted
                        continue
                if failure.mentions_structured_output and structured != "off" and self._downgrade(structured):
                    continue
                answer = self._error_answer(failure, structured)
                return _Outcome(dataclasses.replace(answer, shown_text=shown), latency, overloaded)
            if latency is None:
                latency = reply.latency
            answer, prompt_tokens = self._read(response)
            if answer.finish_reason == "length" and answer.error is None and not _complete(answer):
                if not retried_length:
                    retried_length = True
                    more = self._more_tokens(max_tokens, prompt_tokens, conversation)
                    if more > max_tokens:
                        logger.debug("answer cut at %d tokens; asking again with %d", max_tokens, more)
                        max_tokens = more
                        continue
                answer = dataclasses.replace(answer, status=STATUS_TRUNCATED)
            return _Outcome(dataclasses.replace(answer, shown_text=shown), latency, overloaded)

    def _fit(self, conversation: Conversation, context: int | None) -> tuple[Conversation, str] | None:
        """The conversation with its document cut to the budget of `context`, if it does not fit as it is."""
        if context is None:
            return None
        budget = self._budget(context)
        if conversation_tokens(conversation) <= budget:
            return None
        fitted = fit_conversation(conversation, budget)
        if fitted is not None:
            logger.debug(
                "document cut to %d characters to fit a context of %d tokens", len(fitted[1]), context
            )
        return fitted

    def _refit(self, conversation: Conversation, failure: ServerError) -> tuple[Conversation, str] | None:
        """After a context refusal that states the context: learn it and cut the document (None: cannot)."""
        if failure.context_limit is None:
            return None
        with self._lock:
            if self._learned_context != failure.context_limit:
                self._learned_context = failure.context_limit
                logger.warning(
                    "the server's context is %d tokens (from its refusal of a long prompt); documents are cut "
                    "to fit it from now on (pass --context %d to start with it)",
                    failure.context_limit, failure.context_limit,
                )  # fmt: skip
        try:
            fitted = fit_conversation(conversation, self._budget(failure.context_limit))
        except ValueError:
            return None
        if fitted is None or fitted[0] == conversation:
            return None
        return fitted

    def _downgrade(self, used: str) -> bool:
        """Step `auto` down from a rejected structured-output form; True if requests now use another form."""
        if self.structured != "auto":
            return False
        with self._lock:
            if self._structured_now == used:
                following = _STRUCTURED_LADDER[_STRUCTURED_LADDER.index(used) + 1]
                self._structured_now = following
                logger.warning(
                    "the server rejects response_format %s; using %s for the rest of the run",
                    used, "JSON mode" if following == "json_object" else "no response_format",
                )  # fmt: skip
            return self._structured_now != used

    def _more_tokens(self, max_tokens: int, prompt_tokens: int | None, conversation: Conversation) -> int:
        """Twice `max_tokens`, capped by what the context leaves after the prompt."""
        wanted = 2 * max_tokens
        context = self.context
        if context is None:
            return wanted
        if prompt_tokens is None:
            prompt_tokens = conversation_tokens(conversation) + context_margin(context)
        return max(max_tokens, min(wanted, context - prompt_tokens))

    def _context_hint(self, context: int | None) -> str:
        stated = f" ({context})" if context else ""
        return f"set --context to the server's context{stated} or lower --max-chars"

    def _error_answer(self, failure: ServerError, structured: str) -> BackendAnswer:
        """An error answer with the server's message and, where the user can act, a hint how."""
        hint = None
        if failure.context_exceeded:
            hint = self._context_hint(failure.context_limit or self.context)
        elif failure.mentions_structured_output and structured != "off":
            hint = f"the server rejects response_format {structured}; run with --structured auto"
        elif failure.mentions_logprobs and self.logprobs:
            hint = "the server rejects log-probabilities; run with --no-logprobs"
        elif failure.status in (401, 403):
            hint = f"the server refused the credentials: set {API_KEY_ENV} to a key it accepts"
        elif failure.status == 404:
            served = self.server_info.models
            if "model" in failure.message.lower():
                hint = (
                    f"the server serves {', '.join(served)}; pass one of them as --model"
                    if served
                    else "pass a model the server serves (GET /v1/models lists them) as --model"
                )
            else:
                hint = "check --endpoint: it should be the server's root or its /v1 base"
        error = f"HTTP {failure.status} from {self.url}: {failure.message}"
        return BackendAnswer(error=f"{error} ({hint})" if hint else error, hint=hint)

    def _read(self, response: httpx.Response) -> tuple[BackendAnswer, int | None]:
        """The answer in a 2xx response, and the prompt tokens the server counted (None if not reported)."""
        try:
            payload = response.json()
            choice = payload["choices"][0]
            text = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return BackendAnswer(
                error=f"{self.url} returned no chat completion ({type(exc).__name__}): "
                f"{response.text[:BODY_SNIPPET]}"
            ), None
        finish_reason = choice.get("finish_reason")
        finish_reason = None if finish_reason is None else str(finish_reason)
        usage = payload.get("usage") if isinstance(payload, dict) else None
        prompt_tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        if not isinstance(prompt_tokens, int) or isinstance(prompt_tokens, bool):
            prompt_tokens = None
        if text is None:
            return BackendAnswer(
                error=f"{self.url} returned a completion without content", finish_reason=finish_reason
            ), prompt_tokens
        try:
            token_logprobs = _token_logprobs(choice)
        except (KeyError, TypeError, ValueError) as exc:
            logger.debug("ignoring malformed logprobs from %s: %s", self.url, exc)
            token_logprobs = None
        return BackendAnswer(
            text=text, token_logprobs=token_logprobs, finish_reason=finish_reason
        ), prompt_tokens


def _complete(answer: BackendAnswer) -> bool:
    """Whether an answer that hit the token limit is whole anyway (the limit fell right after its last brace)."""
    return parse_answer(answer.text).status in (STATUS_OK, STATUS_OFF_TAXONOMY)
