"""`annotate`: have an LLM label a deterministic sample of a finished run, asking only what is not cached.

The flow is sample -> look up the cache -> ask the backend in batches -> append answers. Every answer is
keyed by (document id, prompt version, model), so rerunning the same command asks nothing, growing the sample
asks only for the new documents, and a new prompt or model asks afresh while the old answers stay on disk.
Answers are written in chunks, each its own file, so an interrupted call keeps everything it finished; even
the chunk in flight is written if the interruption is an exception in this process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from corpusmill.classifiers.annotations import (
    ANNOTATION_SCHEMA,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNPARSEABLE,
    dimension_column,
)
from corpusmill.classifiers.answers import parse_answer
from corpusmill.classifiers.backends import AnnotatorBackend, BackendAnswer
from corpusmill.classifiers.cache import annotations_dir, load_annotations, missing_ids, write_annotations
from corpusmill.classifiers.prompt import DEFAULT_MAX_CHARS, DEFAULT_VERSION, Prompt, load_prompt
from corpusmill.classifiers.sampling import sample_documents
from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, OVERALL

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 256

Progress = Callable[[int, int], None]
"""Called as `progress(done, total)` after every batch, `total` being the documents to ask."""


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
    error: int = 0
    paths: list[Path] = field(default_factory=list)

    @property
    def path(self) -> Path | None:
        """The last annotation file written (None when everything was cached)."""
        return self.paths[-1] if self.paths else None


def make_backend(
    model: str,
    *,
    endpoint: str | None = None,
    api_key: str | None = None,
    **options: Any,
) -> AnnotatorBackend:
    """The backend a CLI call means: `model` served at `endpoint`, else a local path or hub id loaded here.

    `options` go to `HttpBackend` (max_concurrency, timeout, json_mode, ...) or `LocalBackend` (mode, device,
    dtype, allow_download, ...).
    """
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
        "text": shown,
        "answer": answer.text,
    }
    if answer.error is not None:
        return {**row, "status": STATUS_ERROR, "error": answer.error}
    parsed = answer.parsed or parse_answer(answer.text, answer.token_logprobs)
    row.update(status=parsed.status, error=parsed.error, domain=parsed.domain)
    row["domain_confidence"] = parsed.domain_confidence
    for name in DIMENSION_NAMES:
        row[dimension_column(name)] = parsed.scores.get(name)
    row[dimension_column(OVERALL)] = parsed.overall
    return row


def _table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=ANNOTATION_SCHEMA)


def _ask(
    backend: AnnotatorBackend, prompt: Prompt, batch: Sequence[tuple[str, str]], result: AnnotateResult
) -> list[dict[str, Any]]:
    answers = backend.annotate([prompt.messages(text) for _, text in batch])
    if len(answers) != len(batch):
        raise RuntimeError(
            f"backend {backend.name} returned {len(answers)} answers for {len(batch)} documents"
        )
    rows = [
        _row(doc_id, text, answer, prompt.version, backend.name)
        for (doc_id, text), answer in zip(batch, answers, strict=True)
    ]
    for row in rows:
        status = row["status"]
        if status == STATUS_OK:
            result.ok += 1
        elif status == STATUS_UNPARSEABLE:
            result.unparseable += 1
        else:
            result.error += 1
            logger.debug("annotation of %s failed: %s", row["id"], row["error"])
    return rows


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
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> AnnotateResult:
    """Label the `sample` documents of `run_dir` chosen by `seed`, asking `backend` only for uncached ones.

    `batch_size` documents go to the backend per call (an HTTP backend gets at least its `max_concurrency`, so
    all its workers stay busy); every `chunk_size` answers are appended to the cache as one file.
    """
    if batch_size < 1 or chunk_size < 1:
        raise ValueError(f"batch_size and chunk_size must be at least 1, got {batch_size} and {chunk_size}")
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
    per_call = max(batch_size, int(getattr(backend, "max_concurrency", 1)))
    done = 0
    for start in range(0, len(todo), chunk_size):
        # Similar lengths side by side: a padded batch wastes less compute on a local model.
        chunk = sorted(todo[start : start + chunk_size], key=lambda item: len(item[1]))
        rows: list[dict[str, Any]] = []
        try:
            for offset in range(0, len(chunk), per_call):
                batch = chunk[offset : offset + per_call]
                rows += _ask(backend, prompt, batch, result)
                done += len(batch)
                if progress is not None:
                    progress(done, len(todo))
        finally:
            if rows:
                result.paths.append(write_annotations(run_dir, _table(rows)))
    logger.info(
        "annotated %s: %d ok, %d unparseable, %d errors", run_dir, result.ok, result.unparseable, result.error
    )
    return result
