"""A stand-in for a Qwen2.5-Instruct server: the OpenAI chat API, answered from what the demo crawl knows.

`corpusmill annotate --endpoint` talks to vLLM, llama.cpp or TGI through `/v1/chat/completions`. To show the
annotate -> distill -> filter -> mix path with labels worth distilling, and without a GPU or a model download,
this server speaks the same protocol the real ones do but answers from `PageOracle`: it takes the document out
of the annotation prompt (between `<document>` and `</document>` in the last user message), finds the sample
page it came from and writes the JSON answer the prompt asks for, with the per-token log-probabilities JSON
mode plus `logprobs: true, top_logprobs: N` return. Every score digit comes with a distribution over its
neighbouring digits whose expectation is the oracle's fractional score, so `parse_answer` reads, say, 3.7
where the answer says 4, exactly as it does with a real model. The domain's first token carries the oracle's
confidence, so `domain_confidence` is lower where label noise swapped the domain.

It is also the test server for how a client copes with a real one, so it imitates what matters there:

- a single-slot server (llama.cpp with one slot) generates one answer at a time and queues the rest:
  `delay_s` (plus `delay_per_token_s` per prompt token, as long documents take longer) and `capacity`;
- such a server keeps generating for a client that has given up: a generation whose client has gone by the
  time its answer is written is counted `wasted`, a conversation generated again (a client's retry) `repeated`;
- a context window (`context`): a prompt plus `max_tokens` that does not fit is refused with vLLM's error,
  and the window is reported where vLLM (`max_model_len` in /v1/models) or llama.cpp (`GET /props`) do
  (`flavour`);
- `response_format` of type `json_schema` (or, with `reject_json_schema`, the 400 of a server without it);
- llama.cpp's default repetition penalty, which bends score digits already written (`penalize_repeats`),
  unless the request neutralises it; the last request's sampling fields are kept in the stats.

`ServerStats` (also `GET /stats`) counts what happened, so tests and `bench.annotate` can measure a client.

Only the standard library serves (`http.server.ThreadingHTTPServer`): nothing to install, nothing to tune.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import re
import select
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import urlsplit

from corpusmill.classifiers.answers import DOMAIN_KEY, SCORE_KEYS
from corpusmill.classifiers.taxonomy import SCORE_MAX, SCORE_MIN
from corpusmill.demo.oracle import DEFAULT_NOISE, MAX_FRACTION, Judgement, PageOracle, written_digit
from corpusmill.shards.tokenizer import qwen25_encoding

log = logging.getLogger(__name__)

DEFAULT_MODEL = "corpusmill-demo-annotator"
DEFAULT_HOST = "127.0.0.1"
MAX_TOP_LOGPROBS = 20  # what the OpenAI API allows
MAX_BODY_BYTES = 16 << 20
DOCUMENT_OPEN, DOCUMENT_CLOSE = "<document>", "</document>"

# Probability put on each neighbouring digit beyond what the fractional score needs: a real model is never
# certain. Small enough that the written digit stays the most likely one (see oracle.MAX_FRACTION).
NEIGHBOUR_SPREAD = 0.02
# Log-probability of the digits further away: there, so `top_logprobs` has its usual length, but negligible.
FAR_DIGIT_LOGPROB = -12.0

# Tokens as a byte-level BPE tokenizer makes them, near enough: one digit each, words with their leading
# space, runs of punctuation, leftover whitespace. Their texts concatenate to the content exactly.
_PIECE = re.compile(r"\s*(?:\d|[^\W\d_]+|[^\w\s]+|_)|\s+")
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_RESPONSE_FORMATS = frozenset({"text", "json_object", "json_schema"})

VLLM, LLAMA_CPP = "vllm", "llama.cpp"
FLAVOURS = (VLLM, LLAMA_CPP)
# Sampling fields kept from the last request (`ServerStats.last_sampling`), so a test can check a client's.
SAMPLING_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repeat_penalty",  # llama.cpp's name
    "repetition_penalty",  # vLLM's name
    "presence_penalty",
    "frequency_penalty",
)
# ChatML around each message: <|im_start|>, the role, a newline, then <|im_end|> and a newline after the
# content; the reply's own <|im_start|>assistant and newline close the prompt.
CHATML_TOKENS_PER_MESSAGE = 5
CHATML_REPLY_TOKENS = 3


class RequestError(Exception):
    """A request the server refuses, with the HTTP status and the OpenAI-style error it answers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | int,
        param: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.kind = kind

    def body(self) -> dict[str, Any]:
        """`{"error": {...}}` as OpenAI-compatible servers send it."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def _bad(message: str, code: str = "invalid_request", param: str | None = None) -> RequestError:
    return RequestError(HTTPStatus.BAD_REQUEST, message, code=code, param=param)


class ClientGone(Exception):
    """The client closed its connection before its answer could be written: the generation was wasted."""


def context_exceeded(context: int, prompt_tokens: int, max_tokens: int | None) -> RequestError:
    """vLLM's refusal of a request that does not fit the context window (a 400, `BadRequestError`)."""
    if max_tokens is None:
        detail = f"However, your messages resulted in {prompt_tokens} tokens. Please reduce the length of "
        detail += "the messages."
    else:
        detail = (
            f"However, you requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, "
            f"{max_tokens} in the completion). Please reduce the length of the messages or completion."
        )
    return RequestError(
        HTTPStatus.BAD_REQUEST,
        f"This model's maximum context length is {context} tokens. {detail}",
        code=HTTPStatus.BAD_REQUEST.value,
        kind="BadRequestError",
    )


@dataclass
class ServerStats:
    """What the server did: requests, refusals, and generations started, finished, queued and running.

    `requests` counts chat completion requests, `rejected` every error answered, `unmatched` documents the
    oracle could not place (answered as `other`). `waiting` and `running` are the current queue and the
    answers being generated; `peak_running` shows whether `capacity` held. Of the generations finished,
    `completed` reached their client and `wasted` did not (it had gone: a timeout, a cancelled run);
    `repeated` counts generations of a conversation generated before (a client's retry costs a generation
    again). `last_sampling` holds the sampling fields of the last valid request as sent (absent ones left
    out), `last_response_format` its `response_format.type` and `last_max_tokens` its completion budget.
    Read them from any thread through `snapshot()`.
    """

    requests: int = 0
    rejected: int = 0
    unmatched: int = 0
    generations_started: int = 0
    generations_finished: int = 0
    completed: int = 0
    wasted: int = 0
    repeated: int = 0
    waiting: int = 0
    running: int = 0
    peak_running: int = 0
    last_sampling: dict[str, Any] = field(default_factory=dict)
    last_response_format: str | None = None
    last_max_tokens: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def snapshot(self) -> dict[str, Any]:
        """The counters and the last request's fields, read together (copies: safe to keep)."""
        with self._lock:
            return {
                f.name: copy_value(getattr(self, f.name)) for f in fields(self) if not f.name.startswith("_")
            }

    def note_request(self, request: _Request) -> None:
        """Keep what a valid request asked for: its sampling fields, response format and completion budget."""
        with self._lock:
            self.last_sampling = dict(request.sampling)
            self.last_response_format = request.response_format
            self.last_max_tokens = request.max_tokens

    def add(self, **changes: int) -> None:
        """Add to some counters at once (and keep `peak_running` up to date)."""
        with self._lock:
            for name, change in changes.items():
                setattr(self, name, getattr(self, name) + change)
            self.peak_running = max(self.peak_running, self.running)


def copy_value(value: Any) -> Any:
    """A dict copied (so a snapshot does not change under its reader), anything else as it is."""
    return dict(value) if isinstance(value, dict) else value


def prompt_token_count(messages: list[tuple[str, str]]) -> int:
    """Prompt tokens of (role, text) messages as a Qwen2.5 server counts them: the text plus ChatML's frame."""
    encoding = qwen25_encoding()
    count = CHATML_REPLY_TOKENS
    for _, text in messages:
        count += CHATML_TOKENS_PER_MESSAGE + len(encoding.encode_ordinary(text))
    return count


def conversation_key(messages: list[tuple[str, str]]) -> str:
    """A digest of the conversation's content: the same document asked again has the same key."""
    return hashlib.blake2b(json.dumps(messages).encode("utf-8"), digest_size=16).hexdigest()


def neutral_penalties(sampling: dict[str, Any]) -> bool:
    """Whether the request turned repetition penalties off: a repeat penalty of 1.0 sent, none other.

    llama.cpp applied a repeat penalty of 1.1 unless told otherwise, so an absent one is not neutral.
    """
    repeat = [sampling[name] for name in ("repeat_penalty", "repetition_penalty") if name in sampling]
    others = [sampling.get(name, 0) for name in ("presence_penalty", "frequency_penalty")]
    return bool(repeat) and all(value == 1 for value in repeat) and all(value == 0 for value in others)


def penalized(judgement: Judgement) -> Judgement:
    """The judgement a repetition penalty bends: a score digit already written in the answer comes out one lower.

    Score digits repeat a lot (six scores on 0-5), so a client that leaves the penalty on reads drifted scores.
    """
    scores = dict(judgement.scores)
    written: set[int] = set()
    for key in SCORE_KEYS:
        digit = written_digit(scores[key])
        if digit in written and digit > SCORE_MIN:
            scores[key] = round(scores[key] - 1, 3)
            digit -= 1
        written.add(digit)
    return dataclasses.replace(judgement, scores=scores)


def tokens_of(text: str) -> list[str]:
    """Split text into tokens whose texts concatenate to it exactly."""
    tokens = _PIECE.findall(text)
    if "".join(tokens) != text:  # a character none of the patterns takes: fall back to one per character
        return list(text)
    return tokens


def digit_distribution(expectation: float) -> list[tuple[str, float]]:
    """Probabilities of the digit tokens at a score position, most likely first, with `expectation` as mean.

    The written digit (`written_digit`) is the most likely; the fractional part goes to the neighbour on its
    side, a little spread to both neighbours, and a negligible rest to the digits further away.
    """
    digit = written_digit(expectation)
    fraction = min(MAX_FRACTION, max(-MAX_FRACTION, expectation - digit))
    inner = SCORE_MIN < digit < SCORE_MAX
    spread = NEIGHBOUR_SPREAD if inner else 0.0
    probs = {digit - 1: max(0.0, -fraction) + spread, digit + 1: max(0.0, fraction) + spread}
    probs = {d: p for d, p in probs.items() if SCORE_MIN <= d <= SCORE_MAX and p > 0.0}
    far = {
        d: math.exp(FAR_DIGIT_LOGPROB - abs(d - digit))
        for d in range(SCORE_MIN, SCORE_MAX + 1)
        if d != digit and d not in probs
    }
    keep = 1.0 - sum(far.values())
    probs = {d: p * keep for d, p in probs.items()}
    probs[digit] = keep - sum(probs.values())
    probs.update(far)
    ranked = sorted(probs.items(), key=lambda item: (-item[1], item[0]))
    return [(str(d), p) for d, p in ranked]


def _entry(token: str, logprob: float, top: list[tuple[str, float]], top_n: int) -> dict[str, Any]:
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode("utf-8")),
        "top_logprobs": [
            {"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))} for t, lp in top[:top_n]
        ],
    }


def answer_tokens(judgement: Judgement, top_n: int) -> tuple[str, list[dict[str, Any]]]:
    """The answer's JSON text and its per-token log-probabilities (`top_n` alternatives per token).

    The text is built key by key, so each score digit and the domain's tokens are known as they are written;
    it is the same text `json.dumps` makes of `judgement.answer()`.
    """
    answer = judgement.answer()
    entries: list[dict[str, Any]] = []
    text = ""

    def sure(piece: str) -> None:
        nonlocal text
        for token in tokens_of(piece):
            entries.append(_entry(token, 0.0, [(token, 0.0)], top_n))
        text += piece

    for n, key in enumerate(SCORE_KEYS):
        sure(("{" if n == 0 else ", ") + json.dumps(key) + ": ")
        ranked = [(token, math.log(p)) for token, p in digit_distribution(judgement.scores[key])]
        assert ranked[0][0] == str(answer[key])
        entries.append(_entry(ranked[0][0], ranked[0][1], ranked, top_n))
        text += ranked[0][0]
    sure(", " + json.dumps(DOMAIN_KEY) + ': "')
    first, *rest = tokens_of(judgement.domain)
    alternatives = [(first, math.log(judgement.domain_confidence))]
    runner_up = tokens_of(judgement.runner_up)[0]
    if runner_up != first:
        alternatives.append((runner_up, math.log(max(1e-6, (1.0 - judgement.domain_confidence) * 0.8))))
    entries.append(_entry(first, alternatives[0][1], alternatives, top_n))
    text += first
    sure("".join(rest))
    sure('"}')
    assert text == json.dumps(answer), "the token texts must spell the answer"
    return text, entries


@dataclass(frozen=True)
class _Request:
    """What the server takes from a valid chat completion request."""

    document: str
    logprobs: bool
    top_logprobs: int
    max_tokens: int | None
    prompt_tokens: int
    key: str  # `conversation_key` of the messages
    sampling: dict[str, Any]  # the `SAMPLING_FIELDS` sent
    response_format: str | None  # its type, if one was asked for


def _message_text(message: dict[str, Any], where: str) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise _bad(f"{where}.content: only text parts are understood", param="messages")
            parts.append(part["text"])
        return "".join(parts)
    raise _bad(f"{where}.content must be a string or a list of text parts", param="messages")


def _document(text: str) -> str:
    """The document between the first `<document>` and the last `</document>` of the prompt."""
    start, end = text.find(DOCUMENT_OPEN), text.rfind(DOCUMENT_CLOSE)
    if start < 0 or end < start + len(DOCUMENT_OPEN):
        raise _bad(
            "no <document>...</document> in the last user message: this stand-in annotator answers only "
            "annotation prompts (corpusmill's annotate_v1 or one built like it)",
            code="missing_document",
            param="messages",
        )
    return text[start + len(DOCUMENT_OPEN) : end].strip()


def _optional_int(body: dict[str, Any], name: str, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _bad(f"{name} must be an integer {bounds}, got {json.dumps(value)}", param=name)
    return value


def parse_request(body: Any, served_model: str) -> _Request:
    """Check a chat completion request the way OpenAI-compatible servers do, and take out the document."""
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    model = body.get("model")
    if model is not None and model != served_model:
        raise RequestError(
            HTTPStatus.NOT_FOUND,
            f"The model `{model}` does not exist; this server serves `{served_model}`.",
            code="model_not_found",
            param="model",
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty list", param="messages")
    texts: list[tuple[str, str]] = []
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise _bad(f"messages[{n}] must be an object with a role in {sorted(_ROLES)}", param="messages")
        texts.append((message["role"], _message_text(message, f"messages[{n}]")))
    users = [text for role, text in texts if role == "user"]
    if not users:
        raise _bad("there is no user message", param="messages")
    if body.get("stream"):
        raise _bad("streaming is not supported by this server", param="stream")
    if body.get("n") not in (None, 1):
        raise _bad("only n=1 is supported", param="n")
    response_format = _response_format(body.get("response_format"))
    sampling = _sampling(body)
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise _bad("logprobs must be true or false", param="logprobs")
    top_logprobs = _optional_int(body, "top_logprobs", 0, MAX_TOP_LOGPROBS)
    if top_logprobs and not logprobs:
        raise _bad("logprobs must be true when top_logprobs is set", param="top_logprobs")
    max_tokens = _optional_int(body, "max_tokens", 1)
    max_completion = _optional_int(body, "max_completion_tokens", 1)
    return _Request(
        document=_document(users[-1]),
        logprobs=bool(logprobs),
        top_logprobs=top_logprobs or 0,
        max_tokens=max_completion if max_completion is not None else max_tokens,
        prompt_tokens=prompt_token_count(texts),
        key=conversation_key(texts),
        sampling=sampling,
        response_format=response_format,
    )


def _response_format(value: Any) -> str | None:
    """The type of a valid `response_format`; a `json_schema` one must carry its schema."""
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in _RESPONSE_FORMATS:
        raise _bad(
            f"response_format.type must be one of {sorted(_RESPONSE_FORMATS)}", param="response_format"
        )
    kind: str = value["type"]
    if kind == "json_schema":
        # OpenAI's form nests the schema under `json_schema`; llama.cpp also takes it beside the type.
        nested = value.get("json_schema")
        schema = nested.get("schema") if isinstance(nested, dict) else value.get("schema")
        if not isinstance(schema, dict):
            raise _bad("response_format json_schema needs a schema object", param="response_format")
    return kind


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    """The sampling fields the request carries, each checked to be a number."""
    sampling = {}
    for name in SAMPLING_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(f"{name} must be a number", param=name)
        sampling[name] = value
    return sampling


class _HttpServer(ThreadingHTTPServer):
    """The listening socket and its threads, with the open connections known so `shutdown` can end them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # a client opening many connections at once is not refused

    def __init__(self, address: tuple[str, int], annotator: AnnotatorServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.annotator = annotator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def close_connections(self) -> None:
        with self.connections_lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Routes: POST /v1/chat/completions, GET /v1/models, /health, /stats and (llama.cpp flavour) /props."""

    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse their pooled connections
    # Headers and body go out in separate writes: without TCP_NODELAY the body waits for the client's delayed
    # ACK (about 40 ms a response), which would blur the latencies the adaptive client measures.
    disable_nagle_algorithm = True
    timeout = 60  # an idle kept-alive connection is closed after this many seconds
    server: _HttpServer
    server_version = "corpusmill-demo-annotator"

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, error: RequestError) -> None:
        self.server.annotator.stats.add(rejected=1)
        try:
            self._send(error.status, error.body())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _client_gone(self) -> bool:
        """Whether the client has closed its connection: it reads as at its end (or reset), not merely idle."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):  # reset by the peer, or closed here already
            return True

    def _route(self) -> str:
        return urlsplit(self.path).path.rstrip("/") or "/"

    def do_GET(self) -> None:
        annotator = self.server.annotator
        route = self._route()
        if route == "/v1/models":
            self._send(HTTPStatus.OK, annotator.models())
        elif route == "/health":
            self._send(
                HTTPStatus.OK, {"status": "ok", "model": annotator.model, "pages": annotator.oracle.pages}
            )
        elif route == "/stats":
            self._send(HTTPStatus.OK, annotator.stats.snapshot())
        elif route == "/props" and annotator.flavour == LLAMA_CPP:
            self._send(HTTPStatus.OK, annotator.props())
        else:
            self._refuse(RequestError(HTTPStatus.NOT_FOUND, f"no route GET {route}", code="not_found"))

    def do_POST(self) -> None:
        route = self._route()
        stats = self.server.annotator.stats
        try:
            raw = self._read_body()  # read even for a wrong route, so a kept-alive connection stays in step
            if route != "/v1/chat/completions":
                raise RequestError(HTTPStatus.NOT_FOUND, f"no route POST {route}", code="not_found")
            stats.add(requests=1)
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise _bad(f"the body is not valid JSON: {exc}", code="invalid_json") from None
            try:
                payload = self.server.annotator.complete(body, client_gone=self._client_gone)
            except ClientGone:  # generated for nobody: the client gave up while this waited or generated
                stats.add(wasted=1)
                self.close_connection = True
                return
            # Counted before it is written, so a client holding its answer never reads a count without it.
            stats.add(completed=1)
            try:
                self._send(HTTPStatus.OK, payload)
            except (BrokenPipeError, ConnectionResetError):  # it went while the answer was being written
                stats.add(completed=-1, wasted=1)
                self.close_connection = True
        except RequestError as error:
            self._refuse(error)
        except Exception as exc:  # a bug here must still answer, or the client retries it as a network error
            log.exception("demo annotator failed on a request")
            self._refuse(
                RequestError(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    f"{type(exc).__name__}: {exc}",
                    code="internal_error",
                    kind="server_error",
                )
            )

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise RequestError(
                HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required", code="no_length"
            )
        try:
            size = int(length)
        except ValueError:
            self.close_connection = True
            raise _bad(f"bad Content-Length {length!r}") from None
        if size < 0 or size > MAX_BODY_BYTES:
            self.close_connection = True
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body must be at most {MAX_BODY_BYTES} bytes",
                code="too_large",
            )
        return self.rfile.read(size)


class AnnotatorServer:
    """An OpenAI-compatible chat server that answers annotation prompts from a `PageOracle`.

    `with AnnotatorServer(oracle) as base_url:` serves on a background thread and gives the `/v1` base URL to
    pass as `annotate --endpoint`; `serve_until_signalled` serves until SIGTERM or SIGINT, for the CLI.
    """

    def __init__(
        self,
        oracle: PageOracle,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        model: str = DEFAULT_MODEL,
        delay_s: float = 0.0,
        capacity: int | None = None,
        delay_per_token_s: float = 0.0,
        context: int | None = None,
        flavour: str = VLLM,
        reject_json_schema: bool = False,
        penalize_repeats: bool = False,
    ) -> None:
        if delay_s < 0 or delay_per_token_s < 0:
            raise ValueError(f"delays must not be negative, got {delay_s} and {delay_per_token_s} per token")
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be at least 1 (or None: unlimited), got {capacity}")
        if context is not None and context < 1:
            raise ValueError(f"context must be at least 1 token (or None: unlimited), got {context}")
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}, got {flavour!r}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {port}")
        self.oracle = oracle
        self.host = host
        self.port = port
        self.model = model
        self.delay_s = delay_s
        self.capacity = capacity
        self.delay_per_token_s = delay_per_token_s
        self.context = context
        self.flavour = flavour
        self.reject_json_schema = reject_json_schema
        self.penalize_repeats = penalize_repeats
        self.stats = ServerStats()
        self._slots = threading.BoundedSemaphore(capacity) if capacity is not None else None
        self._generated: set[str] = set()  # conversation keys generated so far, to count repeats
        self._generated_lock = threading.Lock()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()

    @classmethod
    def for_sample(
        cls, sample_dir: Path, *, seed: int = 0, noise: float = DEFAULT_NOISE, **options: Any
    ) -> AnnotatorServer:
        """A server for a sample directory written by `demo-corpus`; `options` are the constructor's."""
        return cls(PageOracle.from_sample(sample_dir, seed=seed, noise=noise), **options)

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT/v1` of the listening server (a wildcard host is given as loopback)."""
        if self._httpd is None:
            raise RuntimeError("the server is not listening yet")
        port = self._httpd.server_address[1]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"

    def listen(self) -> str:
        """Open the listening socket (once) and return the base URL; requests wait until serving starts."""
        if self._httpd is None:
            qwen25_encoding()  # loaded now, so the first request's latency is like the others'
            self._httpd = _HttpServer((self.host, self.port), self)
        return self.base_url

    def serve_forever(self) -> None:
        """Answer requests on this thread until `shutdown` is called from another one."""
        self.listen()
        assert self._httpd is not None
        self._serving.set()
        self._serve(self._httpd)

    def _serve(self, httpd: _HttpServer) -> None:
        try:
            httpd.serve_forever(poll_interval=0.1)
        finally:
            self._serving.clear()

    def shutdown(self) -> None:
        """Stop serving, close the socket and the connections kept alive; requests in flight are cut off."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        if self._serving.is_set():
            httpd.shutdown()  # returns once the serving loop has ended
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        httpd.close_connections()
        httpd.server_close()

    def __enter__(self) -> str:
        url = self.listen()
        self._serving.set()  # before the thread starts, so that a `shutdown` right away still waits for it
        self._thread = threading.Thread(
            target=self._serve, args=(self._httpd,), name="demo-annotator-server", daemon=True
        )
        self._thread.start()
        return url

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing waits or generates (abandoned requests too); False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while True:
            snapshot = self.stats.snapshot()
            if snapshot["waiting"] == snapshot["running"] == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def models(self) -> dict[str, Any]:
        """The `/v1/models` listing: the one model served, with the context window where vLLM puts it."""
        entry: dict[str, Any] = {"id": self.model, "object": "model", "created": 0}
        if self.flavour == LLAMA_CPP:
            entry["owned_by"] = "llamacpp"
        else:
            entry.update(owned_by="vllm", root=self.model, parent=None)
            if self.context is not None:
                entry["max_model_len"] = self.context
        return {"object": "list", "data": [entry]}

    def props(self) -> dict[str, Any]:
        """llama.cpp's `GET /props`: the context window (`n_ctx`, where one is set), slots and sampling defaults."""
        settings: dict[str, Any] = {
            "params": {"repeat_penalty": 1.1 if self.penalize_repeats else 1.0, "temperature": 0.8}
        }
        if self.context is not None:
            settings["n_ctx"] = self.context
        return {
            "default_generation_settings": settings,
            "total_slots": self.capacity or 1,
            "model_path": self.model,
        }

    def _admit(self, request: _Request) -> int | None:
        """Refuse what this server cannot generate; return the completion budget (None: unlimited)."""
        if self.reject_json_schema and request.response_format == "json_schema":
            raise _bad("response_format json_schema is not supported", param="response_format")
        if self.context is None:
            return request.max_tokens
        wanted = request.max_tokens if request.max_tokens is not None else 1
        if request.prompt_tokens + wanted > self.context:
            raise context_exceeded(self.context, request.prompt_tokens, request.max_tokens)
        if request.max_tokens is None:  # as vLLM does: whatever the window leaves
            return self.context - request.prompt_tokens
        return request.max_tokens

    @contextlib.contextmanager
    def _generation(self, key: str) -> Iterator[None]:
        """Hold one of `capacity` generation slots (waiting in line for one) for the time of an answer."""
        self.stats.add(waiting=1)
        if self._slots is not None:
            self._slots.acquire()
        with self._generated_lock:
            repeated = key in self._generated
            self._generated.add(key)
        self.stats.add(waiting=-1, running=1, generations_started=1, repeated=int(repeated))
        try:
            yield
        finally:
            self.stats.add(running=-1, generations_finished=1)
            if self._slots is not None:
                self._slots.release()

    def complete(self, body: Any, client_gone: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Answer one chat completion request (decoded from JSON); raises `RequestError` if invalid.

        Like a single-slot server that does not watch its connections, it generates for a client that has
        gone; `client_gone` is asked as the generation starts (the client left while the request waited in
        line) and once the answer is ready (it left during the generation), and `ClientGone` raised if either
        said so.
        """
        request = parse_request(body, self.model)
        self.stats.note_request(request)
        budget = self._admit(request)
        with self._generation(request.key):
            gone = client_gone is not None and client_gone()
            judgement = self.oracle.judge(request.document)
            if judgement.row is None:
                self.stats.add(unmatched=1)
            if self.penalize_repeats and not neutral_penalties(request.sampling):
                judgement = penalized(judgement)
            content, entries = answer_tokens(judgement, request.top_logprobs)
            delay = self.delay_s + self.delay_per_token_s * request.prompt_tokens
            if delay:
                time.sleep(delay)
        if gone or (client_gone is not None and client_gone()):
            raise ClientGone
        finish_reason = "stop"
        if budget is not None and budget < len(entries):
            entries = entries[:budget]
            content = "".join(entry["token"] for entry in entries)
            finish_reason = "length"
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": {"content": entries} if request.logprobs else None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": request.prompt_tokens,
                "completion_tokens": len(entries),
                "total_tokens": request.prompt_tokens + len(entries),
            },
        }


def serve_until_signalled(
    server: AnnotatorServer,
    on_ready: Callable[[str], None] | None = None,
    signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT),
) -> int:
    """Serve until one of `signals` arrives (call from the main thread); returns the signal's number.

    The handlers are in place before `on_ready` is called with the base URL, so a caller that starts the
    server, waits for its URL and signals it at once is never killed by the default handler.
    """
    stop = threading.Event()
    received: list[int] = []

    def handle(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in signals}
    try:
        with server as url:
            if on_ready is not None:
                on_ready(url)
            while not stop.wait(1.0):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return received[0]
