"""The HTTP backend's server settings: pacing, neutral sampling, structured output, context, cut answers, hints.

Normal answers come from the stand-in annotator (`corpusmill.demo.annotator_server`), which queues behind a
number of generation slots and reports its context the way vLLM or llama.cpp do. Where a test needs one exact
server behaviour (a refusal worded a certain way, an answer cut at `max_tokens`), a small stub defined here
answers instead.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from corpusmill.classifiers.answer_schema import answer_schema, json_schema_response_format
from corpusmill.classifiers.answers import ANSWER_KEYS, parse_answer
from corpusmill.classifiers.backends import BackendAnswer
from corpusmill.classifiers.backends.http import API_KEY_ENV, HttpBackend, context_margin
from corpusmill.classifiers.backends.pacing import AdaptiveConcurrency
from corpusmill.classifiers.backends.server_info import ModelNotServedError
from corpusmill.classifiers.fit import conversation_tokens, fit_conversation, fit_document
from corpusmill.classifiers.prompt import answer_format, load_prompt, truncate
from corpusmill.classifiers.taxonomy import DOMAIN_NAMES
from corpusmill.demo import write_demo_corpus
from corpusmill.demo.annotator_server import DEFAULT_MODEL, AnnotatorServer
from corpusmill.demo.oracle import PageOracle

PROMPT = load_prompt()
MODEL = "qwen2.5-7b-instruct"
VALID = {
    "educational_value": 4,
    "coherence": 5,
    "knowledge_density": 3,
    "originality": 2,
    "safety": 5,
    "overall": 4,
    "domain": "science",
}
Reply = tuple[int, dict[str, Any]]


def completion(content: str, finish_reason: str = "stop", prompt_tokens: int | None = None) -> dict:
    body: dict[str, Any] = {
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}
        ],
    }
    if prompt_tokens is not None:
        body["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": 10}
    return body


def refusal(message: str, **extra: Any) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", **extra}}


class Stub:
    """An OpenAI-style server answering POSTs with `answer(body, n)` (n counts from 1) and GETs from `gets`."""

    def __init__(self, answer: Callable[[dict, int], Reply], gets: dict[str, dict] | None = None) -> None:
        self.answer = answer
        self.gets = gets or {}
        self.bodies: list[dict] = []
        self.lock = threading.Lock()


@pytest.fixture
def stub() -> Iterator[Callable[..., tuple[Stub, str]]]:
    """Start stubs: `stub(answer, gets=None)` -> (stub, base URL); all are shut down after the test."""
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Callable[[dict, int], Reply], gets: dict[str, dict] | None = None) -> tuple[Stub, str]:
        state = Stub(answer, gets)

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                found = state.gets.get(self.path)
                if found is None:
                    self._send(404, {"error": "not found"})
                else:
                    self._send(200, found)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with state.lock:
                    state.bodies.append(body)
                    count = len(state.bodies)
                self._send(*state.answer(body, count))

            def log_message(self, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(httpd)
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return state, f"http://127.0.0.1:{httpd.server_address[1]}/v1"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def ok(body: dict, count: int) -> Reply:
    return 200, completion(json.dumps(VALID))


def models(owned_by: str, **extra: Any) -> dict[str, dict]:
    return {"/v1/models": {"object": "list", "data": [{"id": MODEL, "owned_by": owned_by, **extra}]}}


def fast(url: str, model: str = MODEL, **options: Any) -> HttpBackend:
    return HttpBackend(url, model, backoff_base=0.01, **options)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> PageOracle:
    """What the stand-in answers from: the demo sample, read once for every server of this module."""
    out = tmp_path_factory.mktemp("sample")
    write_demo_corpus(out, num_files=1)
    return PageOracle.from_sample(out)


@pytest.fixture(scope="module")
def long_text(annotate_pages: list[tuple[str, str]]) -> str:
    """Real web text, far longer than one prompt's share of a small context."""
    return "\n\n".join(text for _, text in annotate_pages)[:40_000]


def conversations(pages: list[tuple[str, str]], n: int) -> list[list[dict[str, str]]]:
    return [PROMPT.messages(f"(copy {i})\n" + pages[i % len(pages)][1]) for i in range(n)]


class InFlight:
    """Counts the backend's requests in flight (wrapping its `_ask`), keeping the most seen at once."""

    def __init__(self, backend: HttpBackend) -> None:
        self.now = self.peak = 0
        self.lock = threading.Lock()
        ask = backend._ask

        def counted(conversation: Any) -> Any:
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            try:
                return ask(conversation)
            finally:
                with self.lock:
                    self.now -= 1

        backend._ask = counted  # type: ignore[method-assign]


# Pacing.


def test_the_pacer_doubles_while_latency_holds_and_settles_on_the_last_good_level() -> None:
    pacer = AdaptiveConcurrency(None, maximum=32)

    def round_at(latency: float, *, overloaded: bool = False) -> None:
        epoch, level = pacer.epoch, pacer.level
        for _ in range(max(level + 1, 3)):
            pacer.record(epoch, latency, overloaded)

    assert pacer.level == 1 and not pacer.settled
    round_at(1.0)
    assert pacer.level == 2
    pacer.record(pacer.epoch - 1, 99.0)  # an answer of the previous level does not count for this one
    round_at(1.2)
    assert pacer.level == 4
    round_at(1.4)
    assert pacer.level == 8
    round_at(2.0)  # the queue grew: back to the last level that held, for good
    assert pacer.level == 4 and pacer.settled
    round_at(0.1)
    assert pacer.level == 4

    fixed = AdaptiveConcurrency(6, maximum=32)
    assert fixed.level == 6 and fixed.settled
    overloaded = AdaptiveConcurrency(None, maximum=32)
    for _ in range(3):
        overloaded.record(overloaded.epoch, 1.0)
    overloaded.record(overloaded.epoch, 1.0, True)  # a 429 at level 2
    assert overloaded.level == 1 and overloaded.settled
    capped = AdaptiveConcurrency(None, maximum=2)
    for _ in range(3):
        capped.record(capped.epoch, 1.0)
    for _ in range(3):
        capped.record(capped.epoch, 1.0)
    assert capped.level == 2 and capped.settled


def test_adaptive_concurrency_stays_at_one_on_a_single_slot_server(
    oracle: PageOracle, annotate_pages: list[tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="corpusmill.classifiers.backends")
    server = AnnotatorServer(oracle, delay_s=0.3, capacity=1)
    with server as url, HttpBackend(url, DEFAULT_MODEL) as backend:
        in_flight = InFlight(backend)
        answers = backend.annotate(conversations(annotate_pages, 7))
        assert backend.concurrency_now == 1
        assert server.wait_idle(5)
    assert all(parse_answer(a.text, a.token_logprobs).status == "ok" for a in answers)
    stats = server.stats.snapshot()
    # Two at once was tried (and never more), found to queue, and left; nothing was generated twice or lost.
    assert in_flight.peak == 2 and stats["peak_running"] == 1
    assert stats["requests"] == stats["completed"] == 7 and stats["wasted"] == stats["repeated"] == 0
    assert "concurrency 1 -> 2" in caplog.text and "settles at 1" in caplog.text


def test_adaptive_concurrency_grows_on_a_server_with_four_slots(
    oracle: PageOracle, annotate_pages: list[tuple[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="corpusmill.classifiers.backends")
    server = AnnotatorServer(oracle, delay_s=0.25, capacity=4)
    with server as url, HttpBackend(url, DEFAULT_MODEL) as backend:
        in_flight = InFlight(backend)
        answers = backend.annotate(conversations(annotate_pages, 30))
        assert backend.concurrency_now == 4
        assert server.wait_idle(5)
    assert all(a.error is None for a in answers)
    stats = server.stats.snapshot()
    assert stats["peak_running"] == 4 and in_flight.peak <= 8
    assert stats["requests"] == stats["completed"] == 30 and stats["wasted"] == stats["repeated"] == 0
    for change in ("1 -> 2", "2 -> 4", "4 -> 8", "settles at 4"):
        assert change in caplog.text


def test_stop_submits_nothing_more_and_waits_for_what_is_in_flight(
    oracle: PageOracle, annotate_pages: list[tuple[str, str]]
) -> None:
    server = AnnotatorServer(oracle, delay_s=0.2)
    with server as url, HttpBackend(url, DEFAULT_MODEL, concurrency=3) as backend:
        stream = backend.annotate_stream(conversations(annotate_pages, 10))
        received = [next(stream)]
        backend.stop()
        received += list(stream)
        # The two requests in flight when stop came were awaited, nothing new was sent.
        assert len(received) == 3 and all(answer.error is None for _, answer in received)
        assert server.stats.snapshot()["requests"] == 3
        # A stopped backend asks nothing: `annotate` answers every conversation with an error to retry.
        (not_asked,) = backend.annotate(conversations(annotate_pages, 1))
        assert not_asked.error is not None and "stopped" in not_asked.error
    assert server.stats.snapshot()["wasted"] == 0


def test_closing_the_stream_early_abandons_no_request(
    oracle: PageOracle, annotate_pages: list[tuple[str, str]]
) -> None:
    server = AnnotatorServer(oracle, delay_s=0.2)
    with server as url, HttpBackend(url, DEFAULT_MODEL, concurrency=4) as backend:
        stream = backend.annotate_stream(conversations(annotate_pages, 10))
        next(stream)
        stream.close()  # returns once the three requests in flight have been answered
        stats = server.stats.snapshot()
        assert stats["running"] == stats["waiting"] == 0 and stats["requests"] == 4
    assert server.stats.snapshot()["wasted"] == 0


# Sampling.


@pytest.mark.parametrize(
    ("gets", "penalties"),
    [
        (models("vllm"), {"repetition_penalty": 1.0}),
        (models("llamacpp"), {"repeat_penalty": 1.0}),
        ({}, {"repeat_penalty": 1.0, "repetition_penalty": 1.0}),  # unknown server: every name
    ],
    ids=["vllm", "llama.cpp", "unknown"],
)
def test_sampling_is_neutral_and_names_the_penalty_as_the_server_does(
    stub: Callable[..., tuple[Stub, str]], gets: dict, penalties: dict
) -> None:
    state, url = stub(ok, gets)
    with fast(url) as backend:
        (answer,) = backend.annotate([PROMPT.messages("A page.")])
    assert answer.error is None
    (body,) = state.bodies
    sampling = {k: v for k, v in body.items() if k.endswith("penalty") or k in ("temperature", "top_p")}
    assert sampling == {
        "temperature": 0,
        "top_p": 1,
        "presence_penalty": 0,
        "frequency_penalty": 0,
        **penalties,
    }
    assert body["max_tokens"] == 256


def test_llama_cpp_repeat_penalty_does_not_bend_the_scores(
    oracle: PageOracle, annotate_pages: list[tuple[str, str]]
) -> None:
    asked = conversations(annotate_pages, 3)
    read = []
    for penalize in (False, True):
        server = AnnotatorServer(oracle, flavour="llama.cpp", penalize_repeats=penalize)
        with server as url, HttpBackend(url, DEFAULT_MODEL) as backend:
            assert backend.server_info.kind == "llama.cpp"
            read.append([answer.text for answer in backend.annotate(asked)])
        assert server.stats.snapshot()["last_sampling"]["repeat_penalty"] == 1.0
    assert read[0] == read[1]


# Structured output.


def test_the_answer_schema_follows_the_taxonomy_in_the_prompts_order() -> None:
    schema = answer_schema()
    assert list(schema["properties"]) == list(ANSWER_KEYS) == schema["required"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["domain"] == {"type": "string", "enum": list(DOMAIN_NAMES)}
    assert schema["properties"]["overall"] == {"type": "integer", "minimum": 0, "maximum": 5}
    positions = [answer_format().index(json.dumps(key)) for key in schema["properties"]]
    assert positions == sorted(positions)
    assert json_schema_response_format()["json_schema"]["strict"] is True


def test_a_rejected_json_schema_falls_back_to_json_mode_for_the_rest_of_the_run(
    stub: Callable[..., tuple[Stub, str]], caplog: pytest.LogCaptureFixture
) -> None:
    def no_schema(body: dict, count: int) -> Reply:
        if (body.get("response_format") or {}).get("type") == "json_schema":
            return 400, refusal("response_format type json_schema is not supported by this server")
        return ok(body, count)

    state, url = stub(no_schema)
    with fast(url, concurrency=1) as backend:
        answers = backend.annotate([PROMPT.messages(f"Page {n}.") for n in range(3)])
        assert backend.structured_now == "json_object"
    assert all(a.error is None for a in answers)
    kinds = [body["response_format"]["type"] for body in state.bodies]
    assert kinds == ["json_schema", "json_object", "json_object", "json_object"]
    assert caplog.text.count("rejects response_format json_schema") == 1

    def no_format(body: dict, count: int) -> Reply:
        if "response_format" in body:
            return 400, refusal("'response_format' is not supported")
        return ok(body, count)

    state, url = stub(no_format)
    with fast(url) as backend:
        (answer,) = backend.annotate([PROMPT.messages("A page.")])
        assert answer.error is None and backend.structured_now == "off"
    assert [(body.get("response_format") or {}).get("type") for body in state.bodies] == [
        "json_schema",
        "json_object",
        None,
    ]

    # Asked for by name, a form is not swapped for another: the error says what to change.
    state, url = stub(no_schema)
    with fast(url, structured="json_schema") as backend:
        (answer,) = backend.annotate([PROMPT.messages("A page.")])
    assert answer.error is not None and "not supported" in answer.error
    assert answer.hint is not None and "--structured auto" in answer.hint and len(state.bodies) == 1


def test_the_stand_in_takes_the_schema(oracle: PageOracle, annotate_pages: list[tuple[str, str]]) -> None:
    server = AnnotatorServer(oracle)
    with server as url, HttpBackend(url, DEFAULT_MODEL) as backend:
        (answer,) = backend.annotate(conversations(annotate_pages, 1))
    assert parse_answer(answer.text).status == "ok"
    assert server.stats.snapshot()["last_response_format"] == "json_schema"


# Answers cut at max_tokens.


def test_a_cut_answer_is_asked_once_more_with_twice_the_tokens_then_marked_truncated(
    stub: Callable[..., tuple[Stub, str]],
) -> None:
    cut = json.dumps(VALID)[:40]
    state, url = stub(lambda body, count: (200, completion(cut, "length")))
    with fast(url) as backend:
        (answer,) = backend.annotate([PROMPT.messages("A page.")])
    assert [body["max_tokens"] for body in state.bodies] == [256, 512]
    assert answer.status == "truncated" and answer.finish_reason == "length"
    assert answer.text == cut and answer.error is None

    # Enough room the second time: a whole answer, nothing marked.
    def longer(body: dict, count: int) -> Reply:
        return 200, completion(
            json.dumps(VALID) if body["max_tokens"] > 256 else cut, "length" if count == 1 else "stop"
        )

    state, url = stub(longer)
    with fast(url) as backend:
        (answer,) = backend.annotate([PROMPT.messages("A page.")])
    assert answer.status is None and answer.finish_reason == "stop" and json.loads(answer.text) == VALID

    # An answer that is whole although the limit was hit is taken as it is.
    state, url = stub(lambda body, count: (200, completion(json.dumps(VALID), "length")))
    with fast(url) as backend:
        (answer,) = backend.annotate([PROMPT.messages("A page.")])
    assert len(state.bodies) == 1 and answer.status is None


def test_the_second_try_stays_within_the_context(stub: Callable[..., tuple[Stub, str]]) -> None:
    cut = json.dumps(VALID)[:40]
    state, url = stub(
        lambda body, count: (200, completion(cut, "length", prompt_tokens=600)),
        models("vllm", max_model_len=1000),
    )
    with fast(url) as backend:
        (answer,) = backend.annotate([[{"role": "user", "content": "Rate this."}]])
    assert [body["max_tokens"] for body in state.bodies] == [256, 400]  # 1000 - 600 prompt tokens
    assert answer.status == "truncated"


# The context window.


def test_the_context_is_read_from_vllm_and_llama_cpp(oracle: PageOracle) -> None:
    for flavour, context in (("vllm", 4096), ("llama.cpp", 2048)):
        with (
            AnnotatorServer(oracle, flavour=flavour, context=context) as url,
            HttpBackend(url, DEFAULT_MODEL) as backend,
        ):
            assert backend.server_info.kind == flavour
            assert backend.server_info.models == (DEFAULT_MODEL,)
            assert backend.context == context
            assert backend.prompt_token_budget == context - 256 - context_margin(context)
    assert context_margin(4096) == 16 + 82
    server = AnnotatorServer(oracle, context=4096)
    with server as url, HttpBackend(url, DEFAULT_MODEL, context=8192, max_tokens=100) as backend:
        assert backend.context == 8192  # as set: the setting wins over the probe
        assert backend.prompt_token_budget == 8192 - 100 - context_margin(8192)


def test_other_context_hints_and_an_unknown_server(stub: Callable[..., tuple[Stub, str]]) -> None:
    _, url = stub(ok, models("llamacpp", meta={"n_ctx_train": 32768}))
    with fast(url) as backend:
        assert (backend.server_info.kind, backend.context) == ("llama.cpp", 32768)
    tgi = {
        "/info": {"model_id": "Qwen/Qwen2.5-7B-Instruct", "max_input_tokens": 3000, "max_total_tokens": 4096}
    }
    _, url = stub(ok, tgi)
    with fast(url) as backend:
        assert (backend.server_info.kind, backend.context) == ("tgi", 4096)
        assert backend.prompt_token_budget == 3000 - context_margin(3000)  # the input limit is lower
    _, url = stub(ok)
    with fast(url) as backend:
        assert backend.server_info.kind == "unknown"
        assert backend.context is None and backend.prompt_token_budget is None
    # A context too small for the prompt's own text: a clear error, not a request bound to be refused.
    state, url = stub(ok)
    with fast(url, context=200) as backend, pytest.raises(ValueError, match="lower --max-tokens"):
        backend.prompt_token_budget  # noqa: B018
    with fast(url, context=conversation_tokens(PROMPT.messages("")) + 256) as backend:
        (answer,) = backend.annotate([PROMPT.messages("A page.")])
    assert answer.error is not None and "without any document" in answer.error
    assert answer.hint is not None and "--max-tokens" in answer.hint and state.bodies == []


def test_a_model_the_server_does_not_serve_stops_the_run_at_once(oracle: PageOracle) -> None:
    with (
        AnnotatorServer(oracle) as url,
        HttpBackend(url, "qwen2.5-72b") as backend,
        pytest.raises(ModelNotServedError, match=f"serves: {DEFAULT_MODEL}"),
    ):
        backend.annotate([PROMPT.messages("A page.")])
    # llama.cpp answers any name with its one model: the name is only what the annotations are stored under.
    server = AnnotatorServer(oracle, flavour="llama.cpp")
    with server as url, HttpBackend(url, "qwen2.5-72b") as backend:
        assert backend.server_info.models == (DEFAULT_MODEL,)


def test_fit_document_keeps_a_long_document_within_the_budget(long_text: str) -> None:
    prompt = load_prompt(max_chars=100_000)
    frame = conversation_tokens(prompt.messages(""))
    for room in (1, 37, 500, 2000):
        budget = frame + room
        shown = fit_document(prompt, long_text, budget)
        used = conversation_tokens(prompt.messages(shown))
        assert used <= budget and long_text.startswith(shown)
        assert used >= budget - max(8, room // 20)  # little of the room is left unused
        if shown:
            assert long_text[len(shown)].isspace()  # cut between words
    # The document is cut to the prompt's max_chars first; a short one is left as it is.
    assert fit_document(load_prompt(max_chars=300), long_text, 10_000) == truncate(long_text, 300)
    assert fit_document(PROMPT, "A short page.", frame + 50) == "A short page."
    with pytest.raises(ValueError, match="without any document already takes"):
        fit_document(PROMPT, "A short page.", frame - 1)


def test_fit_document_cuts_text_without_spaces_and_any_script() -> None:
    frame = conversation_tokens(PROMPT.messages(""))
    for text in ("x9Qz" * 3000, "数据集质量评估。" * 800, "naïve café 🙂 " * 600):
        shown = fit_document(PROMPT, text, frame + 100)
        assert 0 < len(shown) < len(text) and text.startswith(shown)
        assert conversation_tokens(PROMPT.messages(shown)) <= frame + 100


def test_fit_conversation_cuts_the_document_inside_a_built_prompt(long_text: str) -> None:
    budget = conversation_tokens(PROMPT.messages("")) + 300
    fitted = fit_conversation(PROMPT.messages(long_text), budget)
    assert fitted is not None
    conversation, shown = fitted
    assert shown == fit_document(PROMPT, long_text, budget)
    assert conversation == PROMPT.messages(shown)
    assert fit_conversation([{"role": "user", "content": "no document here"}], budget) is None


def _refuse_beyond(context: int, style: str) -> Callable[[dict, int], Reply]:
    """A server with `context` tokens that does not report it, refusing longer prompts in `style`."""

    def answer(body: dict, count: int) -> Reply:
        prompt_tokens = conversation_tokens(body["messages"])
        if prompt_tokens + body["max_tokens"] <= context:
            return ok(body, count)
        if style == "vllm":
            return 400, refusal(
                f"This model's maximum context length is {context} tokens. However, you requested "
                f"{prompt_tokens + body['max_tokens']} tokens ({prompt_tokens} in the messages, "
                f"{body['max_tokens']} in the completion).",
                code=400,
            )
        if style == "llama.cpp":  # an older llama.cpp said it with a 500
            error = {
                "code": 500,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": prompt_tokens,
                "n_ctx": context,
            }
            return 500, {"error": error}
        return 400, refusal("the prompt is too long for the context window")

    return answer


@pytest.mark.parametrize("style", ["vllm", "llama.cpp"])
def test_a_context_stated_in_a_refusal_is_learned_and_the_document_cut(
    stub: Callable[..., tuple[Stub, str]], long_text: str, style: str
) -> None:
    context = conversation_tokens(PROMPT.messages("")) + 256 + 600
    state, url = stub(_refuse_beyond(context, style))
    first, second = PROMPT.messages(long_text), PROMPT.messages(long_text[1000:])
    with fast(url, concurrency=1) as backend:
        assert backend.prompt_token_budget is None
        answers = backend.annotate([first, second])
        assert backend.context == context
        budget = backend.prompt_token_budget
    assert budget == context - 256 - context_margin(context)
    assert all(a.error is None and a.shown_text for a in answers)
    assert long_text.startswith(answers[0].shown_text or "")
    # Refused once, asked again cut; the second document was cut before it was sent.
    assert len(state.bodies) == 3
    assert [conversation_tokens(body["messages"]) <= budget for body in state.bodies] == [False, True, True]
    assert state.bodies[1]["messages"] == PROMPT.messages(answers[0].shown_text or "")


def test_a_refusal_without_the_context_says_which_flags_help(
    stub: Callable[..., tuple[Stub, str]], long_text: str
) -> None:
    state, url = stub(_refuse_beyond(2000, "vague"))
    with fast(url) as backend:
        (answer,) = backend.annotate([PROMPT.messages(long_text)])
    assert answer.error is not None and "too long for the context window" in answer.error
    assert answer.hint == "set --context to the server's context or lower --max-chars"
    assert len(state.bodies) == 1  # not retried: it would be refused again


def test_documents_are_fitted_to_a_context_the_server_reports(
    oracle: PageOracle, annotate_pages: list[tuple[str, str]]
) -> None:
    context = conversation_tokens(PROMPT.messages("")) + 256 + 400
    server = AnnotatorServer(oracle, context=context)
    asked = conversations(annotate_pages, 4)
    with server as url, HttpBackend(url, DEFAULT_MODEL) as backend:
        budget = backend.prompt_token_budget
        assert budget is not None
        # As annotate does: fit each document to the budget first; the backend then cuts nothing more.
        fitted = [PROMPT.messages(fit_document(PROMPT, text, budget)) for _, text in annotate_pages[:2]]
        answers = backend.annotate(fitted)
        assert all(a.error is None and a.shown_text is None for a in answers)
        # Conversations built without fitting are cut by the backend, which says what it showed.
        answers = backend.annotate(asked)
    assert all(a.error is None and a.shown_text is not None for a in answers)
    assert server.stats.snapshot()["rejected"] == 0


# Errors the user has to fix.


def test_errors_carry_the_servers_message_and_a_hint(
    stub: Callable[..., tuple[Stub, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    cases: list[tuple[Reply, str]] = [
        ((401, refusal("Invalid API key")), API_KEY_ENV),
        ((403, refusal("Forbidden")), API_KEY_ENV),
        ((404, refusal(f"The model `{MODEL}` does not exist.")), "--model"),
        ((404, {"detail": "Not Found"}), "--endpoint"),
        ((400, refusal("top_logprobs must be at most 5 when logprobs are returned")), "--no-logprobs"),
        # A validation error that echoes the request (response_format included) is about what it says first.
        (
            (
                400,
                refusal(
                    "1 validation error for ChatCompletionRequest: top_logprobs must be at most 5 "
                    "[type=value_error, input_value={'response_format': {'type': 'json_schema'}}]"
                ),
            ),
            "--no-logprobs",
        ),
    ]
    for reply, flag in cases:
        state, url = stub(lambda body, count, reply=reply: reply)
        with fast(url) as backend:
            (answer,) = backend.annotate([PROMPT.messages("A page.")])
        message = reply[1]["error"]["message"] if "error" in reply[1] else reply[1]["detail"]
        assert answer.error is not None and message in answer.error and f"HTTP {reply[0]}" in answer.error
        assert answer.hint is not None and flag in answer.hint, answer.hint
        assert len(state.bodies) == 1


def test_annotate_keeps_order_and_answers_are_backend_answers(
    oracle: PageOracle, annotate_pages: list[tuple[str, str]]
) -> None:
    asked = conversations(annotate_pages, 5)
    with AnnotatorServer(oracle) as url, HttpBackend(url, DEFAULT_MODEL, concurrency=5) as backend:
        streamed = dict(backend.annotate_stream(asked))
        ordered = backend.annotate(asked)
    assert sorted(streamed) == list(range(5)) and all(isinstance(a, BackendAnswer) for a in ordered)
    assert [streamed[i].text for i in range(5)] == [a.text for a in ordered]
