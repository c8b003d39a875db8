"""The extract stage's `extractor: resiliparse`: the option, the text it gives on real and synthetic pages, the
failures it shares with trafilatura's path, the recipe fingerprint and a run on the local engine."""

from __future__ import annotations

import collections
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from corpusmill.core import schema
from corpusmill.core.recipe import RecipeError, parse_recipe
from corpusmill.filters.extract import RESILIPARSE_OPTIONS, ExtractParams, ExtractStage
from corpusmill.filters.sandbox import resiliparse_text, trafilatura_text
from corpusmill.pipelines.runner import run_recipe

MAIN = (
    "The harbour museum reopened this spring after two years of repairs to its timber roof and stone walls. "
    "Volunteers catalogued every model ship in the collection, and the oldest one turned out to be a whaler "
    "built by a local carpenter in the eighteen-forties. Visitors can now watch conservators at work through "
    "a glass wall in the new workshop, and school classes may book guided tours on weekday mornings."
)
BOILERPLATE = "Zanzibarnavigation Quokkafooterlink Xylophonesidebar"
PAGE = f"""<!doctype html><html><head><title>Harbour museum</title></head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/zanzibar">Zanzibarnavigation</a></li>
<li><a href="/news">News</a></li><li><a href="/contact">Contact</a></li></ul></nav></header>
<main><article><h1>The harbour museum reopens</h1><p>{MAIN}</p><p>{MAIN}</p></article></main>
<aside><h3>Related</h3><ul><li><a href="/x">Xylophonesidebar</a></li></ul></aside>
<footer><p><a href="/privacy">Privacy</a> <a href="/q">Quokkafooterlink</a> Copyright 2024</p></footer>
</body></html>"""


def _stage(extractor: str = "resiliparse", **params: Any) -> ExtractStage:
    return ExtractStage(ExtractParams(extractor=extractor, **params))


def _extract(stage: ExtractStage, rows: list[dict[str, Any]]) -> dict[str, tuple[str | None, str | None]]:
    """id -> (text, drop reason), with the stage's worker stopped afterwards."""
    try:
        out = stage(schema.reader_batch(rows))
    finally:
        stage.close()
    return {
        row[schema.ID]: (row[schema.TEXT], row[schema.DROP_REASON])
        for row in out.select([schema.ID, schema.TEXT, schema.DROP_REASON]).to_pylist()
    }


def _recipe(paths: list[str], **extract: Any) -> Any:
    return parse_recipe(
        {
            "name": "rp",
            "input": {"paths": paths, "format": "html"},
            "stages": [{"stage": "extract", **extract}],
        }
    )


# ---- the option ----


def test_unknown_extractor_is_refused_with_the_allowed_names() -> None:
    with pytest.raises(RecipeError, match=r"extractor: Input should be 'trafilatura' or 'resiliparse'"):
        _recipe(["/data/*.html"], extractor="justext")
    with pytest.raises(ValueError, match="'trafilatura' or 'resiliparse'"):
        ExtractParams(extractor="Resiliparse")


def test_trafilatura_switches_are_refused_with_resiliparse() -> None:
    # They would do nothing there, yet change the fingerprint: a recipe that sets them is a mistake.
    with pytest.raises(RecipeError, match=r"favor_precision, include_tables: trafilatura's switches"):
        _recipe(["/data/*.html"], extractor="resiliparse", favor_precision=True, include_tables=False)
    assert ExtractParams(extractor="resiliparse", include_tables=True, timeout_s=2).timeout_s == 2


def test_default_keeps_its_fingerprint_and_resiliparse_changes_it() -> None:
    default = _recipe(["/data/*.html"])
    # The extract entry as it was normalised before the option existed: runs keyed by it keep their key.
    assert default.stages[0].params == {
        "timeout_s": 10.0,
        "max_html_bytes": 5_000_000,
        "favor_precision": False,
        "include_tables": True,
        "include_comments": False,
        "deduplicate": False,
    }
    assert _recipe(["/data/*.html"], extractor="trafilatura").fingerprint() == default.fingerprint()
    resiliparse = _recipe(["/data/*.html"], extractor="resiliparse")
    assert resiliparse.stages[0].params["extractor"] == "resiliparse"
    assert resiliparse.fingerprint() != default.fingerprint()
    assert resiliparse.stages[0].build().params.extractor == "resiliparse"  # and it survives the round trip
    assert "extractor: resiliparse" in resiliparse.to_yaml()


def test_each_extractor_picks_its_function_and_options() -> None:
    fn, options = ExtractParams().extraction()
    assert fn is trafilatura_text
    assert options == {
        "favor_precision": False,
        "include_tables": True,
        "include_comments": False,
        "deduplicate": False,
    }
    fn, options = ExtractParams(extractor="resiliparse").extraction()
    assert fn is resiliparse_text and options == RESILIPARSE_OPTIONS and options["main_content"] is True


# ---- the text ----


def test_boilerplate_is_left_out_of_a_synthetic_page() -> None:
    got = _extract(_stage(), [{"id": "page", "html": PAGE}])
    text, reason = got["page"]
    assert reason is None and text is not None
    assert "The harbour museum reopens" in text and MAIN in text
    for word in BOILERPLATE.split():
        assert word not in text
    # The whole page's text does have them: it is the main-content heuristics that leave them out.
    whole = resiliparse_text(PAGE, {**RESILIPARSE_OPTIONS, "main_content": False})
    assert all(word in whole for word in BOILERPLATE.split())


def test_empty_pages_are_dropped_as_by_trafilaturas_path() -> None:
    rows = [
        {"id": "blank", "html": "<html><body></body></html>"},
        {"id": "script", "html": "<html><head><script>var a = 1;</script></head><body> </body></html>"},
        {"id": "nothing", "html": ""},
    ]
    by_resiliparse = _extract(_stage(), rows)
    by_trafilatura = _extract(_stage("trafilatura"), rows)
    assert by_resiliparse == by_trafilatura
    assert set(by_resiliparse.values()) == {(None, "extract_empty")}


def test_a_pathologically_deep_page_times_out_instead_of_hanging_the_worker() -> None:
    # resiliparse's main-content heuristics grow faster than linearly with nesting depth: this page alone
    # takes tens of CPU-seconds. The sandbox's deadline holds for it, and the next page is served.
    deep = "<html><body>" + "<div>" * 30_000 + "<p>deep</p>" + "</div>" * 30_000 + "</body></html>"
    stage = _stage(timeout_s=1.0)
    started = time.monotonic()
    got = _extract(stage, [{"id": "deep", "html": deep}, {"id": "page", "html": PAGE}])
    assert time.monotonic() - started < 20
    assert got["deep"] == (None, "extract_timeout")
    assert got["page"][1] is None and MAIN in got["page"][0]
    assert stage.stats.counters["extract.timeout"] == 1 and stage.stats.counters["extract.ok"] == 1


def test_main_text_of_real_wcxb_pages_overlaps_the_ground_truth(shared_data: Path) -> None:
    root = shared_data / "wcxb-dev"
    truths = {}
    for path in sorted((root / "ground-truth").glob("*.json")):
        truth = json.loads(path.read_text(encoding="utf-8"))["ground_truth"].get("main_content")
        if truth and truth.strip():
            truths[path.name.split(".")[0]] = truth
    ids = list(truths)
    chosen = ids[:: len(ids) // 20][:20]  # spread over the id-ordered set, so every page type appears
    rows = [{"id": page_id, "html": _read_html(root / "html" / f"{page_id}.html.gz")} for page_id in chosen]
    got = _extract(_stage(), rows)
    scores = [_word_f1(got[page_id][0] or "", truths[page_id]) for page_id in chosen]
    mean = sum(scores) / len(scores)
    # Measured 0.845 on these 20 pages, every one with text (resiliparse 2.0.1; trafilatura 0.890 on the same
    # pages; on all 1,476 pages with ground truth 0.790 and 0.832): below this bound resiliparse keeps
    # something else than it did.
    assert mean > 0.78, f"mean word F1 {mean:.3f}"
    assert sum(reason is None for _, reason in got.values()) >= 19


def _word_f1(predicted: str, truth: str) -> float:
    """Bag-of-words F1 of lowercased `\\w+` words, as `bench.quality` scores extraction (not imported: the
    bench is not a package of the project)."""
    pred, gold = (collections.Counter(re.findall(r"\w+", text.lower())) for text in (predicted, truth))
    overlap = sum((pred & gold).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(pred.values()), overlap / sum(gold.values())
    return 2 * precision * recall / (precision + recall)


def _read_html(path: Path) -> str:
    import gzip

    raw = gzip.decompress(path.read_bytes())
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# ---- a run ----


def test_a_recipe_with_resiliparse_runs_on_the_local_engine(shared_data: Path, tmp_path: Path) -> None:
    input_dir = tmp_path / "input"
    input_dir.mkdir()
    pages = sorted((shared_data / "wcxb-dev" / "html").glob("*.html.gz"))[:4]
    for page in pages:
        shutil.copy(page, input_dir / page.name)
    (input_dir / "empty.html").write_text("<html><body></body></html>")
    recipe = _recipe([str(input_dir / "*.html*")], extractor="resiliparse")
    run_dir = tmp_path / "run"
    result = run_recipe(recipe, engine="local", output=run_dir)
    documents = pq.read_table(run_dir / "documents")
    kept = documents.to_pylist()
    rejected = pq.read_table(run_dir / "rejected").to_pylist()
    assert len(kept) == 4 and all(len(row[schema.TEXT]) > 100 for row in kept)
    assert schema.HTML not in documents.schema.names
    assert [row[schema.DROP_REASON] for row in rejected] == ["extract_empty"]
    assert result.summary.documents_out == 4
    assert "extractor: resiliparse" in (run_dir / "recipe.yaml").read_text()
