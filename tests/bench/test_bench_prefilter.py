"""The pre-filter bench on a handful of real pages: the mix it builds, its table, recall and JSON figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.prefilter import crawl_files, keys_of, main, page_url, read_crawl


def test_the_mix_holds_every_source_once(shared_data: Path, tmp_path: Path) -> None:
    files = crawl_files(tmp_path, 3, shared_data, multilingual_every=40)
    batches = read_crawl(files, batch_size=16)
    keys = [key for batch in batches for key in keys_of(batch)]
    assert len(keys) == len(set(keys)) == 6 + 3 + 38  # 239 pages / 40, 3 WCXB pages, the Common Crawl records
    assert keys[0] == "multilingual:readability-001"
    assert sum(key.startswith("wcxb:") for key in keys) == 3
    assert sum(key.endswith("(https://allenai.org/)") for key in keys) == 3  # one URL, three records
    assert any(key.endswith("(https://an.wikipedia.org/wiki/Escopete)") for key in keys)
    assert all(batch.column("html").null_count == 0 for batch in batches)


def test_page_url_prefers_the_pages_own_address() -> None:
    page = b'<head><link rel="canonical" href="https://example.com/a"><meta property="og:url" content="x"></head>'
    assert page_url(page, "fallback") == "https://example.com/a"
    assert (
        page_url(b'<meta content="https://example.org/b" property="og:url">', "f") == "https://example.org/b"
    )
    assert (
        page_url(b'<meta property="og:url" content="https://example.org/b">', "f") == "https://example.org/b"
    )
    assert page_url(b"<p>no address</p>", "fallback") == "fallback"


def test_smoke_run_prints_the_table_and_writes_the_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "prefilter.json"
    status = main(
        [
            "--multilingual-every",
            "20",
            "--wcxb",
            "3",
            "--no-commoncrawl",
            "--no-datatrove",
            "--no-default-lists",
            "--sweep",
            "--json",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert "| (b) lang_prefilter + extract + langid |" in printed and "recall vs (a)" in printed
    figures = json.loads(out.read_text())
    recipes = figures["recipes"]
    assert figures["documents"] == 12 + 3
    assert set(recipes) == {"a", "b", "c"}
    assert recipes["a"]["extracted"] == 15
    # The multilingual sample holds German pages: the pre-filter drops them before extraction, losing nothing.
    assert recipes["b"]["reasons"].get("lang_prefilter", 0) >= 1
    assert recipes["b"]["extracted"] == 15 - recipes["b"]["reasons"]["lang_prefilter"]
    assert recipes["b"]["recall"] == recipes["c"]["recall"] == 1.0 and recipes["b"]["lost"] == []
    assert recipes["b"]["kept"] == recipes["a"]["kept"]
    assert recipes["c"]["stages"] == ["url_filter", "lang_prefilter", "extract", "langid"]
    projection = figures["projection"]
    assert projection["prefilter_ms_per_page"] > 0
    # Split into what a page it passes and a page it drops cost (timed as groups: on 15 pages, mostly noise).
    assert {"prefilter_ms_per_passed_page", "prefilter_ms_per_dropped_page"} <= set(projection)
    # How the pre-filter judged the 15 pages: each by one route, each drop on its main content.
    routes = recipes["b"]["prefilter_routes"]
    judged = sum(routes[route] for route in ("first_step", "second_step", "declared_other", "one_step"))
    assert judged + routes["no_verdict"] == 15 and routes["one_step"] == 0 and routes["first_step"] >= 1
    assert routes["second_step"] + routes["declared_other"] >= recipes["b"]["reasons"]["lang_prefilter"]
    assert "kept on the whole page's text" in printed
    sweep = figures["sweep"]
    assert len(sweep) == 36 and all(not row["lost"] for row in sweep if row["main_content"])
    one_step = [row for row in sweep if row["main_content"] and row["page_keep_score"] is None]
    two_steps = [row for row in sweep if row["page_keep_score"] == 0.5 and row["min_chars"] == 200]
    assert one_step[0]["main_content_pages"] > two_steps[0]["main_content_pages"]
    assert all(one["dropped"] >= two["dropped"] for one, two in zip(one_step, two_steps, strict=True))
