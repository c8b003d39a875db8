"""Deeply nested pages: extracted whole up to libxml2's huge-tree depth, dropped as `extract_truncated` past it."""

from __future__ import annotations

import gzip
from pathlib import Path

import lxml.html
import pytest
import trafilatura.utils
from lxml import etree

from corpusmill.core import schema
from corpusmill.filters.extract import ExtractStage
from corpusmill.filters.html_depth import (
    HUGE_TREE_MAX_DEPTH,
    describe_cut,
    nesting_depth,
    refuse_cut_parse,
    whole_page_parser,
)
from corpusmill.filters.sandbox import Truncated

# trafilatura's own parser, taken at import: an extraction run in this process (a worker's set-up, done
# in-process by some tests and benches) replaces the module's parser with `whole_page_parser`.
STOCK_PARSER = trafilatura.utils.HTML_PARSER

TOP = "Alpha bravo charlie opens the page with a paragraph long enough for the extractor to keep it."
BOTTOM = "Zulu yankee xray sits at the very bottom of the nesting, the deepest words the page holds."
AFTER = "Mike november oscar follows the nested block, back near the top level of the article."


def nested_page(levels: int, start: str = "<div>", end: str = "</div>") -> str:
    """A page with `levels` nested wrappers between a top paragraph and a bottom one, and one after them.

    The elements nest `levels * tags-per-wrapper + 4` deep: html, body, article, the wrappers, the bottom p.
    """
    return (
        f"<html><head><title>nested</title></head><body><article><p>{TOP}</p>"
        f"{start * levels}<p>{BOTTOM}</p>{end * levels}<p>{AFTER}</p></article></body></html>"
    )


# The depths of the issue, the exact edge of the parser's limit, a nested list (which trafilatura walks
# recursively, two Python frames a level) and wrappers that are never closed.
WHOLE = {
    "div100": nested_page(100),
    "div254": nested_page(254),
    "div256": nested_page(256),
    "div300": nested_page(300),
    "div1000": nested_page(1000),
    "div2044": nested_page(HUGE_TREE_MAX_DEPTH - 4),  # exactly 2048 deep
    "list1022": nested_page(1022, "<ul><li>", "</li></ul>"),  # 2048 deep
}
CUT = {
    "div2045": (nested_page(HUGE_TREE_MAX_DEPTH - 3), 2049),
    "div5000": (nested_page(5000), 5004),
    "unclosed3000": (nested_page(3000, end=""), 3004),
}


def test_deep_pages_are_extracted_whole_or_dropped_as_truncated() -> None:
    pages = {**WHOLE, **{doc_id: html for doc_id, (html, _) in CUT.items()}}
    stage = ExtractStage()
    try:
        out = stage(schema.reader_batch([{"id": doc_id, "html": html} for doc_id, html in pages.items()]))
    finally:
        stage.close()
    ids = out.column(schema.ID).to_pylist()
    texts = dict(zip(ids, out.column(schema.TEXT).to_pylist(), strict=True))
    reasons = dict(zip(ids, out.column(schema.DROP_REASON).to_pylist(), strict=True))
    details = dict(zip(ids, out.column(schema.DROP_DETAIL).to_pylist(), strict=True))

    for doc_id in WHOLE:
        assert reasons[doc_id] is None, (doc_id, details[doc_id])
        assert all(words in texts[doc_id] for words in (TOP, BOTTOM, AFTER)), (doc_id, texts[doc_id])
    for doc_id, (_, depth) in CUT.items():
        assert (reasons[doc_id], texts[doc_id]) == ("extract_truncated", None), doc_id
        assert details[doc_id] == (
            f"elements nest {depth} deep; the HTML parser stops at depth 2048 and drops the rest of the page"
        )
    counters = stage.stats.counters
    assert counters["extract.ok"] == len(WHOLE) and counters["extract.truncated"] == len(CUT)


def test_stock_parser_cuts_silently_and_the_check_notices() -> None:
    # What the stage used to do: trafilatura's parser stops at depth 256 and drops everything after, with
    # only its error log to say so.
    html = nested_page(300)
    tree = lxml.html.fromstring(html, parser=STOCK_PARSER)
    kept = etree.tostring(tree, encoding="unicode")
    assert TOP in kept and BOTTOM not in kept and AFTER not in kept
    with pytest.raises(Truncated, match=r"^elements nest 304 deep; the HTML parser stops at depth 256 "):
        refuse_cut_parse(STOCK_PARSER.error_log, html)

    parser = whole_page_parser()
    kept = etree.tostring(lxml.html.fromstring(html, parser=parser), encoding="unicode")
    assert BOTTOM in kept and AFTER in kept
    refuse_cut_parse(parser.error_log, html.encode())  # whole: nothing raised


def test_whole_page_parser_builds_trafilaturas_trees_on_real_pages(shared_data: Path) -> None:
    # Only `huge_tree` differs from trafilatura's own parser, so a page within the old limit parses the same.
    paths = sorted((shared_data / "wcxb-dev" / "html").glob("*.html.gz"))
    parser = whole_page_parser()
    for path in paths[:: len(paths) // 60][:60]:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
            html = handle.read()
        stock = lxml.html.fromstring(html, parser=STOCK_PARSER)
        whole = lxml.html.fromstring(html, parser=parser)
        assert etree.tostring(whole) == etree.tostring(stock), path.name
        refuse_cut_parse(parser.error_log, html)


def test_nesting_depth_follows_tags_as_a_parser_closes_them() -> None:
    assert nesting_depth("") == 0
    assert nesting_depth("<div><DIV><p>x</p></Div></div>") == 3
    assert nesting_depth("<div>" * 5 + "</div>" * 5 + "<div>" * 3) == 5
    # void elements and self-closing forms of them hold nothing
    assert nesting_depth("<p><br><img src='a.png'/><input type=text><hr/></p>") == 1
    # an end tag closes what was left open inside its element; a stray end tag closes nothing
    assert nesting_depth("<div><span><b></div><div><i></div></table></span>") == 3
    # markup inside comments, scripts and styles is text, not tags
    html = "<div><!-- <div><div><div> --><script>'<div><div><div>'</script><style>p{}</style></div>"
    assert nesting_depth(html) == 1


def test_a_cut_other_than_depth_is_described_by_the_parsers_message() -> None:
    assert describe_cut("Huge input lookup\n", "<p>x</p>") == (
        "the HTML parser stopped early and dropped the rest of the page (Huge input lookup)"
    )
    # a page whose tag scan stays within the limit (implied end tags) still says the limit was passed
    detail = describe_cut("Excessive depth in document: 256, use XML_PARSE_HUGE option", "<p>x</p>")
    assert detail.startswith("elements nest more than 256 deep; the HTML parser stops at depth 256")
