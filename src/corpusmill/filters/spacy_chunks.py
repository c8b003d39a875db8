"""A spaCy tokenizer's words, remembered per whitespace-separated chunk, with the same result as a whole-text call.

spaCy's rule-based tokenizer works one chunk at a time: it splits the text at every change between whitespace
and non-whitespace (`str.isspace`), and the tokens of a chunk come from the chunk alone (prefix, suffix and
infix patterns, special cases, URL and token matches). It keeps a cache of chunks it has already split, but
stops adding to it for the rest of a text once the text has hit a special case (an English contraction is
enough) and once the cache holds 10,000 chunks, so on web pages about a third of all chunks go through the
full affix splitting, each time they occur: that splitting was most of the Gopher rules' cost. `ChunkWords`
keeps its own table of chunk -> words, filled by tokenizing each new chunk alone.

One step looks across chunks: after splitting, spaCy runs a phrase matcher for the special cases whose text
holds affix characters (`:)`, `a.m.`, `'s`, ...) over the whole token sequence and retokenizes what it finds,
preferring longer matches. A match can run across a single space between two chunks (the tokens `:` `)`
`)` of `x:) )` match `:))`); such a match never has a rule of its own (its text has a space), but it can
displace a shorter match inside one of the chunks, so `x:) )` gives `x : ) )` as a whole and `x :) )` chunk
by chunk. A match can only cross a boundary where the two tokens that meet there are consecutive tokens of a
special case's pattern: those pairs are known in advance (`_Patterns`). Where a boundary might be crossed,
the chunks on both sides are tokenized together, as one piece of the original text, so the result stays
exactly the whole-text result; between pieces no match can cross, and matches in different pieces never
compete.

Only a single space can be crossed: any other whitespace becomes a token of its own, and no multi-token
pattern contains one (the only special cases with whitespace are single characters).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

# Whitespace runs, captured: `re.split` then alternates chunk, separator, chunk, ... The `\\s` of a str
# pattern is `str.isspace`, the test spaCy splits on.
_SEPARATORS = re.compile(r"(\s+)")


@dataclass(frozen=True)
class _Chunk:
    """What a chunk gives alone: its words, and whether each edge could take part in a match across a space."""

    words: tuple[str, ...]
    first: str
    last: str
    first_open: bool
    last_open: bool


class _Patterns:
    """The token pairs at which a special case's match could run across a space.

    `pairs` are consecutive tokens of every multi-token pattern of the tokenizer's phrase matcher (the special
    cases split as the tokenizer splits them without special cases). The matcher looks at the tokens before it
    applies any special case; a chunk's edge token as returned differs from that only where a special case was
    applied at the edge, and then it is the first (or last) token of that special case's rule, standing for
    the first (or last) token of its pattern. So each returned edge token stands for itself and, for the rule
    edges among them, for those pattern edges too (`_as_seen_first`, `_as_seen_last`).
    """

    def __init__(self, tokenizer: Any) -> None:
        from spacy.attrs import ORTH
        from spacy.tokenizer import Tokenizer

        # The same splitting without special cases: how the matcher's patterns were tokenized.
        bare = Tokenizer(
            tokenizer.vocab,
            rules={},
            prefix_search=tokenizer.prefix_search,
            suffix_search=tokenizer.suffix_search,
            infix_finditer=tokenizer.infix_finditer,
            token_match=tokenizer.token_match,
            url_match=tokenizer.url_match,
        )
        self.pairs: set[tuple[str, str]] = set()
        self._as_seen_first: dict[str, set[str]] = {}
        self._as_seen_last: dict[str, set[str]] = {}
        for special, substrings in (tokenizer.rules or {}).items():
            if not _in_matcher(tokenizer, special) or not substrings:
                continue
            pattern = [token.text for token in bare(special)]
            if not pattern:
                continue
            self.pairs.update(itertools.pairwise(pattern))
            self._as_seen_first.setdefault(str(substrings[0][ORTH]), set()).add(pattern[0])
            self._as_seen_last.setdefault(str(substrings[-1][ORTH]), set()).add(pattern[-1])
        self._lefts = {left for left, _ in self.pairs}
        self._rights = {right for _, right in self.pairs}

    def seen_first(self, token: str) -> set[str]:
        """What the matcher may have seen as the first token of a chunk that now starts with `token`."""
        return {token, *self._as_seen_first.get(token, ())}

    def seen_last(self, token: str) -> set[str]:
        """What the matcher may have seen as the last token of a chunk that now ends with `token`."""
        return {token, *self._as_seen_last.get(token, ())}

    def chunk(self, words: tuple[str, ...], first: str, last: str) -> _Chunk:
        """A chunk's entry, with its edges' openness worked out once."""
        return _Chunk(
            words,
            first,
            last,
            first_open=not self._rights.isdisjoint(self.seen_first(first)),
            last_open=not self._lefts.isdisjoint(self.seen_last(last)),
        )

    def may_cross(self, before: _Chunk, after: _Chunk) -> bool:
        """Whether a match could run across the single space between these two chunks."""
        if not (before.last_open and after.first_open):
            return False
        rights = self.seen_first(after.first)
        return any((left, right) in self.pairs for left in self.seen_last(before.last) for right in rights)


def _in_matcher(tokenizer: Any, special: str) -> bool:
    # spaCy's own test for giving a special case to the phrase matcher (`Tokenizer.add_special_case`).
    return (
        not tokenizer.faster_heuristics
        or bool(tokenizer.find_prefix(special))
        or bool(tokenizer.find_infix(special))
        or bool(tokenizer.find_suffix(special))
        or " " in special
    )


class ChunkWords:
    """Words of texts by `tokenizer`, each chunk tokenized once while the table lasts."""

    def __init__(self, tokenizer: Any, max_chunks: int) -> None:
        self.tokenizer = tokenizer
        self.max_chunks = max_chunks
        self.patterns = _Patterns(tokenizer)
        self._table: dict[str, _Chunk] = {}
        # Pieces tokenized together because a match might cross inside them (for tests and curiosity).
        self.joined = 0

    def __len__(self) -> int:
        return len(self._table)

    def words(self, text: str) -> list[str]:
        """The words of `text` (token texts, stripped, empty ones left out), as one tokenizer call gives them."""
        parts = _SEPARATORS.split(text)
        table = self._table
        distinct = {part for part in parts[::2] if part}
        missing = [part for part in distinct if part not in table]
        if missing:
            if len(table) + len(missing) > self.max_chunks:
                table.clear()
                missing = list(distinct)
            self._learn(missing)
        chunks = [table[part] if part else None for part in parts[::2]]
        crossings = [index for index in range(1, len(chunks)) if self._may_cross(chunks, parts, index)]
        if not crossings:
            return [word for chunk in chunks if chunk is not None for word in chunk.words]
        return self._words_joining(chunks, parts, set(crossings))

    def _may_cross(self, chunks: list[_Chunk | None], parts: list[str], index: int) -> bool:
        # Between chunks[index - 1] and chunks[index]: parts[2 * index - 1] is the whitespace between them.
        before, after = chunks[index - 1], chunks[index]
        if before is None or after is None or not (before.last_open and after.first_open):
            return False
        return parts[2 * index - 1] == " " and self.patterns.may_cross(before, after)

    def _words_joining(self, chunks: list[_Chunk | None], parts: list[str], crossings: set[int]) -> list[str]:
        """Words, with every run of chunks a match might cross tokenized as one piece of the text."""
        words: list[str] = []
        index = 0
        while index < len(chunks):
            end = index
            while end + 1 in crossings:
                end += 1
            if end > index:
                self.joined += 1
                words.extend(self._split_alone("".join(parts[2 * index : 2 * end + 1])))
            elif chunks[index] is not None:
                words.extend(chunks[index].words)  # type: ignore[union-attr]
            index = end + 1
        return words

    def _learn(self, missing: list[str]) -> None:
        """Tokenize new chunks in one call, a newline apart (no match crosses a newline), and remember them."""
        from spacy.attrs import IDX, LENGTH

        joined = "\n".join(missing)
        spans: list[list[int]] = self.tokenizer(joined).to_array([IDX, LENGTH]).tolist()
        tokens: list[list[str]] = [[] for _ in missing]
        ends, position = [], -1
        for chunk in missing:
            position += 1 + len(chunk)
            ends.append(position)
        which = 0
        for start, length in spans:
            token = joined[start : start + length]
            if token.isspace():
                continue  # a separator
            while start >= ends[which]:
                which += 1
            tokens[which].append(token)
        for chunk, found in zip(missing, tokens, strict=True):
            words = tuple(word for word in (token.strip() for token in found) if word)
            self._table[chunk] = self.patterns.chunk(
                words, found[0] if found else "", found[-1] if found else ""
            )

    def _split_alone(self, text: str) -> list[str]:
        from spacy.attrs import IDX, LENGTH

        spans: list[list[int]] = self.tokenizer(text).to_array([IDX, LENGTH]).tolist()
        return [word for word in (text[start : start + length].strip() for start, length in spans) if word]
