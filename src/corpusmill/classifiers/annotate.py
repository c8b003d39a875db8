"""`annotate`: have an LLM label a deterministic sample of a finished run, asking only what is not cached.

The flow is sample -> look up the cache -> ask the backend -> append answers. Every answer is keyed by
(document id, prompt version, model), so rerunning the same command asks nothing, growing the sample asks only
for the new documents, and a new prompt or model asks afresh while the old answers stay on disk.

Answers are the expensive part, so they reach the disk soon after they arrive: every `flush_every` answers or
every `flush_seconds`, whichever comes first, the pending ones are appended to the cache as one small file. A
backend that streams answers in completion order (`annotate_stream`, the HTTP backend) is consumed as it
answers; one that answers whole batches (the local model) is asked a small batch at a time. A SIGINT or
SIGTERM does not lose work either: nothing more is submitted, the answers in flight are awaited and written,
and `AnnotationInterrupted` says how many were saved and how many documents are left, which a rerun of the
same command asks for (a second signal stops at once, writing only what has arrived).

Where the backend knows how many prompt tokens the server's context leaves (`prompt_token_budget`), each
document is fitted to it before it is asked, and the fitted text is what the annotation stores: the distilled
classifiers train on exactly what the model read.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, overload

import pyarrow as pa

from corpusmill.classifiers.annotations import ANNOTATION_SCHEMA, STATUS_ERROR, STATUS_OK, dimension_column
from corpusmill.classifiers.answers import parse_answer
from corpusmill.classifiers.backends import AnnotatorBackend, BackendAnswer, Conversation
from corpusmill.classifiers.cache import annotations_dir, load_annotations, missing_ids, write_annotations
from corpusmill.classifiers.prompt import DEFAULT_MAX_CHARS, DEFAULT_VERSION, Prompt, load_prompt
from corpusmill.classifiers.sampling import sample_documents
from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, OVERALL

logger = logging.getLogger(__name__)

DEFAULT_FLUSH_EVERY = 16
DEFAULT_FLUSH_SECONDS = 10.0
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
# How often the wait for streamed answers looks up from the queue: to see a stop request and a due flush.
_POLL_SECONDS = 0.1

Progress = Callable[[int, int], None]
"""Called as `progress(done, total)` as answers arrive, `total` being the documents to ask."""

# The statuses an answer can end with, each counted in the `AnnotateResult` field of the same name.
COUNTED_STATUSES: tuple[str, ...] = ("ok", "unparseable", "truncated", "off_taxonomy", "error")


@dataclass
class AnnotateResult:
    """What one annotate call did: how many documents were sampled, found cached, asked and how they fared."""

    prompt_version: str
    model: str
    sampled: int = 0
    cached: int = 0
    asked: int = 0
    ok: int = 0
    unparseable: int = 0
    truncated: int = 0
    off_taxonomy: int = 0
    error: int = 0
    paths: list[Path] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    """What the user can change about failures that will not go away by themselves, each said once."""

    @property
    def path(self) -> Path | None:
        """The last annotation file written (None when everything was cached)."""
        return self.paths[-1] if self.paths else None

    @property
    def answered(self) -> int:
        """Answers received (and written) by this call, whatever their status."""
        return sum(getattr(self, status) for status in COUNTED_STATUSES)

    @property
    def left(self) -> int:
        """Documents this call was to ask but has no answer for (only after an interruption)."""
        return self.asked - self.answered

    def count(self, status: str) -> None:
        """Count one answer; a status this version does not know is counted as an error."""
        name = status if status in COUNTED_STATUSES else STATUS_ERROR
        setattr(self, name, getattr(self, name) + 1)


class AnnotationInterrupted(Exception):
    """A signal stopped `annotate_run`; every answer received was written, and a rerun asks only the rest."""

    def __init__(self, signum: int, result: AnnotateResult, *, abandoned: bool = False) -> None:
        self.signum = signum
        self.result = result
        self.abandoned = abandoned
        lost = "; answers in flight were abandoned" if abandoned else ""
        super().__init__(
            f"interrupted: {result.answered} answers saved, {result.left} documents left; "
            f"rerun the same command to ask only those{lost}"
        )

    @property
    def signal_name(self) -> str:
        """SIGINT, SIGTERM, ..."""
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number (130, 143)."""
        return 128 + self.signum


def make_backend(
    model: str,
    *,
    endpoint: str | None = None,
    api_key: str | None = None,
    **options: Any,
) -> AnnotatorBackend:
    """The backend a CLI call means: `model` served at `endpoint`, else a local path or hub id loaded here.

    `options` go to `HttpBackend` (concurrency, max_concurrency, timeout, max_tokens, context, structured,
    logprobs, ...) or `LocalBackend` (mode, device, dtype, allow_download, ...). An option given as None is
    left out, so the backend's own default applies (adaptive concurrency, the context the server reports).
    """
    options = {name: value for name, value in options.items() if value is not None}
    if endpoint:
        from corpusmill.classifiers.backends.http import HttpBackend

        return HttpBackend(endpoint, model, api_key=api_key, **options)
    if api_key:
        raise ValueError(
            "an API key is only used with an endpoint; pass the endpoint URL too, or drop the key"
        )
    from corpusmill.classifiers.backends.local import LocalBackend

    return LocalBackend(model, **options)


def _row(doc_id: str, shown: str, answer: BackendAnswer, prompt_version: str, model: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": doc_id,
        "prompt_version": prompt_version,
        "model": model,
        # A backend that had to cut the document further (to fit a context it learnt late) says what it showed.
        "text": getattr(answer, "shown_text", None) or shown,
        "answer": answer.text,
    }
    final = getattr(answer, "status", None)
    if final is not None and final != STATUS_OK:
        # The backend already knows the answer is not whole (cut at max_tokens, say): no scores are read from it.
        finish = getattr(answer, "finish_reason", None)
        reason = answer.error or (
            f"generation ended with finish_reason {finish!r}" if finish else f"the backend marked it {final}"
        )
        return {**row, "status": final, "error": reason}
    if answer.error is not None:
        return {**row, "status": STATUS_ERROR, "error": answer.error}
    parsed = answer.parsed or parse_answer(answer.text, answer.token_logprobs)
    row.update(status=parsed.status, error=parsed.error, domain=parsed.domain)
    row["domain_confidence"] = parsed.domain_confidence
    for name in DIMENSION_NAMES:
        row[dimension_column(name)] = parsed.scores.get(name)
    row[dimension_column(OVERALL)] = parsed.overall
    return row


class _Conversations(Sequence[Conversation]):
    """The conversations of the documents to ask, built only when the backend reaches them.

    A sample of a hundred thousand documents would otherwise hold a hundred thousand prompts in memory, and
    fitting a text to the token budget costs a tokenizer pass. The text actually shown is remembered until
    its answer is stored with it (`take_shown`).
    """

    def __init__(self, prompt: Prompt, todo: Sequence[tuple[str, str]], fit: Callable[[str], str]) -> None:
        self._prompt = prompt
        self._todo = todo
        self._fit = fit
        self._shown: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._todo)

    @overload
    def __getitem__(self, index: int) -> Conversation: ...

    @overload
    def __getitem__(self, index: slice) -> list[Conversation]: ...

    def __getitem__(self, index: int | slice) -> Conversation | list[Conversation]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        return self._prompt.messages(self.shown(index))

    def doc_id(self, index: int) -> str:
        """The id of the document at `index`."""
        return self._todo[index][0]

    def text_length(self, index: int) -> int:
        """Characters of the document at `index` before fitting: what a batch of similar lengths is sorted by."""
        return len(self._todo[index][1])

    def shown(self, index: int) -> str:
        """The text the model is shown for the document at `index` (fitted once, then remembered)."""
        index = range(len(self))[index]  # IndexError past the end, as iteration expects
        text = self._shown.get(index)
        if text is None:
            text = self._shown[index] = self._fit(self._todo[index][1])
        return text

    def take_shown(self, index: int) -> str:
        """The shown text of an answered document, forgotten here once it is stored with the answer."""
        text = self.shown(index)
        self._shown.pop(index, None)
        return text


def _fitter(prompt: Prompt, backend: AnnotatorBackend) -> Callable[[str], str]:
    """Fit each text to the backend's `prompt_token_budget` as it stands when the text is asked.

    Read per document, not once: a backend may learn a smaller context mid-run (from a server's refusal), and
    the documents after that should fit it at once rather than each be refused first. A backend without a
    budget (a local model, a server that does not say its context) gets the texts as they are.
    """
    if not hasattr(backend, "prompt_token_budget"):
        return lambda text: text
    from corpusmill.classifiers.fit import fit_document

    def fit(text: str) -> str:
        budget = backend.prompt_token_budget  # type: ignore[attr-defined]
        return text if budget is None else fit_document(prompt, text, budget)

    return fit


class _Sink:
    """Collects answer rows and appends them to the cache every `every` rows or `seconds`, whichever first."""

    def __init__(self, run_dir: Path, result: AnnotateResult, every: int, seconds: float) -> None:
        self._run_dir = run_dir
        self._result = result
        self._every = every
        self._seconds = seconds
        self._rows: list[dict[str, Any]] = []
        self._since: float | None = None  # when the oldest pending row arrived

    def add(self, row: dict[str, Any]) -> None:
        """Take one answer row, count its status, and write the pending rows if they are due."""
        if not self._rows:
            self._since = time.monotonic()
        self._rows.append(row)
        self._result.count(row["status"])
        if row["status"] == STATUS_ERROR:
            logger.debug("annotation of %s failed: %s", row["id"], row["error"])
        self.tick()

    def tick(self) -> None:
        """Write the pending rows if there are `every` of them or the oldest has waited `seconds`."""
        if len(self._rows) >= self._every or (
            self._since is not None and time.monotonic() - self._since >= self._seconds
        ):
            self.flush()

    def flush(self) -> None:
        """Append every pending row to the cache as one file."""
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=ANNOTATION_SCHEMA)
        self._result.paths.append(write_annotations(self._run_dir, table))
        self._rows, self._since = [], None


class _StopNow(BaseException):
    """Raised by the second stop signal: stop waiting for the answers in flight."""


@dataclass
class _StopRequest:
    """Whether a stop signal has arrived, and which."""

    signum: int | None = None
    abandoned: bool = False


@contextmanager
def _stop_on_signals(enabled: bool = True) -> Iterator[_StopRequest]:
    """Turn SIGINT and SIGTERM into a polite stop request while annotating.

    The first signal is only recorded (the loops ask the backend to stop and drain what is in flight); the
    second raises `_StopNow` and puts the previous handlers back, so a third gets the usual treatment. Signal
    handlers can only be installed from the main thread; elsewhere nothing is installed and signals keep
    their usual effect.
    """
    request = _StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous: dict[signal.Signals, Any] = {}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        previous.clear()

    def handle(signum: int, frame: FrameType | None) -> None:
        if request.signum is None:
            request.signum = signum
            return
        request.abandoned = True
        restore()
        raise _StopNow

    for sig in STOP_SIGNALS:
        previous[sig] = signal.signal(sig, handle)
    try:
        yield request
    finally:
        restore()


def _announce_stop(request: _StopRequest, backend: AnnotatorBackend, answered: int, total: int) -> None:
    assert request.signum is not None
    logger.warning(
        "%s: no more documents go to %s; waiting for the answers in flight (%d of %d answered so far; "
        "signal again to stop at once)",
        signal.Signals(request.signum).name, backend.name, answered, total,
    )  # fmt: skip


_Item = tuple[int, BackendAnswer] | BaseException | None
"""What the stream's pump hands over: an answer, the exception that ended the stream, or None at its end."""


def _ask_streaming(
    backend: Any,
    conversations: _Conversations,
    sink: _Sink,
    stop: _StopRequest,
    on_row: Callable[[str, str, BackendAnswer], dict[str, Any]],
    progress: Progress | None,
) -> None:
    """Consume `backend.annotate_stream` in completion order, writing answers as they come.

    The stream is pumped on a thread and the answers handed over through a queue, so this (main) thread
    never blocks for long: it sees a stop request within a poll and writes pending answers on time even while
    the server is slow to answer the next one. However the loop ends, the answers already handed over are
    written: they were paid for.
    """
    answers: queue.Queue[_Item] = queue.Queue()

    def pump() -> None:
        try:
            for item in backend.annotate_stream(conversations):
                answers.put(item)
        except BaseException as exc:  # handed to the main thread, which raises it
            answers.put(exc)
        else:
            answers.put(None)

    seen: set[int] = set()

    def take(item: tuple[int, BackendAnswer]) -> None:
        index, answer = item
        if index in seen or not 0 <= index < len(conversations):
            raise RuntimeError(f"backend {backend.name} answered document {index} twice or out of range")
        seen.add(index)
        sink.add(on_row(conversations.doc_id(index), conversations.take_shown(index), answer))
        if progress is not None:
            progress(len(seen), len(conversations))

    def take_arrived() -> None:
        while True:
            try:
                item = answers.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, tuple):
                take(item)

    threading.Thread(target=pump, name="annotate-stream", daemon=True).start()
    stopper = getattr(backend, "stop", None)
    stopping = False
    try:
        while True:
            if stop.signum is not None and not stopping:
                stopping = True
                _announce_stop(stop, backend, len(seen), len(conversations))
                if stopper is None:  # it cannot be told to stop submitting: write what has arrived and go
                    stop.abandoned = True
                    take_arrived()
                    return
                stopper()
            try:
                item = answers.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                sink.tick()
                continue
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            take(item)
    except BaseException:
        if stopper is not None:
            stopper()  # let the stream wind down rather than keep a server busy for nobody
        take_arrived()
        raise
    if not stopping and len(seen) != len(conversations):
        raise RuntimeError(
            f"backend {backend.name} ended its stream after {len(seen)} of {len(conversations)} answers"
        )


def _ask_in_batches(
    backend: AnnotatorBackend,
    conversations: _Conversations,
    per_call: int,
    sink: _Sink,
    stop: _StopRequest,
    on_row: Callable[[str, str, BackendAnswer], dict[str, Any]],
    progress: Progress | None,
) -> None:
    """Ask `per_call` documents per `backend.annotate` call, similar lengths together, writing as they come."""
    # Similar lengths side by side: a padded batch wastes less compute on a local model.
    order = sorted(range(len(conversations)), key=conversations.text_length)
    done = 0
    for start in range(0, len(order), per_call):
        if stop.signum is not None:
            _announce_stop(stop, backend, done, len(order))
            return
        batch = order[start : start + per_call]
        answers = backend.annotate([conversations[i] for i in batch])
        if len(answers) != len(batch):
            raise RuntimeError(
                f"backend {backend.name} returned {len(answers)} answers for {len(batch)} documents"
            )
        for index, answer in zip(batch, answers, strict=True):
            sink.add(on_row(conversations.doc_id(index), conversations.take_shown(index), answer))
        done += len(batch)
        if progress is not None:
            progress(done, len(order))


def annotate_run(
    run_dir: str | Path,
    backend: AnnotatorBackend,
    *,
    sample: int,
    seed: int = 0,
    prompt_version: str = DEFAULT_VERSION,
    batch_size: int = 8,
    max_chars: int = DEFAULT_MAX_CHARS,
    progress: Progress | None = None,
    flush_every: int = DEFAULT_FLUSH_EVERY,
    flush_seconds: float = DEFAULT_FLUSH_SECONDS,
    handle_signals: bool = True,
) -> AnnotateResult:
    """Label the `sample` documents of `run_dir` chosen by `seed`, asking `backend` only for uncached ones.

    A backend with `annotate_stream` gets every document at once and answers in completion order (it paces
    its own requests); otherwise `batch_size` documents go to `backend.annotate` per call (at least its
    `max_concurrency`, so an HTTP backend's workers all stay busy). Answers are appended to the cache every
    `flush_every` answers or `flush_seconds`, whichever comes first. With `handle_signals` (and in the main
    thread), SIGINT and SIGTERM end the call with `AnnotationInterrupted` once the answers in flight are
    written.
    """
    if batch_size < 1 or flush_every < 1:
        raise ValueError(f"batch_size and flush_every must be at least 1, got {batch_size} and {flush_every}")
    if flush_seconds <= 0:
        raise ValueError(f"flush_seconds must be positive, got {flush_seconds}")
    run_dir = Path(run_dir)
    prompt = load_prompt(prompt_version, max_chars=max_chars)
    result = AnnotateResult(prompt_version=prompt.version, model=backend.name)
    documents = sample_documents(run_dir, sample, seed=seed)
    result.sampled = documents.num_rows
    ids = documents.column("id").to_pylist()
    missing = set(missing_ids(load_annotations(annotations_dir(run_dir)), ids, prompt.version, backend.name))
    todo = [
        (doc_id, prompt.shown_text(text))
        for doc_id, text in zip(ids, documents.column("text").to_pylist(), strict=True)
        if doc_id in missing
    ]
    result.cached = result.sampled - len(todo)
    result.asked = len(todo)
    logger.info(
        "annotating %d of %d sampled documents of %s with %s (%s); %d cached",
        len(todo), result.sampled, run_dir, backend.name, prompt.version, result.cached,
    )  # fmt: skip
    if not todo:
        return result
    conversations = _Conversations(prompt, todo, _fitter(prompt, backend))
    sink = _Sink(run_dir, result, flush_every, flush_seconds)

    def on_row(doc_id: str, shown: str, answer: BackendAnswer) -> dict[str, Any]:
        hint = getattr(answer, "hint", None)
        if hint and hint not in result.hints:
            result.hints.append(hint)
        return _row(doc_id, shown, answer, prompt.version, backend.name)

    with _stop_on_signals(handle_signals) as stop:
        try:
            try:
                if hasattr(backend, "annotate_stream"):
                    _ask_streaming(backend, conversations, sink, stop, on_row, progress)
                else:
                    per_call = max(batch_size, int(getattr(backend, "max_concurrency", 1)))
                    _ask_in_batches(backend, conversations, per_call, sink, stop, on_row, progress)
            finally:
                sink.flush()
        except _StopNow:
            # The second signal, while asking or while writing: what has arrived is written (there is no
            # third `_StopNow` to cut this flush short), the rest is asked by a rerun.
            sink.flush()
    if stop.signum is not None:
        logger.warning(
            "annotating %s stopped by %s: %d answers saved, %d documents left",
            run_dir, signal.Signals(stop.signum).name, result.answered, result.left,
        )  # fmt: skip
        raise AnnotationInterrupted(stop.signum, result, abandoned=stop.abandoned)
    logger.info(
        "annotated %s: %d ok, %d unparseable, %d truncated, %d off the taxonomy, %d errors",
        run_dir, result.ok, result.unparseable, result.truncated, result.off_taxonomy, result.error,
    )  # fmt: skip
    return result
