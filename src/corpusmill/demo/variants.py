"""Derive near duplicates of an article with small, realistic edits and a guaranteed similarity.

A near duplicate on the web is a copy that someone touched: a corrected word, a changed number, a sentence
added by an editor or dropped by a scraper. The edits here are applied to the article body, and the result
is only accepted when the word 5-gram Jaccard similarity to the original stays at or above `min_jaccard`;
otherwise fewer edits are tried. That is what makes the `near_duplicate` label in truth.jsonl trustworthy.
"""

from __future__ import annotations

import random
import re

from corpusmill.demo.compose import Article, Block

# Word swaps that keep a sentence grammatical wherever the word occurs.
SWAPS = {
    "en": (
        ("very", "really"),
        ("often", "frequently"),
        ("many", "several"),
        ("usually", "normally"),
        ("almost", "nearly"),
        ("quickly", "rapidly"),
        ("simple", "straightforward"),
        ("said", "added"),
        ("big", "large"),
        ("large", "big"),
    ),
    "de": (("sehr", "recht"), ("bereits", "schon"), ("etwa", "ungefähr"), ("gerne", "gern")),
    "fr": (
        ("très", "vraiment"),
        ("déjà", "désormais"),
        ("environ", "à peu près"),
        ("souvent", "fréquemment"),
    ),
    "es": (
        ("muy", "bastante"),
        ("aproximadamente", "más o menos"),
        ("todavía", "aún"),
        ("siempre", "cada vez"),
    ),
}
ADDED = {
    "en": (
        "This page was updated after publication to correct a small detail.",
        "A reader pointed out an error in an earlier version, which has now been fixed.",
        "Some details on this page were revised after it was first published.",
    ),
    "de": ("Dieser Beitrag wurde nach der Veröffentlichung aktualisiert.",),
    "fr": ("Cet article a été mis à jour après sa publication.",),
    "es": ("Este artículo fue actualizado después de su publicación.",),
}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word n-gram shingles, the unit MinHash deduplication estimates Jaccard similarity over."""
    words = text.split()
    return {tuple(words[i : i + n]) for i in range(max(0, len(words) - n + 1))}


def jaccard(a: str, b: str, n: int = 5) -> float:
    """Exact Jaccard similarity of two texts' word n-gram shingle sets."""
    sa, sb = shingles(a, n), shingles(b, n)
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


Paragraphs = list[str]


def _flatten(article: Article) -> Paragraphs:
    """The editable paragraphs of an article: `p` blocks and the paragraphs of forum posts."""
    out: Paragraphs = []
    for block in article.blocks:
        if block.kind == "p":
            out.append(block.text)
        elif block.kind == "post":
            out.extend(block.items)
    return out


def _rebuild(article: Article, paras: Paragraphs) -> Article:
    """Put edited paragraphs back in the places `_flatten` took them from."""
    it = iter(paras)
    blocks: list[Block] = []
    for block in article.blocks:
        if block.kind == "p":
            blocks.append(Block("p", next(it)))
        elif block.kind == "post":
            blocks.append(Block("post", block.text, items=tuple(next(it) for _ in block.items)))
        else:
            blocks.append(block)
    return article.with_blocks(blocks)


def _swap_word(rng: random.Random, paras: Paragraphs, lang: str) -> bool:
    order = list(range(len(paras)))
    rng.shuffle(order)
    for i in order:
        words = paras[i].split(" ")
        options = [(j, new) for j, w in enumerate(words) for old, new in SWAPS.get(lang, ()) if w == old]
        if options:
            j, new = rng.choice(options)
            words[j] = new
            paras[i] = " ".join(words)
            return True
    return False


def _change_number(rng: random.Random, paras: Paragraphs) -> bool:
    candidates = [i for i, text in enumerate(paras) if re.search(r"\d", text)]
    if not candidates:
        return False
    i = rng.choice(candidates)
    match = rng.choice(list(re.finditer(r"\d+", paras[i])))
    new = str(int(match.group()) + rng.randint(1, 9))
    paras[i] = paras[i][: match.start()] + new + paras[i][match.end() :]
    return True


def _drop_sentence(rng: random.Random, paras: Paragraphs) -> bool:
    candidates = [i for i, text in enumerate(paras) if len(SENTENCE_END.split(text)) >= 2]
    if not candidates:
        return False
    i = rng.choice(candidates)
    sentences = SENTENCE_END.split(paras[i])
    del sentences[rng.randrange(len(sentences))]
    paras[i] = " ".join(sentences)
    return True


def _add_sentence(rng: random.Random, paras: Paragraphs, lang: str) -> bool:
    if not paras or lang not in ADDED:
        return False
    i = rng.randrange(len(paras))
    paras[i] = paras[i] + " " + rng.choice(ADDED[lang])
    return True


def near_duplicate(rng: random.Random, article: Article, min_jaccard: float = 0.85) -> Article:
    """An edited copy whose body keeps at least `min_jaccard` word 5-gram similarity to the original."""
    original = article.body_text()
    source = _flatten(article)
    if not source:
        raise ValueError(f"article {article.title!r} has no paragraphs to edit into a near duplicate")
    for budget in (3, 2, 1):
        paras = list(source)
        edits = 0
        for _ in range(budget):
            op = rng.choice(("swap", "swap", "number", "drop", "add"))
            if op == "swap":
                edits += _swap_word(rng, paras, article.lang)
            elif op == "number":
                edits += _change_number(rng, paras)
            elif op == "drop":
                edits += _drop_sentence(rng, paras)
            else:
                edits += _add_sentence(rng, paras, article.lang)
        candidate = _rebuild(article, paras)
        text = candidate.body_text()
        if edits and text != original and jaccard(original, text) >= min_jaccard:
            return candidate
    # Fall back to the smallest possible edit: one added sentence at the very end.
    paras = list(source)
    paras[-1] = paras[-1] + " " + ADDED.get(article.lang, ADDED["en"])[0]
    return _rebuild(article, paras)
