"""The one pipeline both systems run, written once so the two sides cannot drift apart.

extract (trafilatura, stage defaults) -> langid (English, fastText lid.176, score > 0.65) -> Gopher quality
rules -> MinHash near-duplicate removal -> Qwen2.5 tokenization -> token shards.

Language identification is part of it because corpusmill's `heuristics` stage applies its rules only to
documents whose `lang` is in its `languages`, and WARC responses carry no language: without `langid` the
Gopher rules would be skipped on every document. datatrove gets the same step (its `LanguageFilter` with the
same lid.176 model file and threshold), so both sides keep and drop for the same reasons.

MinHash settings are read from corpusmill's own `dedup_minhash` parameter model (the newest registered
version), so a change of its defaults changes both sides: datatrove's `num_buckets` x `hashes_per_bucket`
are corpusmill's bands x rows, with the same n-gram size and seed and 32-bit hash values (datatrove hashes
shingles with SHA-1, datasketch's kind). The hash functions themselves differ between the implementations,
so equal settings give equally good, not identical, signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

LANGUAGES = ["en"]
LANGUAGE_THRESHOLD = 0.65
EXTRACT_TIMEOUT_S = 10.0
# The extractors both sides can run with the same settings (`--extractor`); the first is the default.
EXTRACTORS = ("trafilatura", "resiliparse")
GOPHER_RULES = ["gopher_quality"]


@dataclass(frozen=True)
class MinHashSettings:
    """What both MinHash implementations are given."""

    threshold: float
    num_perm: int
    bands: int
    rows: int
    ngram_size: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        """JSON form for the results file."""
        return {
            "threshold": self.threshold,
            "num_perm": self.num_perm,
            "bands": self.bands,
            "rows": self.rows,
            "ngram_size": self.ngram_size,
            "seed": self.seed,
        }


def minhash_settings(threshold: float = 0.8) -> MinHashSettings:
    """corpusmill's MinHash parameters at this threshold, with the bands and rows its stage would use."""
    from corpusmill.core.stage import resolve_stage

    stage_cls = resolve_stage("dedup_minhash")
    params = stage_cls.Params.model_validate({"threshold": threshold})
    if hasattr(params, "banding"):
        bands, rows = params.banding()
    else:  # a parameter model that states them outright
        bands, rows = params.bands, params.rows
    if not bands or not rows:
        raise ValueError(
            f"cannot tell the LSH bands and rows of {stage_cls.versioned_name()} at threshold {threshold}; "
            "give the bench explicit bands and rows"
        )
    return MinHashSettings(
        threshold=threshold,
        num_perm=int(params.num_perm),
        bands=int(bands),
        rows=int(rows),
        ngram_size=int(params.ngram_size),
        seed=int(params.seed),
    )


def recipe_data(warc_dir: Path, threshold: float = 0.8, extractor: str = EXTRACTORS[0]) -> dict[str, Any]:
    """The corpusmill recipe over a corpus's WARC files (one part per file)."""
    extract: dict[str, Any] = {"stage": "extract", "timeout_s": EXTRACT_TIMEOUT_S}
    if extractor != EXTRACTORS[0]:
        extract["extractor"] = extractor
    return {
        "name": "bench",
        "input": {"paths": [str(warc_dir / "*.warc.gz")], "format": "warc", "part_bytes": 1},
        "stages": [
            extract,
            {"stage": "langid", "languages": LANGUAGES, "min_score": LANGUAGE_THRESHOLD},
            {"stage": "heuristics", "rules": GOPHER_RULES, "languages": LANGUAGES},
            {"stage": "dedup_minhash", "threshold": threshold},
            {"stage": "tokenize"},
            {"stage": "write_shards"},
        ],
        "output": {"keep_rejected": False},
    }


def recipe(warc_dir: Path, threshold: float = 0.8, extractor: str = EXTRACTORS[0]) -> Any:
    """The validated recipe."""
    from corpusmill.core.recipe import parse_recipe

    return parse_recipe(recipe_data(warc_dir, threshold, extractor))
