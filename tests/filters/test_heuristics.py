"""The heuristics stage: datatrove's reasons on crafted bad texts, datatrove's own decisions on real pages."""

from __future__ import annotations

import gzip
import importlib.util
import pickle
import socket
from pathlib import Path

import pyarrow as pa
import pytest
import trafilatura
from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)

from corpusmill.core import schema
from corpusmill.core.stage import resolve_stage
from corpusmill.filters.heuristics import (
    ALL_RULES,
    HeuristicsParams,
    HeuristicsStage,
    datatrove_language,
)

# Preamble of the Universal Declaration of Human Rights, official German translation (first recital clauses).
GERMAN = (
    "Da die Anerkennung der angeborenen Würde und der gleichen und unveräußerlichen Rechte aller Mitglieder "
    "der Gemeinschaft der Menschen die Grundlage von Freiheit, Gerechtigkeit und Frieden in der Welt "
    "bildet,\n"
    "da die Nichtanerkennung und Verachtung der Menschenrechte zu Akten der Barbarei geführt haben, die das "
    "Gewissen der Menschheit mit Empörung erfüllen, und da verkündet worden ist, dass einer Welt, in der die "
    "Menschen Rede- und Glaubensfreiheit und Freiheit von Furcht und Not genießen, das höchste Streben des "
    "Menschen gilt,\n"
    "da es notwendig ist, die Menschenrechte durch die Herrschaft des Rechtes zu schützen, damit der Mensch "
    "nicht gezwungen wird, als letztes Mittel zum Aufstand gegen Tyrannei und Unterdrückung zu greifen,\n"
    "verkündet die Generalversammlung diese Allgemeine Erklärung der Menschenrechte."
)


def _page_text(shared_data: Path, file_id: str) -> str:
    with gzip.open(
        shared_data / "wcxb-dev" / "html" / f"{file_id}.html.gz", "rt", errors="replace"
    ) as handle:
        text = trafilatura.extract(handle.read())
    assert text, f"trafilatura found no text in WCXB page {file_id}"
    return text


@pytest.fixture(scope="module")
def article(shared_data: Path) -> str:
    """A real, well-formed article (WCXB 0001, a nutrition blog post): it passes every rule."""
    return _page_text(shared_data, "0001")


@pytest.fixture(scope="module")
def pages(shared_data: Path) -> dict[str, str]:
    """24 real pages spread over the WCXB dev set (articles, forums, products, listings, docs)."""
    ids = sorted(p.name.split(".")[0] for p in (shared_data / "wcxb-dev" / "html").glob("*.html.gz"))
    return {file_id: _page_text(shared_data, file_id) for file_id in ids[:: len(ids) // 24][:24]}


@pytest.fixture(scope="module")
def stage() -> HeuristicsStage:
    stage = HeuristicsStage()
    stage.setup()
    return stage


def _batch(texts: dict[str, str | None], lang: str = "en") -> pa.RecordBatch:
    return schema.reader_batch([{"id": doc_id, "text": text, "lang": lang} for doc_id, text in texts.items()])


def _by_id(out: pa.RecordBatch, column: str) -> dict[str, object]:
    return dict(zip(out.column(schema.ID).to_pylist(), out.column(column).to_pylist(), strict=True))


def test_crafted_bad_texts_get_datatrove_reasons(stage: HeuristicsStage, article: str) -> None:
    shop_line = "The shop is open every day from nine in the morning and the staff will be happy to help you."
    repeated = "\n".join(
        [shop_line] * 10
        + [
            "We also deliver to most addresses in the city within two days.",
            "Call us if you have any questions about your order.",
        ]
    )
    texts = {
        "good": article,
        "short": "Too short to be a document.",
        # 9 of 12 lines are copies of another line: 0.75 > Gopher's 0.3 duplicate-line fraction
        "repeated_lines": repeated,
        # the same lines as paragraphs: Gopher checks duplicate paragraphs before lines
        "repeated_paragraphs": repeated.replace("\n", "\n\n"),
        # one 2-gram covers ~90% of the characters: > Gopher's 0.2 top-2-gram fraction
        "keyword_stuffing": "We sell the best shoes and boots in town. " + "cheap shoes " * 60,
        # C4 drops the whole page for placeholder text or a curly bracket, wherever it appears
        "lorem": article + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.",
        "code": article + "\nCall init() { return 1; } to start.",
        # no line ends in terminal punctuation: FineWeb's line-punctuation ratio 0 < 0.12
        "no_punct": "\n".join(line.rstrip(".!?\"'") for line in article.split("\n")),
    }
    out = stage(_batch(texts))
    assert _by_id(out, schema.DROP_REASON) == {
        "good": None,
        "short": "gopher_quality:gopher_short_doc",
        "repeated_lines": "gopher_repetition:dup_line_frac",
        "repeated_paragraphs": "gopher_repetition:dup_para_frac",
        "keyword_stuffing": "gopher_repetition:top_2_gram",
        "lorem": "c4:lorem_ipsum",
        "code": "c4:curly_bracket",
        "no_punct": "fineweb:line_punct_ratio",
    }
    assert stage.stats.counters["heuristics.dropped.c4:lorem_ipsum"] >= 1


def test_c4_terminal_punctuation_switch(article: str) -> None:
    no_punct = "\n".join(line.rstrip(".!?\"'") for line in article.split("\n"))
    strict = HeuristicsStage(HeuristicsParams(c4_filter_no_terminal_punct=True))
    out = strict(_batch({"a": no_punct, "b": article}))
    # with the rule on, C4 removes every unpunctuated line and then finds too few sentences
    assert out.column(schema.DROP_REASON).to_pylist() == ["c4:too_few_sentences", None]


def test_c4_line_removal_is_written_back(stage: HeuristicsStage, article: str) -> None:
    cookie_line = "This site uses cookies to improve your experience."
    out = stage(_batch({"a": article + "\n" + cookie_line}))
    assert out.column(schema.DROP_REASON).to_pylist() == [None]
    text = out.column(schema.TEXT)[0].as_py()
    assert cookie_line not in text
    assert article.split("\n")[0].strip() in text
    assert out.schema.field(schema.TEXT).type == pa.large_string()


def test_other_languages_pass_untouched(stage: HeuristicsStage) -> None:
    rows = [
        {"id": "de", "text": "kurz", "lang": "de"},
        {"id": "none", "text": "short", "lang": None},
        {"id": "en", "text": "short", "lang": "en"},
    ]
    before = stage.stats.counters.copy()
    out = stage(schema.reader_batch(rows))
    assert out.column(schema.DROP_REASON).to_pylist() == [None, None, "gopher_quality:gopher_short_doc"]
    assert out.column(schema.TEXT).to_pylist() == ["kurz", "short", "short"]
    assert stage.stats.counters["heuristics.skipped_lang.de"] - before["heuristics.skipped_lang.de"] == 1


def test_rows_dropped_upstream_are_not_judged(stage: HeuristicsStage) -> None:
    batch = schema.mark_drops(_batch({"a": None, "b": "tiny"}), ["extract_timeout", None])
    out = stage(batch)
    assert out.column(schema.DROP_REASON).to_pylist() == [
        "extract_timeout",
        "gopher_quality:gopher_short_doc",
    ]


def test_gopher_stop_words_apply_to_english_only() -> None:
    # datatrove's stop words are English, so they would reject every German document ...
    direct = GopherQualityFilter(language=datatrove_language("de")).filter(Document(text=GERMAN, id="de"))
    assert direct == (False, "gopher_enough_stop_words")
    # ... so for German the stage runs Gopher's other rules only.
    german = HeuristicsStage(HeuristicsParams(rules=["gopher_quality"], languages=["de"]))
    assert german(_batch({"de": GERMAN}, lang="de")).column(schema.DROP_REASON).to_pylist() == [None]


def _datatrove_reference(texts: dict[str, str]) -> dict[str, tuple[str | None, str]]:
    """What datatrove's filters, chained as in a datatrove pipeline, decide for each text."""
    chain = [
        ("gopher_quality", GopherQualityFilter(language="eng")),
        ("gopher_repetition", GopherRepetitionFilter(language="eng")),
        ("c4", C4QualityFilter(filter_no_terminal_punct=False, language="eng")),
        ("fineweb", FineWebQualityFilter(language="eng")),
    ]
    decisions = {}
    for doc_id, text in texts.items():
        doc, reason = Document(text=text, id=doc_id), None
        for rule, datatrove_filter in chain:
            result = datatrove_filter.filter(doc)
            if result is not True:
                reason = f"{rule}:{result[1]}"
                break
        decisions[doc_id] = (reason, doc.text)
    return decisions


def test_decisions_equal_datatrove_on_real_pages(stage: HeuristicsStage, pages: dict[str, str]) -> None:
    out = stage(_batch(pages))
    reasons, texts = _by_id(out, schema.DROP_REASON), _by_id(out, schema.TEXT)
    expected = _datatrove_reference(pages)
    for doc_id, (reason, text) in expected.items():
        assert reasons[doc_id] == reason, doc_id
        assert texts[doc_id] == (text if reason is None else pages[doc_id]), doc_id

    kept = [doc_id for doc_id, reason in reasons.items() if reason is None]
    # a mixed sample: the rules neither wave everything through nor reject everything
    assert 0.25 * len(pages) <= len(kept) <= 0.9 * len(pages)
    assert all(reason.split(":")[0] in ALL_RULES for reason in reasons.values() if reason is not None)
    # C4 only removes or trims lines: every line of a kept text comes from the page
    for doc_id in kept:
        original = {line.strip() for line in pages[doc_id].split("\n")}
        assert all(line in original for line in texts[doc_id].split("\n")), doc_id


def test_language_codes_follow_datatrove_table() -> None:
    assert datatrove_language("en") == "eng_Latn"
    assert datatrove_language("eng") == "eng_Latn"
    assert datatrove_language("de") == "deu_Latn"
    # datatrove's own bare `zh` key resolves to its multilingual fallback; the table's default is Mandarin
    assert datatrove_language("zh") == "cmn_Hani"
    with pytest.raises(ValueError, match="'xx-unknown'"):
        datatrove_language("xx-unknown")
    with pytest.raises(ValueError, match="xx-unknown"):
        HeuristicsStage(HeuristicsParams(languages=["xx-unknown"])).setup()


def test_english_tokenizer_needs_no_download(monkeypatch: pytest.MonkeyPatch, article: str) -> None:
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the heuristics stage tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    load_word_tokenizer.cache_clear()  # build the spaCy tokenizer afresh, with the network cut
    stage = HeuristicsStage()
    stage.setup()
    assert stage(_batch({"a": article})).column(schema.DROP_REASON).to_pylist() == [None]


def test_missing_tokenizer_package_fails_at_setup() -> None:
    # Languages whose datatrove tokenizer needs an optional package that corpusmill does not depend on.
    candidates = [("zh", "jieba"), ("th", "pythainlp"), ("ko", "kiwipiepy"), ("vi", "pyvi")]
    missing = [(lang, package) for lang, package in candidates if importlib.util.find_spec(package) is None]
    assert missing, "expected at least one optional tokenizer package to be absent from the environment"
    lang, package = missing[0]
    with pytest.raises(RuntimeError, match=rf"language '{lang}'.*needs the package '{package}'"):
        HeuristicsStage(HeuristicsParams(languages=["en", lang])).setup()


def test_params_registration_and_pickling(stage: HeuristicsStage) -> None:
    assert resolve_stage("heuristics") is HeuristicsStage
    assert HeuristicsParams().rules == list(ALL_RULES)
    with pytest.raises(ValueError):
        HeuristicsParams(rules=["gopher_quality", "gopher_quality"])
    with pytest.raises(ValueError):
        HeuristicsParams(rules=["bogus"])
    clone = pickle.loads(pickle.dumps(stage))
    assert clone(_batch({"a": "tiny"})).column(schema.DROP_REASON).to_pylist() == [
        "gopher_quality:gopher_short_doc"
    ]
