"""trafilatura's costliest XPath expressions evaluated in Python: the same elements for a fraction of the CPU.

trafilatura finds boilerplate and the main-content frame with XPath expressions over every element of a page,
most of them with EXSLT regular expressions (`re:test(@class, '...')`). lxml implements those with Python's
`re`, so libxml2 calls back into Python for every test on every candidate element: on WCXB's pages these
expressions are about 30% of trafilatura's time. Yet they only ever look at a few attributes of one element
at a time, and class and id values repeat within a page and across pages. Each `FastXPath` here reads those
attributes once per element and remembers its verdict per distinct set of values (and each regular
expression its answer per value), so the regular expressions run once per distinct value instead of once
per element. On WCXB's pages extraction then takes about a fifth less CPU with the stage's settings and
nearly a third less with datatrove's (`python -m bench.trafilatura_xpaths`).

Most of the expressions sit in lists in `trafilatura.xpaths`; one, `BASIC_CLEAN_XPATH` (the cookie-banner
and footer clean-up run before the fallback extractors and on every whole-page text measure), is a variable of
`trafilatura.settings` that other trafilatura modules import by name: its equivalent is put in place of the
variable in every trafilatura module that holds it.

Each equivalent replaces exactly one expression, identified by the list it sits in and its place there (or,
for an expression trafilatura keeps in a variable of its own, that variable's name) and a hash of its text;
the regular expressions come from that text. `install` puts an equivalent in place of an
expression only where trafilatura's expression still has that text, so a trafilatura release that changes an
expression keeps its own there. Equivalence is checked, not assumed: every expression and its equivalent
select the same elements in the same order, and extraction gives identical text, on a spread of the shared
data's real pages in the tests and on all 1,736 of them (three trees each, three option sets) in the bench.

XPath details the equivalents keep (and the tests hold them to):
- an absent attribute's string is "": `re:test` runs on "" and `contains`/`starts-with` see "";
- `re:test(@id|@class, ...)` and `starts-with(@id|@class, ...)` read the first of the two attributes in
  document order, which for attributes of one element is their order in the source;
- `re:test`'s third argument `'i'` ignores case; lxml compiles the pattern with Python's `re` as is;
- `.//*[...]` is every descendant element in document order, the context element excluded; `(...)[1]` the
  first of them; `.//*[p][1]` the first child matching `p` of each element that has one.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

# Answers remembered per expression and per regular expression, cleared when full: a page has a few hundred
# distinct attribute values, and a long-lived extraction process stays small (after all 1,497 WCXB pages the
# memos pickle to under 2 MB; unbounded, to 34 MB, mostly ids that never recur).
_MEMO_LIMIT = 4096

Values = tuple[str | None, ...]
# An attribute slot: one name, or several for `@a|@b` (the first present in source order).
Slot = tuple[str, ...]
# A compiled `re:test` of the expression's text, by order of appearance: value (None when absent) -> bool.
ReTest = Callable[[str | None], bool]

_RE_TEST = re.compile(r"re:test\(\s*(@[\w-]+(?:\s*\|\s*@[\w-]+)*)\s*,\s*'([^']*)'\s*(?:,\s*'([^']*)'\s*)?\)")


def fingerprint(path: str) -> str:
    """A short hash of an expression's text with its whitespace runs made single spaces."""
    return hashlib.sha256(" ".join(path.split()).encode()).hexdigest()[:16]


def re_tests(path: str) -> list[ReTest]:
    """The expression's `re:test` calls in order, compiled as lxml compiles them (Python's `re`, 'i' flag).

    Each remembers its answer per value: a value new to one expression's memo (an element's unique id beside
    a common class, say) is often one a test has seen already.
    """
    return [
        _remembered(re.compile(pattern, re.IGNORECASE if "i" in (flags or "") else 0).search)
        for _attrs, pattern, flags in _RE_TEST.findall(path)
    ]


def _remembered(search: Callable[[str], Any]) -> ReTest:
    answers: dict[str, bool] = {}

    def test(value: str | None) -> bool:
        value = value or ""
        answer = answers.get(value)
        if answer is None:
            if len(answers) >= _MEMO_LIMIT:
                answers.clear()
            answer = answers[value] = search(value) is not None
        return answer

    return test


def _text(value: str | None) -> str:
    return value or ""


@dataclass(repr=False)
class FastXPath:
    """One expression's element selection, in Python.

    `variable` names the list the expression sits in (at `index`) or, with `index` None, the variable that
    holds it. `test(tag, values, re_tests)` decides on the element's tag and its slots' values and is remembered per
    distinct (tag, values); `structure(element, values, re_tests)`, where the expression also looks below the
    element (`not(.//h1)`), runs after a passing `test`, every time. `select` is how the expression picks among
    matches: "all", "first" (`(...)[1]`), "first_per_parent" (`.//*[...][1]`).
    """

    variable: str
    index: int | None
    expected: str
    tags: tuple[str, ...] | None
    slots: tuple[Slot, ...]
    test: Callable[[str, Values, Sequence[ReTest]], bool]
    structure: Callable[[Any, Values, Sequence[ReTest]], bool] | None = None
    select: str = "all"
    path: str = ""
    original: Any = None
    _re: list[ReTest] = field(default_factory=list)
    _memo: dict[tuple[Any, ...], bool] = field(default_factory=dict)
    _names: frozenset[str] = frozenset()
    _absent: Values = ()

    def bind(self, original: etree.XPath) -> FastXPath:
        """This equivalent of `original` (its `re:test` patterns compiled from the expression's text)."""
        self.original = original
        self.path = original.path
        self._re = re_tests(self.path)
        self._memo = {}
        self._names = frozenset(name for slot in self.slots for name in slot)
        self._absent = (None,) * len(self.slots)
        return self

    def __str__(self) -> str:
        # As an XPath's: its text (trafilatura logs the expression that found the main content this way).
        return self.path

    def __repr__(self) -> str:
        return f"FastXPath({self.label})"

    @property
    def label(self) -> str:
        """Where the expression sits: `LIST[i]` for a list's entry, the variable's name for a variable."""
        return self.variable if self.index is None else f"{self.variable}[{self.index}]"

    def _verdict(self, key: tuple[Any, ...]) -> bool:
        # Decide for a key not seen yet: the slots' values from the attributes read, in source order (so a
        # union slot takes the first of its attributes present), then the expression's test.
        tag, pairs = key
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        verdict = self._memo[key] = bool(self.test(tag, self._values(pairs), self._re))
        return verdict

    def _values(self, pairs: tuple[tuple[str, str], ...]) -> Values:
        if not pairs:
            return self._absent
        by_name = dict(pairs)
        values: list[str | None] = []
        for slot in self.slots:
            if len(slot) == 1:
                values.append(by_name.get(slot[0]))
            else:  # the first of the slot's attributes in source order
                values.append(next((value for name, value in pairs if name in slot), None))
        return tuple(values)

    def _matching(self, elements: Any) -> list[Any]:
        """The elements that pass the expression's predicates (position aside), in the order given.

        The hot loop of every equivalent: one call for an element's attributes, one dictionary lookup for
        the verdict, written out inline because per-element method calls were a third of its time.
        """
        memo, names, structure = self._memo, self._names, self.structure
        found = []
        for element in elements:
            items = element.items()
            key = (element.tag, tuple([pair for pair in items if pair[0] in names]) if items else ())
            verdict = memo.get(key)
            if verdict is None:
                verdict = self._verdict(key)
            if verdict and (structure is None or structure(element, self._values(key[1]), self._re)):
                found.append(element)
        return found

    def _candidates(self, tree: Any) -> Any:
        if self.tags is None:
            return tree.iterdescendants(etree.Element)
        return tree.iterdescendants(*self.tags)

    def __call__(self, tree: Any) -> list[Any]:
        if not isinstance(tree, etree._Element):  # a whole ElementTree, say: trafilatura's own expression
            return self.original(tree)
        if self.select == "first":
            return next(
                (found for element in self._candidates(tree) if (found := self._matching((element,)))), []
            )
        found = self._matching(self._candidates(tree))
        if self.select == "first_per_parent":
            parents: set[Any] = set()
            kept = []
            for element in found:
                parent = element.getparent()
                if parent not in parents:
                    parents.add(parent)
                    kept.append(element)
            return kept
        return found


BLOCKS = ("div", "item", "list", "p", "section", "span")
FRAMES = ("article", "div", "main", "section")


def _equivalents() -> list[FastXPath]:
    t = _text
    return [
        FastXPath(
            "OVERALL_DISCARD_XPATH",
            0,
            "d9e4b7d7125b4838",
            BLOCKS,
            (
                ("data-lp-replacement-content",),
                ("role",),
                ("data-component",),
                ("id", "class"),
                ("id",),
                ("class",),
            ),
            lambda tag, v, r: (
                v[0] is not None
                or "nav" in t(v[1]).replace("N", "n")
                or "MostPopularStories" in t(v[2])
                or r[0](v[3])
                or r[1](v[4])
                or r[2](v[5])
            ),
        ),
        FastXPath(
            "OVERALL_DISCARD_XPATH",
            1,
            "9abb7217d588fd5a",
            None,
            (("class",), ("id", "class"), ("id", "style"), ("style",), ("id",), ("aria-hidden",)),
            lambda tag, v, r: (
                v[0] == "comments-title"
                or t(v[1]).startswith("reply-")
                or r[0](v[2])
                or "display:none" in t(v[3])
                or "display: none" in t(v[3])
                or r[1](v[4])
                or r[2](v[0])
                or v[5] == "true"
            ),
        ),
        FastXPath(
            "REMOVE_COMMENTS_XPATH",
            0,
            "853775ab53d61b26",
            ("div", "list", "section", "details"),
            (("id",), ("class",)),
            lambda tag, v, r: r[0](v[0]) or r[1](v[1]),
        ),
        FastXPath(
            "REMOVE_COMMENTS_AND_LISTS_XPATH",
            0,
            "ec1083e558ae70c0",
            ("div", "list", "section", "details", "ol", "ul"),
            (("id",), ("class",)),
            lambda tag, v, r: (
                (r[0](v[0]) or r[1](v[1])) and (tag not in ("ol", "ul") or r[2](v[0]) or r[3](v[1]))
            ),
        ),
        FastXPath(
            "RAW_TREE_PRUNE_XPATH",
            0,
            "77023cff86242dc8",
            ("div", "section", "aside"),
            (("id",), ("class",)),
            lambda tag, v, r: r[0](v[0]) or r[1](v[1]),
            structure=lambda element, v, r: (
                next(element.iterdescendants("h1"), None) is None or r[2](v[0]) or r[3](v[1])
            ),
        ),
        FastXPath(
            "TEASER_DISCARD_XPATH",
            0,
            "50f9c0568a62e759",
            BLOCKS,
            (("id",), ("class",)),
            lambda tag, v, r: "teaser" in t(v[0]).replace("T", "t") or "teaser" in t(v[1]).replace("T", "t"),
        ),
        FastXPath(
            "PRECISION_DISCARD_XPATH",
            1,
            "e73d179956bb857e",
            BLOCKS,
            (("id", "class"), ("style",)),
            lambda tag, v, r: r[0](v[0]) or r[1](v[0]) or "border" in t(v[1]),
        ),
        FastXPath(
            "DISCARD_IMAGE_ELEMENTS",
            0,
            "271b5ef29bbc5bf0",
            BLOCKS,
            (("id",), ("class",)),
            lambda tag, v, r: "caption" in t(v[0]) or "caption" in t(v[1]),
        ),
        FastXPath(
            "BODY_XPATH",
            0,
            "8cab6e6e5b503a8d",
            FRAMES,
            (("class",), ("itemprop",), ("id",)),
            lambda tag, v, r: (
                v[0] in ("post", "entry")
                or v[1] == "articleBody"
                or v[2] == "articleContent"
                or r[0](v[2])
                or r[1](v[0])
            ),
            select="first_per_parent",
        ),
        FastXPath(
            "BODY_XPATH",
            2,
            "3ac5a80dac974e64",
            FRAMES,
            (("role",), ("id",), ("class",)),
            lambda tag, v, r: (
                v[0] == "article"
                or v[1] in ("article", "story")
                or v[2] in ("postarea", "art-postcontent", "text", "cell", "story")
                or r[0](v[1])
                or r[1](v[2])
                or r[2](v[2])
            ),
            select="first",
        ),
        FastXPath(
            "BODY_XPATH",
            3,
            "a3befe41db4d28b9",
            FRAMES,
            (("id",), ("class",)),
            lambda tag, v, r: (
                v[0] == "content"
                or v[1] == "content"
                or r[0](v[0])
                or r[1](v[1])
                or "main-content" in t(v[0]).translate(_CM)
                or "main-content" in t(v[1]).translate(_CM)
                or "page-content" in t(v[1]).translate(_CP)
            ),
            select="first",
        ),
        FastXPath(
            "BASIC_CLEAN_XPATH",
            None,
            "db6c25acd08aef99",
            None,
            (("class", "id"), ("class",), ("id",)),
            lambda tag, v, r: (
                tag in _BASIC_CLEAN_TAGS or (tag == "div" and "footer" in t(v[0])) or r[0](v[1]) or r[1](v[2])
            ),
        ),
    ]


_BASIC_CLEAN_TAGS = frozenset(("aside", "fencedframe", "footer", "script", "style", "svg", "template"))
_CM = str.maketrans("CM", "cm")
_CP = str.maketrans("CP", "cp")


# Where trafilatura keeps its expressions: lists in `xpaths`, and the variables of `settings`.
_LISTS_MODULE = "trafilatura.xpaths"
_VARIABLES_MODULE = "trafilatura.settings"


def _home(equivalent: FastXPath, module: Any | None) -> Any:
    if module is not None:
        return module
    return importlib.import_module(_LISTS_MODULE if equivalent.index is not None else _VARIABLES_MODULE)


def _in_place(equivalent: FastXPath, home: Any) -> Any:
    """What now sits where `equivalent`'s expression belongs in `home`, or None where there is no such place."""
    if equivalent.index is None:
        return getattr(home, equivalent.variable, None)
    expressions = getattr(home, equivalent.variable, None)
    if not isinstance(expressions, list) or equivalent.index >= len(expressions):
        return None
    return expressions[equivalent.index]


def _replace(equivalent: FastXPath, home: Any, old: Any, new: Any, module_given: bool) -> None:
    """Put `new` where `old` is: a list entry (changed in place, so every importer sees it), or a variable in
    its home module and in every loaded trafilatura module that imported it by name."""
    if equivalent.index is not None:
        getattr(home, equivalent.variable)[equivalent.index] = new
        return
    holders = [home]
    if not module_given:
        holders += [
            loaded
            for name, loaded in list(sys.modules.items())
            if (name == "trafilatura" or name.startswith("trafilatura.")) and loaded is not home
        ]
    for holder in holders:
        if getattr(holder, equivalent.variable, None) is old:
            setattr(holder, equivalent.variable, new)


def install(module: Any | None = None) -> list[str]:
    """Put each equivalent in place of its expression in trafilatura, where the expression's text still matches.

    `module` (tests) stands in for trafilatura's modules, holding both the lists and the variables. Returns the
    labels (`LIST[i]`, or a variable's name) of the expressions replaced. Installing twice replaces nothing more.
    """
    replaced = []
    for equivalent in _equivalents():
        home = _home(equivalent, module)
        current = _in_place(equivalent, home)
        if not isinstance(current, etree.XPath) or fingerprint(current.path) != equivalent.expected:
            continue
        _replace(equivalent, home, current, equivalent.bind(current), module is not None)
        replaced.append(equivalent.label)
    return replaced


def installed(module: Any | None = None) -> list[FastXPath]:
    """The equivalents now in place of trafilatura's expressions, each holding the expression it replaced."""
    homes = (
        [module]
        if module is not None
        else [importlib.import_module(_LISTS_MODULE), importlib.import_module(_VARIABLES_MODULE)]
    )
    found = []
    for home in homes:
        for value in vars(home).values():
            if isinstance(value, FastXPath):
                found.append(value)
            elif isinstance(value, list):
                found += [expression for expression in value if isinstance(expression, FastXPath)]
    return found


def put(equivalent: FastXPath, use: bool, module: Any | None = None) -> None:
    """Have trafilatura use `equivalent` (`use`) or the expression it replaced, in that expression's place."""
    old, new = (equivalent.original, equivalent) if use else (equivalent, equivalent.original)
    _replace(equivalent, _home(equivalent, module), old, new, module is not None)


def uninstall(module: Any | None = None) -> None:
    """Put trafilatura's own expressions back (tests compare extraction with and without the equivalents)."""
    for equivalent in installed(module):
        put(equivalent, False, module)
