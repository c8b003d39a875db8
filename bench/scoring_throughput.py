"""Single-core throughput of the `quality` and `domain` scoring stages on real web pages.

No LLM runs here, so the distilled models are trained from annotations made by simple rules over the WCXB
ground-truth texts (quality from the share of English function words and similar text statistics, domain
from the page type WCXB's curators assigned). The labels are stand-ins; the models have the production
shape (`distill`'s default fastText settings, one model per quality dimension), which is what the timing
depends on; only the epochs are fewer, which shortens training and leaves size and scoring cost alone. The stages then score a few thousand documents (the WCXB pages, full length, repeated under new
ids) in one process, batch by batch, and a table gives documents/s and MB/s per core (from the CPU time spent,
so other load on the machine hardly skews them) and the wall time for each stage.

    python bench/scoring_throughput.py [--data DIR] [--docs N] [--batch N] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusmill.classifiers.annotations import ANNOTATION_SCHEMA
from corpusmill.classifiers.distill import distill
from corpusmill.classifiers.distilled import DistilledModels
from corpusmill.classifiers.score_stages import DomainStage, QualityStage
from corpusmill.core import schema

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wcxb-dev" / "ground-truth"
FUNCTION_WORDS = frozenset(
    re.findall(r"\w+", "the of and to a in is that for it with as on was are be by this from")
)
PAGE_DOMAIN = {
    "product": "e-commerce",
    "collection": "e-commerce",
    "listing": "e-commerce",
    "forum": "social-media",
    "documentation": "reference",
    "article": "news",
    "service": "other",
}


def load_pages(directory: Path) -> list[tuple[str, str, str]]:
    """(id, main content, page type) of every WCXB page with text, in file-name order."""
    pages = []
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        text = doc["ground_truth"].get("main_content")
        if text and text.strip():
            page_type = (doc.get("_internal") or {}).get("page_type", {}).get("primary", "article")
            pages.append((f"wcxb-{path.stem}", text, page_type))
    if not pages:
        raise SystemExit(f"no ground-truth texts found in {directory}; pass --data DIR")
    return pages


def _share(words: list[str], test: Callable[[str], bool]) -> float:
    return sum(map(test, words)) / max(1, len(words))


def rule_annotation(doc_id: str, text: str, page_type: str) -> dict[str, object]:
    """A stand-in annotation: each dimension a different text statistic scaled onto 0-5."""
    shown = text[:6000]
    words = re.findall(r"[a-z]+", shown.lower())

    def scale(value: float, low: float, high: float) -> float:
        return float(np.clip(5 * (value - low) / (high - low), 0, 5))

    prose = scale(_share(words, FUNCTION_WORDS.__contains__), 0.10, 0.32)
    return {
        "id": doc_id,
        "prompt_version": "bench-rules",
        "model": "rules",
        "status": "ok",
        "text": shown,
        "dim__overall": prose,
        "dim__coherence": prose,
        "dim__educational_value": scale(_share(words, lambda w: len(w) >= 9), 0.0, 0.15),
        "dim__knowledge_density": scale(len(set(words)) / max(1, len(words)), 0.2, 0.7),
        "dim__originality": scale(len(words), 50, 1500),
        "dim__safety": 5.0 if len(words) > 100 else 4.0,
        "domain": PAGE_DOMAIN.get(page_type, "other"),
    }


def time_stage(
    stage: Callable[[pa.RecordBatch], pa.RecordBatch], batches: list[pa.RecordBatch]
) -> tuple[float, float]:
    """CPU and wall seconds of one pass of the stage over all batches (after a small warm-up that loads models).

    Per-core rates come from CPU time, which a machine busy with other work inflates far less than wall time.
    """
    stage(batches[0].slice(0, 8))
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:
        stage(batch)
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="WCXB ground-truth directory")
    parser.add_argument("--docs", type=int, default=3000, help="documents to score")
    parser.add_argument("--batch", type=int, default=1000, help="documents per batch")
    parser.add_argument("--epochs", type=int, default=5, help="fastText epochs (changes training time only)")
    args = parser.parse_args()

    pages = load_pages(args.data)
    with tempfile.TemporaryDirectory(prefix="corpusmill-bench-") as scratch:
        work = Path(scratch)
        (work / "annotations").mkdir()
        table = pa.Table.from_pylist([rule_annotation(*page) for page in pages], schema=ANNOTATION_SCHEMA)
        pq.write_table(table, work / "annotations" / "rules.parquet")
        start = time.perf_counter()
        result = distill(
            work / "annotations", work / "models", epochs=args.epochs, workers=min(4, os.cpu_count() or 1)
        )
        print(
            f"distilled {len(result.model_files)} models from {len(pages)} annotations "
            f"in {time.perf_counter() - start:.1f} s (skipped: {sorted(result.skipped) or 'none'})"
        )

        rows = []
        for i in range(args.docs):  # the pages again and again, each pass under new ids
            doc_id, text, _ = pages[i % len(pages)]
            rows.append({"id": f"{doc_id}-{i // len(pages)}", "text": text})
        batches = [schema.reader_batch(rows[i : i + args.batch]) for i in range(0, len(rows), args.batch)]
        megabytes = sum(len(row["text"].encode("utf-8")) for row in rows) / 1e6
        model = str(work / "models")
        models = DistilledModels.load(model)

        def normalise_only(batch: pa.RecordBatch) -> pa.RecordBatch:
            models.lines(batch.column(schema.TEXT).to_pylist())
            return batch

        stages: list[tuple[str, Callable[[pa.RecordBatch], pa.RecordBatch]]] = [
            ("text normalisation only", normalise_only),
            (
                f"quality (overall + {len(models.dimensions)} dimensions)",
                QualityStage(QualityStage.Params(model=model)),
            ),
            ("quality (overall only)", QualityStage(QualityStage.Params(model=model, dimensions=False))),
            ("domain", DomainStage(DomainStage.Params(model=model))),
        ]
        print(f"\n{len(rows)} documents, {megabytes:.1f} MB of text, batches of {args.batch}, one thread\n")
        print(f"{'stage':<40} {'docs/s/core':>12} {'MB/s/core':>10} {'wall s':>8}")
        for name, stage in stages:
            cpu, wall = time_stage(stage, batches)
            print(f"{name:<40} {len(rows) / cpu:>12,.0f} {megabytes / cpu:>10.2f} {wall:>8.1f}")


if __name__ == "__main__":
    main()
