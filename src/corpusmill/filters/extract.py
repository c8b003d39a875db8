"""`extract`: turn raw HTML into main-content text, one sandboxed document at a time.

The extractor runs in a child process (see `corpusmill.filters.sandbox`) so that a page that hangs or crashes
the parser costs one document and one restart, never the engine worker. Every row keeps its place: rows that
yield no text are marked dropped with the reason (`extract_timeout`, `extract_crash`, `extract_error`,
`extract_truncated`, `extract_empty`, `html_too_large`). `extract_truncated` is a page whose elements nest
deeper than the HTML parser follows (2048 levels, see `corpusmill.filters.html_depth`): the parser would keep
only what comes before that point, and part of a page must not pass as the page. Sources that already carry
text (WET files, JSONL) may be mixed in: rows with text and no HTML pass through untouched. The `html` column
is removed from the output, as it is by far the heaviest column and nothing downstream needs it.

Two extractors are offered (`extractor`): trafilatura, the default, and resiliparse's main-content
extraction, which scores lower against human-marked main text but costs a small fraction of the CPU
(`python -m bench.extractors` measures both). Everything around the extractor (sandbox, size limit, failure
accounting, normalisation) is the same for both; only trafilatura's parser can cut a deep page
(`extract_truncated`), resiliparse's has no depth limit.

Extracted text is NFC-normalised (so that later dedup and tokenization see one spelling of each character)
and stripped.

The HTML is taken from Arrow as UTF-8 bytes and sent to the sandbox as such: its size is then simply its
length, and no Python string of the page is built in this process only to be encoded again for the pipe.
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from corpusmill.core import schema
from corpusmill.core.stage import MapStage, StageParams, register
from corpusmill.filters.sandbox import ExtractFn, Sandbox, SandboxedStage, resiliparse_text, trafilatura_text

logger = logging.getLogger(__name__)

TEXT_FIELD = pa.field(schema.TEXT, pa.large_string())

_REASONS = {
    "timeout": "extract_timeout",
    "crash": "extract_crash",
    "error": "extract_error",
    "truncated": "extract_truncated",
}
# Outcomes that say something about the page rather than the worker: counted, not logged one by one.
_QUIET = frozenset({"error", "truncated"})

Extractor = Literal["trafilatura", "resiliparse"]
DEFAULT_EXTRACTOR: Extractor = "trafilatura"

# resiliparse's `extract_plain_text` settings, fixed rather than recipe parameters: chosen for word F1 against
# WCXB's human-marked main text (dev split, 1,476 pages with ground truth, resiliparse 2.0.1). Main-content
# extraction on: 0.779, against 0.686 for the whole page's text. Image alt texts off: +0.011 (0.790), as they
# are rarely part of the main text. Kept at resiliparse's defaults because each measured worse or no better:
# comment sections as content (off: 0.774, WCXB counts forum replies as content), post meta data (off: 0.770),
# hidden elements (on: +0.001), list bullets and formatting (words unchanged; paragraphs and list items keep
# their lines, which line-based quality rules need), skipping nav/footer/aside by selector (+0.001: the
# main-content heuristics already drop them). Changing them changes output, so it needs a new stage version.
RESILIPARSE_OPTIONS: dict[str, Any] = {
    "main_content": True,
    "alt_texts": False,
    "preserve_formatting": True,
}
# trafilatura's switches: they mean nothing to resiliparse, so setting them with it is refused.
_TRAFILATURA_SWITCHES = ("favor_precision", "include_tables", "include_comments", "deduplicate")


class ExtractParams(StageParams):
    """Which extractor, deadline and size limits for the sandbox, and trafilatura's own switches."""

    extractor: Extractor = DEFAULT_EXTRACTOR
    timeout_s: float = Field(10.0, gt=0)
    max_html_bytes: int = Field(5_000_000, gt=0)
    favor_precision: bool = False
    include_tables: bool = True
    include_comments: bool = False
    deduplicate: bool = False

    @model_validator(mode="after")
    def _switches_belong_to_trafilatura(self) -> ExtractParams:
        if self.extractor != "trafilatura":
            changed = [
                name
                for name in _TRAFILATURA_SWITCHES
                if getattr(self, name) != type(self).model_fields[name].default
            ]
            if changed:
                raise ValueError(
                    f"{', '.join(changed)}: trafilatura's switches, not used with extractor "
                    f"{self.extractor!r}; remove them or use extractor 'trafilatura'"
                )
        return self

    @model_serializer(mode="wrap")
    def _default_extractor_left_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A recipe's fingerprint hashes its stages' dumped parameters, and it keys run directories and the
        # base of an incremental run. The field came after runs existed: leaving it out at its default keeps
        # every earlier recipe's fingerprint, while `resiliparse` still makes a new one.
        data = handler(self)
        if data.get("extractor") == DEFAULT_EXTRACTOR:
            del data["extractor"]
        return data

    def extraction(self) -> tuple[ExtractFn, dict[str, Any]]:
        """The sandboxed function and the options it is called with."""
        if self.extractor == "resiliparse":
            return resiliparse_text, dict(RESILIPARSE_OPTIONS)
        return trafilatura_text, {name: getattr(self, name) for name in _TRAFILATURA_SWITCHES}


@register
class ExtractStage(SandboxedStage, MapStage):
    """HTML -> text with trafilatura (default) or resiliparse in a sandboxed worker process."""

    name = "extract"
    Params = ExtractParams
    requires = (schema.HTML,)
    removes = (schema.HTML,)

    def __init__(self, params: ExtractParams | None = None, *, extract_fn: ExtractFn | None = None) -> None:
        super().__init__(params)
        self.params: ExtractParams
        # Not a parameter: a recipe cannot choose it (it picks `extractor`). It exists so tests can run the
        # real sandbox with a function that hangs or dies; it must be a picklable module-level function.
        self._extract_fn = extract_fn
        self._sandbox: Sandbox | None = None

    def output_fields(self) -> list[pa.Field]:
        """The extracted text replaces whatever text column the row had."""
        return [TEXT_FIELD]

    def _setup(self) -> None:
        fn, options = self.params.extraction()
        self._sandbox = Sandbox(self._extract_fn or fn, options, timeout_s=self.params.timeout_s)
        self._sandbox.start()

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Extract text for every row that has HTML; mark the rows that yield none."""
        self.setup()
        htmls = schema.column_as_bytes(batch, schema.HTML)
        texts = schema.column_or_nulls(batch, schema.TEXT)
        already = schema.column_or_nulls(batch, schema.DROP_REASON)
        out_texts: list[str | None] = []
        reasons: list[str | None] = []
        details: list[str | None] = []
        for doc_id, html, text, dropped in zip(
            batch.column(schema.ID).to_pylist(), htmls, texts, already, strict=True
        ):
            new_text, reason, detail = self._one(doc_id, html, text, dropped)
            out_texts.append(new_text)
            reasons.append(reason)
            details.append(detail)
        batch = schema.set_column(batch, TEXT_FIELD, out_texts)
        batch = schema.mark_drops(batch, reasons, details)
        return schema.drop_columns(batch, [schema.HTML])

    def _one(
        self, doc_id: str, html: bytes | None, text: str | None, dropped: str | None
    ) -> tuple[str | None, str | None, str | None]:
        if dropped is not None:
            self.stats.incr("extract.skipped_dropped")
            return text, None, None
        if html is None:
            if text is not None:
                self.stats.incr("extract.passthrough")
                return text, None, None
            self.stats.incr("extract.empty")
            return None, "extract_empty", "row has neither html nor text"
        size = len(html)
        if size > self.params.max_html_bytes:
            self.stats.incr("extract.html_too_large")
            return None, "html_too_large", f"{size} bytes > max_html_bytes={self.params.max_html_bytes}"
        assert self._sandbox is not None
        outcome = self._sandbox.run(html)
        if outcome.status != "ok":
            self.stats.incr(f"extract.{outcome.status}")
            if outcome.status not in _QUIET:
                logger.warning(
                    "extract: document %s dropped (%s: %s)", doc_id, outcome.status, outcome.detail
                )
            return None, _REASONS[outcome.status], outcome.detail
        result = unicodedata.normalize("NFC", outcome.value).strip() if outcome.value else ""
        if not result:
            self.stats.incr("extract.empty")
            return None, "extract_empty", None
        self.stats.incr("extract.ok")
        self.stats.observe("extract.chars", len(result))
        return result, None, None
