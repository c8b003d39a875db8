"""trafilatura's XPath expressions and their Python equivalents select the same elements and extract the same text."""

from __future__ import annotations

import copy
import gzip
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import trafilatura
import trafilatura.xpaths
from lxml import etree
from trafilatura.htmlprocessing import convert_tags, tree_cleaning
from trafilatura.settings import Extractor
from trafilatura.utils import load_html

from corpusmill.filters import trafilatura_xpaths
from corpusmill.filters.trafilatura_xpaths import FastXPath, fingerprint, install, installed, uninstall

# Every expression the module has an equivalent for: all of them must install on the trafilatura the project
# runs, or extraction silently falls back to the slow path (a new trafilatura changed an expression's text:
# check the equivalent against the new text and update its fingerprint).
EXPECTED = [
    "OVERALL_DISCARD_XPATH[0]",
    "OVERALL_DISCARD_XPATH[1]",
    "REMOVE_COMMENTS_XPATH[0]",
    "REMOVE_COMMENTS_AND_LISTS_XPATH[0]",
    "RAW_TREE_PRUNE_XPATH[0]",
    "TEASER_DISCARD_XPATH[0]",
    "PRECISION_DISCARD_XPATH[1]",
    "DISCARD_IMAGE_ELEMENTS[0]",
    "BODY_XPATH[0]",
    "BODY_XPATH[2]",
    "BODY_XPATH[3]",
    "BASIC_CLEAN_XPATH",
]

# Pages that exercise every branch: attributes in both orders (`@id|@class` reads the first in the source),
# present but empty, absent; upper-case letters that `translate` folds and the 'i' flag ignores; matching
# siblings and nested matches (`[1]` per parent, `(...)[1]` overall); a matching block with and without an h1
# below it; comments and processing instructions, which `.//*` does not select.
EDGE_PAGE = """<html><head><title>t</title></head><body>
<div class="cookie-bar" id="x">a</div><div id="x" class="cookie-bar">b</div><div id="" class="cookie">c</div>
<div class="share-this">d<span id="nav-top">e</span><p role="Navigation">f</p></div>
<section data-lp-replacement-content="">g</section><span data-component="MostPopularStories-1">h</span>
<p class="x" id="reply-1">i</p><p id="y" class="reply-2">j</p><em style="display: none">k</em>
<b aria-hidden="true">l</b><i id="hidden-note">m</i><i style="color:red" id="hidden">n</i><u class="comments-title">o</u>
<div id="comments">p</div><ol id="comment-list">q</ol><ul class="comment">r</ul><ul class="Comments">s</ul>
<details class="comment-box">t</details><list id="comol">u</list>
<div class="infinite-scroll"><h1>v</h1></div><aside id="infinitescroll">w</aside>
<div class="mvp-post-add-box"><h1>x</h1></div>
<p class="Teaser">y</p><span id="TEASER">z</span><div class="caption">aa</div><p id="img-caption">bb</p>
<div id="bottom" class="x">cc</div><div class="link">dd</div><div class="permalink">ee</div>
<div style="border: 1px">ff</div><div class="padding-bottom-2">gg</div>
<article><div class="post">hh</div><div class="entry">ii</div><div class="article-body">jj</div></article>
<main><section itemprop="articleBody"><div id="articleContent">kk</div></section></main>
<div class="FullText">ll</div><div class="story-content">mm</div><div role="article">nn</div>
<div id="Main-Content">oo</div><div class="Page-Content">pp</div><div id="content">qq</div>
<!-- a comment --><?pi here?><div class="content-main">rr</div>
<footer>ss</footer><div id="footer" class="x">tt</div><div class="x" id="footer">uu</div><div class="site-Footer">vv</div>
<aside>ww<footer>xx</footer></aside><template>yy</template><svg><rect/></svg><script>zz</script><style>a{}</style>
<fencedframe>ab</fencedframe><div id="CookieBanner">ac</div><span class="notice--cookie">ad</span>
<p class="onetrust-x" id="y">ae</p><p id="cmplz-z">af</p><div class="cookies-not-set">ag</div>
</body></html>"""


@pytest.fixture
def equivalents() -> Iterator[list[tuple[str, etree.XPath, FastXPath]]]:
    """The equivalents installed in this process's trafilatura, each with the expression it replaced."""
    uninstall()  # an extraction earlier in this process (a bench test's, say) may have installed them
    names = install()
    by_name = {equivalent.label: equivalent for equivalent in installed()}
    pairs = [(name, by_name[name].original, by_name[name]) for name in names]
    try:
        yield pairs
    finally:
        uninstall()


def _trees(html: str | bytes) -> list[etree._Element]:
    # The trees the expressions meet during extraction: the raw parse (raw-tree prunes) and the cleaned,
    # tag-converted one (boilerplate, main content). The bench also checks the cleaned tree before conversion.
    options = Extractor(output_format="txt")
    raw = load_html(html)
    assert raw is not None
    return [raw, convert_tags(tree_cleaning(copy.copy(raw), options), options)]


def _real_pages(shared_data: Path) -> list[bytes]:
    # A spread of page kinds and languages; a check over all 1,736 pages is `python -m bench.trafilatura_xpaths`.
    wcxb = sorted((shared_data / "wcxb-dev" / "html").glob("*.html.gz"))[::100]
    multilingual = sorted((shared_data / "multilingual" / "html").glob("*.html.gz"))[::60]
    return [gzip.decompress(path.read_bytes()) for path in wcxb + multilingual]


def _differences(pairs: list[tuple[str, etree.XPath, FastXPath]], trees: list[etree._Element]) -> list[str]:
    found = []
    for tree in trees:
        for name, expression, equivalent in pairs:
            expected, got = list(expression(tree)), equivalent(tree)
            if expected != got:
                found.append(f"{name}: {[e.tag for e in expected]} != {[e.tag for e in got]}")
    return found


def test_every_equivalent_installs_on_this_trafilatura(equivalents: list) -> None:
    assert [name for name, _, _ in equivalents] == EXPECTED
    assert install() == [], "installing twice replaces nothing more"


def test_same_elements_on_the_edge_page(equivalents: list) -> None:
    trees = _trees(EDGE_PAGE)
    # The page is worth something only if the expressions find things on it.
    assert all(len(expression(trees[0])) or name.startswith("BODY") for name, expression, _ in equivalents)
    assert _differences(equivalents, trees) == []


def test_same_elements_in_the_same_order_on_real_pages(equivalents: list, shared_data: Path) -> None:
    pages = _real_pages(shared_data)
    assert len(pages) >= 18
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    selected = 0
    differences = []
    for html in pages:
        trees = _trees(html)
        differences += _differences(equivalents, trees)
        selected += sum(len(equivalent(tree)) for tree in trees for _, _, equivalent in equivalents)
    assert differences == []
    assert selected > 500


@pytest.mark.parametrize(
    ("options", "every"),
    [
        ({"include_tables": True, "include_comments": False}, 1),  # the extract stage's defaults
        ({"favor_precision": True, "include_comments": False}, 3),  # datatrove's
        ({"favor_recall": True, "include_comments": True}, 3),
    ],
    ids=["stage-defaults", "precision", "recall-comments"],
)
def test_extraction_gives_identical_text(options: dict, every: int, shared_data: Path) -> None:
    pages = _real_pages(shared_data)[::every]
    uninstall()
    before = [trafilatura.extract(html, output_format="txt", **options) for html in pages]
    assert install() == EXPECTED
    try:
        after = [trafilatura.extract(html, output_format="txt", **options) for html in pages]
    finally:
        uninstall()
    assert sum(1 for text in before if text) > 0.8 * len(pages)
    assert after == before


def test_a_full_memo_is_cleared_without_changing_answers(
    equivalents: list, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trafilatura_xpaths, "_MEMO_LIMIT", 3)
    for html in _real_pages(shared_data)[:10]:
        assert _differences(equivalents, _trees(html)) == []
    assert all(len(equivalent._memo) <= 3 for _, _, equivalent in equivalents)


def test_an_expression_with_other_text_keeps_its_own() -> None:
    namespaces = {"re": "http://exslt.org/regular-expressions"}
    first, stock = (
        getattr(expression, "original", expression) for expression in trafilatura.xpaths.OVERALL_DISCARD_XPATH
    )
    changed = etree.XPath(first.path.replace("cookie", "consent-banner"), namespaces=namespaces)
    module = types.SimpleNamespace(OVERALL_DISCARD_XPATH=[changed, stock], TEASER_DISCARD_XPATH=[])
    assert install(module) == ["OVERALL_DISCARD_XPATH[1]"]
    assert module.OVERALL_DISCARD_XPATH[0] is changed
    assert isinstance(module.OVERALL_DISCARD_XPATH[1], FastXPath)
    uninstall(module)
    restored = module.OVERALL_DISCARD_XPATH
    assert restored[0] is changed and restored[1] is stock
    assert fingerprint(changed.path) != fingerprint(first.path)


def test_an_equivalent_reads_as_its_expression(equivalents: list) -> None:
    # trafilatura logs the expression that found a page's main content with str(expr).
    for _, expression, equivalent in equivalents:
        assert str(equivalent) == str(expression) == expression.path


def test_a_variable_expression_is_replaced_where_trafilatura_imported_it(equivalents: list) -> None:
    # BASIC_CLEAN_XPATH lives in trafilatura.settings; trafilatura.baseline imported it by name and uses its own
    # binding, so both must hold the equivalent, and both get the original back.
    settings, baseline = sys.modules["trafilatura.settings"], sys.modules["trafilatura.baseline"]
    (equivalent,) = [e for name, _, e in equivalents if name == "BASIC_CLEAN_XPATH"]
    assert settings.BASIC_CLEAN_XPATH is equivalent and baseline.BASIC_CLEAN_XPATH is equivalent
    trafilatura_xpaths.put(equivalent, False)
    assert (
        settings.BASIC_CLEAN_XPATH is equivalent.original
        and baseline.BASIC_CLEAN_XPATH is equivalent.original
    )
    trafilatura_xpaths.put(equivalent, True)
    assert baseline.BASIC_CLEAN_XPATH is equivalent
    uninstall()
    assert baseline.BASIC_CLEAN_XPATH is equivalent.original
    assert [e.label for e in installed()] == []


def test_a_variable_with_other_text_keeps_its_own() -> None:
    stock = getattr(sys.modules["trafilatura.settings"].BASIC_CLEAN_XPATH, "original", None)
    stock = stock or sys.modules["trafilatura.settings"].BASIC_CLEAN_XPATH
    namespaces = {"re": "http://exslt.org/regular-expressions"}
    changed = etree.XPath(stock.path.replace("onetrust", "onetrust|didomi"), namespaces=namespaces)
    assert install(types.SimpleNamespace(BASIC_CLEAN_XPATH=changed)) == []
    module = types.SimpleNamespace(BASIC_CLEAN_XPATH=stock)
    assert install(module) == ["BASIC_CLEAN_XPATH"]
    assert isinstance(module.BASIC_CLEAN_XPATH, FastXPath)
    uninstall(module)
    assert module.BASIC_CLEAN_XPATH is stock
