"""`distill`: train the fastText models that score a whole corpus from the LLM's annotations of a sample.

An LLM is too slow to read a whole crawl, so it labels a sample and small fastText classifiers learn to
imitate it: one `quality` model over the rounded overall score (0..5), one `quality__<dimension>` model per
quality dimension the annotations carry, and one `domain` model over the taxonomy. Scoring turns a quality
model's label probabilities into a continuous score (their probability-weighted mean), so a classifier over
six integers still yields a smooth 0-5 value that thresholds and histograms can use.

Design choices:
- One holdout for every model, chosen by a hash of the document id alone, so a document is in the holdout
  whatever else was annotated, whatever the order of the files, and for every model: the card's numbers for
  the quality and the domain model describe the same unseen documents. Holdout rows are never trained on,
  so the card describes the files that ship.
- fastText is deterministic only single-threaded: training uses `thread=1` and a fixed `seed`, each model
  in a fresh process (`fasttext_text.train_isolated` says why), so the same annotations and settings give
  byte-identical models and card. `workers` trains that many models side by side, each still on one thread,
  which changes nothing but the wall time.
- The overall quality and the domain model are required, and too little data for either is an error that
  says how many annotations are needed. A dimension model that cannot be trained (too few rows, one label,
  as when every page is rated safe) is skipped and the card says why: the scorer then reports it missing.
- One annotator per model directory: answers from different (model, prompt version) pairs are different
  judges, and a classifier trained on a mix learns neither (a random demo model and a real Qwen labelling
  the same documents average into noise). `distill` refuses such a mix unless a filter narrows it to one
  annotator or `allow_mixed` says the mix is meant; the card records the filter and the annotators used.
- Files are written atomically, models first and the card last: a directory with a card is complete, and a
  card whose sha256 values do not match the models shows an interrupted re-run.
"""

from __future__ import annotations

import hashlib
import logging
import math
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import corpusmill
from corpusmill.classifiers import fasttext_text, model_card
from corpusmill.classifiers.annotations import KEY_COLUMNS, STATUS_OK, dimension_column
from corpusmill.classifiers.cache import annotation_files, load_annotations, read_all_annotations
from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, DOMAIN_NAMES, OVERALL, SCORE_MAX, SCORE_MIN
from corpusmill.core.atomic import atomic_path

logger = logging.getLogger(__name__)

MIN_TRAIN_ROWS = 40
MIN_HOLDOUT_ROWS = 10
QUALITY_LABELS: tuple[str, ...] = tuple(str(score) for score in range(SCORE_MIN, SCORE_MAX + 1))
DOMAIN_MODEL = "domain"


def quality_model_name(dimension: str) -> str:
    """`quality` for the overall score, `quality__<dimension>` for a dimension: the model's card key and file stem."""
    return "quality" if dimension == OVERALL else f"quality__{dimension}"


@dataclass(frozen=True)
class FastTextSettings:
    """Every fastText training parameter, so the card records exactly what produced a model."""

    epoch: int = 20
    lr: float = 0.5
    word_ngrams: int = 2
    dim: int = 64
    min_count: int = 2
    bucket: int = 200_000
    seed: int = 0
    ws: int = 5
    neg: int = 5
    minn: int = 0
    maxn: int = 0
    loss: str = "softmax"
    lr_update_rate: int = 100
    t: float = 1e-4

    def train_kwargs(self) -> dict[str, Any]:
        """Arguments for `fasttext.train_supervised`, single-threaded so that training is reproducible."""
        return {
            "epoch": self.epoch,
            "lr": self.lr,
            "wordNgrams": self.word_ngrams,
            "dim": self.dim,
            "minCount": self.min_count,
            "minCountLabel": 0,
            "bucket": self.bucket,
            "seed": self.seed,
            "ws": self.ws,
            "neg": self.neg,
            "minn": self.minn,
            "maxn": self.maxn,
            "loss": self.loss,
            "lrUpdateRate": self.lr_update_rate,
            "t": self.t,
            "thread": 1,
            "label": fasttext_text.LABEL_PREFIX,
            "verbose": 0,
        }


@dataclass(frozen=True)
class DistillResult:
    """What `distill` wrote: the directory, its card, the model files by name, and the models it skipped."""

    out_dir: Path
    card: dict[str, Any]
    model_files: dict[str, Path]
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class _Target:
    name: str
    required: bool
    labels: list[str | None]  # per annotation row; None: the row does not train this model
    scores: np.ndarray | None  # the annotator's continuous score per row (quality models)
    order: tuple[str, ...]  # every label this kind of model can have, in display order


class NotEnoughAnnotations(ValueError):
    """Too few usable annotations, or too few distinct labels, to train a required model."""


class MixedAnnotators(ValueError):
    """The usable annotations come from several (model, prompt version) pairs and no choice was made."""


@dataclass(frozen=True)
class AnnotationSet:
    """The `ok` annotations that train: one row per (id, prompt version, model), the last file's answer."""

    source: Path
    ids: list[str]
    texts: list[str]
    scores: dict[str, np.ndarray]  # dimension (or `overall`) -> score per row, NaN where the answer lacked it
    domains: list[str | None]
    summary: dict[str, Any]


def holdout_fraction(doc_id: str) -> float:
    """Where a document id falls in [0, 1): the first 8 bytes of its sha256, so the split never depends on order."""
    digest = hashlib.sha256(doc_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def holdout_mask(ids: Sequence[str], holdout: float) -> np.ndarray:
    """True for the documents held out of training; raising `holdout` only ever adds documents."""
    return np.fromiter((holdout_fraction(doc_id) < holdout for doc_id in ids), dtype=bool, count=len(ids))


def read_annotations(
    annotations_dir: Path, *, prompt_version: str | None = None, model: str | None = None
) -> AnnotationSet:
    """Read `*.parquet` annotation files (or `<dir>/annotations/*.parquet`), later files replacing earlier answers."""
    files = annotation_files(annotations_dir)
    if not files:
        raise FileNotFoundError(
            f"distill: no annotation files (*.parquet) in {annotations_dir} or {annotations_dir / 'annotations'}; "
            "run the annotator first and pass its annotations directory"
        )
    directory = files[0].parent
    history_rows = read_all_annotations(directory).num_rows
    table = load_annotations(directory)  # the same "latest final answer wins" rule the annotator's cache uses
    wanted = [
        *KEY_COLUMNS,
        "status",
        "text",
        "domain",
        *(dimension_column(d) for d in (OVERALL, *DIMENSION_NAMES)),
    ]
    latest = {(r["id"], r["prompt_version"], r["model"]): r for r in table.select(wanted).to_pylist()}
    rows_read = history_rows
    status: dict[str, int] = {}
    chosen, filtered, unknown_domain, no_text = [], 0, 0, 0
    for key in sorted(latest):
        row = latest[key]
        if (prompt_version is not None and key[1] != prompt_version) or (
            model is not None and key[2] != model
        ):
            filtered += 1
            continue
        status[row["status"]] = status.get(row["status"], 0) + 1
        if row["status"] != STATUS_OK:
            continue
        if not row["text"]:
            no_text += 1
            continue
        if row.get("domain") is not None and row["domain"] not in DOMAIN_NAMES:
            unknown_domain += 1
            logger.warning(
                "distill: annotation %s has domain %r, not in the taxonomy; not used for the domain model",
                key,
                row["domain"],
            )
            row = {**row, "domain": None}
        chosen.append(row)
    columns = set().union(*(row.keys() for row in chosen))
    scores = {
        dimension: np.array(
            [np.nan if r.get(column) is None else r[column] for r in chosen], dtype=np.float64
        )
        for dimension in (OVERALL, *DIMENSION_NAMES)
        if (column := dimension_column(dimension)) in columns
    }
    summary = {
        "files": [path.name for path in files],
        "rows_read": rows_read,
        "superseded_answers": rows_read - len(latest),
        "filter": {"prompt_version": prompt_version, "model": model},
        "excluded_by_filter": filtered,
        "status": dict(sorted(status.items())),
        "ok_without_text": no_text,
        "unknown_domain": unknown_domain,
        "rows_used": len(chosen),
        "prompt_versions": sorted({r["prompt_version"] for r in chosen}),
        "models": sorted({r["model"] for r in chosen}),
        "annotators": _annotators(chosen),
    }
    return AnnotationSet(
        source=directory,
        ids=[r["id"] for r in chosen],
        texts=[r["text"] for r in chosen],
        scores=scores,
        domains=[r.get("domain") for r in chosen],
        summary=summary,
    )


def _annotators(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each (model, prompt version) the rows come from, with its row count, most rows first."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["model"], row["prompt_version"])
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"model": model, "prompt_version": version, "rows": n} for (model, version), n in ranked]


def check_one_annotator(data: AnnotationSet, *, allow_mixed: bool = False) -> None:
    """Refuse annotations from more than one (model, prompt version) unless `allow_mixed`, naming each pair."""
    annotators = data.summary["annotators"]
    if len(annotators) <= 1 or allow_mixed:
        return
    width = max(len(entry["model"]) for entry in annotators)
    listing = "\n".join(
        f"  --model {entry['model']:<{width}}  --prompt-version {entry['prompt_version']}  "
        f"({entry['rows']} '{STATUS_OK}' annotations)"
        for entry in annotators
    )
    raise MixedAnnotators(
        f"distill: the '{STATUS_OK}' annotations in {data.source} come from {len(annotators)} annotators "
        f"(model, prompt version), and a classifier trained on a mix learns none of them:\n{listing}\n"
        "choose one with --model and/or --prompt-version, or pass --allow-mixed to train on the mix"
    )


def distill(
    annotations_dir: str | Path,
    out_dir: str | Path,
    *,
    seed: int = 0,
    holdout: float = 0.2,
    epochs: int = 20,
    lr: float = 0.5,
    word_ngrams: int = 2,
    dim: int = 64,
    min_count: int = 2,
    bucket: int = 200_000,
    max_chars: int = 4000,
    prompt_version: str | None = None,
    model: str | None = None,
    allow_mixed: bool = False,
    workers: int = 1,
) -> DistillResult:
    """Train the quality, per-dimension and domain models from the `ok` annotations and write them with a card.

    `prompt_version` and `model` keep only that annotator's answers; when the answers left still come from
    more than one (model, prompt version), `MixedAnnotators` is raised unless `allow_mixed`.
    """
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"distill: holdout must be a fraction between 0 and 1 (exclusive), got {holdout}")
    if max_chars <= 0:
        raise ValueError(f"distill: max_chars must be positive, got {max_chars}")
    settings = FastTextSettings(
        epoch=epochs, lr=lr, word_ngrams=word_ngrams, dim=dim, min_count=min_count, bucket=bucket, seed=seed
    )
    out = Path(out_dir)
    data = read_annotations(Path(annotations_dir), prompt_version=prompt_version, model=model)
    check_one_annotator(data, allow_mixed=allow_mixed)
    needed = annotations_needed(holdout)
    if len(data.ids) < needed:
        raise NotEnoughAnnotations(
            f"distill: {data.source} has {len(data.ids)} usable '{STATUS_OK}' annotations "
            f"({data.summary['rows_read']} rows read); at least {needed} are needed at holdout={holdout} "
            f"({MIN_TRAIN_ROWS} to train on, {MIN_HOLDOUT_ROWS} to evaluate on): annotate more documents"
        )
    lines = [fasttext_text.normalise(text, max_chars) for text in data.texts]
    in_holdout = holdout_mask(data.ids, holdout)

    model_files: dict[str, Path] = {}
    model_cards: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    # Every model's rows are checked before any training, so a hopeless run fails in seconds, not minutes.
    planned: list[tuple[_Target, list[int], list[int]]] = []
    for target in _targets(data):
        try:
            planned.append((target, *_split_rows(target, lines, in_holdout)))
        except NotEnoughAnnotations as exc:
            if target.required:
                raise NotEnoughAnnotations(f"distill: {exc} (annotations: {data.source})") from None
            skipped[target.name] = str(exc)
            logger.warning("distill: skipping %s: %s", target.name, exc)
    with tempfile.TemporaryDirectory(prefix="corpusmill-distill-") as scratch:
        jobs = [(target, train, Path(scratch), out) for target, train, _ in planned]
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            # Each model trains in its own single-threaded process: parallel, and still reproducible.
            paths = list(pool.map(lambda job: _train(*job, lines, settings), jobs))
    for (target, train, test), path in zip(planned, paths, strict=True):
        entry = _evaluate(target, lines, train, test, fasttext_text.load_model(path))
        entry["file"] = path.name
        entry["sha256"] = model_card.file_sha256(path)
        model_files[target.name] = path
        model_cards[target.name] = entry
        logger.info("distill: wrote %s (%s)", path, _headline(entry))

    card = {
        "format": model_card.CARD_FORMAT,
        "corpusmill_version": corpusmill.__version__,
        "text": {"format": fasttext_text.TEXT_FORMAT, "max_chars": max_chars},
        "split": {
            "method": "sha256 of the document id; a document is held out when its hash fraction is below holdout",
            "holdout": holdout,
            "documents": {"train": int((~in_holdout).sum()), "holdout": int(in_holdout.sum())},
        },
        "fasttext": settings.train_kwargs(),
        "seed": seed,
        "annotations": {**data.summary, "filter": {**data.summary["filter"], "allow_mixed": allow_mixed}},
        "models": model_cards,
        "skipped": skipped,
    }
    model_card.write_card(out, card)
    _remove_stale_models(out, set(model_files))
    return DistillResult(out_dir=out, card=card, model_files=model_files, skipped=skipped)


def annotations_needed(holdout: float) -> int:
    """The fewest annotations that leave enough rows on both sides of a split at this holdout fraction."""
    return math.ceil(max(MIN_TRAIN_ROWS / (1.0 - holdout), MIN_HOLDOUT_ROWS / holdout) - 1e-9)


def _targets(data: AnnotationSet) -> list[_Target]:
    if OVERALL not in data.scores:
        raise NotEnoughAnnotations(
            f"distill: the annotations in {data.source} have no {dimension_column(OVERALL)} column; "
            "the quality model needs the overall score"
        )
    targets = []
    for dimension in (OVERALL, *DIMENSION_NAMES):
        scores = data.scores.get(dimension)
        if scores is None or (dimension != OVERALL and np.isnan(scores).all()):
            continue
        labels = [None if math.isnan(s) else str(math.floor(s + 0.5)) for s in scores]
        targets.append(
            _Target(quality_model_name(dimension), dimension == OVERALL, labels, scores, QUALITY_LABELS)
        )
    targets.append(_Target(DOMAIN_MODEL, True, list(data.domains), None, DOMAIN_NAMES))
    return targets


def _split_rows(target: _Target, lines: list[str], in_holdout: np.ndarray) -> tuple[list[int], list[int]]:
    """The training and holdout rows of one model; raises when they cannot make a classifier."""
    usable = [i for i, label in enumerate(target.labels) if label is not None and lines[i]]
    train = [i for i in usable if not in_holdout[i]]
    test = [i for i in usable if in_holdout[i]]
    what = "overall quality score" if target.name == "quality" else target.name.removeprefix("quality__")
    if len(train) < MIN_TRAIN_ROWS or len(test) < MIN_HOLDOUT_ROWS:
        raise NotEnoughAnnotations(
            f"only {len(train)} training and {len(test)} holdout annotations carry a {what} label and a "
            f"non-empty text; {MIN_TRAIN_ROWS} and {MIN_HOLDOUT_ROWS} are needed: annotate more documents"
        )
    distinct = {target.labels[i] for i in train}
    if len(distinct) < 2:
        raise NotEnoughAnnotations(
            f"all {len(train)} training annotations have the {what} label {next(iter(distinct))!r}; a "
            "classifier needs at least two different labels: annotate a more varied sample of documents"
        )
    return train, test


def _train(
    target: _Target, train: list[int], scratch: Path, out: Path, lines: list[str], settings: FastTextSettings
) -> Path:
    """Write one model's training file and train it into `<out>/<name>.bin` (atomically)."""
    train_file = scratch / f"{target.name}.train.txt"
    path = out / f"{target.name}.bin"
    try:
        with open(train_file, "w", encoding="utf-8") as handle:
            for i in train:
                handle.write(fasttext_text.label_line(str(target.labels[i]), lines[i]))
        with atomic_path(path) as tmp:
            fasttext_text.train_isolated(
                train_file, tmp, settings.train_kwargs(), what=f"the {target.name} model"
            )
    finally:
        # Each model has its own copy of the texts; at scale they would fill the temporary disk.
        train_file.unlink(missing_ok=True)
    return path


def _evaluate(
    target: _Target, lines: list[str], train: list[int], test: list[int], model_obj: Any
) -> dict[str, Any]:
    """The card entry of one trained model: its labels, row counts, label distributions and holdout metrics."""
    train_labels = [target.labels[i] for i in train]
    distinct = set(train_labels)
    model_labels = [label for label in target.order if label in distinct]
    truth = [target.labels[i] for i in test]
    probs = fasttext_text.label_probabilities(model_obj, [lines[i] for i in test], model_labels)
    predicted = [model_labels[j] for j in probs.argmax(axis=1)]
    eval_labels = [label for label in target.order if label in distinct or label in set(truth)]
    metrics = model_card.classification_metrics(truth, predicted, eval_labels)
    if target.scores is not None:
        continuous = fasttext_text.expected_score(probs, [float(label) for label in model_labels])
        annotator = np.clip(target.scores[test], SCORE_MIN, SCORE_MAX)
        metrics["agreement"] = model_card.score_agreement(continuous, annotator)
    else:
        confidence = float(probs.max(axis=1).mean())
        metrics["agreement"] = {"accuracy": metrics["accuracy"], "mean_confidence": confidence}
    return {
        "kind": "domain" if target.scores is None else "quality",
        "labels": model_labels,
        "rows": {"train": len(train), "holdout": len(test)},
        "label_distribution": {
            "train": model_card.label_distribution(train_labels, eval_labels),
            "holdout": model_card.label_distribution(truth, eval_labels),
        },
        "holdout": metrics,
    }


def _headline(entry: dict[str, Any]) -> str:
    metrics = entry["holdout"]
    text = f"holdout accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['macro_f1']:.3f}"
    mae = metrics["agreement"].get("mean_absolute_error")
    return text if mae is None else f"{text}, MAE {mae:.3f}"


def _remove_stale_models(out: Path, written: set[str]) -> None:
    # A dimension model from an earlier distill into the same directory must not outlive its card.
    stale: Sequence[Path] = [p for p in out.glob("quality__*.bin") if p.stem not in written]
    for path in stale:
        logger.info("distill: removing %s, which the new model card does not list", path)
        path.unlink()
