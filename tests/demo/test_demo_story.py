"""The demo's whole story, as `make demo` tells it: curate the sample crawl, annotate it over HTTP, distill, mix.

The shipped recipes (`recipes/demo.yaml`, `recipes/demo-mix.yaml`) run on a freshly written sample with only
their paths moved to a temporary directory, and the distill settings are the Makefile's own. The annotator is
the stand-in OpenAI-compatible server, reached through `corpusmill annotate --endpoint` as a vLLM or llama.cpp
server would be. What the report must then show: at least six domains with real shares, some up- and some
down-sampled, a quality floor that removes the thin filler pages (and little else), distilled classifiers that
agree with the annotator, and sample documents one click from every domain's bar. Screenshots of the report go
to build/test-artifacts/demo/ (never committed).
"""

from __future__ import annotations

import collections
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from corpusmill.cli import app
from corpusmill.demo.annotator_server import AnnotatorServer
from corpusmill.demo.corpus import write_demo_corpus

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "build" / "test-artifacts" / "demo"
MODEL = "corpusmill-demo-annotator"
runner = CliRunner()


def _makefile_options(command: str) -> list[str]:
    """The options `make demo` passes to `corpusmill COMMAND`, so the test cannot drift from the Makefile."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(line for line in text.splitlines() if f"/corpusmill {command} " in line)
    words = shlex.split(line.split(f"/corpusmill {command} ", 1)[1])
    options = words[words.index("--output") + 2 :] if "--output" in words else words[1:]
    return [re.sub(r"\$\(\w+\)", "", word) for word in options]


def _recipe(name: str, out: Path, replace: dict[str, str]) -> Path:
    body = (ROOT / "recipes" / name).read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in body, f"{name} no longer mentions {old}"
        body = body.replace(old, new)
    out.write_text(body, encoding="utf-8")
    return out


def _run(recipe: Path, output: Path) -> None:
    result = runner.invoke(app, ["run", str(recipe), "--engine", "local", "--output", str(output)])
    assert result.exit_code == 0, result.output


def _kinds_by_source(sample: Path, curated: Path) -> dict[str, str]:
    """The generator's kind of each curated document, keyed by the id the mix run reads it under."""
    truth = {}
    for line in (sample / "truth.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        truth[row["warc_record_id"].strip("<>")] = row["kind"]
    kinds = {}
    for path in (curated / "documents").glob("*.parquet"):
        for row in pq.read_table(path, columns=["id", "source_id"]).to_pylist():
            kinds[row["id"]] = truth[row["source_id"]]
    return kinds


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("demo-story")
    sample, curated, mixed = root / "sample", root / "demo", root / "demo-mix"
    write_demo_corpus(sample)
    _run(_recipe("demo.yaml", root / "demo.yaml", {"../build/sample": str(sample)}), curated)

    with AnnotatorServer.for_sample(sample) as endpoint:
        annotate = runner.invoke(
            app,
            [
                "annotate",
                str(curated),
                "--endpoint",
                endpoint,
                "--model",
                MODEL,
                *_makefile_options("annotate")[4:],
            ],
        )
    assert annotate.exit_code == 0, annotate.output

    classifiers = curated / "classifiers"
    distill = runner.invoke(
        app,
        [
            "distill",
            str(curated / "annotations"),
            "--output",
            str(classifiers),
            *_makefile_options("distill"),
        ],
    )
    assert distill.exit_code == 0, distill.output

    mix_recipe = _recipe(
        "demo-mix.yaml",
        root / "demo-mix.yaml",
        {"../runs/demo/documents": str(curated / "documents"), "runs/demo/classifiers": str(classifiers)},
    )
    _run(mix_recipe, mixed)
    return {
        "sample": sample,
        "curated": curated,
        "mixed": mixed,
        "annotate": annotate.output,
        "card": json.loads((classifiers / "model_card.json").read_text()),
        "report": json.loads((mixed / "report" / "mixture.json").read_text()),
    }


def test_the_makefile_annotates_through_the_http_server_and_distills_its_answers() -> None:
    annotate = _makefile_options("annotate")
    assert annotate[0] == "--endpoint" and annotate[2:4] == ["--model", MODEL]
    assert "--sample" in annotate
    distill = _makefile_options("distill")
    assert distill[:2] == ["--model", MODEL]  # only the stand-in's answers, never a mix of annotators


def test_the_stand_in_answers_every_document_and_the_classifiers_learn_its_labels(story: dict) -> None:
    counts = re.search(r"annotated (\d+) sampled documents .* (\d+) asked -> (\d+) ok", story["annotate"])
    assert counts is not None, story["annotate"]
    sampled, asked, ok = map(int, counts.groups())
    curated = sum(pq.read_metadata(p).num_rows for p in (story["curated"] / "documents").glob("*.parquet"))
    assert sampled == asked == ok == curated  # every curated document labelled, none unparseable

    domain = story["card"]["models"]["domain"]["holdout"]
    assert domain["macro_f1"] >= 0.8, domain["per_class"]
    assert len(domain["per_class"]) >= 6
    quality = story["card"]["models"]["quality"]["holdout"]
    assert quality["agreement"]["spearman"] >= 0.5


def test_the_mixture_has_six_domains_up_and_down_sampled(story: dict) -> None:
    report = story["report"]
    assert report["warnings"] == []
    (mixture,) = report["mixtures"]
    shares = {d["domain"]: d["achieved_tokens"] / mixture["achieved_tokens"] for d in mixture["domains"]}
    substantial = [name for name, share in shares.items() if share >= 0.03]
    assert len(substantial) >= 6, shares
    factors = {d["domain"]: d["factor"] for d in mixture["domains"] if d["domain"] in substantial}
    assert any(f >= 1.5 for f in factors.values()) and any(f <= 0.6 for f in factors.values()), factors
    assert abs(mixture["achieved_tokens"] - mixture["budget"]) / mixture["budget"] < 0.02


def test_the_quality_floor_removes_the_thin_pages(story: dict) -> None:
    kinds = _kinds_by_source(story["sample"], story["curated"])
    floor = collections.Counter()
    for path in (story["mixed"] / "rejected").glob("*.parquet"):
        for row in pq.read_table(path, columns=["source_id", "drop_reason"]).to_pylist():
            if row["drop_reason"] == "below_min_quality":
                floor[kinds[row["source_id"]]] += 1
    thin_curated = sum(1 for kind in kinds.values() if kind == "thin")
    assert thin_curated >= 20
    assert floor["thin"] >= 0.9 * thin_curated  # the filler goes ...
    assert sum(floor.values()) - floor["thin"] <= 0.05 * len(kinds)  # ... and little of the rest


def test_every_domain_bar_opens_samples_of_that_domain(story: dict) -> None:
    report_dir = story["mixed"] / "report"
    index = (report_dir / "index.html").read_text(encoding="utf-8")
    samples = json.loads((report_dir / "samples.json").read_text())
    cells = {cell["key"]: cell for cell in samples["cells"] if cell["kind"] == "domain"}
    for entry in story["report"]["mixtures"][0]["domains"]:
        if not entry["achieved_documents"]:
            continue
        cell = cells[entry["domain"]]
        assert f'href="{cell["page"]}"' in index, entry["domain"]
        assert (report_dir / cell["page"]).is_file()
        assert cell["documents"] and all(doc["domain"] == entry["domain"] for doc in cell["documents"])
        assert cell["numbers"]["achieved_tokens"] == entry["achieved_tokens"]


def test_the_demo_report_in_chromium(story: dict) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report_dir = story["mixed"] / "report"
    mixture = story["report"]["mixtures"][0]
    science = next(d for d in mixture["domains"] if d["domain"] == "science")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto((report_dir / "index.html").as_uri(), wait_until="load")
            page.screenshot(path=str(ARTIFACTS / "index.png"), full_page=True)
            chart = page.locator("svg#shares-chart")
            assert chart.locator("text.badge").count() == len(mixture["domains"])

            chart.locator('a[href="samples/domain-science.html"] rect.bar').first.click()
            page.wait_for_url("**/samples/domain-science.html")
            achieved = page.locator('#cell-numbers tr[data-number="achieved_tokens"] td[data-value]')
            assert float(achieved.get_attribute("data-value") or "nan") == science["achieved_tokens"]
            page.screenshot(path=str(ARTIFACTS / "sample-science.png"), full_page=True)

            page.locator("li.doc a.doc-link").first.click()
            page.wait_for_url("**/documents/*.html")
            assert len(page.locator("#text").text_content() or "") > 200
            assert page.locator('#fields tr[data-field="domain"] td').nth(1).inner_text() == "science"
            page.screenshot(path=str(ARTIFACTS / "document.png"), full_page=True)
        finally:
            browser.close()
