"""Fitting a domain's draw threshold by narrowing a window of the draw range, one accounting round at a time.

A domain sampled at a fractional rate keeps a document's extra copy when its draw `u = hash(seed, id, copy)`
is below a threshold `t`, fitted so that the kept tokens land as close to the target as a cut in draw order
allows. That needs the tokens of the draws around the crossing point, and shipping every document near it
to the driver does not scale: at 10^10 documents a 1/1024 slice of the draw range still holds ten million.
So each round narrows a window `[low, low + 2^bits)` of the range that holds the crossing:

- while the window holds more than `EXACT_DOCUMENTS` documents and more than `SLICES` draws, the parts count
  documents and tokens per 1/`SLICES` slice of it, and the driver makes the slice where the cumulative
  tokens reach the target the next window (a window left with one document is decided there and then);
- then the parts send the documents and tokens of every draw in the window, and the driver keeps draws in
  order while that brings the total closer to the target.

A summary holds at most `SLICES` (or `EXACT_DOCUMENTS`) entries per domain whatever the corpus size; the
rounds grow with the logarithm of a domain's documents (three in all, the first included, to about a million
documents a domain; five at ten billion). Entries are keyed by slice or by draw and add up, so the driver
sees the same counts on every engine and for every partitioning, and no document id is needed: documents
with equal draws cannot be told apart by a rule `u < t`, so they are one unit, kept or dropped together (with
64-bit draws, the chance that the crossing document shares its draw is about documents / 2^64).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

KEY_BITS = 64  # draws are unsigned 64-bit hashes
SLICE_BITS = 10
SLICES = 1 << SLICE_BITS  # slices a refining round cuts the window into
EXACT_DOCUMENTS = 1024  # a window with at most this many documents is sent draw by draw

# A part's summary for one domain: `str(key) -> [documents, tokens]`, key = slice index or draw offset.
Counts = dict[str, list[int]]


@dataclass(frozen=True)
class Fit:
    """A settled domain: keep the extra copy when `u < threshold`; `tokens` is what that keeps."""

    threshold: int
    tokens: int


@dataclass(frozen=True)
class Window:
    """The draws `[low, low + 2^bits)` known to hold a domain's crossing, and what lies below and within."""

    low: int
    bits: int
    before: int  # tokens of the domain's documents drawn below `low`
    documents: int  # documents drawn in the window
    tokens: int  # their tokens

    @property
    def end(self) -> int:
        """The first draw past the window (2^64 for the whole range: every draw lies below it)."""
        return self.low + (1 << self.bits)

    @property
    def shift(self) -> int:
        """Draws per summary key as a power of two: 0 (draw by draw) once few documents or draws are left."""
        if self.documents <= EXACT_DOCUMENTS or self.bits <= SLICE_BITS:
            return 0
        return self.bits - SLICE_BITS

    def key(self, u: int) -> int | None:
        """The summary key of draw `u`, or None when it lies outside the window."""
        offset = u - self.low
        if offset < 0 or offset >> self.bits:
            return None
        return offset >> self.shift

    def to_dict(self) -> dict[str, int]:
        """The JSON form kept in the plan (it travels to every part and into `plan.json`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Window:
        """The window a plan holds."""
        return cls(**{name: int(data[name]) for name in ("low", "bits", "before", "documents", "tokens")})


def start(documents: int, tokens: int, target: float) -> Window | Fit:
    """The whole draw range of a domain with `documents` eligible documents holding `tokens` tokens."""
    return _settle_single(Window(0, KEY_BITS, 0, documents, tokens), target)


def narrow(window: Window, counts: Counts, target: float) -> Window | Fit:
    """The next window from one round's merged counts of `window`, or the fit once it is decided."""
    entries = sorted((int(key), documents, tokens) for key, (documents, tokens) in counts.items())
    if window.shift == 0:
        return _closest_cut(window, entries, target)
    reached = window.before
    for key, documents, tokens in entries:
        if reached + tokens >= target:
            low = window.low + (key << window.shift)
            return _settle_single(Window(low, window.shift, reached, documents, tokens), target)
        reached += tokens
    return Fit(window.end, reached)  # the target lies past every draw in the window: keep them all


def add_counts(counts: Counts, key: int, tokens: int) -> None:
    """Count one document of `tokens` tokens under `key` in a part's summary."""
    entry = counts.setdefault(str(key), [0, 0])
    entry[0] += 1
    entry[1] += tokens


def _closest_cut(window: Window, entries: list[tuple[int, int, int]], target: float) -> Fit:
    """Keep draws in order while that brings the total closer to the target; the first one not kept cuts."""
    reached = window.before
    for offset, _, tokens in entries:
        if abs(reached + tokens - target) > abs(reached - target):
            return Fit(window.low + offset, reached)
        reached += tokens
    return Fit(window.end, reached)


def _settle_single(window: Window, target: float) -> Window | Fit:
    """A window with one document (or none) needs no further round: keep it or not, whichever is closer."""
    if window.documents > 1:
        return window
    if abs(window.before + window.tokens - target) <= abs(window.before - target):
        return Fit(window.end, window.before + window.tokens)
    return Fit(window.low, window.before)
