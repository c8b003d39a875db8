"""`quality` and `domain`: score every document with the distilled fastText models, and filter on the scores.

Both stages load a distilled directory (`distill`'s output) in `setup`, through the per-process cache of
`DistilledModels`, so a worker running both stages, or several copies of one, reads the models once. Only
rows no earlier stage dropped are scored: a dropped row costs nothing and keeps null scores, so its nulls say
"never scored", not "scored zero".

The output columns are fixed by the parameters alone, never by the model directory, so a recipe is checked
and every part of a run shares one schema: `quality` with `dimensions` writes a `score__<dimension>` column for
every dimension in the taxonomy, null for one the directory has no model for (its card says why).

A row failing a threshold is marked, never removed: `low_quality_score` for the overall score,
`low_<dimension>` for a dimension floor (the overall score is judged first, then the dimensions in taxonomy
order), `domain_dropped` for a dropped domain. A document with empty text has no score; when the stage
filters, it is dropped as `empty_text`. The domain stage keeps an unsure label (`min_confidence` only counts
it): a low-confidence label is still the model's best guess, and dropping on a guess would be a second,
hidden domain filter.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from corpusmill.classifiers.distilled import DistilledModels
from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, DOMAIN_NAMES, OVERALL, check_domain, score_column
from corpusmill.core import schema
from corpusmill.core.labels import LabelSet
from corpusmill.core.stage import NAMES_PATH, MapStage, StageParams, register

logger = logging.getLogger(__name__)

QUALITY_FIELD = pa.field(score_column(OVERALL), pa.float64())
DIMENSION_FIELDS = {d: pa.field(score_column(d), pa.float64()) for d in DIMENSION_NAMES}
DOMAIN_FIELD = pa.field("domain", pa.string())
DOMAIN_CONFIDENCE_FIELD = pa.field("domain_confidence", pa.float64())
# `distill` trains the domain model on the taxonomy's labels only, so no model can write another domain.
DOMAIN_LABELS = LabelSet(
    what="domain of the taxonomy",
    labels=frozenset(DOMAIN_NAMES),
    listed_in="corpusmill/classifiers/taxonomy.py",
)


class QualityParams(StageParams):
    """The distilled directory, and the floors below which documents are dropped."""

    model: Annotated[str, NAMES_PATH] = Field(min_length=1)
    min_score: float | None = Field(None, ge=0.0, le=5.0)
    dimensions: bool = True
    min_dimension_scores: dict[str, float] = Field(default_factory=dict)

    @field_validator("min_dimension_scores")
    @classmethod
    def _known_dimensions(cls, floors: dict[str, float]) -> dict[str, float]:
        for name, floor in floors.items():
            if name not in DIMENSION_NAMES:
                raise ValueError(f"unknown quality dimension {name!r}; allowed: {', '.join(DIMENSION_NAMES)}")
            if not 0.0 <= floor <= 5.0:
                raise ValueError(f"min_dimension_scores[{name!r}] = {floor} is outside the 0-5 score range")
        return floors


class DomainParams(StageParams):
    """The distilled directory, the confidence worth counting as sure, and the domains to drop."""

    model: Annotated[str, NAMES_PATH] = Field(min_length=1)
    min_confidence: float | None = Field(None, ge=0.0, le=1.0)
    drop_domains: list[str] = Field(default_factory=list)

    @field_validator("drop_domains")
    @classmethod
    def _known_domains(cls, names: list[str]) -> list[str]:
        return [check_domain(name) for name in names]


class _ScoreStage(MapStage):
    """What both stages share: the models, loaded once per process, and which rows to score."""

    requires = (schema.TEXT,)

    def __init__(self, params: StageParams | None = None) -> None:
        super().__init__(params)
        self._models: DistilledModels | None = None

    def _setup(self) -> None:
        self._models = DistilledModels.load(self.params.model)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Let go of the models (the process cache keeps them for the next setup)."""
        self._models = None
        super().close()

    def __getstate__(self) -> dict[str, Any]:
        # fastText models are C++ objects: every worker loads its own in setup().
        state = self.__dict__.copy()
        state["_models"] = None
        state["_ready"] = False
        return state

    def _to_score(self, batch: pa.RecordBatch) -> tuple[list[int], list[str | None]]:
        """Indexes of the rows no earlier stage dropped, and all texts."""
        texts = batch.column(schema.TEXT).to_pylist()
        if schema.DROP_REASON in batch.schema.names:
            already = batch.column(schema.DROP_REASON).to_pylist()
            todo = [i for i, reason in enumerate(already) if reason is None]
            if len(todo) < len(texts):
                self.stats.incr(f"{self.name}.skipped_dropped", len(texts) - len(todo))
        else:
            todo = list(range(len(texts)))
        return todo, texts


def _spread(n: int, rows: list[int], values: np.ndarray) -> list[float | None]:
    """Per-row values for all `n` rows: the scored rows get theirs (NaN becomes null), the others null."""
    out: list[float | None] = [None] * n
    for i, value in zip(rows, values.tolist(), strict=True):
        out[i] = None if math.isnan(value) else value
    return out


@register
class QualityStage(_ScoreStage):
    """Adds `score__quality` (and `score__<dimension>`); drops documents under the configured floors."""

    name = "quality"
    version = 1
    Params = QualityParams

    def __init__(self, params: QualityParams | None = None) -> None:
        super().__init__(params)
        self.params: QualityParams

    def output_fields(self) -> list[pa.Field]:
        """The overall score, plus one column per taxonomy dimension when `dimensions` is on."""
        return [QUALITY_FIELD, *(DIMENSION_FIELDS.values() if self.params.dimensions else ())]

    def _setup(self) -> None:
        super()._setup()
        assert self._models is not None
        missing = [d for d in self.params.min_dimension_scores if d not in self._models.dimensions]
        if missing:
            raise ValueError(
                f"quality: min_dimension_scores names {missing}, but {self._models.directory} has models only for "
                f"{list(self._models.dimensions)}; drop those floors or distill from annotations that score them"
            )
        absent = [d for d in DIMENSION_NAMES if d not in self._models.dimensions]
        if self.params.dimensions and absent:
            logger.warning(
                "quality: %s has no model for %s; those columns stay null", self.params.model, absent
            )

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Score the rows not yet dropped in one batched predict per model; mark the rows under a floor."""
        self.setup()
        assert self._models is not None
        n = batch.num_rows
        todo, texts = self._to_score(batch)
        wanted = list(self._models.dimensions) if self.params.dimensions else []
        wanted += [d for d in self.params.min_dimension_scores if d not in wanted]
        overall, per_dim = self._models.quality([texts[i] for i in todo], wanted)
        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        filtering = self.params.min_score is not None or bool(self.params.min_dimension_scores)
        for k, i in enumerate(todo):
            score = float(overall[k])
            if math.isnan(score):
                self.stats.incr("quality.empty")
                if filtering:
                    reasons[i] = "empty_text"
                continue
            self.stats.incr("quality.scored")
            self.stats.observe("quality.score", score)
            self.stats.incr(f"quality.rounded.{math.floor(score + 0.5)}")
            for d in wanted:
                self.stats.observe(f"quality.score.{d}", float(per_dim[d][k]))
            reasons[i], details[i] = self._judge(score, {d: float(per_dim[d][k]) for d in wanted})
        for reason in reasons:
            if reason is not None:
                self.stats.incr(f"quality.dropped.{reason}")
        batch = schema.set_column(batch, QUALITY_FIELD, _spread(n, todo, overall))
        if self.params.dimensions:
            for d, field in DIMENSION_FIELDS.items():
                values = _spread(n, todo, per_dim[d]) if d in per_dim else [None] * n
                batch = schema.set_column(batch, field, values)
        return schema.mark_drops(batch, reasons, details)

    def _judge(self, score: float, dims: dict[str, float]) -> tuple[str | None, str | None]:
        floor = self.params.min_score
        if floor is not None and score < floor:
            return "low_quality_score", f"quality {score:.3f} < {floor}"
        for d in DIMENSION_NAMES:
            floor = self.params.min_dimension_scores.get(d)
            if floor is not None and dims[d] < floor:
                return f"low_{d}", f"{d} {dims[d]:.3f} < {floor}"
        return None, None


@register
class DomainStage(_ScoreStage):
    """Adds `domain` and `domain_confidence`; drops documents in the configured domains."""

    name = "domain"
    version = 1
    Params = DomainParams
    column_labels: ClassVar[dict[str, LabelSet]] = {DOMAIN_FIELD.name: DOMAIN_LABELS}

    def __init__(self, params: DomainParams | None = None) -> None:
        super().__init__(params)
        self.params: DomainParams
        self._drop = frozenset(self.params.drop_domains)

    def output_fields(self) -> list[pa.Field]:
        """The taxonomy label and the model's probability for it."""
        return [DOMAIN_FIELD, DOMAIN_CONFIDENCE_FIELD]

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Label the rows not yet dropped in one batched predict; mark those in a dropped domain."""
        self.setup()
        assert self._models is not None
        n = batch.num_rows
        todo, texts = self._to_score(batch)
        labels, confidence = self._models.domain([texts[i] for i in todo])
        domains: list[str | None] = [None] * n
        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        floor = self.params.min_confidence
        for k, i in enumerate(todo):
            label, conf = labels[k], float(confidence[k])
            if label is None:
                self.stats.incr("domain.empty")
                if self._drop:
                    reasons[i] = "empty_text"
                continue
            domains[i] = label
            self.stats.incr(f"domain.label.{label}")
            # In percent: the log2 histogram of a probability would put everything in its first bucket.
            self.stats.observe("domain.confidence_pct", 100.0 * conf)
            if floor is not None and conf < floor:
                self.stats.incr("domain.low_confidence")
            if label in self._drop:
                reasons[i], details[i] = "domain_dropped", f"{label} {conf:.3f}"
        for reason in reasons:
            if reason is not None:
                self.stats.incr(f"domain.dropped.{reason}")
        batch = schema.set_column(batch, DOMAIN_FIELD, domains)
        batch = schema.set_column(batch, DOMAIN_CONFIDENCE_FIELD, _spread(n, todo, confidence))
        return schema.mark_drops(batch, reasons, details)
