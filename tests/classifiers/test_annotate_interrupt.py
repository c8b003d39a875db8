"""Answers reach the disk as they arrive, and a stopped annotate keeps every answer it received.

The cadence, the status counts and the signal handling are shown with small in-process backends whose
timing the test controls; the whole promise (SIGTERM, exit 143, every answered document on disk, a rerun that
asks only the rest) is shown with the real command against the stand-in annotator server in subprocesses.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from corpusmill.classifiers.annotate import AnnotationInterrupted, annotate_run
from corpusmill.classifiers.answers import SCORE_KEYS
from corpusmill.classifiers.backends import BackendAnswer, Conversation
from corpusmill.classifiers.cache import annotation_files, read_all_annotations
from corpusmill.classifiers.prompt import load_prompt
from corpusmill.demo import write_demo_corpus

RunMaker = Callable[..., Path]
MODEL = "corpusmill-demo-annotator"
VALID = {**dict.fromkeys(SCORE_KEYS, 3), "domain": "science"}
OK = BackendAnswer(text=json.dumps(VALID))


def document_of(conversation: Conversation) -> str:
    """The document a conversation asks about (between the prompt's <document> tags)."""
    content = conversation[-1]["content"]
    return content[content.find("<document>") + len("<document>") : content.rfind("</document>")].strip()


def rows_per_file(run: Path) -> list[int]:
    return [pq.read_metadata(path).num_rows for path in annotation_files(run)]


class StreamingBackend:
    """Answers in order with `window` conversations in flight; optionally signals itself after `signal_after`.

    After sending the signal it waits for `stop()`, as a real backend's next submission would come after the
    caller saw the signal; the conversations in flight are then answered, nothing more is submitted.
    """

    def __init__(
        self,
        answer: Callable[[int, Conversation], BackendAnswer] = lambda index, conversation: OK,
        *,
        window: int = 1,
        signal_after: int | None = None,
        signum: int = signal.SIGTERM,
        before_answer: Callable[[int], None] | None = None,
        name: str = "fake-model",
    ) -> None:
        self.name = name
        self.answer = answer
        self.window = window
        self.signal_after = signal_after
        self.signum = signum
        self.before_answer = before_answer
        self.stopped = threading.Event()
        self.stop_calls = 0
        self.asked: list[str] = []

    def annotate(self, messages_batch: Sequence[Conversation]) -> list[BackendAnswer]:
        raise AssertionError("a streaming backend is consumed through annotate_stream")

    def annotate_stream(self, conversations: Sequence[Conversation]) -> Iterator[tuple[int, BackendAnswer]]:
        pending: collections.deque[tuple[int, Conversation]] = collections.deque()
        submitted = completed = 0
        while True:
            while not self.stopped.is_set() and submitted < len(conversations) and len(pending) < self.window:
                conversation = conversations[submitted]
                self.asked.append(document_of(conversation))
                pending.append((submitted, conversation))
                submitted += 1
            if not pending:
                return
            index, conversation = pending.popleft()
            if self.before_answer is not None:
                self.before_answer(completed)
            yield index, self.answer(index, conversation)
            completed += 1
            if completed == self.signal_after:
                os.kill(os.getpid(), self.signum)
                assert self.stopped.wait(10), "annotate_run did not stop the backend after the signal"

    def stop(self) -> None:
        self.stop_calls += 1
        self.stopped.set()


class BatchBackend:
    """A backend without a stream (as the local model): whole batches, optionally signalling during one."""

    def __init__(self, *, signal_in_call: int | None = None, signum: int = signal.SIGINT) -> None:
        self.name = "fake-batch-model"
        self.calls: list[int] = []
        self.signal_in_call = signal_in_call
        self.signum = signum

    def annotate(self, messages_batch: Sequence[Conversation]) -> list[BackendAnswer]:
        self.calls.append(len(messages_batch))
        if len(self.calls) == self.signal_in_call:
            os.kill(os.getpid(), self.signum)  # arrives mid-batch: the batch still completes
        return [OK for _ in messages_batch]


@pytest.fixture
def handlers_kept() -> Iterator[None]:
    """The handlers a test starts with must be back in place when annotate_run returns or raises."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_streamed_answers_are_written_every_flush_every(annotate_run_dir: RunMaker) -> None:
    run = annotate_run_dir()
    backend = StreamingBackend(window=3)
    progress: list[tuple[int, int]] = []
    result = annotate_run(
        run, backend, sample=13, flush_every=4, flush_seconds=60, progress=lambda *a: progress.append(a)
    )
    assert (result.asked, result.ok, result.answered, result.left) == (13, 13, 13, 0)
    assert rows_per_file(run) == [4, 4, 4, 1] and result.paths == annotation_files(run)
    assert progress == [(n, 13) for n in range(1, 14)]  # one step per answer, in completion order
    again = annotate_run(run, StreamingBackend(), sample=13)
    assert (again.cached, again.asked, again.paths) == (13, 0, [])


def test_a_slow_answer_does_not_hold_back_the_ones_before_it(annotate_run_dir: RunMaker) -> None:
    run = annotate_run_dir()
    seen_before_third: list[list[int]] = []

    def before_answer(completed: int) -> None:
        if completed == 2:  # the third answer is slow: the first two must be on disk before it arrives
            deadline = time.monotonic() + 10
            while not annotation_files(run) and time.monotonic() < deadline:
                time.sleep(0.02)
            seen_before_third.append(rows_per_file(run))

    result = annotate_run(
        run, StreamingBackend(before_answer=before_answer), sample=3, flush_every=100, flush_seconds=0.2
    )
    assert seen_before_third == [[2]]
    assert result.ok == 3 and sum(rows_per_file(run)) == 3


def test_a_batch_backend_is_asked_and_written_a_small_batch_at_a_time(annotate_run_dir: RunMaker) -> None:
    run = annotate_run_dir()
    backend = BatchBackend()
    result = annotate_run(run, backend, sample=6, batch_size=2, flush_every=2)
    assert backend.calls == [2, 2, 2]
    assert result.ok == 6 and rows_per_file(run) == [2, 2, 2]


def test_every_status_is_counted_and_stored(annotate_run_dir: RunMaker) -> None:
    run = annotate_run_dir()
    answers = [
        OK,
        BackendAnswer(text="I would rate it a four."),
        BackendAnswer(text='{"educational_value": 4, "coh', finish_reason="length", status="truncated"),
        BackendAnswer(text=json.dumps({**VALID, "domain": "cooking"})),
        BackendAnswer(error="HTTP 400: context too long", hint="pass --context to fit the documents"),
        BackendAnswer(error="HTTP 503", hint="pass --context to fit the documents"),
        BackendAnswer(text=json.dumps(VALID), shown_text="the document as the backend cut it"),
    ]
    result = annotate_run(run, StreamingBackend(lambda index, _: answers[index], window=4), sample=7)
    counts = (result.ok, result.unparseable, result.truncated, result.off_taxonomy, result.error)
    assert counts == (2, 1, 1, 1, 2) and result.answered == 7
    assert result.hints == ["pass --context to fit the documents"]
    rows = {row["answer"]: row for row in read_all_annotations(run).to_pylist()}
    truncated = rows[answers[2].text]
    assert truncated["status"] == "truncated" and truncated["dim__overall"] is None
    assert "length" in truncated["error"]
    assert rows[answers[1].text]["status"] == "unparseable"
    off = rows[answers[3].text]
    assert off["status"] == "off_taxonomy" and off["domain"] is None and off["dim__overall"] == 3.0
    assert {row["status"] for row in rows.values() if row["answer"] is None} == {"error"}
    texts = [row["text"] for row in read_all_annotations(run).to_pylist()]
    assert "the document as the backend cut it" in texts


def test_documents_are_fitted_to_the_backends_token_budget(annotate_run_dir: RunMaker) -> None:
    from corpusmill.classifiers.fit import fit_document

    run = annotate_run_dir()
    backend = StreamingBackend()
    backend.prompt_token_budget = 900  # type: ignore[attr-defined]
    annotate_run(run, backend, sample=5, max_chars=6000)
    prompt = load_prompt(max_chars=6000)
    stored = {row["id"]: row["text"] for row in read_all_annotations(run).to_pylist()}
    assert sorted(backend.asked) == sorted(stored.values())  # what was shown is what is stored
    table = pq.read_table(run / "documents", columns=["id", "text"])
    pages = dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True))
    assert all(stored[doc_id] == fit_document(prompt, pages[doc_id], 900) for doc_id in stored)
    assert any(len(stored[doc_id]) < len(prompt.shown_text(pages[doc_id])) for doc_id in stored)


@pytest.mark.usefixtures("handlers_kept")
def test_sigterm_stops_submitting_waits_for_the_flight_and_a_rerun_asks_the_rest(
    annotate_run_dir: RunMaker,
) -> None:
    run = annotate_run_dir()
    backend = StreamingBackend(window=3, signal_after=4, signum=signal.SIGTERM)
    with pytest.raises(AnnotationInterrupted) as caught:
        annotate_run(run, backend, sample=20, flush_every=100, flush_seconds=60)
    stopped = caught.value
    assert (stopped.exit_code, stopped.signal_name, stopped.abandoned) == (143, "SIGTERM", False)
    assert backend.stop_calls == 1
    # Four answered before the signal, two more were in flight: all six are on disk, none was dropped.
    assert (stopped.result.answered, stopped.result.left) == (6, 14) and len(backend.asked) == 6
    assert str(stopped) == (
        "interrupted: 6 answers saved, 14 documents left; rerun the same command to ask only those"
    )
    first = read_all_annotations(run).column("text").to_pylist()
    assert sorted(first) == sorted(backend.asked)

    rerun = StreamingBackend(window=3)
    result = annotate_run(run, rerun, sample=20)
    assert (result.cached, result.asked, result.ok) == (6, 14, 14)
    assert not set(rerun.asked) & set(backend.asked)
    ids = read_all_annotations(run).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 20


@pytest.mark.usefixtures("handlers_kept")
def test_sigint_during_a_batch_ends_after_that_batch(annotate_run_dir: RunMaker) -> None:
    run = annotate_run_dir()
    backend = BatchBackend(signal_in_call=2, signum=signal.SIGINT)
    with pytest.raises(AnnotationInterrupted) as caught:
        annotate_run(run, backend, sample=10, batch_size=3, flush_every=100)
    assert caught.value.exit_code == 130 and backend.calls == [3, 3]
    assert (caught.value.result.answered, caught.value.result.left) == (6, 4)
    assert rows_per_file(run) == [6]


@pytest.mark.usefixtures("handlers_kept")
def test_a_second_signal_stops_at_once_and_keeps_what_arrived(annotate_run_dir: RunMaker) -> None:
    run = annotate_run_dir()
    release = threading.Event()

    class Impatient(StreamingBackend):
        """Its answers in flight never come: the user's second Ctrl-C must not wait for them."""

        def stop(self) -> None:
            first = self.stop_calls == 0
            super().stop()
            if first:
                os.kill(os.getpid(), signal.SIGINT)

    def answer(index: int, conversation: Conversation) -> BackendAnswer:
        if index >= 2:
            release.wait(10)
        return OK

    backend = Impatient(answer, window=3, signal_after=2, signum=signal.SIGINT)
    try:
        with pytest.raises(AnnotationInterrupted) as caught:
            annotate_run(run, backend, sample=10, flush_every=100, flush_seconds=60)
    finally:
        release.set()
    assert caught.value.abandoned and caught.value.exit_code == 130
    assert caught.value.result.answered == 2 and rows_per_file(run) == [2]
    assert "abandoned" in str(caught.value)


def test_off_the_main_thread_no_handler_is_installed(annotate_run_dir: RunMaker) -> None:
    run = annotate_run_dir()
    outcome: list[object] = []

    def work() -> None:
        outcome.append(annotate_run(run, StreamingBackend(), sample=3))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert [result.ok for result in outcome] == [3]  # type: ignore[attr-defined]


# --- the real command, stopped by SIGTERM -------------------------------------------------------------------


def _corpusmill(*args: str) -> list[str]:
    return [sys.executable, "-m", "corpusmill.cli", *args]


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sample crawl, a run of its extracted pages): what `make demo` annotates, made small."""
    root = tmp_path_factory.mktemp("interrupt")
    sample = root / "sample"
    write_demo_corpus(sample, num_files=1)
    recipe = root / "extract.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "annotate-interrupt",
                "input": {"paths": [str(sample / "*.warc.gz")], "format": "warc"},
                "stages": [{"stage": "extract"}],
            }
        ),
        encoding="utf-8",
    )
    run = root / "run"
    subprocess.run(
        _corpusmill("run", str(recipe), "--engine", "local", "--output", str(run)),
        check=True,
        capture_output=True,
    )
    return sample, run


@pytest.fixture
def server(curated: tuple[Path, Path], tmp_path: Path) -> Iterator[str]:
    """The stand-in annotator as its own process: one slot, 0.2 s an answer, so a run is slow enough to stop."""
    url_file, log = tmp_path / "annotator.url", tmp_path / "server.log"
    command = _corpusmill(
        "demo-annotator-server", str(curated[0]), "--url-file", str(url_file), "--delay-s", "0.2"
    )
    with open(log, "wb") as out:
        process = subprocess.Popen([*command, "--capacity", "1"], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: url_file.exists() or process.poll() is not None, "the annotator server")
        assert process.poll() is None, log.read_text()
        yield url_file.read_text().strip()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_sigterm_saves_every_answer_and_the_rerun_asks_only_the_rest(
    curated: tuple[Path, Path], server: str, tmp_path: Path
) -> None:
    run = curated[1]
    for path in annotation_files(run):
        path.unlink()

    def stats() -> dict:
        return httpx.get(f"{server.removesuffix('/v1')}/stats").json()

    command = _corpusmill(
        "annotate",
        str(run),
        "--endpoint",
        server,
        "--model",
        MODEL,
        "--sample",
        "24",
        "--max-concurrency",
        "2",
    )
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: stats()["generations_finished"] >= 3 or first.poll() is not None, "three answers")
        assert first.poll() is None, "annotate finished before it could be interrupted"
        first.send_signal(signal.SIGTERM)
        _, errors = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143, errors
    said = re.search(
        r"interrupted: (\d+) answers saved, (\d+) documents left; rerun the same command to ask only those",
        errors,
    )
    assert said is not None, errors
    saved, left = map(int, said.groups())
    assert saved + left == 24 and 3 <= saved < 24

    after_stop = stats()
    assert after_stop["running"] == after_stop["waiting"] == 0  # nothing was left generating for nobody
    rows = read_all_annotations(run).to_pylist()
    # Every generation the server finished reached the disk, once.
    assert len(rows) == saved == after_stop["generations_finished"]
    assert after_stop.get("wasted", 0) == 0
    assert len({row["id"] for row in rows}) == saved and {row["status"] for row in rows} == {"ok"}

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    counts = re.search(r"annotated (\d+) sampled documents .* (\d+) asked -> (\d+) ok", rerun.stdout)
    assert counts is not None, rerun.stdout
    assert tuple(map(int, counts.groups())) == (24, left, left)
    assert f"{saved} cached" in rerun.stdout
    final = stats()
    assert final["generations_finished"] == 24 and final.get("repeated", 0) == 0  # no document asked twice
    ids = read_all_annotations(run).column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 24


def test_default_settings_against_a_one_slot_server_waste_no_generation(
    curated: tuple[Path, Path], tmp_path: Path
) -> None:
    """The llama.cpp case: one slot, a slow answer each; nothing but the endpoint and model given.

    The server's 0.5 s per document stands for the 10 s of a real one: the client's defaults (adaptive
    concurrency, a 600 s timeout) are what keep a queue from forming, whatever the answer time.
    """
    from corpusmill.cli import app
    from corpusmill.demo.annotator_server import AnnotatorServer

    run = tmp_path / "run"
    shutil.copytree(curated[1], run)
    for path in annotation_files(run):
        path.unlink()
    server = AnnotatorServer.for_sample(curated[0], delay_s=0.5, capacity=1)
    with server as url:
        result = CliRunner().invoke(
            app, ["annotate", str(run), "--endpoint", url, "--model", MODEL, "--sample", "20"]
        )
        assert server.wait_idle(10)
    assert result.exit_code == 0, result.output
    assert "0 cached, 20 asked -> 20 ok" in result.output and "0 errors" in result.output
    stats = server.stats.snapshot()
    assert stats["requests"] == stats["completed"] == stats["generations_finished"] == 20
    assert stats["wasted"] == stats["repeated"] == 0 and stats["peak_running"] == 1
