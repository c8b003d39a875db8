"""Benchmark corpus: WCXB pages as WARC files, plus near-duplicate variants and hard negatives of known truth.

    python -m bench.corpus [--docs N] [--seed S] [--dup-fraction F] [--negative-fraction F] [--cache DIR]

`--docs` pages (default all 1,497) are drawn in a seeded order; a fraction of them get 1-3 near-duplicate
variants each and another fraction a hard negative (see `bench.variants`). Records are spread over WARC
files of about `--docs-per-file` records by a hash of their id, so duplicates usually sit in other files
than their original. Every record is then extracted and the exact Jaccard of every pair at or above 0.5 is
stored (`bench.truth`), with which original each variant was made from, in `ground_truth.json`.

The corpus lives in the cache (`$CORPUSMILL_BENCH_CACHE` or `~/.cache/corpusmill/bench`) under a key of
its parameters, the data directory and the trafilatura version, is built in a temporary directory and
renamed into place when complete, and is reused when present.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import math
import os
import random
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import DEFAULT_DATA, cache_root
from bench.truth import extract_all, jaccard, similar_pairs
from bench.variants import make_negative, make_variant, split_page
from bench.warc_writer import WarcFileWriter
from corpusmill.core.atomic import atomic_open, write_json

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
TRUTH_NAME = "ground_truth.json"
EXTRACTED_NAME = "extracted.jsonl.gz"


@dataclass(frozen=True)
class CorpusParams:
    """Everything that changes the built corpus."""

    docs: int = 1497
    dup_fraction: float = 0.3
    negative_fraction: float = 0.1
    docs_per_file: int = 100
    seed: int = 0
    min_pair_jaccard: float = 0.5

    def key(self, data_dir: Path) -> str:
        """Cache key: parameters, data location, generator and trafilatura versions."""
        import trafilatura

        identity = {
            **asdict(self),
            "data": str(data_dir.resolve()),
            "generator": GENERATOR_VERSION,
            "trafilatura": trafilatura.__version__,
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
        return f"docs{self.docs}-seed{self.seed}-{digest}"


@dataclass(frozen=True)
class Corpus:
    """A built corpus directory: `warc/*.warc.gz`, `ground_truth.json`, `extracted.jsonl.gz`."""

    root: Path

    @property
    def warc_dir(self) -> Path:
        """The WARC files both systems read."""
        return self.root / "warc"

    def warc_files(self) -> list[Path]:
        """WARC files in name order."""
        return sorted(self.warc_dir.glob("*.warc.gz"))

    def truth(self) -> dict[str, Any]:
        """The ground-truth JSON."""
        return json.loads((self.root / TRUTH_NAME).read_text(encoding="utf-8"))

    def direct_extractions(self) -> dict[str, str | None]:
        """Record id -> text from trafilatura called directly at build time."""
        with gzip.open(self.root / EXTRACTED_NAME, "rt", encoding="utf-8") as handle:
            return {row["id"]: row["text"] for row in map(json.loads, handle)}


@dataclass
class Page:
    """One WCXB page with its ground truth."""

    page_id: str
    url: str
    page_type: str | None
    ground_truth: str

    def html(self, data_dir: Path) -> str:
        """The page's HTML as text (UTF-8; other bytes as Latin-1 so nothing is lost)."""
        raw = gzip.decompress((data_dir / "html" / f"{self.page_id}.html.gz").read_bytes())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")


def load_pages(data_dir: Path) -> list[Page]:
    """Every WCXB page that has both HTML and a non-empty ground-truth main content, in id order."""
    metadata_path = data_dir / "metadata.json"
    types = json.loads(metadata_path.read_text())["files"] if metadata_path.exists() else {}
    pages = []
    for truth_path in sorted((data_dir / "ground-truth").glob("*.json")):
        page_id = truth_path.stem
        if not (data_dir / "html" / f"{page_id}.html.gz").exists():
            continue
        data = json.loads(truth_path.read_text(encoding="utf-8"))
        content = (data.get("ground_truth") or {}).get("main_content") or ""
        if not content.strip():
            continue
        url = data.get("url") or f"https://example.invalid/wcxb/{page_id}"
        pages.append(Page(page_id, url, types.get(page_id, {}).get("page_type"), content))
    if not pages:
        raise FileNotFoundError(f"no WCXB pages with ground truth under {data_dir}; pass --data DIR")
    return pages


def record_id(seed: int, page_id: str, kind: str, number: int) -> str:
    """A stable `urn:uuid:` id for one record (same inputs, same id)."""
    digest = hashlib.blake2b(f"{seed}|{page_id}|{kind}|{number}".encode(), digest_size=16).digest()
    return uuid.UUID(bytes=digest, version=4).urn


def _variant_url(url: str, kind: str, number: int) -> str:
    if kind == "negative":
        return url.rstrip("/") + f"/related-{number}"
    return url + ("&" if "?" in url else "?") + f"variant={number}"


def _plan_records(pages: list[Page], params: CorpusParams, data_dir: Path) -> list[dict[str, Any]]:
    """Originals, variants and negatives with their HTML, in a seeded order."""
    rng = random.Random(params.seed)
    order = list(pages)
    rng.shuffle(order)
    chosen = order[: params.docs]
    words_of = {page.page_id: page.ground_truth.split() for page in pages}
    records: list[dict[str, Any]] = []
    segments_of = {}
    for page in chosen:
        html = page.html(data_dir)
        segments = split_page(html, page.ground_truth)
        if segments.text_indices(main=True):
            segments_of[page.page_id] = segments
        records.append(_record(params, page, "original", 0, html, None, {}))
    editable = sorted(segments_of)
    dup_pages = rng.sample(editable, min(len(editable), round(params.dup_fraction * len(chosen))))
    neg_pages = rng.sample(editable, min(len(editable), round(params.negative_fraction * len(chosen))))
    by_id = {page.page_id: page for page in chosen}
    for page_id in dup_pages:
        for number in range(1, rng.randint(1, 3) + 1):
            html, edits = make_variant(segments_of[page_id], rng)
            records.append(_record(params, by_id[page_id], "variant", number, html, page_id, edits))
    others = sorted(words_of)
    for page_id in neg_pages:
        donor_ids = rng.sample([p for p in others if p != page_id], min(4, len(others) - 1))
        html, edits = make_negative(segments_of[page_id], [words_of[d] for d in donor_ids], rng)
        edits["donor_pages"] = donor_ids
        records.append(_record(params, by_id[page_id], "negative", 1, html, page_id, edits))
    return records


def _record(
    params: CorpusParams, page: Page, kind: str, number: int, html: str, of: str | None, edits: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": record_id(params.seed, page.page_id, kind, number),
        "page": page.page_id,
        "page_type": page.page_type,
        "kind": kind,
        "url": page.url if kind == "original" else _variant_url(page.url, kind, number),
        "of_page": of,
        "edits": edits,
        "html": html,
    }


def _file_of(doc_id: str, files: int) -> int:
    return int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "big") % files


def _write_warcs(records: list[dict[str, Any]], warc_dir: Path, params: CorpusParams) -> None:
    files = max(1, math.ceil(len(records) / params.docs_per_file))
    for record in records:
        record["file"] = f"bench-{_file_of(record['id'], files):05d}.warc.gz"
    for name in sorted({record["file"] for record in records}):
        with atomic_open(warc_dir / name, "wb") as handle:
            writer = WarcFileWriter(handle, name, record_id(params.seed, name, "warcinfo", 0))
            for record in records:
                if record["file"] == name:
                    html = record["html"].encode("utf-8")
                    record["html_bytes"] = len(html)
                    writer.add(record["id"], record["url"], html)


def build_corpus(
    params: CorpusParams, data_dir: Path = DEFAULT_DATA, cache: Path | None = None, workers: int | None = None
) -> Corpus:
    """Build the corpus for these parameters, or return the one already in the cache."""
    root = (cache or cache_root()) / "corpus" / params.key(data_dir)
    if (root / TRUTH_NAME).exists():
        return Corpus(root)
    work = root.parent / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    pages = load_pages(data_dir)
    records = _plan_records(pages, params, data_dir)
    _write_warcs(records, work / "warc", params)
    log.info("extracting %d records to compute the ground truth", len(records))
    texts = extract_all([record.pop("html") for record in records], workers or os.cpu_count() or 1)
    text_of = {record["id"]: text for record, text in zip(records, texts, strict=True)}
    with atomic_open(work / EXTRACTED_NAME, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps({"id": record["id"], "text": text_of[record["id"]]}) + "\n")
    original_of = {r["page"]: r["id"] for r in records if r["kind"] == "original"}
    for record in records:
        text = text_of[record["id"]]
        record["extracted_words"] = len(text.split()) if text else 0
        if record["of_page"] is not None:
            record["of"] = original_of[record["of_page"]]
            record["jaccard_to_original"] = round(jaccard(text, text_of[record["of"]]), 4)
    pairs = similar_pairs(text_of.items(), params.min_pair_jaccard)
    truth = {
        "generator_version": GENERATOR_VERSION,
        "params": asdict(params),
        "data_dir": str(data_dir.resolve()),
        "similarity": "exact Jaccard of lowercased word 5-gram sets of trafilatura's text",
        "records": sorted(records, key=lambda r: r["id"]),
        "pairs": [list(pair) for pair in pairs],
    }
    write_json(work / TRUTH_NAME, truth)
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(work, root)
    except OSError:  # another build finished first; its result is equivalent
        shutil.rmtree(work, ignore_errors=True)
    return Corpus(root)


def summarize(corpus: Corpus) -> dict[str, Any]:
    """Counts of a built corpus: records by kind, files, HTML bytes, pairs and variants above 0.8."""
    truth = corpus.truth()
    records = truth["records"]
    kinds: dict[str, int] = {}
    for record in records:
        kinds[record["kind"]] = kinds.get(record["kind"], 0) + 1
    variants = [r for r in records if r["kind"] == "variant"]
    return {
        "path": str(corpus.root),
        "records": len(records),
        "by_kind": kinds,
        "files": len(corpus.warc_files()),
        "html_bytes": sum(r["html_bytes"] for r in records),
        "pairs_at_least_0.5": len(truth["pairs"]),
        "variants_at_least_0.8": sum(r["jaccard_to_original"] >= 0.8 for r in variants),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: build (or find) a corpus and print where it is and what it holds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = CorpusParams()
    parser.add_argument("--docs", type=int, default=defaults.docs, help="WCXB pages to use (default all)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--dup-fraction", type=float, default=defaults.dup_fraction)
    parser.add_argument("--negative-fraction", type=float, default=defaults.negative_fraction)
    parser.add_argument("--docs-per-file", type=int, default=defaults.docs_per_file)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the wcxb-dev directory")
    parser.add_argument("--cache", type=Path, default=None, help="cache directory (default: see module doc)")
    parser.add_argument("--workers", type=int, default=None, help="extraction processes (default: cores)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    params = CorpusParams(
        docs=args.docs,
        dup_fraction=args.dup_fraction,
        negative_fraction=args.negative_fraction,
        docs_per_file=args.docs_per_file,
        seed=args.seed,
    )
    corpus = build_corpus(params, args.data, args.cache, args.workers)
    print(json.dumps(summarize(corpus), indent=2))


if __name__ == "__main__":
    main()
