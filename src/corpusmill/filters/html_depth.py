"""Pages nested deeper than the HTML parser follows: parse them whole where libxml2 can, refuse them where not.

libxml2 stops an HTML parse at an element depth of 256, the limit of the parser trafilatura uses, and drops
the rest of the page: not only what lies below that depth, but every element and word after it. It says so
only in the parser's error log, which trafilatura does not read, so a cut page used to pass as a whole one.
With `huge_tree` the limit is 2048 and pages parse to the same tree otherwise; past 2048 no option helps.

So, in the process that extracts (the sandbox's child), trafilatura parses with `whole_page_parser`, its
document parse (`load_html`, called by `extract`) is checked, and a page the parser still cut raises
`Truncated`, with a detail saying how deep the page nests (`nesting_depth`, a tag scan) and where the parser
stopped. The check wraps trafilatura's own parse rather than parsing first and handing trafilatura the tree,
because trafilatura copies a tree it is given (about 2% of the extraction time); on a page parsed whole it
costs one look at the parser's (usually empty) list of fatal errors.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from typing import Any

import lxml.html
import trafilatura.core
import trafilatura.utils
from lxml import etree

from corpusmill.filters.sandbox import Truncated

# libxml2's depth limit for an HTML parse with `huge_tree` (`xmlParserMaxDepth`; 256 without it).
HUGE_TREE_MAX_DEPTH = 2048
# Python frames trafilatura's recursive walks need on a tree that deep: nested lists take about two a level,
# and the default limit (1000) failed on a list nested 500 levels (1000 elements) deep.
_RECURSION_LIMIT = 4 * HUGE_TREE_MAX_DEPTH


def whole_page_parser() -> lxml.html.HTMLParser:
    """trafilatura's HTML parser (same options) with `huge_tree`, so pages up to 2048 elements deep parse whole.

    The options other than `huge_tree` must stay those of `trafilatura.utils.HTML_PARSER`, so that a page
    the stock parser parses whole gives the same tree (a test holds the two to that on real pages).
    """
    return lxml.html.HTMLParser(
        collect_ids=False,
        default_doctype=False,
        encoding="utf-8",
        remove_comments=True,
        remove_pis=True,
        huge_tree=True,
    )


def install_whole_page_parsing() -> None:
    """Make this process's trafilatura parse with `whole_page_parser` and refuse the pages it still cuts."""
    parser = whole_page_parser()
    trafilatura.utils.HTML_PARSER = parser  # `load_html` and `fromstring_bytes` look it up at each call
    load_html = trafilatura.core.load_html

    def load_whole_html(htmlobject: Any, max_size: int | None = None) -> Any:
        tree = load_html(htmlobject, max_size)
        if isinstance(htmlobject, str | bytes):  # a tree handed to `extract` is used as it is
            refuse_cut_parse(parser.error_log, htmlobject)
        return tree

    trafilatura.core.load_html = load_whole_html
    sys.setrecursionlimit(max(sys.getrecursionlimit(), _RECURSION_LIMIT))


def refuse_cut_parse(log: Any, html: str | bytes) -> None:
    """Raise `Truncated` if the parse that wrote `log` (an lxml error log) stopped early: a fatal libxml2 error."""
    for entry in log.filter_from_fatals():
        if entry.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
            page = html if isinstance(html, str) else html.decode("utf-8", errors="replace")
            raise Truncated(describe_cut(entry.message, page))


_DEPTH_LIMIT = re.compile(r"depth in document: (\d+)")


def describe_cut(message: str, html: str) -> str:
    """Say how deep the page nests and where the parser stopped (libxml2's message names only the limit)."""
    match = _DEPTH_LIMIT.search(message)
    if match is None:
        return f"the HTML parser stopped early and dropped the rest of the page ({message.strip()})"
    limit, depth = int(match[1]), nesting_depth(html)
    deep = str(depth) if depth > limit else f"more than {limit}"
    return f"elements nest {deep} deep; the HTML parser stops at depth {limit} and drops the rest of the page"


# A comment, a script or style element with its raw text, or a start or end tag (group 2: "/", 3: its name).
_MARKUP = re.compile(
    r"<!--.*?(?:-->|\Z)|<(script|style)\b.*?(?:</\1\s*>|\Z)|<(/?)([a-z][^\s/>]*)", re.DOTALL | re.IGNORECASE
)
_VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "keygen",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)


def nesting_depth(html: str) -> int:
    """How deep the elements of raw HTML nest, by a tag scan: a parser that cut the page cannot tell.

    A start tag opens an element (a void one excepted); an end tag closes the innermost open element of its
    name with all those opened inside it, and is ignored if none is open, as parsers do. End tags a parser
    would imply (an unclosed `<p>` before the next one) are not, so on such markup this overestimates; it
    runs only on pages the parser already cut.
    """
    stack: list[str] = []
    open_by_name: Counter[str] = Counter()
    deepest = 0
    for match in _MARKUP.finditer(html):
        closing, name = match[2], match[3]
        if name is None:  # a comment, script or style
            continue
        name = name.lower()
        if closing:
            _close(stack, open_by_name, name)
        elif name not in _VOID:
            stack.append(name)
            open_by_name[name] += 1
            deepest = max(deepest, len(stack))
    return deepest


def _close(stack: list[str], open_by_name: Counter[str], name: str) -> None:
    """Pop the innermost open `name` and everything opened inside it, if one is open."""
    if not open_by_name[name]:
        return
    while (top := stack.pop()) != name:
        open_by_name[top] -= 1
    open_by_name[name] -= 1
