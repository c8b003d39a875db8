"""`heuristics`: the Gopher, C4 and FineWeb quality rules, exactly as datatrove implements them.

These rules are the community's reference for web-text quality, and their value lies in being the same rules
everyone else applies, so this stage calls datatrove's own filter objects (`filter(Document)`) instead of
re-implementing them. Per row the rules run in the configured order and the first one that rejects gives the
drop reason `<rule>:<datatrove's reason>`, e.g. `gopher_quality:gopher_short_doc`. A rule may rewrite the
text (C4 removes lines, e.g. those mentioning javascript or cookie policies); later rules see the rewritten
text, as in a datatrove pipeline, and a kept row's `text` column receives it.

The rules are tuned for the languages they are configured for: documents whose `lang` is not in `languages`
pass through untouched. Words are counted with datatrove's per-language word tokenizer (spaCy blank models for
most languages: no model download). Languages are resolved to datatrove's explicit `<ISO 639-3>_<Script>`
codes (`en` -> `eng_Latn`, `zh` -> `cmn_Hani`) from datatrove's own tokenizer table: its bare two-letter
keys are unreliable (the table's TRUE/FALSE flags are read as strings, so `zh` resolves to the multilingual
fallback tokenizer). A language whose tokenizer needs a package that is not installed fails at setup,
naming both.

Gopher's stop-word rule counts eight English words, so it is applied to English only; every other rule keeps
datatrove's defaults in every language.

The filters are given their word tokenizer as an object rather than a language code (datatrove accepts
either): `SpacyWords`, which returns datatrove's spaCy words and sentences but keeps spaCy's vocabulary
between documents instead of rebuilding it for each one, which was the bulk of what these rules cost (see
`corpusmill.filters.spacy_words`). Languages whose tokenizer is not spaCy's use datatrove's unchanged.
"""

from __future__ import annotations

import csv
import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, field_validator

from corpusmill.core import schema
from corpusmill.core.labels import LabelReference
from corpusmill.core.stage import MapStage, StageParams, register

logger = logging.getLogger(__name__)

Rule = Literal["gopher_quality", "gopher_repetition", "c4", "fineweb"]
ALL_RULES: tuple[Rule, ...] = ("gopher_quality", "gopher_repetition", "c4", "fineweb")
TEXT_FIELD = pa.field(schema.TEXT, pa.large_string())
_ENGLISH = "eng_Latn"


class HeuristicsParams(StageParams):
    """Which datatrove rules to run, for which languages."""

    rules: list[Rule] = Field(default_factory=lambda: list(ALL_RULES), min_length=1)
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    c4_filter_no_terminal_punct: bool = False

    @field_validator("rules")
    @classmethod
    def _no_repeats(cls, rules: list[Rule]) -> list[Rule]:
        if len(set(rules)) != len(rules):
            raise ValueError(f"rules must not repeat: {rules}")
        return rules

    def label_references(self) -> list[LabelReference]:
        """`languages` are matched with each document's `lang`: an unknown code applies rules to nothing."""
        return [LabelReference("languages", schema.LANG, tuple(self.languages))]


@lru_cache(maxsize=1)
def _datatrove_codes() -> dict[str, str]:
    from datatrove.utils._import_utils import ASSETS_PATH

    codes: dict[str, str] = {}
    with open(Path(ASSETS_PATH) / "tokenizer_assignment.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if not row["type"] or row["default_script"] != "TRUE":
                continue
            explicit = f"{row['code_3']}_{row['script']}"
            codes.setdefault(row["code_3"], explicit)
            codes.setdefault(explicit, explicit)
            if row["code_1"] and row["default_code_1"] == "TRUE":
                codes.setdefault(row["code_1"], explicit)
    return codes


def datatrove_language(lang: str) -> str:
    """datatrove's explicit language code for a `lang` value (fastText's ISO 639-1 or 639-3 codes)."""
    code = _datatrove_codes().get(lang)
    if code is None:
        raise ValueError(
            f"heuristics: language {lang!r} has no word tokenizer in datatrove's tokenizer table; "
            "use an ISO 639-1/639-3 code as produced by the langid stage (e.g. 'en', 'de', 'als')"
        )
    return code


def load_words(lang: str) -> Any:
    """The rules' word tokenizer for `lang`, loaded and tried; names the package to install if one is missing.

    It is datatrove's tokenizer for the language, wrapped in `SpacyWords` (the same words, with spaCy's state
    kept between documents).
    """
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    from corpusmill.filters.spacy_words import SpacyWords

    code = datatrove_language(lang)
    try:
        words = SpacyWords(load_word_tokenizer(code))
        words.word_tokenize("Probe text. Second sentence.")
        words.span_tokenize("Probe text. Second sentence.")
    except ImportError as exc:
        found = re.search(r"pip install ([^`)]+)", str(exc))
        package = found.group(1).strip() if found else (exc.name or "an optional tokenizer package")
        raise RuntimeError(
            f"heuristics: language {lang!r} (datatrove {code}) needs the package {package!r} for datatrove's "
            f"word tokenizer, and it is not installed. Install it (pip install {package}) or remove {lang!r} "
            f"from the stage's `languages`. ({exc})"
        ) from exc
    return words


@register
class HeuristicsStage(MapStage):
    """Drops documents that fail datatrove's Gopher / C4 / FineWeb quality rules."""

    name = "heuristics"
    Params = HeuristicsParams
    requires = (schema.TEXT, schema.LANG)

    def __init__(self, params: HeuristicsParams | None = None) -> None:
        super().__init__(params)
        self.params: HeuristicsParams
        self._languages = frozenset(self.params.languages)
        self._filters: dict[str, list[tuple[str, Any]]] = {}

    def output_fields(self) -> list[pa.Field]:
        """C4's line rules may shorten the text of kept documents."""
        return [TEXT_FIELD]

    def _setup(self) -> None:
        for lang in self.params.languages:
            self.filters_for(lang)

    def close(self) -> None:
        """Forget the built filters."""
        self._filters = {}
        super().close()

    def __getstate__(self) -> dict[str, Any]:
        # Filters are cheap to rebuild; workers build their own after setup().
        state = self.__dict__.copy()
        state["_filters"] = {}
        state["_ready"] = False
        return state

    def filters_for(self, lang: str) -> list[tuple[str, Any]]:
        """The configured datatrove filters for one language, built on first use."""
        if lang not in self._filters:
            self._filters[lang] = self._build(lang)
        return self._filters[lang]

    def _build(self, lang: str) -> list[tuple[str, Any]]:
        from datatrove.pipeline.filters import (
            C4QualityFilter,
            FineWebQualityFilter,
            GopherQualityFilter,
            GopherRepetitionFilter,
        )

        code = datatrove_language(lang)
        # One tokenizer object for all of this language's rules: datatrove looks words up through it.
        words = load_words(lang)
        built: list[tuple[str, Any]] = []
        for rule in self.params.rules:
            if rule == "gopher_quality":
                extra = {} if code == _ENGLISH else {"min_stop_words": None}
                built.append((rule, GopherQualityFilter(language=words, **extra)))
            elif rule == "gopher_repetition":
                built.append((rule, GopherRepetitionFilter(language=words)))
            elif rule == "c4":
                no_punct = self.params.c4_filter_no_terminal_punct
                built.append((rule, C4QualityFilter(filter_no_terminal_punct=no_punct, language=words)))
            else:
                built.append((rule, FineWebQualityFilter(language=words)))
        return built

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Run the rules on every row in a configured language; mark the failures, store rewritten text."""
        from datatrove.data import Document

        self.setup()
        n = batch.num_rows
        ids = batch.column(schema.ID).to_pylist()
        texts = batch.column(schema.TEXT).to_pylist()
        langs = batch.column(schema.LANG).to_pylist()
        already = schema.column_or_nulls(batch, schema.DROP_REASON)
        new_texts = list(texts)
        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        for i in range(n):
            if already[i] is not None:
                self.stats.incr("heuristics.skipped_dropped")
                continue
            lang = langs[i]
            if lang not in self._languages:
                self.stats.incr(f"heuristics.skipped_lang.{lang}")
                continue
            doc = Document(text=texts[i] or "", id=ids[i])
            reasons[i], details[i] = self._judge(doc, lang)
            if reasons[i] is None:
                self.stats.incr("heuristics.kept")
                if doc.text != texts[i]:
                    self.stats.incr("heuristics.text_modified")
                    new_texts[i] = doc.text
            else:
                self.stats.incr(f"heuristics.dropped.{reasons[i]}")
        batch = schema.set_column(batch, TEXT_FIELD, new_texts)
        return schema.mark_drops(batch, reasons, details)

    def _judge(self, doc: Any, lang: str) -> tuple[str | None, str | None]:
        for rule, datatrove_filter in self.filters_for(lang):
            try:
                result = datatrove_filter.filter(doc)
            except Exception as exc:
                logger.warning("heuristics: rule %s failed on document %s: %r", rule, doc.id, exc)
                return "heuristics_error", f"{rule}: {type(exc).__name__}: {exc}"
            keep, reason = result if isinstance(result, tuple) else (bool(result), None)
            if not keep:
                return f"{rule}:{reason or 'rejected'}", None
        return None, None
