"""Standalone HTML files (`.html`, `.htm`, optionally gzipped) as one document each.

Such files come from scrapes and benchmark sets rather than crawls, so there is no record id and no HTTP
header: the id is the file's name relative to the input root (the same wherever the pages are mounted), the charset comes
from the page itself (`decoding`), and the URL is the page's own `<link rel="canonical">` or `og:url` when it
names an absolute http(s) address, since the file name says nothing about where the page lived. A file that
gives no document (unreadable, empty, too large, or too much of it undecodable) is one `SkipLog` row.
"""

from __future__ import annotations

import html
import logging
import re
import zlib
from collections.abc import Iterator

import fsspec
import pyarrow as pa

from corpusmill.core.skips import SkipLog
from corpusmill.core.stats import Stats
from corpusmill.io.batching import DEFAULT_MAX_DOCUMENT_BYTES, ColumnBatcher, document_id
from corpusmill.io.decoding import ReplacementLimit, count_decoding, decode_html

log = logging.getLogger(__name__)

# The canonical link lives in <head>; pages without a closing </head> are searched this far.
_HEAD_SEARCH_CHARS = 512 * 1024

_HEAD_END = re.compile(r"</head\s*>", re.I)
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.I)
_META_TAG = re.compile(r"<meta\b[^>]*>", re.I)
_ATTRIBUTE = re.compile(r"""([^\s"'<>/=]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")


def read_html(
    uri: str,
    *,
    batch_size: int,
    stats: Stats,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    max_replacement_share: float = 0.0,
    name: str | None = None,
    skips: SkipLog | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream the single document of one HTML file, with `html` filled and `text` null.

    A file skipped is recorded in `skips` (one is made on `stats` when none is given).
    """
    name = name if name is not None else uri
    limit = ReplacementLimit(max_replacement_share)
    skips = skips if skips is not None else SkipLog(name, stats)
    batcher = ColumnBatcher(name, batch_size)
    try:
        with fsspec.open(uri, "rb", compression="infer") as handle:
            data = handle.read(max_document_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        skips.skip_file("corrupt_file", f"unreadable HTML file ({exc})")
        log.warning("%s: unreadable HTML file (%s); skipped", uri, exc)
        return
    if len(data) > max_document_bytes:
        skips.skip_file("too_large", f"larger than the limit of {max_document_bytes} bytes")
        log.info("%s: larger than %d bytes; skipped", uri, max_document_bytes)
        return
    if not data or data.isspace():
        skips.skip_file("empty_document", "no content", nbytes=len(data))
        return
    decoded = decode_html(data)
    count_decoding(stats, decoded)
    if not limit.screen(
        skips, ("file", None), decoded.replacements, decoded.chars, nbytes=len(data), how=decoded.encoding
    ):
        return
    stats.incr("reader.documents")
    # No page URL stays null: a file path is no URL, and would tie the output to where the pages are mounted.
    batcher.add(document_id(name), url=page_url(decoded.text), html=decoded.utf8)
    batch = batcher.flush()
    if batch is not None:
        yield batch


def page_url(page: str) -> str | None:
    """The absolute http(s) URL a page names for itself: canonical link first, then `og:url`."""
    end = _HEAD_END.search(page, 0, _HEAD_SEARCH_CHARS)
    head = page[: end.start() if end else _HEAD_SEARCH_CHARS]
    for tag in _LINK_TAG.findall(head):
        attrs = _attributes(tag)
        if "canonical" in attrs.get("rel", "").lower().split():
            url = _absolute_http(attrs.get("href"))
            if url:
                return url
    for tag in _META_TAG.findall(head):
        attrs = _attributes(tag)
        if (attrs.get("property") or attrs.get("name") or "").strip().lower() == "og:url":
            url = _absolute_http(attrs.get("content"))
            if url:
                return url
    return None


def _attributes(tag: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for name, double, single, bare in _ATTRIBUTE.findall(tag):
        attrs.setdefault(name.lower(), double or single or bare)
    return attrs


def _absolute_http(value: str | None) -> str | None:
    if not value:
        return None
    url = html.unescape(value).strip()
    return url if url.lower().startswith(("http://", "https://")) and len(url) > 8 else None
