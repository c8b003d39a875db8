"""Both bare loops, run as measured jobs on a tiny real corpus: same extraction, duplicates found, costs seen."""

from __future__ import annotations

import gzip
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from bench.corpus import Corpus, CorpusParams, build_corpus
from bench.launch import run_measured
from bench.quality import dedup_quality


@pytest.fixture(scope="module")
def corpus(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    params = CorpusParams(docs=3, dup_fraction=0.67, negative_fraction=0.0, docs_per_file=3, seed=2)
    return build_corpus(params, shared_data / "wcxb-dev", tmp_path_factory.mktemp("cache"), workers=1)


def _run(job: str, corpus: Corpus, tmp_path: Path, copies: int = 1) -> dict[str, Any]:
    spec = {"warc_dir": str(corpus.warc_dir), "threshold": 0.8, "cores": 1}
    result = run_measured(job, spec, tmp_path / job, tmp_path / "cache", timeout_s=240, copies=copies)
    assert "error" not in result, result.get("error")
    return result


def _texts(result: dict[str, Any]) -> dict[str, str | None]:
    with gzip.open(result["extracted_path"], "rt", encoding="utf-8") as handle:
        return {row["id"]: row["text"] for row in map(json.loads, handle)}


def _check_run(result: dict[str, Any], corpus: Corpus) -> None:
    truth = corpus.truth()
    assert result["docs_in"] == len(truth["records"]) and result["tokens"] > 1000
    assert result["costs"]["extract"]["cpu_s"] > 0.05
    assert result["total"]["cpu_s"] >= result["costs"]["extract"]["cpu_s"]
    assert result["peak_rss_bytes"] > 50_000_000
    removed = set(result["removed_by_dedup"])
    assert removed <= set(result["entered_dedup"])
    # Variants this close are found by any MinHash with these settings: one of each pair must go.
    close = [r for r in truth["records"] if r["kind"] == "variant" and r["jaccard_to_original"] >= 0.9]
    entered = set(result["entered_dedup"])
    close = [r for r in close if r["id"] in entered and r["of"] in entered]
    assert close, "the corpus should hold close variants that reach dedup"
    assert all(r["id"] in removed or r["of"] in removed for r in close)
    score = dedup_quality(result["entered_dedup"], removed, truth["pairs"], 0.95)
    assert score["false_negatives"] == 0


def test_corpusmill_bare_loop(corpus: Corpus, tmp_path: Path) -> None:
    # Two copies at once, measured as their mean (as the bench runs bare loops on two cores).
    result = _run("corpusmill-bare", corpus, tmp_path, copies=2)
    _check_run(result, corpus)
    copies = result["copies"]
    assert len(copies) == 2 and all(copy["cpu_s"] > 0.05 for copy in copies)
    assert result["total"]["cpu_s"] == pytest.approx((copies[0]["cpu_s"] + copies[1]["cpu_s"]) / 2)
    assert result["extracted_path"].startswith(str(tmp_path / "corpusmill-bare" / "copy-1"))
    # Every stage set up once per copy, the extraction sandbox's start (trafilatura's import) included.
    assert 0.2 < result["setup_cpu_s"] < result["total"]["cpu_s"]
    assert (tmp_path / "corpusmill-bare" / "copy-2" / "result.json").is_file()
    assert result["input_bytes"] == sum(r["html_bytes"] for r in corpus.truth()["records"])
    direct = corpus.direct_extractions()
    texts = _texts(result)
    same = [doc_id for doc_id, text in direct.items() if text and texts[doc_id] is not None]
    assert same and all(texts[i] == unicodedata.normalize("NFC", direct[i]).strip() for i in same)


def test_datatrove_bare_loop(corpus: Corpus, tmp_path: Path) -> None:
    result = _run("datatrove-bare", corpus, tmp_path)
    _check_run(result, corpus)
    direct = corpus.direct_extractions()
    texts = _texts(result)
    assert texts and all(texts[doc_id] == direct[doc_id] for doc_id in texts)


def test_with_resiliparse_both_sides_extract_the_same_text(corpus: Corpus, tmp_path: Path) -> None:
    # `--extractor resiliparse`: corpusmill's stage and datatrove's step run the same function and options.
    spec = {"warc_dir": str(corpus.warc_dir), "threshold": 0.8, "cores": 1, "extractor": "resiliparse"}
    texts = {}
    for job in ("corpusmill-bare", "datatrove-bare"):
        result = run_measured(job, spec, tmp_path / job, tmp_path / "cache", timeout_s=240, copies=1)
        assert "error" not in result, result.get("error")
        texts[job] = _texts(result)
    direct = corpus.direct_extractions()  # trafilatura's: another extractor, so other text
    kept = [doc_id for doc_id, text in texts["corpusmill-bare"].items() if text]
    assert kept and any(texts["corpusmill-bare"][i] != direct[i] for i in kept)
    assert all(
        texts["corpusmill-bare"][i] == unicodedata.normalize("NFC", texts["datatrove-bare"][i]).strip()
        for i in kept
    )


def test_split_copies_of_the_bare_loop_share_the_files(corpus: Corpus, tmp_path: Path) -> None:
    # `bench.engine_pairs`' split bare loop: each copy reads every other WARC file, as a worker gets some parts.
    files = sorted(corpus.warc_dir.glob("*.warc.gz"))
    assert len(files) >= 2
    spec = {"warc_dir": str(corpus.warc_dir), "threshold": 0.8, "cores": 1}
    work = tmp_path / "split"
    result = run_measured(
        "corpusmill-bare", spec, work, tmp_path / "cache", timeout_s=240, copies=2, split=True
    )
    assert "error" not in result, result.get("error")
    copies = [json.loads((work / f"copy-{n}" / "result.json").read_text()) for n in (1, 2)]
    assert all(0 < copy["docs_in"] < len(corpus.truth()["records"]) for copy in copies)
    assert sum(copy["docs_in"] for copy in copies) == len(corpus.truth()["records"])
    spec_of = [json.loads((work / f"copy-{n}" / "spec.json").read_text())["share"] for n in (1, 2)]
    assert spec_of == [[0, 2], [1, 2]]
