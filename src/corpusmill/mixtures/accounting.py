"""Per-domain token accounting, computed part by part on the engine and merged on the driver.

Each part contributes a small JSON summary (documents, tokens, bytes and a quality histogram per domain,
plus source and language breakdowns), so the driver never sees a document: its memory grows with the number
of domains, not of documents. Summaries merge by addition, in any order, which keeps the result identical on
every engine.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core import schema
from corpusmill.mixtures.plan import DomainCount
from corpusmill.mixtures.spec import MixParams

QUALITY_BINS = 20  # quality scores 0-5 in steps of 0.25
QUALITY_MAX = 5.0
TOKEN_COUNT = "token_count"


def quality_bin(score: float) -> int:
    """The histogram bin of a 0-5 quality score (scores outside the range fall in the end bins)."""
    return min(QUALITY_BINS - 1, max(0, math.floor(score / QUALITY_MAX * QUALITY_BINS)))


def _column(batch: pa.RecordBatch, name: str) -> list[Any] | None:
    return batch.column(name).to_pylist() if name in batch.schema.names else None


def document_domains(batch: pa.RecordBatch, params: MixParams) -> list[str]:
    """Each row's domain (the unlabelled domain for nulls); a clear error when the column is missing."""
    if params.domain_column not in batch.schema.names:
        raise KeyError(
            f"mix: no `{params.domain_column}` column to take domains from (columns: {batch.schema.names}); "
            "run the `domain` stage before `mix`, or set domain_column to a column that holds one"
        )
    return [
        str(v) if v is not None else params.unlabelled_domain for v in _column(batch, params.domain_column)
    ]


def token_counts(batch: pa.RecordBatch) -> np.ndarray:
    """Each row's Qwen2.5 token count, from the `tokenize` stage."""
    if TOKEN_COUNT not in batch.schema.names:
        raise KeyError(f"mix: no `{TOKEN_COUNT}` column; run `tokenize` before `mix`")
    return batch.column(TOKEN_COUNT).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)


def eligibility(batch: pa.RecordBatch, domains: list[str], params: MixParams) -> list[str | None]:
    """None for rows that pass their domain's quality floor, else why not (a drop detail)."""
    quality = _column(batch, params.quality_column)
    reasons: list[str | None] = []
    for row, domain in enumerate(domains):
        floor = params.min_quality_for(domain)
        if floor is None:
            reasons.append(None)
        elif quality is None or quality[row] is None:
            reasons.append(f"no {params.quality_column} score; {domain} needs at least {floor:g}")
        elif quality[row] < floor:
            reasons.append(f"{params.quality_column} {quality[row]:.2f} < {floor:g} for {domain}")
        else:
            reasons.append(None)
    return reasons


def account_batch(batch: pa.RecordBatch, params: MixParams) -> dict[str, Any]:
    """The first-round summary of one batch."""
    domains = document_domains(batch, params)
    tokens = token_counts(batch)
    text_bytes = (
        pc.binary_length(pc.cast(batch.column(schema.TEXT), pa.large_binary()))
        .fill_null(0)
        .to_numpy(zero_copy_only=False)
        if schema.TEXT in batch.schema.names
        else np.zeros(batch.num_rows, dtype=np.int64)
    )
    quality = _column(batch, params.quality_column)
    ineligible = eligibility(batch, domains, params)
    sources = _column(batch, schema.SOURCE)
    langs = _column(batch, schema.LANG)
    out: dict[str, Any] = {"domains": {}, "sources": {}, "langs": {}}
    for row, domain in enumerate(domains):
        entry = out["domains"].setdefault(
            domain,
            {
                "documents": 0,
                "tokens": 0,
                "bytes": 0,
                "eligible_documents": 0,
                "eligible_tokens": 0,
                "unscored_documents": 0,
                "max_document_tokens": 0,
                "quality_documents": [0] * QUALITY_BINS,
                "quality_tokens": [0] * QUALITY_BINS,
            },
        )
        count = int(tokens[row])
        entry["documents"] += 1
        entry["tokens"] += count
        entry["bytes"] += int(text_bytes[row])
        entry["max_document_tokens"] = max(entry["max_document_tokens"], count)
        if ineligible[row] is None:
            entry["eligible_documents"] += 1
            entry["eligible_tokens"] += count
        score = quality[row] if quality is not None else None
        if score is None:
            entry["unscored_documents"] += 1
        else:
            entry["quality_documents"][quality_bin(score)] += 1
            entry["quality_tokens"][quality_bin(score)] += count
        for key, values in (("sources", sources), ("langs", langs)):
            name = str(values[row]) if values is not None and values[row] is not None else "unknown"
            bucket = out[key].setdefault(name, {"documents": 0, "tokens": 0})
            bucket["documents"] += 1
            bucket["tokens"] += count
    return out


def merge_summaries(left: Any, right: Any) -> Any:
    """Add two summaries: numbers add (`max_*` keys take the larger), number lists add elementwise, lists of
    records concatenate, dicts merge by key."""
    if isinstance(left, dict) and isinstance(right, dict):
        merged = dict(left)
        for key, value in right.items():
            if key not in left:
                merged[key] = value
            elif key.startswith("max_"):
                merged[key] = max(left[key], value)
            else:
                merged[key] = merge_summaries(left[key], value)
        return merged
    if isinstance(left, list) and isinstance(right, list):
        if (left and isinstance(left[0], list)) or (right and isinstance(right[0], list)):
            return left + right
        if len(left) != len(right):
            raise ValueError(f"cannot merge histograms of {len(left)} and {len(right)} bins")
        return [a + b for a, b in zip(left, right, strict=True)]
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left + right
    raise TypeError(f"cannot merge {type(left).__name__} with {type(right).__name__}")


def domain_counts(summary: dict[str, Any]) -> dict[str, DomainCount]:
    """The planner's view of a merged first-round summary."""
    return {
        domain: DomainCount(
            documents=entry["documents"],
            tokens=entry["tokens"],
            eligible_documents=entry["eligible_documents"],
            eligible_tokens=entry["eligible_tokens"],
        )
        for domain, entry in summary.get("domains", {}).items()
    }
