"""What the report keeps of a sampled document: a summary for `samples.json`, everything for its own page.

A sample page has to be readable at a glance (a title, the first lines, the scores, why it was dropped), while
the document's own page has all its fields and its text. Crawled text can be megabytes long and hold anything,
so every piece is capped here, once, and the caps are said where they cut: a preview of a few lines, a title
from the first line only when it is short enough to be one, the full text up to `MAX_TEXT_CHARS`. Non-finite
scores become null, since JSON has no NaN. Nothing is escaped here: the renderer escapes everything.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from corpusmill.core import schema
from corpusmill.mixtures.samples import (
    DOMAIN,
    DOMAIN_CONFIDENCE,
    MAX_FIELD_CHARS,
    SCORE_PREFIX,
    TOKEN_COUNT,
)

MAX_TEXT_CHARS = 200_000  # of a document's text on its own page
PREVIEW_LINES = 5
PREVIEW_CHARS = 600
TITLE_CHARS = 120


def document_page(doc_id: str, stage: str | None = None) -> str:
    """The file name of a document's own page: a short hash of its id (of id and stage for a dropped row, so a
    kept and a dropped row of one id could never share a page); safe whatever the id holds."""
    key = doc_id if stage is None else f"{doc_id}\x00{stage}"
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest() + ".html"


def _cut(text: str, limit: int) -> tuple[str, bool]:
    return (text, False) if len(text) <= limit else (text[: limit - 1] + "…", True)


def title_of(text: str, url: str | None, doc_id: str) -> str:
    """The first line of the text when it is short enough to be a title, else the URL (else the id)."""
    first = next((line.strip() for line in text[: 4 * TITLE_CHARS].splitlines() if line.strip()), "")
    if 0 < len(first) <= TITLE_CHARS:
        return first
    if url:
        return _cut(url, TITLE_CHARS)[0]
    return _cut(first, TITLE_CHARS)[0] if first else doc_id


def preview_of(text: str) -> tuple[str, bool]:
    """The first few non-blank lines, capped at `PREVIEW_CHARS`; True when that is not the whole text (the page
    then shows an ellipsis)."""
    head = text[: 4 * PREVIEW_CHARS]
    lines = [line.rstrip() for line in head.splitlines() if line.strip()]
    shown = "\n".join(lines[:PREVIEW_LINES])
    rest = len(lines) > PREVIEW_LINES or len(shown) > PREVIEW_CHARS or len(text) > len(head)
    return shown[:PREVIEW_CHARS], rest


def _field(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN
    if isinstance(value, str):
        return _cut(value, MAX_FIELD_CHARS)[0]
    return value


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """What `samples.json` keeps of a chosen document: enough to judge it at a glance, never its full text."""
    text = record.get(schema.TEXT) or ""
    doc_id = str(record[schema.ID])
    stage = record.get(schema.DROP_STAGE) if schema.DROP_REASON in record else None
    preview, more = preview_of(text)
    out: dict[str, Any] = {
        "id": doc_id,
        "page": f"documents/{document_page(doc_id, stage)}",
        "title": title_of(text, record.get(schema.URL), doc_id),
        "url": _field(record.get(schema.URL)),
        "preview": preview,
        "preview_cut": more,
        "chars": len(text),
        "scores": {k: _field(v) for k, v in record.items() if k.startswith(SCORE_PREFIX)},
    }
    for name in (DOMAIN, DOMAIN_CONFIDENCE, schema.LANG, TOKEN_COUNT):
        if name in record:
            out[name] = _field(record[name])
    if schema.DROP_REASON in record:
        out["drop"] = {
            "stage": _field(stage),
            "reason": _field(record.get(schema.DROP_REASON)),
            "detail": _field(record.get(schema.DROP_DETAIL)),
        }
    return out


def full_document(record: dict[str, Any], max_chars: int = MAX_TEXT_CHARS) -> dict[str, Any]:
    """A chosen document for its own page: every shown field, and the text up to `max_chars` characters."""
    text = record.get(schema.TEXT) or ""
    shown, cut = _cut(text, max_chars)
    fields = {k: _field(v) for k, v in record.items() if k != schema.TEXT}
    return {**summary(record), "fields": fields, "text": shown, "text_cut": cut}
