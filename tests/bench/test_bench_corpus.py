"""The benchmark corpus: WARC records both readers accept, variants that edit only text, a reproducible truth."""

from __future__ import annotations

import gzip
import io
import random
from pathlib import Path

import pytest
from bench.corpus import CorpusParams, Page, build_corpus, load_pages, record_id
from bench.dt_reader import FastWarcReader
from bench.truth import jaccard, shingles, similar_pairs
from bench.variants import make_negative, make_variant, split_page
from bench.warc_writer import WarcFileWriter

from corpusmill.core.stats import Stats
from corpusmill.io import read_batches


def _write_warc(path: Path, pages: list[tuple[str, str, str]]) -> None:
    with open(path, "wb") as handle:
        writer = WarcFileWriter(handle, path.name, "urn:uuid:00000000-0000-4000-8000-000000000000")
        for doc_id, url, html in pages:
            writer.add(doc_id, url, html.encode("utf-8"))


def test_written_records_read_back_with_corpusmill_and_datatrove_readers(tmp_path: Path) -> None:
    pages = [
        (
            "urn:uuid:11111111-1111-4111-8111-111111111111",
            "https://a.example/x",
            "<html><p>Grüße, Welt</p></html>",
        ),
        (
            "urn:uuid:22222222-2222-4222-8222-222222222222",
            "https://b.example/y?q=1",
            "<html><p>second</p></html>",
        ),
    ]
    _write_warc(tmp_path / "t.warc.gz", pages)
    batches = list(read_batches(str(tmp_path / "t.warc.gz"), "warc", batch_size=10, stats=Stats()))
    rows = [row for batch in batches for row in batch.to_pylist()]
    assert [(r["source_id"], r["url"], r["html"]) for r in rows] == pages

    reader = FastWarcReader(str(tmp_path), glob_pattern="*.warc.gz")
    docs = list(reader.read_file("t.warc.gz"))
    assert [(d.id, d.metadata["url"], d.text) for d in docs] == [(f"<{i}>", u, h) for i, u, h in pages]


def test_each_record_is_its_own_gzip_member(tmp_path: Path) -> None:
    path = tmp_path / "t.warc.gz"
    _write_warc(path, [("urn:uuid:11111111-1111-4111-8111-111111111111", "https://a.example/", "<p>x</p>")])
    data = path.read_bytes()
    members = data.count(b"\x1f\x8b\x08")
    assert members == 2  # warcinfo + response
    text = gzip.GzipFile(fileobj=io.BytesIO(data)).read().decode()
    assert text.count("WARC/1.0\r\n") == 2 and "WARC-Identified-Payload-Type: text/html" in text


@pytest.fixture(scope="module")
def page(shared_data: Path) -> Page:
    pages = load_pages(shared_data / "wcxb-dev")
    return next(p for p in pages if len(p.ground_truth.split()) > 300)


def test_variant_changes_only_text_and_mostly_main_content(page: Page, shared_data: Path) -> None:
    html = page.html(shared_data / "wcxb-dev")
    segments = split_page(html, page.ground_truth)
    assert segments.join() == html
    main_words = " ".join(segments.pieces[i] for i in segments.text_indices(main=True))
    assert jaccard(main_words, page.ground_truth) > 0.3  # the runs called main content are the article
    variant, edits = make_variant(segments, random.Random(3))
    assert variant != html
    assert segments.join() == html  # the original segments are untouched
    edited = split_page(variant, page.ground_truth)
    markup_before = [p for p, text in zip(segments.pieces, segments.is_text, strict=True) if not text]
    markup_after = [p for p, text in zip(edited.pieces, edited.is_text, strict=True) if not text]
    promo = [p for p in markup_after if p not in markup_before]
    assert all('href="/offers/' in p or p == "</a>" for p in promo)
    assert sum(edits[k] for k in ("substituted", "deleted", "inserted")) >= 1


def test_negative_keeps_the_template_and_replaces_the_article(page: Page, shared_data: Path) -> None:
    html = page.html(shared_data / "wcxb-dev")
    segments = split_page(html, page.ground_truth)
    donors = [("alpha beta gamma delta epsilon zeta eta theta iota kappa " * 40).split()]
    negative, edits = make_negative(segments, donors, random.Random(1))
    boilerplate = [segments.pieces[i] for i in segments.text_indices(main=False)]
    edited = split_page(negative, page.ground_truth)
    assert edited.text_indices(main=True) == []  # no run of the article is left
    assert [edited.pieces[i] for i in edited.text_indices(main=False)][: len(boilerplate)][:5] == boilerplate[
        :5
    ]
    assert "alpha beta" in negative and edits["main_words_replaced"] > 100


def test_similar_pairs_equal_brute_force() -> None:
    rng = random.Random(5)
    vocabulary = [f"w{i}" for i in range(40)]
    base = [rng.choice(vocabulary) for _ in range(120)]
    texts = {"a": " ".join(base)}
    for name, edits in (("b", 2), ("c", 8), ("d", 40)):
        words = list(base)
        for position in rng.sample(range(len(words)), edits):
            words[position] = "zz"
        texts[name] = " ".join(words)
    texts["e"] = "short text"
    found = similar_pairs(texts.items(), 0.3)
    expected = sorted(
        (a, b, round(jaccard(texts[a], texts[b]), 4))
        for a in texts
        for b in texts
        if a < b and jaccard(texts[a], texts[b]) >= 0.3
    )
    assert found == expected and found
    assert shingles("one two") == {"one two"}


def test_corpus_build_records_truth_and_is_reused(shared_data: Path, tmp_path: Path) -> None:
    params = CorpusParams(docs=3, dup_fraction=0.7, negative_fraction=0.34, docs_per_file=3, seed=4)
    corpus = build_corpus(params, shared_data / "wcxb-dev", tmp_path, workers=1)
    truth = corpus.truth()
    records = {r["id"]: r for r in truth["records"]}
    kinds = [r["kind"] for r in records.values()]
    assert kinds.count("original") == 3 and kinds.count("negative") == 1 and kinds.count("variant") >= 2
    direct = corpus.direct_extractions()
    for record in records.values():
        assert any(record["id"] == record_id(4, record["page"], record["kind"], n) for n in range(4))
        if record["kind"] != "original":
            original = records[record["of"]]
            assert original["kind"] == "original" and original["page"] == record["page"]
            assert record["jaccard_to_original"] == round(
                jaccard(direct[record["id"]], direct[record["of"]]), 4
            )
    pair_set = {(a, b) for a, b, _ in truth["pairs"]}
    variants = [r for r in records.values() if r["kind"] == "variant" and r["jaccard_to_original"] >= 0.5]
    assert variants and all(tuple(sorted((r["id"], r["of"]))) in pair_set for r in variants)
    files = corpus.warc_files()
    read = sum(b.num_rows for f in files for b in read_batches(str(f), "warc", batch_size=50, stats=Stats()))
    assert read == len(records) and 1 < len(files) <= -(-len(records) // 3)
    stamp = (corpus.root / "ground_truth.json").stat().st_mtime_ns
    again = build_corpus(params, shared_data / "wcxb-dev", tmp_path, workers=1)
    assert again.root == corpus.root and (again.root / "ground_truth.json").stat().st_mtime_ns == stamp
