"""The stand-in annotator: real HTTP on loopback, the project's own HTTP backend, prompt and answer parser.

Documents are what the pipeline would send: trafilatura's main text of the sample's pages, cut to the prompt's
length. The answers must parse, carry fractional scores through their log-probabilities, agree with the
sample's truth (domains, low scores for junk), stay the same for the same text, and the server must refuse
what a real OpenAI-compatible server refuses, queue behind `capacity`, and run and stop as a CLI command.
As a test server for clients it must also count the generations a client left behind (wasted) or asked for
again (repeated), refuse what exceeds its context as vLLM does and report the context where vLLM and
llama.cpp do, take or refuse `json_schema` answers, and bend scores when a repeat penalty is left on.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trafilatura

from corpusmill.classifiers.answers import SCORE_KEYS, TokenLogprobs, parse_answer
from corpusmill.classifiers.backends.http import HttpBackend
from corpusmill.classifiers.prompt import load_prompt
from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, OVERALL
from corpusmill.core.stats import Stats
from corpusmill.demo import write_demo_corpus
from corpusmill.demo.annotator_server import (
    DEFAULT_MODEL,
    AnnotatorServer,
    answer_tokens,
    digit_distribution,
    penalized,
    prompt_token_count,
)
from corpusmill.demo.oracle import PageOracle, TruthRow, written_digit
from corpusmill.filters.extract import ExtractParams
from corpusmill.io.warc import read_warc
from corpusmill.shards.tokenizer import qwen25_encoding

PROMPT = load_prompt()
JUNK = ("spam", "low_quality", "thin")
# Pages per kind taken from the sample: enough to measure agreement, few enough to stay quick.
PER_KIND = {"good": 60, "spam": 12, "low_quality": 12, "thin": 12, "exact_duplicate": 8, "near_duplicate": 8}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    write_demo_corpus(out, num_files=1)
    return out


@pytest.fixture(scope="module")
def oracle(sample: Path) -> PageOracle:
    return PageOracle.from_sample(sample)


@pytest.fixture(scope="module")
def pages(sample: Path, oracle: PageOracle) -> list[tuple[TruthRow, str]]:
    """(truth row, text as `annotate` shows it) for a spread of pages, extracted as `extract` does."""
    rows = {row.warc_record_id: row for row in oracle.rows}
    params = ExtractParams()
    options = {
        "favor_precision": params.favor_precision,
        "include_tables": params.include_tables,
        "include_comments": params.include_comments,
        "deduplicate": params.deduplicate,
    }
    taken: dict[str, int] = {}
    out = []
    for path in sorted(sample.glob("*.warc.gz")):
        for batch in read_warc(str(path), batch_size=64, stats=Stats()):
            for doc in batch.to_pylist():
                row = rows[f"<{doc['source_id']}>"]
                if taken.get(row.kind, 0) >= PER_KIND.get(row.kind, 0):
                    continue
                text = trafilatura.extract(doc["html"], output_format="txt", **options)
                text = unicodedata.normalize("NFC", text or "").strip()
                if text:
                    taken[row.kind] = taken.get(row.kind, 0) + 1
                    out.append((row, PROMPT.shown_text(text)))
    return out


@pytest.fixture(scope="module")
def served(oracle: PageOracle) -> Iterator[tuple[AnnotatorServer, str]]:
    server = AnnotatorServer(oracle)
    with server as url:
        yield server, url


@pytest.fixture(scope="module")
def answers(served: tuple[AnnotatorServer, str], pages: list[tuple[TruthRow, str]]) -> list:
    """Every page asked once through the project's HTTP backend, as `annotate --endpoint` asks."""
    _, url = served
    with HttpBackend(url, DEFAULT_MODEL, concurrency=8) as backend:
        replies = backend.annotate([PROMPT.messages(text) for _, text in pages])
    return [parse_answer(reply.text, reply.token_logprobs) for reply in replies]


def _original(oracle: PageOracle, row: TruthRow) -> TruthRow:
    by_url = {r.url: r for r in oracle.rows}
    while row.duplicate_of:
        row = by_url[row.duplicate_of]
    return row


def _chat(url: str, text: str, timeout: float = 30, **extra: object) -> httpx.Response:
    body = {"model": DEFAULT_MODEL, "messages": PROMPT.messages(text), "logprobs": True, "top_logprobs": 10}
    return httpx.post(f"{url}/chat/completions", json={**body, **extra}, timeout=timeout)


def test_answers_parse_with_fractional_scores_and_domains_that_match_the_truth(
    oracle: PageOracle, pages: list[tuple[TruthRow, str]], answers: list
) -> None:
    assert all(answer.status == "ok" for answer in answers), [a.error for a in answers if a.status != "ok"]
    good = [(row, answer) for (row, _), answer in zip(pages, answers, strict=True) if row.kind == "good"]
    assert len(good) >= 50
    agree = sum(answer.domain == row.true_domain for row, answer in good) / len(good)
    assert agree >= 0.85, agree
    scores = [value for answer in answers for value in [*answer.scores.values(), answer.overall]]
    fractional = sum(abs(value - round(value)) > 0.01 for value in scores) / len(scores)
    assert fractional > 0.5, fractional
    # Over HTTP, in a concurrent batch, exactly what the oracle says of the same text.
    for (_, text), answer in zip(pages, answers, strict=True):
        judgement = oracle.judge(text)
        assert answer.domain == judgement.domain
        assert answer.domain_confidence == pytest.approx(judgement.domain_confidence, abs=1e-6)
        for name in DIMENSION_NAMES:
            assert answer.scores[name] == pytest.approx(judgement.scores[name], abs=0.005)
        assert answer.overall == pytest.approx(judgement.scores[OVERALL], abs=0.005)


def test_junk_scores_low_and_copies_get_their_originals_labels(
    oracle: PageOracle, pages: list[tuple[TruthRow, str]], answers: list
) -> None:
    floor = 2.5
    seen = set()
    for (row, text), answer in zip(pages, answers, strict=True):
        seen.add(row.kind)
        if row.kind in ("spam", "low_quality"):
            assert answer.overall <= 1.0 and answer.scores["educational_value"] <= 2.0, (row.url, answer)
        elif row.kind == "thin":
            assert answer.overall < floor and answer.scores["educational_value"] <= 3.0, (row.url, answer)
        else:
            assert answer.overall >= floor, (row.url, answer)
        if row.kind in ("exact_duplicate", "near_duplicate"):
            assert oracle.lookup(text) == _original(oracle, row)
    assert {"good", "spam", "low_quality", "exact_duplicate", "near_duplicate"} <= seen
    spam = [a for (row, _), a in zip(pages, answers, strict=True) if row.kind == "spam"]
    assert all(a.scores["safety"] < 4 for a in spam)


def test_same_text_same_answer_whatever_the_order(
    served: tuple[AnnotatorServer, str], oracle: PageOracle, pages: list[tuple[TruthRow, str]]
) -> None:
    _, url = served
    text = pages[0][1]
    first, second = _chat(url, text).json(), _chat(url, text).json()
    assert first["choices"] == second["choices"]
    texts = [text for _, text in pages[:40]]
    forward = [oracle.judge(t) for t in texts]
    fresh = oracle.relabelled()
    backward = [fresh.judge(t) for t in reversed(texts)][::-1]
    assert forward == backward
    other_seed = [oracle.relabelled(seed=1).judge(t) for t in texts]
    assert other_seed != forward


def test_noise_swaps_some_domains_for_neighbours_with_less_confidence(
    oracle: PageOracle, pages: list[tuple[TruthRow, str]]
) -> None:
    good = [(row, text) for row, text in pages if row.kind == "good"]
    clean = oracle.relabelled(noise=0.0)
    assert all(clean.judge(text).domain == row.true_domain for row, text in good)
    noisy = oracle.relabelled(noise=0.5)
    judged = [(row, noisy.judge(text)) for row, text in good]
    swapped = [j for row, j in judged if j.domain != row.true_domain]
    kept = [j for row, j in judged if j.domain == row.true_domain]
    assert 0.2 < len(swapped) / len(judged) < 0.8
    assert max(j.domain_confidence for j in swapped) < min(j.domain_confidence for j in kept)


def test_cut_documents_still_find_their_page(oracle: PageOracle, pages: list[tuple[TruthRow, str]]) -> None:
    short = load_prompt(max_chars=300)
    found = [(_original(oracle, row), oracle.lookup(short.shown_text(text))) for row, text in pages]
    # Junk pages often share their whole text with other junk: any of them will do, they are alike.
    assert all(match is not None and match.kind == original.kind for original, match in found)
    good = [original == match for original, match in found if original.kind == "good"]
    assert sum(good) / len(good) > 0.95


def test_truth_without_a_domain_falls_back_to_the_topic() -> None:
    row = {
        "url": "https://x.example/a",
        "warc_record_id": "<urn:uuid:1>",
        "kind": "good",
        "topic": "software",
    }
    assert TruthRow.from_json(row).true_domain == "technology"
    assert TruthRow.from_json({**row, "topic": "forum", "domain": None}).true_domain == "social-media"
    assert TruthRow.from_json({**row, "domain": "finance"}).true_domain == "finance"
    assert TruthRow.from_json({**row, "topic": "astrology"}).true_domain == "other"
    assert TruthRow.from_json({**row, "topic": None}).true_domain == "other"


def test_text_from_no_page_of_the_sample_is_other(served: tuple[AnnotatorServer, str]) -> None:
    server, url = served
    before = server.stats.snapshot()["unmatched"]
    text = (
        "Quarterly maintenance of the lighthouse lens requires a soft brush, distilled water and patience; "
        "the keeper records every cleaning in a ledger kept beside the lamp room door."
    )
    reply = _chat(url, text)
    answer = parse_answer(reply.json()["choices"][0]["message"]["content"])
    assert answer.status == "ok" and answer.domain == "other"
    assert 2.0 <= answer.overall <= 3.0
    assert server.stats.snapshot()["unmatched"] == before + 1


def test_tokens_spell_the_answer_and_digits_carry_the_expectation(oracle: PageOracle, pages: list) -> None:
    judgement = oracle.judge(pages[0][1])
    content, entries = answer_tokens(judgement, top_n=10)
    assert "".join(entry["token"] for entry in entries) == content
    tokens = [
        TokenLogprobs(e["token"], e["logprob"], tuple((t["token"], t["logprob"]) for t in e["top_logprobs"]))
        for e in entries
    ]
    parsed = parse_answer(content, tokens)
    for key in SCORE_KEYS:
        value = parsed.overall if key == OVERALL else parsed.scores[key]
        assert value == pytest.approx(judgement.scores[key], abs=0.005)
    for expectation in (0.0, 0.3, 0.45, 1.55, 2.0, 2.45, 3.7, 4.55, 4.9, 5.0):
        ranked = digit_distribution(expectation)
        assert ranked[0][0] == str(written_digit(expectation))
        assert len({p for _, p in ranked[:2]}) == 2 or len(ranked) == 1
        assert sum(p for _, p in ranked) == pytest.approx(1.0)
        assert sum(int(d) * p for d, p in ranked) == pytest.approx(expectation, abs=0.005)


def test_protocol_errors_models_and_health(served: tuple[AnnotatorServer, str], pages: list) -> None:
    _, url = served
    root = url.removesuffix("/v1")
    malformed = httpx.post(
        f"{url}/chat/completions", content=b'{"messages": [', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    error = malformed.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_json" and error["message"]
    no_document = httpx.post(
        f"{url}/chat/completions", json={"messages": [{"role": "user", "content": "Hello there"}]}
    )
    assert no_document.status_code == 400 and no_document.json()["error"]["code"] == "missing_document"
    assert httpx.post(f"{url}/chat/completions", json={"messages": []}).status_code == 400
    assert _chat(url, pages[0][1], top_logprobs=50).status_code == 400
    assert _chat(url, pages[0][1], model="someone-else").status_code == 404
    assert httpx.get(f"{root}/nowhere").status_code == 404
    models = httpx.get(f"{url}/models").json()
    assert [m["id"] for m in models["data"]] == [DEFAULT_MODEL]
    assert httpx.get(f"{root}/health").json()["status"] == "ok"
    cut = _chat(url, pages[0][1], max_tokens=5).json()["choices"][0]
    assert cut["finish_reason"] == "length" and len(cut["logprobs"]["content"]) == 5
    plain = _chat(url, pages[0][1], logprobs=False, top_logprobs=None).json()
    assert plain["choices"][0]["logprobs"] is None and plain["usage"]["completion_tokens"] > 0


def _timed_batch(url: str, texts: list[str]) -> float:
    started = time.perf_counter()
    with HttpBackend(url, DEFAULT_MODEL, concurrency=len(texts)) as backend:
        replies = backend.annotate([PROMPT.messages(text) for text in texts])
    assert all(reply.error is None for reply in replies)
    return time.perf_counter() - started


def test_capacity_queues_generations_behind_the_delay(oracle: PageOracle, pages: list) -> None:
    texts = [text for _, text in pages[:4]]
    one_at_a_time = AnnotatorServer(oracle, delay_s=0.2, capacity=1)
    with one_at_a_time as url:
        elapsed = _timed_batch(url, texts)
        stats = httpx.get(f"{url.removesuffix('/v1')}/stats").json()
    assert elapsed >= 0.8
    assert stats["generations_started"] == stats["generations_finished"] == 4
    assert stats["peak_running"] == 1 and stats["waiting"] == stats["running"] == 0
    unlimited = AnnotatorServer(oracle, delay_s=0.2)
    with unlimited as url:
        assert _timed_batch(url, texts) < 0.75
    assert unlimited.stats.snapshot()["peak_running"] > 1


def test_cli_serves_writes_its_url_and_exits_cleanly_on_sigterm(
    sample: Path, pages: list, tmp_path: Path
) -> None:
    url_file, log = tmp_path / "annotator.url", tmp_path / "server.log"
    command = [
        sys.executable,
        "-m",
        "corpusmill.cli",
        "demo-annotator-server",
        str(sample),
        "--port",
        "0",
        "--url-file",
        str(url_file),
        "--model",
        "qwen-stand-in",
        "--delay-s",
        "0.01",
        "--capacity",
        "2",
        "--context",
        "8192",
        "--flavour",
        "llama.cpp",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not url_file.exists():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        url = url_file.read_text().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        assert [m["id"] for m in httpx.get(f"{url}/models").json()["data"]] == ["qwen-stand-in"]
        props = httpx.get(f"{url.removesuffix('/v1')}/props").json()
        assert props["default_generation_settings"]["n_ctx"] == 8192 and props["total_slots"] == 2
        text = next(text for row, text in pages if row.kind == "good")
        with HttpBackend(url, "qwen-stand-in") as backend:
            (reply,) = backend.annotate([PROMPT.messages(text)])
        answer = parse_answer(reply.text, reply.token_logprobs)
        assert answer.status == "ok" and answer.overall is not None and answer.overall >= 2.5
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=30)
    assert returncode == 0, log.read_text()
    output = log.read_text()
    assert url in output and "Qwen2.5-Instruct" in output and "SIGTERM" in output


# --- The stand-in as a test server for clients: waste, queue, context window, JSON schema, sampling. ---


def _stats(url: str) -> dict:
    return httpx.get(f"{url.removesuffix('/v1')}/stats").json()


def _ask_in_thread(url: str, text: str, timeout: float) -> threading.Thread:
    """Send one request that may time out (the client then closes its connection, as httpx does)."""

    def ask() -> None:
        with contextlib.suppress(httpx.TimeoutException):
            _chat(url, text, timeout=timeout)

    thread = threading.Thread(target=ask)
    thread.start()
    return thread


def test_answers_the_client_left_are_wasted_and_asking_again_is_repeated(
    oracle: PageOracle, pages: list
) -> None:
    first, second, third = (text for _, text in pages[:3])
    server = AnnotatorServer(oracle, delay_s=0.3, capacity=1)
    with server as url:
        patient = _ask_in_thread(url, first, timeout=30)
        time.sleep(0.05)  # the patient one takes the slot
        impatient = _ask_in_thread(url, second, timeout=0.15)  # gives up while waiting in line
        patient.join()
        impatient.join()
        # Gives up while its answer is being generated.
        with pytest.raises(httpx.TimeoutException):
            _chat(url, third, timeout=0.1)
        assert server.wait_idle(timeout=10)
        assert _chat(url, second).status_code == 200  # the retry: generated a second time
        stats = _stats(url)
    assert stats["generations_finished"] == 4
    assert stats["completed"] == 2 and stats["wasted"] == 2 and stats["repeated"] == 1
    assert stats["waiting"] == stats["running"] == 0 and stats["peak_running"] == 1


def test_a_patient_client_wastes_nothing(oracle: PageOracle, pages: list) -> None:
    texts = [text for _, text in pages[:3]]
    server = AnnotatorServer(oracle, delay_s=0.05, capacity=1)
    with server as url:
        threads = [_ask_in_thread(url, text, timeout=30) for text in texts]
        for thread in threads:
            thread.join()
        stats = _stats(url)
    assert stats["completed"] == 3 and stats["wasted"] == stats["repeated"] == 0


def test_generation_time_grows_with_the_prompt(oracle: PageOracle, pages: list) -> None:
    text = pages[0][1]
    server = AnnotatorServer(oracle, delay_per_token_s=0.0005)
    with server as url:
        started = time.perf_counter()
        reply = _chat(url, text).json()
        elapsed = time.perf_counter() - started
    prompt_tokens = reply["usage"]["prompt_tokens"]
    assert prompt_tokens > 300
    assert elapsed >= prompt_tokens * 0.0005


def test_prompt_tokens_are_counted_as_qwen_reads_chatml(pages: list) -> None:
    messages = PROMPT.messages(pages[0][1])
    rendered = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    rendered += "<|im_start|>assistant\n"
    expected = len(qwen25_encoding().encode(rendered, allowed_special="all"))
    assert prompt_token_count([(m["role"], m["content"]) for m in messages]) == expected


def test_the_context_window_refuses_what_does_not_fit_as_vllm_does(oracle: PageOracle, pages: list) -> None:
    text = pages[0][1]
    messages = PROMPT.messages(text)
    prompt_tokens = prompt_token_count([(m["role"], m["content"]) for m in messages])
    server = AnnotatorServer(oracle, context=prompt_tokens + 100)
    with server as url:
        assert _chat(url, text, max_tokens=100).status_code == 200
        refused = _chat(url, text, max_tokens=101)
        left = _chat(url, text).json()["choices"][0]  # no max_tokens: whatever the window leaves
        models = httpx.get(f"{url}/models").json()["data"][0]
        stats = _stats(url)
        props = httpx.get(f"{url.removesuffix('/v1')}/props")
    assert refused.status_code == 400
    assert refused.json() == {
        "error": {
            "message": f"This model's maximum context length is {prompt_tokens + 100} tokens. However, you "
            f"requested {prompt_tokens + 101} tokens ({prompt_tokens} in the messages, 101 in the "
            "completion). Please reduce the length of the messages or completion.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        }
    }
    assert stats["rejected"] == 1 and stats["last_max_tokens"] is None
    assert left["finish_reason"] == "stop"
    assert models["max_model_len"] == prompt_tokens + 100 and models["owned_by"] == "vllm"
    assert props.status_code == 404  # vLLM has no /props
    small = AnnotatorServer(oracle, context=prompt_tokens + 5)
    with small as url:
        cut = _chat(url, text).json()["choices"][0]
        too_long = _chat(url, load_prompt(max_chars=20_000).shown_text(text * 20))
    assert cut["finish_reason"] == "length" and len(cut["logprobs"]["content"]) == 5
    assert too_long.status_code == 400
    message = too_long.json()["error"]["message"]
    assert message.startswith(f"This model's maximum context length is {prompt_tokens + 5} tokens.")
    assert "Please reduce the length of the messages." in message


def test_llama_cpp_flavour_reports_its_context_in_props(oracle: PageOracle) -> None:
    server = AnnotatorServer(oracle, context=4096, capacity=1, flavour="llama.cpp")
    with server as url:
        models = httpx.get(f"{url}/models").json()["data"][0]
        props = httpx.get(f"{url.removesuffix('/v1')}/props").json()
    assert models["owned_by"] == "llamacpp" and "max_model_len" not in models
    assert props["default_generation_settings"]["n_ctx"] == 4096 and props["total_slots"] == 1
    with pytest.raises(ValueError, match="flavour"):
        AnnotatorServer(oracle, flavour="tgi")


SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "annotation", "strict": True, "schema": {"type": "object"}},
}


def test_json_schema_is_answered_or_refused_for_a_fallback(oracle: PageOracle, pages: list) -> None:
    text = pages[0][1]
    server = AnnotatorServer(oracle)
    with server as url:
        reply = _chat(url, text, response_format=SCHEMA)
        beside = _chat(url, text, response_format={"type": "json_schema", "schema": {"type": "object"}})
        no_schema = _chat(url, text, response_format={"type": "json_schema"})
        stats = _stats(url)
    assert reply.status_code == beside.status_code == 200
    answer = parse_answer(reply.json()["choices"][0]["message"]["content"])
    assert answer.status == "ok"
    assert no_schema.status_code == 400
    assert stats["last_response_format"] == "json_schema"
    refusing = AnnotatorServer(oracle, reject_json_schema=True)
    with refusing as url:
        refused = _chat(url, text, response_format=SCHEMA)
        fallback = _chat(url, text, response_format={"type": "json_object"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "response_format json_schema is not supported"
    assert fallback.status_code == 200


NEUTRAL = {
    "temperature": 0,
    "top_p": 1,
    "repeat_penalty": 1.0,
    "repetition_penalty": 1.0,
    "presence_penalty": 0,
    "frequency_penalty": 0,
}


def test_a_repeat_penalty_left_on_bends_the_scores(oracle: PageOracle, pages: list) -> None:
    text, judgement = next(
        (text, oracle.judge(text))
        for _, text in pages
        if penalized(oracle.judge(text)).answer() != oracle.judge(text).answer()
    )
    server = AnnotatorServer(oracle, penalize_repeats=True)
    with server as url:
        neutral = _chat(url, text, **NEUTRAL).json()["choices"][0]["message"]["content"]
        sampling = _stats(url)["last_sampling"]
        default = _chat(url, text, temperature=0).json()["choices"][0]["message"]["content"]
        presence = _chat(url, text, **{**NEUTRAL, "presence_penalty": 0.5}).json()
    assert sampling == NEUTRAL
    assert json.loads(neutral) == judgement.answer()
    drifted = json.loads(default)
    assert drifted != judgement.answer() and drifted == penalized(judgement).answer()
    assert json.loads(presence["choices"][0]["message"]["content"]) == drifted
    written: set[int] = set()
    for key in SCORE_KEYS:  # a digit already written comes out one lower
        digit = judgement.answer()[key]
        assert drifted[key] == (digit - 1 if digit in written and digit > 0 else digit)
        written.add(drifted[key])


def test_the_projects_client_reads_unbent_scores_from_a_penalizing_llama_cpp(
    oracle: PageOracle, pages: list
) -> None:
    texts = [text for row, text in pages if row.kind == "good"][:3]
    server = AnnotatorServer(oracle, flavour="llama.cpp", context=8192, capacity=1, penalize_repeats=True)
    with server as url, HttpBackend(url, DEFAULT_MODEL, concurrency=2) as backend:
        replies = backend.annotate([PROMPT.messages(text) for text in texts])
        stats = server.stats.snapshot()
    assert [json.loads(reply.text) for reply in replies] == [oracle.judge(text).answer() for text in texts]
    assert stats["last_sampling"].get("repeat_penalty") == 1.0
    assert stats["wasted"] == stats["repeated"] == 0 and stats["completed"] == 3
