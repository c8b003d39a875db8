"""Near-duplicate variants and hard negatives of a real page, made by editing its raw HTML in place.

A page is cut into markup (tags, comments, script/style/noscript/template blocks) and text runs; nothing but
the chosen words of text runs changes, so the variant is the original byte for byte elsewhere and an
extractor sees the same structure. A text run belongs to the main content when most of its word trigrams
occur in the page's WCXB ground-truth main content; the rest is boilerplate (navigation, header, footer).

- A variant gets `k` word edits in the main content (substitute 60%, delete 25%, insert 15%), where `k` is
  a drawn fraction of the main content's words: light (0.2-1%), medium (1-2%) or heavy (3-8%, meant to land
  below a 0.8 Jaccard threshold as near misses), and possibly a changed boilerplate (a few words swapped and
  a promotion link added to the nav/header/footer) and shifted years in all text.
- A hard negative keeps the page's template and boilerplate but refills every main-content run with the
  same number of words taken from other pages' ground truth (a different donor page every run), so it looks
  like a sibling article of the same site and shares little main text with any one page.

What counts as a duplicate is not assumed from the edits: the corpus builder extracts every record and
computes the true word 5-gram Jaccard similarity (`bench.truth`).
"""

from __future__ import annotations

import html as html_lib
import random
import re
from dataclasses import dataclass, field

_MARKUP = re.compile(
    r"<!--.*?-->|<(script|style|noscript|template)\b.*?</\1\s*>|<[^>]*>", re.DOTALL | re.IGNORECASE
)
_WORD = re.compile(r"\w+")
# An editable word: letters only, not part of an entity (`&amp;`, `&#8217;`) and not glued to digits.
_EDITABLE = re.compile(r"(?<![&#\w])[^\W\d_]{3,}(?![\w;])")
_YEAR = re.compile(r"(?<!\d)(19[5-9]\d|20[0-4]\d)(?!\d)")
_BOILERPLATE_TAG = re.compile(r"<(nav|header|footer)\b[^>]*>", re.IGNORECASE)
_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
FILLER_WORDS = [
    "market",
    "garden",
    "river",
    "quickly",
    "silver",
    "window",
    "morning",
    "careful",
    "yellow",
    "station",
    "pocket",
    "gentle",
    "harbor",
    "lantern",
    "orchard",
    "velvet",
    "meadow",
    "journey",
    "canvas",
    "copper",
    "island",
    "puzzle",
    "thunder",
    "ribbon",
    "compass",
    "marble",
    "falcon",
    "cinder",
    "prairie",
    "summit",
    "willow",
    "beacon",
    "pepper",
    "tunnel",
    "quartz",
    "saddle",
    "glacier",
]
STRENGTHS = (("light", 0.5, 0.002, 0.01), ("medium", 0.35, 0.01, 0.02), ("heavy", 0.15, 0.03, 0.08))


@dataclass
class Segments:
    """A page as alternating markup and text pieces, with which text pieces are main content."""

    pieces: list[str]
    is_text: list[bool]
    main: list[bool] = field(default_factory=list)

    def join(self) -> str:
        """The page again (unchanged pieces give back the original string)."""
        return "".join(self.pieces)

    def text_indices(self, main: bool) -> list[int]:
        """Indices of main-content (or boilerplate) text pieces."""
        return [i for i, flag in enumerate(self.main) if self.is_text[i] and flag == main]


def _words(text: str) -> list[str]:
    return _WORD.findall(html_lib.unescape(text).lower())


def _trigrams(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def split_page(page: str, ground_truth: str, min_overlap: float = 0.6) -> Segments:
    """Cut the page into markup and text, marking text runs whose trigrams mostly occur in the ground truth."""
    pieces: list[str] = []
    is_text: list[bool] = []
    position = 0
    for match in _MARKUP.finditer(page):
        if match.start() > position:
            pieces.append(page[position : match.start()])
            is_text.append(True)
        pieces.append(match.group(0))
        is_text.append(False)
        position = match.end()
    if position < len(page):
        pieces.append(page[position:])
        is_text.append(True)
    truth = _trigrams(_words(ground_truth))
    main = []
    for piece, text in zip(pieces, is_text, strict=True):
        grams = _trigrams(_words(piece)) if text else set()
        main.append(bool(grams) and len(grams & truth) >= min_overlap * len(grams))
    return Segments(pieces, is_text, main)


def _match_case(word: str, like: str) -> str:
    return word.capitalize() if like[:1].isupper() else word


def _edit_words(segments: Segments, indices: list[int], count: int, rng: random.Random) -> dict[str, int]:
    """Apply `count` word edits at random editable words of the given text pieces."""
    slots = [(i, m.start(), m.end()) for i in indices for m in _EDITABLE.finditer(segments.pieces[i])]
    chosen = sorted(rng.sample(slots, min(count, len(slots))), reverse=True)
    done = {"substituted": 0, "deleted": 0, "inserted": 0}
    for index, start, end in chosen:  # right to left, so earlier offsets stay valid
        piece = segments.pieces[index]
        word = piece[start:end]
        roll = rng.random()
        if roll < 0.6:
            options = [w for w in FILLER_WORDS if w != word.lower()]
            new, kind = _match_case(rng.choice(options), word), "substituted"
        elif roll < 0.85:
            new, kind = "", "deleted"
            end = end + 1 if piece[end : end + 1] == " " else end
        else:
            new, kind = f"{word} {rng.choice(FILLER_WORDS)}", "inserted"
        segments.pieces[index] = piece[:start] + new + piece[end:]
        done[kind] += 1
    return done


def _change_boilerplate(segments: Segments, rng: random.Random) -> int:
    """Swap a word in up to three boilerplate runs and add a promotion link to the nav/header/footer."""
    boilerplate = [i for i in segments.text_indices(main=False) if _EDITABLE.search(segments.pieces[i])]
    swapped = sum(
        _edit_words(segments, [i], 1, rng)["substituted"]
        for i in rng.sample(boilerplate, min(3, len(boilerplate)))
    )
    promo = f' <a href="/offers/{rng.randrange(1000)}">{rng.choice(FILLER_WORDS).capitalize()} offers this week</a> '
    for i, piece in enumerate(segments.pieces):
        if not segments.is_text[i] and (_BOILERPLATE_TAG.fullmatch(piece) or _BODY_TAG.fullmatch(piece)):
            segments.pieces[i] = piece + promo
            break
    return swapped


def _shift_years(segments: Segments, rng: random.Random) -> int:
    shift = rng.choice((-1, 1))
    changed = 0
    for i, text in enumerate(segments.is_text):
        if text:
            segments.pieces[i], n = _YEAR.subn(lambda m: str(int(m.group(0)) + shift), segments.pieces[i])
            changed += n
    return changed


def _draw_strength(rng: random.Random) -> tuple[str, float, float]:
    roll = rng.random()
    for name, weight, low, high in STRENGTHS:
        if roll < weight:
            return name, low, high
        roll -= weight
    name, _, low, high = STRENGTHS[-1]
    return name, low, high


def make_variant(segments: Segments, rng: random.Random) -> tuple[str, dict[str, object]]:
    """A near-duplicate of the page: main-content word edits of a drawn strength, maybe boilerplate and dates."""
    copy = Segments(list(segments.pieces), segments.is_text, segments.main)
    main = copy.text_indices(main=True)
    words = sum(len(_EDITABLE.findall(copy.pieces[i])) for i in main)
    strength, low, high = _draw_strength(rng)
    count = max(1, round(rng.uniform(low, high) * words))
    edits: dict[str, object] = {
        "strength": strength,
        "main_words": words,
        **_edit_words(copy, main, count, rng),
    }
    edits["boilerplate_words"] = _change_boilerplate(copy, rng) if rng.random() < 0.6 else 0
    edits["years_shifted"] = _shift_years(copy, rng) if rng.random() < 0.5 else 0
    return copy.join(), edits


def make_negative(
    segments: Segments, donors: list[list[str]], rng: random.Random
) -> tuple[str, dict[str, object]]:
    """The page's template with every main-content run refilled from other pages' words (one donor per run)."""
    if not donors:
        raise ValueError("a hard negative needs at least one donor text")
    copy = Segments(list(segments.pieces), segments.is_text, segments.main)
    replaced = 0
    for n, i in enumerate(copy.text_indices(main=True)):
        piece = copy.pieces[i]
        length = len(_WORD.findall(piece))
        donor = donors[n % len(donors)]
        start = rng.randrange(max(1, len(donor) - length))
        filler = html_lib.escape(" ".join(donor[start : start + length]), quote=False)
        lead = piece[: len(piece) - len(piece.lstrip())]
        trail = piece[len(piece.rstrip()) :]
        copy.pieces[i] = lead + filler + trail
        replaced += length
    return copy.join(), {"strength": "negative", "main_words_replaced": replaced, "donors": len(donors)}
