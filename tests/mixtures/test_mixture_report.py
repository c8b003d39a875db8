"""The run report's numbers, checked against stats built by hand and against a real local run's documents."""

from __future__ import annotations

import json
import random
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from corpusmill.core.recipe import parse_recipe
from corpusmill.mixtures.report import build_report, report_data
from corpusmill.mixtures.report_html import RUN_NAV_SCRIPT
from corpusmill.pipelines.runner import run_recipe

HOSTILE = '<script>alert("pwned")</script>&co'


def _quality(bins: dict[int, int]) -> list[int]:
    return [bins.get(i, 0) for i in range(20)]


def _domain(
    documents: int, tokens: int, eligible: tuple[int, int], quality: dict[int, int]
) -> dict[str, Any]:
    scored = sum(quality.values())
    return {
        "documents": documents,
        "tokens": tokens,
        "bytes": tokens * 4,
        "eligible_documents": eligible[0],
        "eligible_tokens": eligible[1],
        "unscored_documents": documents - scored,
        "quality_documents": _quality(quality),
        "quality_tokens": _quality({b: n * 100 for b, n in quality.items()}),
    }


def hand_stats() -> dict[str, Any]:
    """A run of 1000 records and two unreadable files: read, langid, quality, tokenize, mix to 60k tokens over three domains, shards.

    news: 500 docs / 50,000 tokens, weight 0.5 -> rate 0.6, 300 docs and 30,150 tokens kept (200 down-sampled).
    science: 300 docs / 30,000 tokens, 250 above its quality floor, weight 0.5 -> rate 1.2, 250 docs + 50 repeats
    = 29,000 tokens (off plan by 3.3%), 50 below the floor. HOSTILE: 100 docs / 10,000 tokens, no weight.
    """
    plan_rows = [
        ("news", 500, 50_000, 0.5, 0.6, 30_000.0, False),
        ("science", 250, 25_000, 0.5, 1.2, 30_000.0, False),
        (HOSTILE, 100, 10_000, 0.0, 0.0, 0.0, False),
    ]
    return {
        "recipe": "hand",
        "fingerprint": "abc123",
        "engine": "local",
        "documents_out": 600,
        "tokens_written": 59_150,
        "sinks": {"05-write_shards_v1": {"shards": [{"num_tokens": 30_000}, {"num_tokens": 29_150}]}},
        "stages": [
            {
                "label": "00-read",
                "counters": {
                    "docs_out": 1000,
                    "reader.documents": 1000,
                    "reader.corrupt_file": 2,
                    "skipped.corrupt_file": 2,
                },
            },
            {
                "label": "01-langid_v1",
                "counters": {
                    "docs_in": 1000,
                    "docs_out": 900,
                    "dropped.lang_not_allowed": 100,
                    "langid.lang.en": 880,
                    "langid.lang.de": 100,
                    "langid.lang.fr": 20,
                },
            },
            {
                "label": "02-quality_v1",
                "counters": {
                    "docs_in": 900,
                    "docs_out": 900,
                    "quality.scored": 890,
                    "quality.empty": 10,
                    **{f"quality.rounded.{k}": n for k, n in enumerate([10, 80, 300, 300, 150, 50])},
                },
                "moments": {"quality.score": {"count": 890, "mean": 2.6, "std": 1.1, "m2": 1.0}},
            },
            {"label": "03-tokenize_v1", "counters": {"docs_in": 900, "docs_out": 900, "tokens": 90_000}},
            {
                "label": "04-mix_v1",
                "counters": {
                    "docs_in": 900,
                    "docs_out": 600,
                    "dropped.mix_downsampled": 200,
                    "dropped.below_min_quality": 50,
                    "dropped.mix_excluded": 100,
                    "repeated_copies": 50,
                    "documents_out.news": 300,
                    "tokens_out.news": 30_150,
                    "documents_out.science": 300,
                    "tokens_out.science": 29_000,
                },
            },
            {
                "label": "05-write_shards_v1",
                "counters": {"docs_in": 600, "docs_out": 600, "shard_tokens": 59_150, "shards": 2},
            },
        ],
        "plans": {
            "04-mix_v1": {
                "seed": 7,
                "rates": {name: rate for name, *_, rate, _, _ in plan_rows},
                "thresholds": {},
                "mixture": {
                    "mode": "weights",
                    "budget": 60_000,
                    "max_epochs": 4.0,
                    "expected_tokens": 60_000.0,
                    "domains": [
                        {
                            "domain": name,
                            "eligible_documents": docs,
                            "eligible_tokens": tokens,
                            "requested": weight,
                            "rate": rate,
                            "expected_tokens": expected,
                            "expected_documents": rate * docs,
                            "capped": capped,
                        }
                        for name, docs, tokens, weight, rate, expected, capped in plan_rows
                    ],
                    "warnings": [
                        f"{HOSTILE}: 10,000 tokens in the corpus but no weight; left out of the mixture"
                    ],
                },
                "accounting": {
                    "domains": {
                        "news": _domain(500, 50_000, (500, 50_000), {8: 100, 12: 300, 16: 95}),
                        "science": _domain(300, 30_000, (250, 25_000), {4: 50, 14: 250}),
                        HOSTILE: _domain(100, 10_000, (100, 10_000), {2: 100}),
                    },
                    "sources": {
                        "s3://crawl/a.warc.gz": {"documents": 600, "tokens": 60_000},
                        "s3://crawl/b.warc.gz": {"documents": 300, "tokens": 30_000},
                    },
                    "langs": {
                        "en": {"documents": 800, "tokens": 81_000},
                        "de": {"documents": 100, "tokens": 9_000},
                    },
                },
            }
        },
    }


def write_run(tmp_path: Path, stats: dict[str, Any]) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "stats.json").write_text(json.dumps(stats))
    (run_dir / "manifest.json").write_text(json.dumps({"finished_at": "2026-01-02T03:04:05+00:00"}))
    (run_dir / "recipe.yaml").write_text("name: hand\ndescription: 'a <b>bold</b> mixture'\n")
    return run_dir


def _by_domain(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["domain"]: d for d in data["mixtures"][0]["domains"]}


def test_funnel_counts_documents_drops_and_tokens_per_stage(tmp_path: Path) -> None:
    out = build_report(write_run(tmp_path, hand_stats()))
    funnel = {row["label"]: row for row in json.loads((out / "mixture.json").read_text())["funnel"]}
    read = funnel["00-read"]
    assert (read["records_in"], read["documents_out"], read["failed_files"]) == (1000, 1000, 2)
    assert read["skipped"] == {"corrupt_file": 2} and read["dropped"] == {}  # unreadable files: not documents
    assert funnel["01-langid_v1"]["dropped"] == {"lang_not_allowed": 100}
    assert funnel["03-tokenize_v1"]["tokens_out"] == 90_000
    mix = funnel["04-mix_v1"]
    assert (mix["documents_in"], mix["documents_out"], mix["dropped_total"]) == (900, 600, 350)
    assert mix["dropped"] == {"mix_downsampled": 200, "mix_excluded": 100, "below_min_quality": 50}
    assert mix["added"] == 50  # 900 in - 350 dropped = 550 kept once, plus 50 repeats = 600 out
    assert (mix["tokens_in"], mix["tokens_out"]) == (90_000, 59_150)
    assert funnel["05-write_shards_v1"]["tokens_out"] == 59_150
    assert [row["stage"] for row in funnel.values()] == [
        "read",
        "langid",
        "quality",
        "tokenize",
        "mix",
        "write_shards",
    ]


def test_domains_compare_planned_and_achieved_with_shares(tmp_path: Path) -> None:
    data = report_data(tmp_path, hand_stats())
    mixture = data["mixtures"][0]
    domains = _by_domain(data)
    assert list(domains) == ["news", "science", HOSTILE]
    news, science, hostile = domains["news"], domains["science"], domains[HOSTILE]
    assert news["ratio"] == pytest.approx(30_150 / 30_000) and news["on_plan"]
    assert science["ratio"] == pytest.approx(29_000 / 30_000) and not science["on_plan"]
    assert hostile["ratio"] is None and hostile["on_plan"]  # nothing planned, nothing taken
    assert (science["documents_before"], science["eligible_tokens"], science["rate"]) == (300, 25_000, 1.2)
    assert news["share_before"] == pytest.approx(50_000 / 90_000)
    assert hostile["share_before"] == pytest.approx(10_000 / 90_000)
    assert news["share_planned"] == pytest.approx(0.5)
    assert news["share_after"] == pytest.approx(30_150 / 59_150)
    assert science["share_after"] == pytest.approx(29_000 / 59_150)
    assert hostile["share_after"] == 0
    assert (mixture["achieved_tokens"], mixture["achieved_documents"], mixture["repeated_copies"]) == (
        59_150,
        600,
        50,
    )
    assert (mixture["tokens_before"], mixture["planned_tokens"], mixture["budget"]) == (
        90_000,
        60_000.0,
        60_000,
    )


def test_quality_histograms_keep_their_bins_per_domain(tmp_path: Path) -> None:
    science = _by_domain(report_data(tmp_path, hand_stats()))["science"]["quality"]
    assert science["documents"][4] == 50 and science["documents"][14] == 250
    assert sum(science["documents"]) == science["scored_documents"] == 300
    assert science["unscored_documents"] == 0 and science["bin_width"] == 0.25
    assert science["tokens"][14] == 25_000


def test_breakdowns_warnings_and_run_info(tmp_path: Path) -> None:
    data = report_data(write_run(tmp_path, hand_stats()), hand_stats())
    langs = {row["name"]: row for row in data["languages"]["rows"]}
    assert langs["de"]["token_share"] == pytest.approx(0.1) and langs["en"]["documents"] == 800
    assert [row["name"] for row in data["sources"]["rows"]] == [
        "s3://crawl/a.warc.gz",
        "s3://crawl/b.warc.gz",
    ]
    kinds = Counter(w["kind"] for w in data["warnings"])
    assert kinds == {"plan": 1, "achieved": 1}
    achieved = next(w for w in data["warnings"] if w["kind"] == "achieved")
    assert achieved["message"].startswith("science: achieved 29,000 tokens against 30,000 planned (96.67%")
    assert data["run"]["shards"] == 2 and data["run"]["finished_at"] == "2026-01-02T03:04:05+00:00"
    assert data["run"]["description"] == "a <b>bold</b> mixture"
    assert data["quality_scores"]["rounded"] == {"0": 10, "1": 80, "2": 300, "3": 300, "4": 150, "5": 50}


class _Cells(HTMLParser):
    """Collects the data-* attributes of the cells of one table, per row's data-domain."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.inside, self.row = table_id, False, ""
        self.rows: dict[str, dict[str, str]] = {}
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.inside = a.get("id") == self.table_id
        elif self.inside and tag == "tr" and "data-domain" in a:
            self.row = a["data-domain"] or ""
            self.rows[self.row] = {}
        elif self.inside and tag == "td" and self.row:
            self.rows[self.row].update({k: v or "" for k, v in a.items() if k.startswith("data-")})

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def test_html_carries_the_json_numbers_and_escapes_hostile_strings(tmp_path: Path) -> None:
    stats = hand_stats()
    stats["stages"][1]["counters"]["dropped.<img src=x onerror=alert(1)>"] = 0
    out = build_report(write_run(tmp_path, stats))
    page = (out / "index.html").read_text()
    data = json.loads((out / "mixture.json").read_text())
    own = f"<script>{RUN_NAV_SCRIPT}</script>"  # the page's one script: the link back to the run
    assert page.count(own) == 1 and "<script" not in page.replace(own, "").lower()
    assert "<img" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&amp;co" in page
    parser = _Cells("domains")
    parser.feed(page)
    assert set(parser.rows) == {d["domain"] for d in data["mixtures"][0]["domains"]}  # unescaped back exactly
    for d in data["mixtures"][0]["domains"]:
        cells = parser.rows[d["domain"]]
        assert float(cells["data-planned-tokens"]) == d["planned_tokens"]
        assert int(cells["data-achieved-tokens"]) == d["achieved_tokens"]
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert "pwned" in "".join(parser.texts)  # shown as text, not run


def test_a_run_without_a_mix_stage_still_gets_a_report(tmp_path: Path) -> None:
    stats = hand_stats()
    stats["stages"] = [s for s in stats["stages"] if s["label"] != "04-mix_v1"]
    stats["plans"] = {}
    out = build_report(write_run(tmp_path, stats))
    data = json.loads((out / "mixture.json").read_text())
    page = (out / "index.html").read_text()
    assert data["mixtures"] == [] and data["sources"] is None
    assert any("no `mix` stage" in note for note in data["notes"])
    langs = {row["name"]: row for row in data["languages"]["rows"]}
    assert langs["en"]["documents"] == 880 and langs["fr"]["document_share"] == pytest.approx(0.02)
    assert langs["en"]["tokens"] is None
    assert [row["label"] for row in data["funnel"]][-1] == "05-write_shards_v1"
    assert 'id="domains"' not in page and 'id="funnel"' in page and "no <code>mix</code>" not in page
    assert "no `mix` stage" in page
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "mixture.json"]  # no temporary files left


def test_a_missing_stats_file_names_the_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"stats\.json does not exist"):
        build_report(tmp_path)


WORDS = (
    "house",
    "water",
    "people",
    "garden",
    "school",
    "winter",
    "morning",
    "village",
    "family",
    "teacher",
    "river",
)


def test_a_real_local_run_reports_what_its_documents_show(tmp_path: Path) -> None:
    rng = random.Random(3)
    inputs = tmp_path / "in"
    inputs.mkdir()
    sizes = {"news": (60, "en"), "science": (30, "de"), "shop": (20, "en"), "forum": (15, "fr")}
    for name, (count, lang) in sizes.items():
        rows = [
            {
                "id": f"{name}-{i:03d}",
                "lang": lang,
                "text": " ".join(rng.choices(WORDS, k=rng.randint(20, 80))),
            }
            for i in range(count)
        ]
        (inputs / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    path = {name: f"{name}.jsonl" for name in sizes}  # `source` is the name relative to the input root
    mix = {
        "stage": "mix",
        "domain_column": "source",
        "budget": 4000,
        "weights": {path["news"]: 0.4, path["science"]: 0.4, path["forum"]: 0.2},
        "min_quality": {path["forum"]: 2.0},  # nothing is scored: every forum document is below the floor
    }
    recipe = parse_recipe(
        {
            "name": "real",
            "input": {"paths": [str(inputs / "*.jsonl")], "part_bytes": 1, "lang_field": "lang"},
            "stages": [{"stage": "tokenize"}, mix, {"stage": "write_shards"}],
        }
    )
    run_dir = tmp_path / "run"
    run_recipe(recipe, engine="local", output=run_dir)
    data = json.loads((build_report(run_dir) / "mixture.json").read_text())

    kept = pq.read_table(run_dir / "documents", columns=["source", "token_count"]).to_pylist()
    rejected = pq.read_table(run_dir / "rejected", columns=["source", "drop_reason"]).to_pylist()
    tokens_kept = Counter()
    for row in kept:
        tokens_kept[row["source"]] += row["token_count"]
    domains = _by_domain(data)
    for name, (count, _) in sizes.items():
        d = domains[path[name]]
        assert d["documents_before"] == count
        assert d["achieved_tokens"] == tokens_kept[path[name]]
        assert d["achieved_documents"] == sum(row["source"] == path[name] for row in kept)
    assert domains[path["shop"]]["share_after"] == 0 and domains[path["forum"]]["achieved_tokens"] == 0
    assert domains[path["news"]]["planned_tokens"] == pytest.approx(1600)
    funnel = {row["stage"]: row for row in data["funnel"]}
    assert funnel["mix"]["dropped"] == dict(Counter(row["drop_reason"] for row in rejected))
    assert (
        funnel["mix"]["dropped"]["below_min_quality"] == 15 and funnel["mix"]["dropped"]["mix_excluded"] == 20
    )
    assert funnel["mix"]["documents_out"] == len(kept) == data["run"]["documents_out"]
    assert funnel["write_shards"]["tokens_out"] == sum(tokens_kept.values()) == data["run"]["tokens_written"]
    langs = {row["name"]: row["documents"] for row in data["languages"]["rows"]}
    assert langs == {"en": 80, "de": 30, "fr": 15}
    messages = " ".join(w["message"] for w in data["warnings"])
    assert f"{path['forum']}: requested but the corpus has no documents above its quality floor" in messages
