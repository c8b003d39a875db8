"""The HTTP backend against a scripted OpenAI-compatible server on 127.0.0.1, and annotate_run through it."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from corpusmill.classifiers.annotate import annotate_run, make_backend
from corpusmill.classifiers.annotations import dimension_column
from corpusmill.classifiers.answer_schema import json_schema_response_format
from corpusmill.classifiers.backends import AnnotatorBackend
from corpusmill.classifiers.backends.http import API_KEY_ENV, HttpBackend, chat_completions_url
from corpusmill.classifiers.cache import load_annotations
from corpusmill.classifiers.prompt import load_prompt, truncate

RunMaker = Callable[..., Path]
SECRET = "sk-test-4f9c1e0b77d2"
VALID = {
    "educational_value": 4,
    "coherence": 5,
    "knowledge_density": 3,
    "originality": 2,
    "safety": 5,
    "overall": 4,
    "domain": "science",
}
# At the educational_value digit the server says: 4 with 0.5, 5 with 0.3, 3 with 0.2.
EV_TOP = [("4", math.log(0.5)), ("5", math.log(0.3)), ("3", math.log(0.2))]


def completion(content: str, logprobs: list[dict] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": content},
        "finish_reason": "stop",
    }
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs}
    return {"id": "cmpl-1", "object": "chat.completion", "choices": [choice]}


def logprob_entries(content: str) -> list[dict]:
    """OpenAI-style per-token logprobs for `content`, uncertain only at the educational_value digit."""
    pieces = re.findall(r'\d|"[a-z_]+"(?=:)|[a-z]+|-[a-z]+|[^\w"]+|"', content)
    assert "".join(pieces) == content
    entries = []
    after_ev = False
    for piece in pieces:
        if after_ev and piece.isdigit():
            top = EV_TOP
            after_ev = False
        else:
            top = [(piece, math.log(0.9))]
        after_ev = after_ev or piece == '"educational_value"'
        own = dict(top)[piece]
        entries.append(
            {"token": piece, "logprob": own, "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]}
        )
    return entries


class FakeServer:
    """Scripted answers chosen by a `SCENARIO:<name>` marker in the last message; records what it saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}
        self.authorization: list[str | None] = []
        self.bodies: list[dict] = []
        self.active = 0
        self.max_active = 0
        self.healed = False

    def answer(self, scenario: str, count: int) -> tuple[int, dict[str, str], str]:
        ok = json.dumps(VALID)
        if (
            scenario == "valid"
            or (scenario == "flaky" and count > 1)
            or (scenario == "ratelimited" and count > 1)
        ):
            return 200, {}, json.dumps(completion(ok))
        if scenario == "slow":
            time.sleep(0.25)
            return 200, {}, json.dumps(completion(ok))
        if scenario == "fence":
            return 200, {}, json.dumps(completion(f"```json\n{ok}\n```\n"))
        if scenario == "broken":
            return 200, {}, json.dumps(completion('{"educational_value": 4, "coherence": 5, "knowledge_den'))
        if scenario == "out_of_range":
            return 200, {}, json.dumps(completion(json.dumps({**VALID, "safety": 7})))
        if scenario == "unknown_domain":
            return 200, {}, json.dumps(completion(json.dumps({**VALID, "domain": "cooking"})))
        if scenario == "logprobs":
            return 200, {}, json.dumps(completion(ok, logprob_entries(ok)))
        if scenario == "flaky":
            return 503, {}, "overloaded"
        if scenario == "ratelimited":
            return 429, {"Retry-After": "1"}, "slow down"
        if scenario == "bad_request":
            return 400, {}, "unknown field logprobs"
        if scenario == "garbage":
            return 200, {}, "<html>not json</html>"
        if scenario == "down":
            return (200, {}, json.dumps(completion(ok))) if self.healed else (503, {}, "down")
        raise AssertionError(f"unknown scenario {scenario}")

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        match = re.search(r"SCENARIO:(\w+)", body["messages"][-1]["content"])
        scenario = match.group(1) if match else "valid"
        with self.lock:
            self.seen[scenario] += 1
            count = self.seen[scenario]
            self.times.setdefault(scenario, []).append(time.monotonic())
            self.authorization.append(handler.headers.get("Authorization"))
            self.bodies.append(body)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            status, headers, payload = self.answer(scenario, count)
        finally:
            with self.lock:
                self.active -= 1
        data = payload.encode()
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


@pytest.fixture
def server() -> Iterator[tuple[FakeServer, str]]:
    fake = FakeServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert self.path == "/v1/chat/completions"
            fake.handle(self)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def ask(backend: HttpBackend, *scenarios: str) -> list:
    return backend.annotate([[{"role": "user", "content": f"rate this SCENARIO:{s}"}] for s in scenarios])


def fast_backend(url: str, **options: Any) -> HttpBackend:
    return HttpBackend(url, "qwen2.5-7b-instruct", backoff_base=0.01, **options)


def test_url_forms() -> None:
    assert chat_completions_url("http://h:8000") == "http://h:8000/v1/chat/completions"
    assert chat_completions_url("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
    assert chat_completions_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"


def test_request_asks_for_deterministic_json_with_logprobs(server: tuple[FakeServer, str]) -> None:
    fake, url = server
    with fast_backend(url, top_logprobs=7) as backend:
        (answer,) = ask(backend, "valid")
    assert answer.error is None and json.loads(answer.text) == VALID
    body = fake.bodies[0]
    assert body["model"] == "qwen2.5-7b-instruct"
    assert body["temperature"] == 0
    assert body["response_format"] == json_schema_response_format()
    assert body["logprobs"] is True and body["top_logprobs"] == 7
    with fast_backend(url, structured="json_object") as backend:
        ask(backend, "valid")
    assert fake.bodies[1]["response_format"] == {"type": "json_object"}
    with fast_backend(url, structured="off", logprobs=False) as backend:
        ask(backend, "valid")
    assert "response_format" not in fake.bodies[2] and "logprobs" not in fake.bodies[2]


def test_transient_failures_are_retried(server: tuple[FakeServer, str]) -> None:
    fake, url = server
    with fast_backend(url) as backend:
        start = time.monotonic()
        flaky, limited = ask(backend, "flaky", "ratelimited")
        elapsed = time.monotonic() - start
    assert flaky.error is None and json.loads(flaky.text) == VALID
    assert limited.error is None and json.loads(limited.text) == VALID
    assert fake.seen["flaky"] == 2 and fake.seen["ratelimited"] == 2
    # Retry-After: 1 was honoured although the backoff alone would have waited about 10 ms.
    first, second = fake.times["ratelimited"]
    assert second - first >= 0.9 and elapsed >= 0.9


def test_permanent_failures_become_error_answers(server: tuple[FakeServer, str]) -> None:
    fake, url = server
    with fast_backend(url, max_retries=2) as backend:
        down, bad, garbage = ask(backend, "down", "bad_request", "garbage")
    assert down.text is None and "failed after 3 attempts" in down.error and "HTTP 503" in down.error
    assert fake.seen["down"] == 3
    assert "HTTP 400" in bad.error and fake.seen["bad_request"] == 1  # a client error is not retried
    assert "unknown field logprobs" in bad.error and bad.hint is not None and "--no-logprobs" in bad.hint
    assert "no chat completion" in garbage.error


def test_connection_refused_is_an_error_after_retries() -> None:
    with HttpBackend("http://127.0.0.1:9", "m", max_retries=1, backoff_base=0.01) as backend:
        (answer,) = backend.annotate([[{"role": "user", "content": "x"}]])
    assert answer.error is not None and "ConnectError" in answer.error


def test_requests_really_run_concurrently(server: tuple[FakeServer, str]) -> None:
    fake, url = server
    with fast_backend(url, concurrency=4) as backend:
        start = time.monotonic()
        answers = ask(backend, *["slow"] * 8)
        elapsed = time.monotonic() - start
        assert backend.concurrency_now == 4  # a fixed concurrency does not adapt
    assert all(a.error is None for a in answers)
    assert fake.max_active == 4  # never more than asked for, and the pool was full
    assert elapsed < 8 * 0.25 * 0.75


def test_api_key_is_sent_but_never_logged(
    server: tuple[FakeServer, str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = server
    caplog.set_level(logging.DEBUG)
    with fast_backend(url, api_key=SECRET, max_retries=1) as backend:
        answers = ask(backend, "valid", "flaky", "down", "bad_request")
        assert SECRET not in repr(backend)
    assert set(fake.authorization) == {f"Bearer {SECRET}"}
    assert all(SECRET not in (a.error or "") for a in answers)
    monkeypatch.setenv(API_KEY_ENV, SECRET + "-env")
    with fast_backend(url) as backend:
        ask(backend, "valid")
    assert fake.authorization[-1] == f"Bearer {SECRET}-env"
    assert "retry" in caplog.text  # the retries were logged ...
    assert SECRET not in caplog.text  # ... without the key


def test_make_backend_picks_http_for_an_endpoint(server: tuple[FakeServer, str]) -> None:
    _, url = server
    backend = make_backend("served-model", endpoint=url, api_key=SECRET, max_concurrency=3)
    assert isinstance(backend, HttpBackend) and isinstance(backend, AnnotatorBackend)
    assert backend.name == "served-model" and backend.max_concurrency == 3
    backend.close()
    with pytest.raises(ValueError, match="only used with an endpoint"):
        make_backend("some/local-model", api_key=SECRET)


SCENARIOS = ["valid", "fence", "broken", "out_of_range", "unknown_domain", "down", "logprobs"]


def test_annotate_run_through_http_caches_and_retries_errors(
    server: tuple[FakeServer, str],
    annotate_run_dir: RunMaker,
    annotate_pages: list[tuple[str, str]],
    tmp_path: Path,
) -> None:
    fake, url = server
    pages = [
        (doc_id, f"SCENARIO:{s}\n{text}")
        for s, (doc_id, text) in zip(SCENARIOS, annotate_pages, strict=False)
    ]
    run = annotate_run_dir(pages=pages)
    scenario_of = {doc_id: s for s, (doc_id, _) in zip(SCENARIOS, pages, strict=False)}
    progress: list[tuple[int, int]] = []
    with fast_backend(url, max_retries=1, max_concurrency=3) as backend:
        first = annotate_run(
            run, backend, sample=7, batch_size=2, max_chars=500, progress=lambda *a: progress.append(a)
        )
        assert (first.sampled, first.cached, first.asked) == (7, 0, 7)
        assert (first.ok, first.unparseable, first.off_taxonomy, first.error) == (3, 2, 1, 1)
        assert progress[-1] == (7, 7) and len(progress) == 7  # streamed: one call per answer
        assert first.path is not None and first.path.parent == run / "annotations"

        rows = {row["id"]: row for row in load_annotations(run).to_pylist()}
        texts = dict(pages)
        for doc_id, row in rows.items():
            scenario = scenario_of[doc_id]
            assert row["prompt_version"] == load_prompt().version and row["model"] == "qwen2.5-7b-instruct"
            assert row["text"] == truncate(texts[doc_id], 500) and len(row["text"]) <= 500
            if scenario in ("valid", "fence"):
                assert row["status"] == "ok" and row["domain"] == "science"
                assert row[dimension_column("educational_value")] == 4.0 and row["domain_confidence"] is None
            elif scenario == "logprobs":
                assert row["status"] == "ok"
                assert row[dimension_column("educational_value")] == pytest.approx(
                    4 * 0.5 + 5 * 0.3 + 3 * 0.2
                )
                assert row[dimension_column("coherence")] == 5.0
                assert row["domain_confidence"] == pytest.approx(0.9)
            elif scenario == "down":
                assert row["status"] == "error" and "503" in row["error"] and row["answer"] is None
            elif scenario == "unknown_domain":
                # Rated, but with a domain of its own: the scores stay, the domain does not.
                assert row["status"] == "off_taxonomy" and "'cooking'" in row["error"]
                assert row[dimension_column("overall")] == 4.0 and row["domain"] is None
            else:
                assert row["status"] == "unparseable" and row["answer"] and row["error"]
                assert row[dimension_column("overall")] is None and row["domain"] is None

        # Rerun: only the transport error is asked again.
        fake.healed = True
        second = annotate_run(run, backend, sample=7, batch_size=2, max_chars=500)
        assert (second.cached, second.asked, second.ok, second.error) == (6, 1, 1, 0)
        assert fake.seen["down"] == 3
        third = annotate_run(run, backend, sample=7, batch_size=2, max_chars=500)
        assert (third.cached, third.asked, third.path) == (7, 0, None)
        statuses = {row["status"] for row in load_annotations(run).to_pylist()}
        assert statuses == {"ok", "unparseable", "off_taxonomy"}

        # An edited prompt is a new version: everything is asked again, old answers stay.
        edited = tmp_path / "annotate_v1.md"
        original = load_prompt().templates
        edited.write_text(
            "".join(f"<!-- role: {role} -->\n{text} Be strict.\n" for role, text in original),
            encoding="utf-8",
        )
        fourth = annotate_run(run, backend, sample=7, prompt_version=str(edited), max_chars=500)
        assert fourth.prompt_version != first.prompt_version and fourth.asked == 7
        assert "Be strict." in fake.bodies[-1]["messages"][-1]["content"]
        assert load_annotations(run).num_rows == 14
