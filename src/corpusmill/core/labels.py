"""Label sets: the values a stage can write into a column, so that a recipe naming any other value is refused.

`languages: [english]` or `multipliers: {technolgy: 2.0}` are well-formed parameters that select nothing: the
language model never writes `english`, the domain model never writes `technolgy`, and the run quietly drops or
ignores every document. A stage that writes a column from a fixed vocabulary declares it
(`Stage.column_labels`), parameters that name values of a column say which (`StageParams.label_references`),
and recipe validation compares the two, suggesting the label that was probably meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

# Sets this small are listed in full in an error message; larger ones point to where they are listed.
_LIST_IN_FULL = 30
# Near misses of shorter values are mostly other codes (`nb` is one letter from `pnb`), not typos.
_MIN_FUZZY_LENGTH = 4


class LabelReference(NamedTuple):
    """Values one parameter names, and the column they must occur in for the parameter to select anything."""

    field: str
    column: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class LabelSet:
    """Every value a stage can write into one column, and what turns a wrong spelling into the right one."""

    what: str  # one label in words, as messages use it: "lid.176 language code"
    labels: frozenset[str]
    listed_in: str  # where a person finds the whole list
    aliases: Mapping[str, str] = field(default_factory=dict)  # other spellings (casefolded) -> label
    normalize: Callable[[str], str | None] | None = None  # a rule-based spelling (casefolded) -> label

    def suggest(self, value: str) -> str | None:
        """The label `value` most likely means (another case, an alias, a near miss), or None."""
        folded = value.strip().casefold()
        if folded in self.labels:
            return folded
        if folded in self.aliases:
            return self.aliases[folded]
        if self.normalize is not None and (normal := self.normalize(folded)) in self.labels:
            return normal
        if len(folded) < _MIN_FUZZY_LENGTH:
            return None
        candidates = sorted(self.labels | set(self.aliases))
        close = difflib.get_close_matches(folded, candidates, n=1, cutoff=0.75)
        if not close:
            return None
        return close[0] if close[0] in self.labels else self.aliases[close[0]]

    def describe(self) -> str:
        """The allowed labels as a message shows them: all of a small set, else where to find them."""
        if len(self.labels) <= _LIST_IN_FULL:
            return "allowed: " + ", ".join(sorted(self.labels))
        return f"allowed: the {len(self.labels)} {self.what}s listed in {self.listed_in}"
