"""The sample documents behind the report's numbers: chosen reproducibly, bounded, escaped, never fatal.

Runs are synthetic (`samplekit.py`): documents/ and rejected/ written with pyarrow, and stats computed from the
same rows, so the samples' counts can be held to the report's numbers exactly.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from samplekit import FILTER, HOSTILE, LONG_TEXT_CHARS, MIX, write_run

from corpusmill.core.hashing import hash64
from corpusmill.mixtures import report_samples
from corpusmill.mixtures.report import build_report, report_data, sampling_factor
from corpusmill.mixtures.report_documents import (
    MAX_TEXT_CHARS,
    PREVIEW_CHARS,
    full_document,
    preview_of,
    title_of,
)
from corpusmill.mixtures.report_html import RUN_NAV_SCRIPT, factor_label
from corpusmill.mixtures.report_samples import samples_data, slug
from corpusmill.mixtures.samples import id_hasher, quality_bucket, quality_buckets, sample_run

SAFE_PAGE = re.compile(r"^(samples|documents)/[a-z0-9_-]+\.html$")


def _samples(out: Path) -> dict[str, Any]:
    return json.loads((out / "samples.json").read_text())


def _chosen(samples: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    return {(c["kind"], c["key"]): [d["id"] for d in c["documents"]] for c in samples["cells"]}


def _counts(samples: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["kind"], c["key"]): c["scanned"] for c in samples["cells"]}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the synthetic run, cut into three parts in file order."""
    return build_report(write_run(tmp_path_factory.mktemp("samples")))


def test_every_cell_gets_a_page_and_up_to_five_documents(built: Path) -> None:
    samples = _samples(built)
    kinds = {(c["kind"], c["key"]) for c in samples["cells"]}
    assert {("domain", "news"), ("domain", "code"), ("domain", HOSTILE)} <= kinds
    assert {("quality", str(b)) for b in range(5)} <= kinds
    assert {("drop", f"{FILTER}/too_short"), ("drop", f"{FILTER}/{HOSTILE}")} <= kinds
    assert {("drop", f"{MIX}/mix_downsampled"), ("drop", f"{MIX}/mix_excluded")} <= kinds
    for cell in samples["cells"]:
        assert len(cell["documents"]) == min(5, cell["scanned"]["documents"]), cell["key"]
        assert SAFE_PAGE.match(cell["page"]) and (built / cell["page"]).is_file()
        for doc in cell["documents"]:
            assert SAFE_PAGE.match(doc["page"]) and (built / doc["page"]).is_file()
    pages = {c["page"] for c in samples["cells"]}
    assert {
        "samples/domain-news.html",
        "samples/quality-2-3.html",
        "samples/drop-02-mix_v1-mix_downsampled.html",
    } <= pages
    assert len(pages) == len(samples["cells"])
    assert (built / "samples" / "index.html").is_file()


def test_copies_are_counted_once_and_never_sampled(built: Path) -> None:
    samples = _samples(built)
    code = next(c for c in samples["cells"] if c["key"] == "code")
    assert code["scanned"] == {"documents": 16, "copies": 16, "tokens": 280, "complete": True}
    assert all("#" not in d["id"] for c in samples["cells"] for d in c["documents"])


def test_each_cell_shows_the_numbers_of_mixture_json(built: Path) -> None:
    data = json.loads((built / "mixture.json").read_text())
    samples = _samples(built)
    cells = {(c["kind"], c["key"]): c for c in samples["cells"]}
    for domain in data["mixtures"][0]["domains"]:
        numbers = cells[("domain", domain["domain"])]["numbers"]
        for key in (
            "tokens_before",
            "eligible_tokens",
            "planned_tokens",
            "achieved_tokens",
            "achieved_documents",
        ):
            assert numbers[key] == domain[key]
        assert numbers["factor"] == domain["factor"]
    # A quality bucket counts what entered the mix with such a score: kept plus dropped by the mix stage.
    for bucket in range(5):
        cell = cells[("quality", str(bucket))]
        assert cell["numbers"]["documents"] == cell["scanned"]["documents"]
        assert cell["scanned"]["documents"] == cell["scanned"].get("kept", 0) + cell["scanned"].get(
            "dropped", 0
        )
    funnel = {row["label"]: row for row in data["funnel"]}
    for cell in samples["cells"]:
        if cell["kind"] == "drop":
            assert cell["numbers"]["dropped"] == funnel[cell["stage"]]["dropped"][cell["reason"]]
            assert cell["scanned"]["documents"] == cell["numbers"]["dropped"]
            assert all(
                d["drop"] == {**d["drop"], "stage": cell["stage"], "reason": cell["reason"]}
                for d in cell["documents"]
            )
    page = (built / "samples" / "domain-news.html").read_text()
    news = next(d for d in data["mixtures"][0]["domains"] if d["domain"] == "news")
    for key in ("tokens_before", "planned_tokens", "achieved_tokens", "achieved_documents"):
        assert f'<tr data-number="{key}">' in page and f'data-value="{news[key]!r}"' in page


@pytest.mark.parametrize(("parts", "order"), [(1, None), (5, 1), (2, 7)])
def test_the_same_rows_give_the_same_samples_however_they_are_cut_and_ordered(
    built: Path, tmp_path: Path, parts: int, order: int | None
) -> None:
    other = build_report(write_run(tmp_path, parts=parts, order=order))
    first, second = _samples(built), _samples(other)
    assert _chosen(second) == _chosen(first)
    assert _counts(second) == _counts(first)
    assert [c["documents"] for c in second["cells"]] == [c["documents"] for c in first["cells"]]
    assert (other / "samples" / "domain-news.html").read_bytes() == (
        built / "samples" / "domain-news.html"
    ).read_bytes()


def test_another_seed_picks_other_documents_and_removes_the_old_pages(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path)
    out = build_report(run_dir)
    before, pages_before = _chosen(_samples(out)), {p.name for p in (out / "documents").iterdir()}
    recipe = (run_dir / "recipe.yaml").read_text().replace("seed: 0", "seed: 12345")
    (run_dir / "recipe.yaml").write_text(recipe)
    second = _samples(build_report(run_dir))
    assert second["seed"] == 12345 and _chosen(second) != before
    pages_after = {p.name for p in (out / "documents").iterdir()}
    # Exactly the pages of the documents sampled now: those of documents no longer sampled are gone.
    assert pages_after == {d["page"].split("/")[1] for c in second["cells"] for d in c["documents"]}
    assert pages_after != pages_before


def test_the_scan_is_bounded_and_says_where_it_stopped(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, parts=4)
    stats = json.loads((run_dir / "stats.json").read_text())
    sample = sample_run(run_dir, stats, per_cell=2, max_rows=10)
    scans = {s.source: s for s in sample.scans}
    assert scans["documents"].rows_read == 10 and not scans["documents"].complete
    assert all(s.rows_read <= 10 for s in sample.scans)
    samples = samples_data(report_data(run_dir, stats), sample)
    assert all(len(c["documents"]) <= 2 for c in samples["cells"])
    assert any("documents stopped after 10 rows" in note for note in samples["notes"])
    news = next(c for c in samples["cells"] if c["key"] == "news")
    assert news["scanned"]["complete"] is False and news["scanned"]["documents"] < 20


def test_text_is_capped_on_every_page(built: Path) -> None:
    record = {"id": "x", "text": "A title\n" + "y" * (LONG_TEXT_CHARS), "url": None}
    full = full_document(record)
    assert full["text_cut"] and len(full["text"]) == MAX_TEXT_CHARS and full["chars"] == LONG_TEXT_CHARS + 8
    preview, cut = preview_of("\n".join(f"line {i} " + "z" * 300 for i in range(10)))
    assert cut and len(preview) <= PREVIEW_CHARS
    assert title_of("x" * 500, "https://a.example/b", "id-1") == "https://a.example/b"
    assert title_of("\n  Short title \nbody", None, "id-1") == "Short title"
    # The long document of the synthetic run, wherever it was sampled: its page says the text was cut.
    samples = _samples(built)
    for cell in samples["cells"]:
        for doc in cell["documents"]:
            assert len(doc["preview"]) <= PREVIEW_CHARS
            page = (built / doc["page"]).read_text()
            assert len(page) < MAX_TEXT_CHARS + 20_000
            if doc["chars"] > MAX_TEXT_CHARS:
                assert 'id="text-cut"' in page
    assert len((built / "samples.json").read_text()) < 200_000  # summaries only, never full texts


def test_hostile_strings_are_escaped_on_every_page(built: Path) -> None:
    pages = [*(built / "samples").iterdir(), *(built / "documents").iterdir(), built / "index.html"]
    assert len(pages) > 10
    for path in pages:
        page = path.read_text()
        own = f"<script>{RUN_NAV_SCRIPT}</script>"  # each page's one script: the link back to the run
        assert page.count(own) == 1 and "<script" not in page.replace(own, "").lower(), path
        assert "<img" not in page and "<b>bold" not in page, path
        assert 'href="javascript:' not in page.lower(), path
    hostile = (built / "samples" / f"domain-{slug(HOSTILE)}.html").read_text()
    assert "&lt;img src=x onerror=&quot;window.pwned=1;alert(&#x27;x&#x27;)&quot;&gt;&amp;amp;" in hostile


def test_slugs_are_safe_file_names_and_never_collide() -> None:
    keys = ["news", "News", "ne/ws", "../../etc", "日本語", "", "a" * 300, "drop:reason", "x y"]
    slugs = [slug(k) for k in keys]
    assert slug("news") == "news" and slug("e-commerce") == "e-commerce"
    assert len(set(slugs)) == len(keys)
    assert all(re.fullmatch(r"[a-z0-9_-]{1,60}", s) for s in slugs), slugs


def test_a_damaged_file_is_noted_and_skipped(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path)
    (run_dir / "documents" / "part-00009.parquet").write_bytes(b"PAR1 this is not parquet at all")
    out = build_report(run_dir)
    samples = _samples(out)
    assert [d["file"] for d in samples["damaged"]] == ["documents/part-00009.parquet"]
    assert any("documents/part-00009.parquet could not be read" in n for n in samples["notes"])
    scans = {s["source"]: s for s in samples["scans"]}
    assert scans["documents"]["files_damaged"] == 1 and scans["documents"]["files_read"] == 3
    assert next(c for c in samples["cells"] if c["key"] == "news")["scanned"]["complete"] is False
    assert 'id="samples-link"' in (out / "index.html").read_text()


def test_sampling_never_fails_a_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = write_run(tmp_path)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the store went away")

    monkeypatch.setattr(report_samples, "sample_run", broken)
    out = build_report(run_dir)
    assert (out / "index.html").is_file() and not (out / "samples.json").exists()
    assert "samples/" not in (out / "index.html").read_text()


def test_a_run_without_rejected_rows_has_no_drop_samples_and_says_so(tmp_path: Path) -> None:
    out = build_report(write_run(tmp_path, keep_rejected=False))
    samples = _samples(out)
    assert not samples["has_rejected"] and not [c for c in samples["cells"] if c["kind"] == "drop"]
    assert any("kept no rejected rows" in n for n in samples["notes"])
    assert 'id="no-drops"' in (out / "samples" / "index.html").read_text()
    assert "kept no rejected rows" in (out / "index.html").read_text()
    # Quality buckets then count kept documents only.
    assert all("dropped" not in c["scanned"] for c in samples["cells"] if c["kind"] == "quality")


def test_a_run_without_domains_is_sampled_by_language(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "documents").mkdir(parents=True)
    rows = [{"id": f"d{i}", "text": f"text {i}", "lang": ["en", "de", None][i % 3]} for i in range(30)]
    pq.write_table(pa.Table.from_pylist(rows), run_dir / "documents" / "part-00000.parquet")
    (run_dir / "stats.json").write_text(
        json.dumps({"stages": [{"label": "00-read", "counters": {"docs_out": 30}}]})
    )
    samples = _samples(build_report(run_dir))
    assert samples["grouping"]["kind"] == "language"
    assert {c["key"]: c["scanned"]["documents"] for c in samples["cells"]} == {
        "en": 10,
        "de": 10,
        "unknown": 10,
    }
    assert {c["page"] for c in samples["cells"]} == {
        f"samples/language-{k}.html" for k in ("en", "de", "unknown")
    }


def test_the_factor_says_how_mixing_scaled_each_domain(built: Path) -> None:
    assert sampling_factor(100, 200, 2.0) == (2.0, "achieved")
    assert sampling_factor(100, 0, 0.3) == (0.3, "plan")
    assert sampling_factor(0, 0, 1.0) == (None, None)
    assert [factor_label(f) for f in (2.0, 0.3, 0.05, 0.0, None, 12.4, 0.98)] == [
        "x2.0", "x0.3", "x0.05", "x0", "–", "x12", "x0.98",
    ]  # fmt: skip
    page = (built / "index.html").read_text()
    assert 'class="badge"' in page and "▲ x2.0" in page and "▼ x0.5" in page
    assert '<td class="up" data-factor="2.0">x2.0</td>' in page


def test_the_index_links_domains_buckets_and_reasons_to_their_pages(built: Path) -> None:
    page = (built / "index.html").read_text()
    assert '<a class="row-link" href="samples/domain-news.html">' in page  # the chart's rows
    assert '<a class="sample-link" href="samples/domain-news.html">news</a>' in page  # the tables' rows
    assert 'href="samples/quality-2-3.html"' in page
    assert '<a class="reason-link" href="samples/drop-02-mix_v1-mix_downsampled.html">' in page
    assert f'href="samples/drop-01-filter_v1-{slug(HOSTILE)}.html"' in page
    assert 'id="samples-link" href="samples/index.html"' in page


def test_a_copy_of_the_run_rebuilds_the_same_pages(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(built.parent, copy)
    shutil.rmtree(copy / "report")
    out = build_report(copy)
    for folder in ("samples", "documents"):
        assert {p.name: p.read_bytes() for p in (out / folder).iterdir()} == {
            p.name: p.read_bytes() for p in (built / folder).iterdir()
        }


def test_the_fast_paths_agree_with_the_plain_definitions() -> None:
    for seed in (0, 7, 2**40):
        hashed = id_hasher(seed)
        for doc_id in ("a", "", "doc:1", "日本語#1", "x" * 1000):
            assert hashed(doc_id) == hash64(seed, doc_id)
    scores = [0.0, 0.999999, 1.0, 2.5, 3.9999999999, 4.0, 5.0, 7.5, -1.0, 0.25 * 3]
    assert quality_buckets(np.asarray(scores)).tolist() == [quality_bucket(s) for s in scores]
