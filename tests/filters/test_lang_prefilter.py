"""The lang_prefilter stage on real pages: English kept, clearly German and Chinese dropped, short pages passed.

Also its two steps: pages kept on the whole page's text, pages the main content judges, pages declaring
another language, and that the steps drop exactly what the main content alone drops on real pages.
"""

from __future__ import annotations

import gzip
import json
import pickle
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from corpusmill.core import schema
from corpusmill.core.recipe import RecipeError, parse_recipe
from corpusmill.core.stage import resolve_stage
from corpusmill.filters.lang_prefilter import (
    DROP_REASON,
    LangPrefilterParams,
    LangPrefilterStage,
    PageTexts,
    Verdict,
    plain_text,
)
from corpusmill.filters.langid import LangIdParams, LangIdStage
from corpusmill.pipelines.runner import run_recipe

ENGLISH_PAGES = 15  # from each of the multilingual pages and WCXB
ROUTES = ("first_step", "second_step", "declared_other", "one_step")
GERMAN = (
    "Die Stadtbibliothek bleibt während der Sommerferien geöffnet und bietet neue Lesekurse "
    "für Kinder an. Außerdem können Besucher an den Wochenenden Bücher aus dem Archiv ausleihen "
    "und an Führungen teilnehmen. "
)
ENGLISH = (
    "The city library stays open during the summer holidays and offers new reading courses for children. "
    "Visitors can also borrow books from the archive at weekends and join guided tours of the building. "
)


def _metadata(shared_data: Path) -> dict[str, dict[str, object]]:
    return json.loads((shared_data / "multilingual" / "metadata.json").read_text())["files"]


def _page(shared_data: Path, folder: str, name: str) -> str:
    raw = gzip.decompress((shared_data / folder / "html" / f"{name}.html.gz").read_bytes())
    return raw.decode("utf-8", errors="replace")


def _labelled(shared_data: Path, lang: str, min_score: float = 0.9) -> list[str]:
    """Multilingual pages whose extracted text lid.176 labels `lang` with at least `min_score`, by name."""
    return [
        name
        for name, info in sorted(_metadata(shared_data).items())
        if info["lang_lid176"] == lang and float(info["lang_score"]) >= min_score  # type: ignore[arg-type]
    ]


def _english_wcxb(shared_data: Path, count: int) -> dict[str, str]:
    """The first `count` WCXB pages (by id) whose human-written main content is English beyond doubt."""
    truths = {}
    for path in sorted((shared_data / "wcxb-dev" / "ground-truth").glob("*.json"))[: 3 * count]:
        text = json.loads(path.read_text(encoding="utf-8"))["ground_truth"]["main_content"]
        if text and len(text) > 500:
            truths[path.stem] = text
    out = LangIdStage(LangIdParams(languages=["en"], min_score=0.9))(
        schema.reader_batch([{"id": key, "text": text} for key, text in truths.items()])
    )
    english = [
        key
        for key, reason in zip(truths, out.column(schema.DROP_REASON).to_pylist(), strict=True)
        if reason is None
    ]
    return {key: _page(shared_data, "wcxb-dev", key) for key in english[:count]}


def _batch(pages: dict[str, str | None]) -> pa.RecordBatch:
    return schema.reader_batch([{"id": key, "html": html} for key, html in pages.items()])


def _drops(out: pa.RecordBatch) -> dict[str, tuple[str | None, str | None]]:
    return {
        row[schema.ID]: (row[schema.DROP_REASON], row[schema.DROP_DETAIL])
        for row in out.select([schema.ID, schema.DROP_REASON, schema.DROP_DETAIL]).to_pylist()
    }


def _routes(stage: LangPrefilterStage, before: dict[str, int]) -> dict[str, int]:
    """How many pages took each route since `before` (a copy of the stage's counters)."""
    counters = stage.stats.counters
    return {
        route: counters[f"lang_prefilter.{route}"] - before.get(f"lang_prefilter.{route}", 0)
        for route in ROUTES
        if counters[f"lang_prefilter.{route}"] != before.get(f"lang_prefilter.{route}", 0)
    }


def _undeclared(html: str) -> str:
    """The page without `lang` and `xml:lang` in its `<html>` tags, so that the first step reads it."""

    def strip(tag: re.Match[str]) -> str:
        return re.sub(r"\s(?:xml:)?lang=[\"']?[\w-]+[\"']?", "", tag.group(0), flags=re.I)

    return re.sub(r"<html\b[^>]*>", strip, html, flags=re.I)


@pytest.fixture(scope="module")
def stage() -> Iterator[LangPrefilterStage]:
    stage = LangPrefilterStage(LangPrefilterParams(languages=["en"]))
    stage.setup()
    yield stage
    stage.close()


@pytest.fixture(scope="module")
def one_step() -> Iterator[LangPrefilterStage]:
    """The main content of every page, in one step: what the two steps must not drop more than."""
    stage = LangPrefilterStage(LangPrefilterParams(languages=["en"], page_keep_score=None))
    stage.setup()
    yield stage
    stage.close()


def test_keeps_every_english_page_of_a_real_sample(stage: LangPrefilterStage, shared_data: Path) -> None:
    pages = {
        name: _page(shared_data, "multilingual", name)
        for name in _labelled(shared_data, "en")[:ENGLISH_PAGES]
    }
    pages.update(_english_wcxb(shared_data, ENGLISH_PAGES))
    assert len(pages) == 2 * ENGLISH_PAGES
    before = dict(stage.stats.counters)
    out = stage(_batch(pages))
    dropped = {key: value for key, value in _drops(out).items() if value != (None, None)}
    assert dropped == {}
    assert out.column(schema.HTML).to_pylist() == list(pages.values())  # the page itself is left as it was
    # Most are kept on the whole page's text, without the costlier main-content pass.
    assert _routes(stage, before).get("first_step", 0) >= 2 * ENGLISH_PAGES - 3


def test_drops_clearly_german_and_chinese_pages(stage: LangPrefilterStage, shared_data: Path) -> None:
    german = _labelled(shared_data, "de", 0.99)[:10]
    chinese = _labelled(shared_data, "zh")
    assert len(german) == 10 and len(chinese) >= 3
    out = stage(_batch({name: _page(shared_data, "multilingual", name) for name in german + chinese}))
    drops = _drops(out)
    for name in german + chinese:
        reason, detail = drops[name]
        assert reason == DROP_REASON, name
        found, wanted = detail.split("; ")  # "de 0.993; en 0.001": the language found, then the wanted one
        lang, score = found.split()
        assert lang == ("de" if name in german else "zh"), detail
        assert float(score) > 0.5 and wanted.startswith("en ") and float(wanted.split()[1]) < 0.05
    assert stage.stats.counters["lang_prefilter.dropped_lang.de"] >= 10


def test_short_pages_and_pages_without_html_pass_untouched(stage: LangPrefilterStage) -> None:
    german_line = "Die Stadtbibliothek bleibt während der Sommerferien geöffnet."
    batch = schema.reader_batch(
        [
            {"id": "short", "html": f"<html><body><h1>Willkommen</h1><p>{german_line}</p></body></html>"},
            {"id": "text-source", "text": german_line * 20},
            {"id": "empty", "html": ""},
            {"id": "dropped", "html": f"<p>{german_line * 20}</p>"},
        ]
    )
    batch = schema.mark_drops(batch, [None, None, None, "earlier"], [None, None, None, "kept as it was"])
    before = dict(stage.stats.counters)
    out = stage(batch)
    assert _drops(out) == {
        "short": (None, None),
        "text-source": (None, None),
        "empty": (None, None),
        "dropped": ("earlier", "kept as it was"),
    }
    assert out.schema == batch.schema  # nothing added
    counters = stage.stats.counters
    assert counters["lang_prefilter.too_short"] == before.get("lang_prefilter.too_short", 0) + 1
    assert counters["lang_prefilter.skipped_dropped"] == before.get("lang_prefilter.skipped_dropped", 0) + 1


def test_a_german_page_with_enough_text_is_dropped_and_wanted_languages_keep_it(
    stage: LangPrefilterStage,
) -> None:
    paragraph = (
        "Die Stadtbibliothek bleibt während der Sommerferien geöffnet und bietet neue Lesekurse für Kinder an. "
        "Außerdem können Besucher an den Wochenenden Bücher aus dem Archiv ausleihen und an Führungen teilnehmen."
    )
    page = f"<html><body><nav>Home Contact</nav><article><p>{paragraph}</p><p>{paragraph}</p></article></body></html>"
    assert _drops(stage(_batch({"de": page})))["de"][0] == DROP_REASON
    both = LangPrefilterStage(LangPrefilterParams(languages=["en", "de"]))
    assert _drops(both(_batch({"de": page})))["de"] == (None, None)
    both.close()


def test_main_content_text_falls_back_to_the_whole_page() -> None:
    words = " ".join(["Wort"] * 60)
    html = f"<html><body><div class='menu'><a href='/'>{words}</a></div></body></html>"
    main, method = plain_text(html.encode(), main_content=True, min_chars=50)
    assert method in ("main", "page") and len(main) >= 50
    text, method = plain_text(b"<p>" + b"Absatz " * 40 + b"</p>", main_content=False, min_chars=50)
    assert method == "page" and text.startswith("Absatz Absatz")


def test_a_page_the_parser_hangs_on_passes_after_the_deadline() -> None:
    # resiliparse's main-content pass takes time quadratic in nesting depth: 9,000 nested divs ~2.5 s.
    stage = LangPrefilterStage(LangPrefilterParams(languages=["en"], timeout_s=0.3))
    deep = "<html><body>" + "<div>Wort " * 9000 + "</div>" * 9000 + "</body></html>"
    normal = "<html><body><p>" + "Die Stadtbibliothek bleibt im Sommer geöffnet. " * 20 + "</p></body></html>"
    try:
        out = stage(_batch({"deep": deep, "after": normal}))
        assert _drops(out)["deep"] == (None, None)
        assert _drops(out)["after"][0] == DROP_REASON  # a new worker took the next page
        assert stage.stats.counters["lang_prefilter.timeout"] == 1
        assert stage.stats.counters["lang_prefilter.no_text"] == 1
        assert _routes(stage, {}) == {"second_step": 1}  # only the page judged: the German one
    finally:
        stage.close()


def test_the_two_steps_drop_what_the_main_content_alone_drops(
    stage: LangPrefilterStage, one_step: LangPrefilterStage, shared_data: Path
) -> None:
    # Every third multilingual page (English, German, Latin placeholder text, French, Chinese, ...), each also
    # without its declared language, so that both the first step and the declared language's shortcut run.
    names = sorted(_metadata(shared_data))[::3]
    pages = {name: _page(shared_data, "multilingual", name) for name in names}
    pages.update({f"{name}/undeclared": _undeclared(html) for name, html in pages.items()})
    before = dict(stage.stats.counters)
    two = _drops(stage(_batch(pages)))
    one = _drops(one_step(_batch(pages)))
    assert two == one  # the same pages dropped, with the same details
    dropped = [key for key, (reason, _) in two.items() if reason == DROP_REASON]
    assert len(dropped) >= 20
    routes = _routes(stage, before)
    assert set(routes) == {"first_step", "second_step", "declared_other"}
    assert routes["second_step"] + routes["declared_other"] >= len(dropped)  # a drop needs the main content
    assert routes["first_step"] >= len(pages) // 3  # about half the multilingual pages are English


def test_a_page_the_whole_page_text_would_drop_is_kept_by_its_main_content(
    stage: LangPrefilterStage, shared_data: Path
) -> None:
    # An English article under German navigation: English scores 0.04 on the whole page's text, 0.12 on the
    # main content.
    page = _undeclared(_page(shared_data, "multilingual", "trafilatura-denkanstoos.com.2012"))
    text, method = PageTexts(page, 2000).page()
    assert method == "page" and len(text) >= 200
    before = dict(stage.stats.counters)
    assert _drops(stage(_batch({"en": page})))["en"] == (None, None)
    assert _routes(stage, before) == {"second_step": 1}
    assert stage.stats.counters["lang_prefilter.text.main"] > before.get("lang_prefilter.text.main", 0)


def test_pages_declaring_another_language_skip_the_first_step(stage: LangPrefilterStage) -> None:
    def page(lang: str, article: str) -> str:
        return (
            f'<html lang="{lang}"><body><nav>Start</nav><article><p>{article * 3}</p></article></body></html>'
        )

    before = dict(stage.stats.counters)
    out = _drops(stage(_batch({"de": page("de-DE", GERMAN), "wrong": page("de_AT", ENGLISH)})))
    assert out["de"][0] == DROP_REASON and out["de"][1].startswith("de ")
    assert out["wrong"] == (None, None)  # a page is judged on its text, whatever it declares
    assert _routes(stage, before) == {"declared_other": 2}
    before = dict(stage.stats.counters)
    out = _drops(stage(_batch({"en": page("en-GB", ENGLISH), "undeclared": page("", ENGLISH)})))
    assert out == {"en": (None, None), "undeclared": (None, None)}
    assert _routes(stage, before) == {"first_step": 2}


def test_a_foreign_article_in_english_page_chrome_is_kept_at_the_first_step(
    stage: LangPrefilterStage, one_step: LangPrefilterStage
) -> None:
    # What the first step gives up: an English menu that fills the first `max_chars` characters of the whole
    # page's text keeps a German article the main content alone drops. It costs an extraction, never a lost
    # page. A menu that fills only part of them (English 0.26 there) does not reach the first step's bar.
    links = "".join(f"<li><a href='/{i}'>{line}</a></li>" for i, line in enumerate(ENGLISH.split(". ")))
    article = "".join(f"<p>{GERMAN}</p>" for _ in range(6))

    def page(menus: int) -> str:
        menu = f"<ul class='menu'>{links * menus}</ul>"
        return f"<html><body>{menu}<article><h1>Bibliothek</h1>{article}</article></body></html>"

    pages = {"long menu": page(10), "short menu": page(6)}
    assert all(PageTexts(html, 2000).main(200)[0].startswith("Bibliothek") for html in pages.values())
    before = dict(stage.stats.counters)
    out = _drops(stage(_batch(pages)))
    assert out["long menu"] == (None, None) and out["short menu"][0] == DROP_REASON
    assert _routes(stage, before) == {"first_step": 1, "second_step": 1}
    assert {reason for reason, _ in _drops(one_step(_batch(pages))).values()} == {DROP_REASON}


def test_without_the_first_step_or_main_content_one_text_is_classified(shared_data: Path) -> None:
    page = _page(shared_data, "multilingual", "readability-heise")  # German, declared
    for params in ({"page_keep_score": None}, {"main_content": False}):
        stage = LangPrefilterStage(LangPrefilterParams(languages=["en"], **params))
        try:
            assert _drops(stage(_batch({"de": page})))["de"][0] == DROP_REASON
            assert _routes(stage, {}) == {"one_step": 1}
        finally:
            stage.close()


def test_page_texts_fold_only_the_head_of_a_long_text() -> None:
    words = " ".join(f"word{i}\n\t" for i in range(5000))
    html = f"<html lang='EN-us'><body><p>{words}</p></body></html>"
    texts = PageTexts(html, 300)
    head, method = texts.page()
    whole, _ = plain_text(html, main_content=False, min_chars=0)
    assert method == "page" and len(head) == 300 and whole.startswith(head)
    assert texts.declared_language() == "en"
    spaced = " \n" * 1000 + "Wort " * 100  # mostly whitespace: the whole text is folded
    assert PageTexts("", 200)._head(spaced) == "Wort " * 40
    assert PageTexts("<p>no language</p>").declared_language() is None
    assert PageTexts('<html lang=""><p>x</p></html>').declared_language() is None


def test_verdicts_travel_as_one_line() -> None:
    verdict = Verdict("dropped", "main", "second_step", "de", "de 0.981; en 0.002")
    assert Verdict.decode(verdict.encode()) == verdict
    assert Verdict.decode(Verdict("kept", "page", "first_step", "en").encode()).detail == ""


def test_a_missing_model_fails_at_set_up() -> None:
    stage = LangPrefilterStage(LangPrefilterParams(languages=["en"], model_path="/nonexistent/lid.176.ftz"))
    with pytest.raises(FileNotFoundError, match="model_path"):
        stage.setup()


def test_parameters_are_checked() -> None:
    with pytest.raises(ValidationError, match="languages"):
        LangPrefilterParams()  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="did you mean 'en'"):
        LangPrefilterParams(languages=["english"])
    with pytest.raises(ValidationError, match="max_chars"):
        LangPrefilterParams(languages=["en"], min_chars=500, max_chars=400)
    with pytest.raises(ValidationError):
        LangPrefilterParams(languages=["en"], min_wanted_score=1.5)
    with pytest.raises(ValidationError):
        LangPrefilterParams(languages=["en"], page_keep_score=-0.1)
    assert LangPrefilterParams(languages=["en"]).page_keep_score == 0.5
    assert LangPrefilterParams(languages=["en"], page_keep_score=None).page_keep_score is None


def test_registration_and_pickling(stage: LangPrefilterStage) -> None:
    assert resolve_stage("lang_prefilter") is LangPrefilterStage
    clone = pickle.loads(pickle.dumps(stage))
    assert clone._sandbox is None and not clone._ready
    try:
        assert (
            _drops(clone(_batch({"x": "<p>" + "这是一个关于城市图书馆的中文段落。" * 30 + "</p>"})))["x"][0]
            == DROP_REASON
        )
    finally:
        clone.close()


def _recipe(input_dir: Path, stages: list[dict[str, object]]) -> object:
    return parse_recipe(
        {
            "name": "prefilter",
            "input": {"paths": [str(input_dir / "*.html.gz")]},
            "stages": stages,
            "output": {"keep_rejected": True},
        }
    )


def test_a_recipe_with_the_prefilters_before_extract_validates_and_runs(
    tmp_path: Path, shared_data: Path
) -> None:
    names = {
        "readability-ars-1": None,  # English: kept
        "readability-cnn": None,
        "readability-bbc-1": "url_filter:subdomain",  # English, but its host is blocked by the recipe
        "trafilatura-spiegel.de.albtraum": DROP_REASON,
        "readability-heise": DROP_REASON,
        "readability-qq": DROP_REASON,
    }
    input_dir = tmp_path / "input"
    input_dir.mkdir()
    for name in names:
        shutil.copy(shared_data / "multilingual" / "html" / f"{name}.html.gz", input_dir)
    recipe = _recipe(
        input_dir,
        [
            {"stage": "url_filter", "use_default_lists": False, "block_domains": ["www.bbc.com"]},
            {"stage": "lang_prefilter", "languages": ["en"]},
            {"stage": "extract"},
            {"stage": "langid", "languages": ["en"]},
        ],
    )
    run_dir = tmp_path / "run"
    run_recipe(recipe, engine="local", output=run_dir)
    kept = pq.read_table(run_dir / "documents").column(schema.ID).to_pylist()
    rejected = pq.read_table(run_dir / "rejected").to_pylist()
    found = {Path(doc_id.split(":")[0]).name.removesuffix(".html.gz"): None for doc_id in kept}
    found.update(
        {
            Path(row[schema.ID].split(":")[0]).name.removesuffix(".html.gz"): row[schema.DROP_REASON]
            for row in rejected
        }
    )
    assert found == names
    stages = {row[schema.DROP_REASON]: row["drop_stage"] for row in rejected}
    assert stages[DROP_REASON].endswith("lang_prefilter_v1")
    # The pre-filter must see HTML: after `extract` (which removes it) the recipe is refused.
    with pytest.raises(RecipeError, match="needs column 'html'"):
        _recipe(
            input_dir,
            [{"stage": "extract"}, {"stage": "lang_prefilter", "languages": ["en"]}, {"stage": "langid"}],
        )
