"""The report of a run built on a base: the base run, the input files added and removed, documents taken down,
parts reused, and the change in the mixture against the base, checked against two real local runs' documents.

Where the runner takes `base`, the second run is a real incremental run with a takedown list. Where it does not
yet, the second run is a full run over the changed input (the documents a takedown would remove left out of it,
which is what the output of an incremental run equals) whose `stats.json` is given the `incremental` section the
runner writes.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import shutil
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from corpusmill.core.recipe import parse_recipe
from corpusmill.mixtures.report import build_report
from corpusmill.mixtures.report_incremental import MAX_SHOWN_FILES
from corpusmill.pipelines.runner import run_recipe

INCREMENTAL = "base" in inspect.signature(run_recipe).parameters
WORDS = ("house", "water", "people", "garden", "school", "winter", "morning", "village", "river")
BASE_INPUT = {"news": 40, "science": 30, "forum": 12}
# The second run: news grows, forum goes, shop and twelve small blogs come (more files than the page lists).
BLOGS = [f"blog-{i:02d}" for i in range(12)]
NEXT_INPUT = {"news": 55, "science": 30, "shop": 25, **dict.fromkeys(BLOGS, 3)}
# Document ids: the file's name relative to the input root and the 1-based line.
TAKEN_DOWN = ["news.jsonl:2", "news.jsonl:18", "news.jsonl:43"]


def _write(inputs: Path, name: str, count: int, skip: frozenset[str] = frozenset()) -> None:
    rng = random.Random(name)
    rows = [
        {"id": f"{name}-{i:03d}", "text": " ".join(rng.choices(WORDS, k=rng.randint(20, 80)))}
        for i in range(count)
    ]
    lines = [json.dumps(r) + "\n" for line, r in enumerate(rows, 1) if f"{name}.jsonl:{line}" not in skip]
    (inputs / f"{name}.jsonl").write_text("".join(lines), encoding="utf-8")


def _recipe(inputs: Path) -> Any:
    return parse_recipe(
        {
            "name": "grow",
            "input": {"paths": [str(inputs / "*.jsonl")], "part_bytes": 1},
            "stages": [
                {"stage": "tokenize"},
                {
                    "stage": "mix",
                    "domain_column": "source",
                    "budget": 3000,
                    "weights": {
                        "news.jsonl": 0.3,
                        "science.jsonl": 0.3,
                        "forum.jsonl": 0.2,
                        "shop.jsonl": 0.2,
                    },
                },
                {"stage": "write_shards"},
            ],
        }
    )


def _files(run_dir: Path) -> dict[str, tuple[int, str]]:
    """The run's input files by name, with size and version (as run.json records them)."""
    return {
        name: (size, version)
        for name, size, version in json.loads((run_dir / "run.json").read_text())["files"]
    }


def _written(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Documents and tokens per domain in the run's output."""
    docs, tokens = Counter(), Counter()
    for row in pq.read_table(run_dir / "documents", columns=["source", "token_count"]).to_pylist():
        docs[row["source"]] += 1
        tokens[row["source"]] += row["token_count"]
    return {name: (docs[name], tokens[name]) for name in docs}


def _two_runs(tmp_path: Path) -> tuple[Path, Path]:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, count in BASE_INPUT.items():
        _write(inputs, name, count)
    base = tmp_path / "base"
    run_recipe(_recipe(inputs), engine="local", output=base)
    (inputs / "forum.jsonl").unlink()
    run_dir = tmp_path / "next"
    if INCREMENTAL:
        for name, count in NEXT_INPUT.items():
            if name != "science":  # left as it was: its part is taken over from the base
                _write(inputs, name, count)
        removals = tmp_path / "takedown.txt"
        removals.write_text("# takedown requests\n" + "\n".join(TAKEN_DOWN) + "\n\n", encoding="utf-8")
        run_recipe(_recipe(inputs), engine="local", output=run_dir, base=base, removals=removals)
        return base, run_dir
    for name, count in NEXT_INPUT.items():
        if name != "science":
            _write(inputs, name, count, skip=frozenset(TAKEN_DOWN))
    run_recipe(_recipe(inputs), engine="local", output=run_dir)
    old, new = _files(base), _files(run_dir)
    stats = json.loads((run_dir / "stats.json").read_text())
    stats["incremental"] = {
        "base": str(base),
        "base_fingerprint": json.loads((base / "stats.json").read_text())["fingerprint"],
        "added_files": sorted(set(new) - set(old)),
        "removed_files": sorted(set(old) - set(new)),
        "parts": len(new),  # part_bytes 1: one part per file
        "reused_parts": sum(old.get(name) == meta for name, meta in new.items()),
        "taken_down": len(TAKEN_DOWN),
    }
    (run_dir / "stats.json").write_text(json.dumps(stats))
    return base, run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _two_runs(tmp_path_factory.mktemp("incremental"))


@pytest.fixture
def copied(runs: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """Both runs copied side by side, the second one's base pointing at the copy, so a test may break them."""
    base, run_dir = (tmp_path / p.name for p in runs)
    for source, target in zip(runs, (base, run_dir), strict=True):
        shutil.copytree(source, target)
    stats = json.loads((run_dir / "stats.json").read_text())
    stats["incremental"]["base"] = str(base)
    (run_dir / "stats.json").write_text(json.dumps(stats))
    return base, run_dir


class _Page(HTMLParser):
    """The page's data-* attributes: rows of the mixture change by domain, cards, list items, links."""

    def __init__(self) -> None:
        super().__init__()
        self.table = ""
        self.rows: dict[str, dict[str, str]] = {}
        self.row = ""
        self.cards: dict[str, str] = {}
        self.lists: dict[str, list[dict[str, str]]] = {}
        self.list = ""
        self.links: dict[str, str] = {}
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self.table = a.get("id", "")
        elif tag == "tr" and self.table == "mixture-change" and "data-domain" in a:
            self.row = a["data-domain"]
            self.rows[self.row] = {}
        elif tag == "td" and self.table == "mixture-change" and self.row:
            self.rows[self.row].update({k: v for k, v in a.items() if k.startswith("data-")})
        elif tag == "div" and a.get("class") == "card":
            self.cards.update({k: v for k, v in a.items() if k.startswith("data-")})
        elif tag == "ul":
            self.list = a.get("id", "")
            self.lists[self.list] = []
        elif tag == "li" and self.list:
            self.lists[self.list].append(a)
        elif tag == "a" and "id" in a:
            self.links[a["id"]] = a["href"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.table, self.row = "", ""
        elif tag == "ul":
            self.list = ""

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def _report(run_dir: Path) -> tuple[dict[str, Any], str, _Page]:
    out = build_report(run_dir)
    page = (out / "index.html").read_text(encoding="utf-8")
    parser = _Page()
    parser.feed(page)
    return json.loads((out / "mixture.json").read_text(encoding="utf-8")), page, parser


def test_the_report_shows_the_base_what_changed_and_the_mixture_against_it(copied: tuple[Path, Path]) -> None:
    base, run_dir = copied
    data, page, parser = _report(run_dir)
    block = data["incremental"]
    old, new = _files(base), _files(run_dir)
    added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    assert removed == ["forum.jsonl"] and len(added) == 1 + len(BLOGS)

    assert block["base"]["run_dir"] == str(base) and block["base"]["exists"]
    assert block["base"]["source"] == "stats.json"
    assert block["base"]["fingerprint"] == json.loads((base / "stats.json").read_text())["fingerprint"]
    assert block["added_files"] == {"count": len(added), "names": added}
    assert block["removed_files"] == {"count": len(removed), "names": removed}
    assert block["taken_down"] == len(TAKEN_DOWN)
    if INCREMENTAL:
        rejected = pq.read_table(run_dir / "rejected", columns=["id", "drop_reason"]).to_pylist()
        assert sorted(r["id"] for r in rejected if r["drop_reason"] == "taken_down") == sorted(TAKEN_DOWN)
    assert block["parts"] == len(new)
    assert block["reused_parts"] == sum(old.get(name) == meta for name, meta in new.items()) >= 1
    assert not [w for w in data["warnings"] if w["kind"] == "base"] and block["notes"] == []

    # The link leads from this report to the base's.
    href = parser.links["base-report"]
    assert href == os.path.relpath(base / "report" / "index.html", run_dir / "report")
    assert (run_dir / "report" / href).resolve() == (base / "report" / "index.html").resolve()
    assert (base / "report" / "index.html").is_file()

    # The page: counts on cards, the first names of the files added and how many more, the files removed.
    assert parser.cards["data-files-added"] == str(len(added))
    assert parser.cards["data-files-removed"] == str(len(removed))
    assert parser.cards["data-taken-down"] == str(len(TAKEN_DOWN))
    assert (parser.cards["data-reused-parts"], parser.cards["data-parts"]) == (
        str(block["reused_parts"]),
        str(len(new)),
    )
    assert f"{block['reused_parts']} of {len(new)}" in parser.texts
    shown = parser.lists["added-files"]
    assert [li["data-file"] for li in shown[:-1]] == added[:MAX_SHOWN_FILES]
    assert shown[-1]["data-more"] == str(len(added) - MAX_SHOWN_FILES)
    assert f"and {len(added) - MAX_SHOWN_FILES} more" in parser.texts
    assert [li["data-file"] for li in parser.lists["removed-files"]] == removed

    # The change in the mixture, per domain, is what the two runs' documents show.
    before, after = _written(base), _written(run_dir)
    (change,) = block["mixture_change"]
    rows = {d["domain"]: d for d in change["domains"]}
    assert {"forum.jsonl", "shop.jsonl", "news.jsonl", "science.jsonl"} <= set(rows)
    assert set(before) | set(after) <= set(rows)
    for name, row in rows.items():
        docs_before, tokens_before = before.get(name, (0, 0))
        docs_after, tokens_after = after.get(name, (0, 0))
        assert (row["documents_before"], row["documents_after"]) == (docs_before, docs_after), name
        assert (row["tokens_before"], row["tokens_after"]) == (tokens_before, tokens_after), name
        assert row["delta_documents"] == docs_after - docs_before
        assert row["delta_tokens"] == tokens_after - tokens_before
        if not (docs_before or docs_after):
            assert name not in parser.rows  # a domain neither mix wrote anything of stays off the page
            continue
        cells = parser.rows[name]
        assert int(cells["data-documents-before"]) == docs_before
        assert int(cells["data-documents-after"]) == docs_after
        assert int(cells["data-delta-documents"]) == docs_after - docs_before
        assert int(cells["data-tokens-before"]) == tokens_before
        assert int(cells["data-tokens-after"]) == tokens_after
        assert int(cells["data-delta-tokens"]) == tokens_after - tokens_before
        assert float(cells["data-delta-share"]) == pytest.approx(row["share_after"] - row["share_before"])
    idle = sum(name not in before and name not in after for name in rows)
    assert idle == len(BLOGS) and f'data-idle-domains="{idle}"' in page
    assert rows["forum.jsonl"]["documents_before"] > 0 and rows["forum.jsonl"]["documents_after"] == 0
    assert rows["shop.jsonl"]["documents_before"] == 0 and rows["shop.jsonl"]["documents_after"] > 0
    assert change["documents_before"] == sum(d for d, _ in before.values())
    assert change["documents_after"] == sum(d for d, _ in after.values()) == data["run"]["documents_out"]
    assert change["tokens_before"] == sum(t for _, t in before.values())
    assert change["delta_tokens"] == sum(t for _, t in after.values()) - change["tokens_before"]
    # The section comes before the funnel, right under the warnings.
    assert page.index('id="incremental-section"') < page.index('id="funnel-section"')


def test_a_base_left_with_only_its_report_still_gives_the_change(copied: tuple[Path, Path]) -> None:
    base, run_dir = copied
    expected = _report(run_dir)[0]["incremental"]["mixture_change"]
    (base / "stats.json").unlink()
    block = _report(run_dir)[0]["incremental"]
    assert block["base"]["source"] == "report/mixture.json"
    assert block["mixture_change"] == expected


def test_a_base_that_is_gone_is_said_to_be_gone(copied: tuple[Path, Path]) -> None:
    base, run_dir = copied
    shutil.rmtree(base)
    data, page, parser = _report(run_dir)
    block = data["incremental"]
    assert block["base"]["exists"] is False and block["base"]["link"] is None
    assert block["mixture_change"] == [] and block["base"]["source"] is None
    assert any("no longer exists" in note for note in block["notes"])
    assert "base-report" not in parser.links and 'id="mixture-change"' not in page
    assert "no longer exists" in page
    # What this run itself knows is still shown.
    assert parser.cards["data-files-removed"] == "1" and parser.cards["data-taken-down"] == str(
        len(TAKEN_DOWN)
    )


def test_a_base_that_now_holds_another_run_is_warned_about(copied: tuple[Path, Path]) -> None:
    base, run_dir = copied
    stats = json.loads((base / "stats.json").read_text())
    stats["fingerprint"] = "0" * 12
    (base / "stats.json").write_text(json.dumps(stats))
    data, page, _ = _report(run_dir)
    (warning,) = [w for w in data["warnings"] if w["kind"] == "base"]
    assert "0" * 12 in warning["message"] and data["incremental"]["mixture_change"]
    assert 'data-kind="base"' in page


def test_a_full_runs_report_is_unchanged(copied: tuple[Path, Path]) -> None:
    base, _ = copied
    out = build_report(base)  # here, in the copy (the report shows its run directory)
    original = {name: (out / name).read_bytes() for name in ("index.html", "mixture.json")}
    assert "incremental" not in json.loads(original["mixture.json"])
    assert b"incremental-section" not in original["index.html"]
    stats = json.loads((base / "stats.json").read_text())
    stats["incremental"] = None  # what a full run of the incremental-aware runner writes
    (base / "stats.json").write_text(json.dumps(stats))
    out = build_report(base)
    assert {name: (out / name).read_bytes() for name in original} == original
