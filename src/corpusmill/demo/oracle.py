"""What the demo crawl's generator knows about each page, as the labels a careful annotator would give.

The annotate -> distill -> filter -> mix path needs labels that mean something, and the demo crawl has them
for free: `truth.jsonl` says what every response is (good, thin, spam, a duplicate of which page, which topic
or domain). `PageOracle` finds the page a document came from and answers from that knowledge, so the stand-in
annotator server (`annotator_server`) can play a real Qwen2.5-Instruct server's part without any model.

Finding the page: an annotated document is the pipeline's extracted main text, possibly cut short, never the
page's HTML. So every HTML response of the sample is reduced to cheap plain text and indexed by hashed word
5-grams (lower-cased `\\w+` tokens); a document goes to the page it shares the most such shingles with, each
shingle weighted by how few pages hold it (navigation and footers are shared by a whole site and say little),
provided enough of the document's shingles were found at all. Copies (exact and near duplicates) are indexed
under the page they copy, so they get its labels: same content, same judgement.

The labels are deliberately imperfect, as a real annotator's are: scores vary per document within what the
page's kind allows, some are jittered by one point, and a small share of domains is swapped for a plausible
neighbour (with a lower confidence). All of it is seeded by the seed and the page's URL or the document's
text, never by call order or time, so the same text always gets the same answer and a rerun of a demo gives
the same labels.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import random
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lxml.etree
import lxml.html
from fastwarc.warc import ArchiveIterator, WarcRecordType

from corpusmill.classifiers.answers import ANSWER_KEYS, DOMAIN_KEY, SCORE_KEYS
from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, DOMAIN_NAMES, OVERALL, SCORE_MAX, SCORE_MIN
from corpusmill.demo.sites import TOPIC_DOMAINS
from corpusmill.io.decoding import decode_html
from corpusmill.io.http_body import PayloadError, decode_payload
from corpusmill.io.warc import HTML_CONTENT_TYPES

log = logging.getLogger(__name__)

TRUTH_NAME = "truth.jsonl"
DEFAULT_NOISE = 0.03
SHINGLE_WORDS = 5
UNKNOWN = "unknown"
OTHER = "other"


# Domains an annotator plausibly confuses a page's domain with: label noise picks one of these. The swaps
# stay among the domains the sample crawl has, as a reader who mistakes a health explainer for science does;
# a label no other page carries would be one the distilled model could never learn, only noise in its card.
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "e-commerce": ("lifestyle", "technology"),
    "social-media": ("lifestyle", "news"),
    "news": ("finance", "health"),
    "technology": ("science", "e-commerce"),
    "science": ("health", "technology"),
    "health": ("science", "lifestyle"),
    "finance": ("news", "e-commerce"),
    "lifestyle": ("e-commerce", "health"),
    "other": ("lifestyle", "news"),
}

# How much a good page of each domain teaches: explanations beat sales copy and chatter.
EDUCATIONAL_VALUE: dict[str, float] = {
    "academic-research": 4.5,
    "science": 4.4,
    "math": 4.4,
    "education": 4.3,
    "technology": 4.2,
    "health": 4.1,
    "reference": 4.1,
    "code": 4.0,
    "finance": 3.9,
    "law-and-government": 3.8,
    "arts-and-culture": 3.8,
    "news": 3.7,
    "lifestyle": 3.4,
    "sports": 3.3,
    "other": 3.3,
    "entertainment": 3.1,
    "social-media": 3.1,
    "e-commerce": 3.0,
}

# The range `overall` is kept in per kind of page, whatever the jitter: a quality floor of 2.5 keeps every
# good page and removes every thin, spam and low-quality one; text the oracle cannot place sits in between.
OVERALL_RANGE: dict[str, tuple[float, float]] = {
    "good": (3.0, 5.0),
    "thin": (0.5, 1.6),
    "spam": (0.0, 0.8),
    "low_quality": (0.0, 1.0),
    UNKNOWN: (2.0, 3.0),
}

# An expectation is at most this far from the digit written, so the written digit stays the most likely one.
MAX_FRACTION = 0.45

_WORD = re.compile(r"\w+")
_NOT_TEXT = ("script", "style", "noscript", "template")


@dataclass(frozen=True)
class TruthRow:
    """One response of the sample as truth.jsonl describes it (`domain` where the generator wrote one)."""

    url: str
    warc_record_id: str
    kind: str
    lang: str | None = None
    topic: str | None = None
    duplicate_of: str | None = None
    domain: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TruthRow:
        """Read one truth.jsonl row; keys this class does not know are ignored."""
        return cls(
            url=str(data["url"]),
            warc_record_id=str(data["warc_record_id"]),
            kind=str(data["kind"]),
            lang=data.get("lang"),
            topic=data.get("topic"),
            duplicate_of=data.get("duplicate_of"),
            domain=data.get("domain"),
        )

    @property
    def true_domain(self) -> str:
        """The taxonomy domain of the page: its own `domain`, else the one its topic maps to, else `other`."""
        if self.domain in DOMAIN_NAMES:
            return self.domain
        return TOPIC_DOMAINS.get(self.topic or "", OTHER)


@dataclass(frozen=True)
class Judgement:
    """The stand-in annotator's view of one document.

    `scores` holds, for every dimension and `overall`, the expectation the answer's digit log-probabilities
    should carry (the written digit is `written_digit` of it); `domain_confidence` is the probability of the
    domain written, `runner_up` the domain it hesitated with; `row` is the page the text was matched to.
    """

    scores: dict[str, float]
    domain: str
    domain_confidence: float
    runner_up: str
    row: TruthRow | None

    def answer(self) -> dict[str, int | str]:
        """The answer object, keys in the prompt's order: integer scores and the domain."""
        answer: dict[str, int | str] = {key: written_digit(self.scores[key]) for key in SCORE_KEYS}
        answer[DOMAIN_KEY] = self.domain
        assert tuple(answer) == ANSWER_KEYS
        return answer


def written_digit(expectation: float) -> int:
    """The digit an annotator writes for an expected score: the nearest one (halves round up)."""
    return min(SCORE_MAX, max(SCORE_MIN, math.floor(expectation + 0.5)))


def _as_expectation(value: float) -> float:
    """Clamp to the score range and to within `MAX_FRACTION` of the digit it rounds to."""
    value = min(float(SCORE_MAX), max(float(SCORE_MIN), value))
    digit = written_digit(value)
    fraction = min(MAX_FRACTION, max(-MAX_FRACTION, value - digit))
    return round(digit + fraction, 3)


def words(text: str) -> list[str]:
    """Lower-cased word tokens of NFC-normalised text: what shingles are made of."""
    return _WORD.findall(unicodedata.normalize("NFC", text).lower())


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[int]:
    """Hashed word `size`-grams of `text`; a text shorter than that is one shingle of all its words."""
    tokens = words(text)
    if not tokens:
        return set()
    grams = (
        [" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)]
        if len(tokens) >= size
        else [" ".join(tokens)]
    )
    return {
        int.from_bytes(hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest(), "little") for g in grams
    }


def page_text(html: bytes, charset: str | None = None) -> str:
    """A cheap plain text of an HTML page: every text node outside scripts and styles, space-separated.

    Space-joined rather than `text_content()`, whose concatenation glues the last word of one paragraph to
    the first of the next and so loses the shingles that span them.
    """
    decoded = decode_html(html, charset)
    try:
        root = lxml.html.document_fromstring(decoded.utf8, parser=lxml.html.HTMLParser(encoding="utf-8"))
    except (lxml.etree.ParserError, ValueError):
        return ""
    lxml.etree.strip_elements(root, *_NOT_TEXT, with_tail=False)
    return " ".join(root.itertext())


def _bare_id(record_id: str) -> str:
    return record_id.strip().strip("<>")


def read_pages(warc_paths: Iterable[Path]) -> dict[str, str]:
    """Plain text of every HTML response in the WARC files, by WARC-Record-ID (without angle brackets)."""
    texts: dict[str, str] = {}
    for path in warc_paths:
        with open(path, "rb") as stream:
            for record in ArchiveIterator(stream, record_types=WarcRecordType.response, parse_http=True):
                content_type = (record.http_content_type or "").strip().lower()
                if content_type not in HTML_CONTENT_TYPES:
                    continue
                headers = record.http_headers
                body = record.reader.read()
                try:
                    payload = decode_payload(
                        body,
                        headers.get("Transfer-Encoding") if headers is not None else None,
                        headers.get("Content-Encoding") if headers is not None else None,
                        64 * len(body) + (1 << 20),
                    )
                except PayloadError as exc:
                    log.debug("%s: record %s not indexed: %s", path, record.record_id, exc)
                    continue
                text = page_text(payload, record.http_charset) if payload.strip() else ""
                if text.strip():
                    texts[_bare_id(record.record_id)] = text
    return texts


def _clamp(value: float, low: float = SCORE_MIN, high: float = SCORE_MAX) -> float:
    return min(high, max(low, value))


def _profile(row: TruthRow | None) -> str:
    """Which scoring profile a matched page gets (edge captures with an article score like good pages)."""
    if row is None:
        return UNKNOWN
    if row.kind == "edge":
        return "good" if row.topic else "low_quality"
    if row.kind in ("exact_duplicate", "near_duplicate"):
        return "good"  # a copy whose original is not in the truth file: copies are made of good pages
    return row.kind if row.kind in OVERALL_RANGE else UNKNOWN


def _base_dimensions(profile: str, domain: str, rng: random.Random) -> dict[str, float]:
    """Scores per dimension before noise, drawn per page within what its kind allows."""
    u = rng.uniform
    if profile == "good":
        teaches = EDUCATIONAL_VALUE.get(domain, 3.5)
        return {
            "educational_value": _clamp(teaches + u(-0.6, 0.6), 3.0),
            "coherence": _clamp(4.2 + u(-0.6, 0.7), 3.0),
            "knowledge_density": _clamp(teaches - 0.2 + u(-0.6, 0.6), 3.0),
            "originality": _clamp(3.9 + u(-0.7, 0.9), 3.0),
            # Threads between users now and then carry a heated remark or a personal detail.
            "safety": u(3.6, 5.0) if domain == "social-media" else u(4.6, 5.0),
        }
    if profile == "thin":  # fluent filler: reads well, teaches nothing
        return {
            "educational_value": u(0.9, 1.9),
            "coherence": u(3.5, 4.5),
            "knowledge_density": u(0.9, 1.9),
            "originality": u(0.9, 1.9),
            "safety": u(4.85, 5.0),
        }
    if profile == "spam":
        return {
            "educational_value": u(0.0, 0.8),
            "coherence": u(0.3, 1.3),
            "knowledge_density": u(0.0, 0.8),
            "originality": u(0.0, 0.7),
            "safety": u(1.5, 3.0),
        }
    if profile == "low_quality":
        return {
            "educational_value": u(0.0, 1.0),
            "coherence": u(0.0, 1.2),
            "knowledge_density": u(0.0, 0.9),
            "originality": u(0.2, 1.2),
            "safety": u(4.85, 5.0),
        }
    return {name: u(2.2, 3.2) for name in DIMENSION_NAMES} | {"safety": u(4.6, 5.0)}


def _overall(dimensions: Mapping[str, float]) -> float:
    """Worth as training text: mostly what the page teaches, scaled down when it does not read well."""
    value = (
        0.45 * dimensions["educational_value"]
        + 0.3 * dimensions["knowledge_density"]
        + 0.25 * dimensions["originality"]
    )
    return value * min(1.0, dimensions["coherence"] / 3.0) * min(1.0, dimensions["safety"] / 4.0)


def _text_rng(seed: int, text: str, purpose: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\0{purpose}\0{text}".encode()).digest()
    return random.Random(digest)


class PageOracle:
    """Matches document text to the sample page it came from and labels it from the sample's truth."""

    def __init__(
        self,
        rows: Sequence[TruthRow],
        page_texts: Mapping[str, str],
        *,
        seed: int = 0,
        noise: float = DEFAULT_NOISE,
        min_shared: int = 3,
        min_share: float = 0.3,
    ) -> None:
        """Index `page_texts` (plain text by WARC-Record-ID) under the truth row of the page each one copies.

        `noise` is both the share of domains swapped for a neighbour and the chance of each score being moved
        by one point; `min_shared` and `min_share` are how many, and what share, of a document's shingles must
        be found in a page for the document to count as that page's.
        """
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be between 0 and 1, got {noise}")
        if min_shared < 1 or not 0.0 < min_share <= 1.0:
            raise ValueError("min_shared must be at least 1 and min_share in (0, 1]")
        self.seed = seed
        self.noise = noise
        self.min_shared = min_shared
        self.min_share = min_share
        self.rows = tuple(rows)
        by_url = {row.url: row for row in self.rows}
        self._groups: list[TruthRow] = []
        group_of: dict[str, int] = {}
        postings: dict[int, set[int]] = defaultdict(set)
        self._words: dict[
            int, str
        ] = {}  # each content's words, space-delimited: for documents too short to shingle
        indexed = 0
        for row in self.rows:
            text = page_texts.get(_bare_id(row.warc_record_id))
            if not text:
                continue
            original = _original(row, by_url)
            group = group_of.setdefault(original.url, len(self._groups))
            if group == len(self._groups):
                self._groups.append(original)
            for shingle in shingles(text):
                postings[shingle].add(group)
            self._words[group] = f"{self._words.get(group, '')} {' '.join(words(text))} "
            indexed += 1
        self._postings = {shingle: tuple(sorted(groups)) for shingle, groups in postings.items()}
        self._sizes = [0] * len(self._groups)
        for groups in self._postings.values():
            for group in groups:
                self._sizes[group] += 1
        self.pages = indexed
        log.info(
            "page oracle: %d pages (%d distinct contents), %d shingles",
            indexed,
            len(self._groups),
            len(postings),
        )

    @classmethod
    def from_sample(cls, sample_dir: Path, *, seed: int = 0, noise: float = DEFAULT_NOISE) -> PageOracle:
        """Build the oracle from a directory written by `write_demo_corpus` (truth.jsonl and WARC files)."""
        sample_dir = Path(sample_dir)
        truth_path = sample_dir / TRUTH_NAME
        if not truth_path.is_file():
            raise FileNotFoundError(
                f"{sample_dir} has no {TRUTH_NAME}: is it a sample written by demo-corpus?"
            )
        warcs = sorted([*sample_dir.glob("*.warc.gz"), *sample_dir.glob("*.warc")])
        if not warcs:
            raise FileNotFoundError(f"{sample_dir} holds no WARC files")
        with open(truth_path, encoding="utf-8") as handle:
            rows = [TruthRow.from_json(json.loads(line)) for line in handle if line.strip()]
        return cls(rows, read_pages(warcs), seed=seed, noise=noise)

    def relabelled(self, *, seed: int | None = None, noise: float | None = None) -> PageOracle:
        """The same index with another seed or noise level: other labels without reading the sample again."""
        if noise is not None and not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be between 0 and 1, got {noise}")
        other = copy.copy(self)
        other.seed = self.seed if seed is None else seed
        other.noise = self.noise if noise is None else noise
        return other

    def lookup(self, text: str) -> TruthRow | None:
        """The truth row of the page `text` was taken from (the original, for a copy), or None."""
        tokens = words(text)
        if not tokens:
            return None
        if len(tokens) < SHINGLE_WORDS:
            return self._lookup_short(tokens)
        query = shingles(text)
        weight: dict[int, float] = defaultdict(float)
        found: dict[int, int] = defaultdict(int)
        for shingle in query:
            groups = self._postings.get(shingle)
            if not groups:
                continue
            for group in groups:
                weight[group] += 1.0 / len(groups)
                found[group] += 1
        if not weight:
            return None
        # Most weight wins; among pages the text fits equally well, the smallest: the text is more of it.
        best = min(weight, key=lambda group: (-round(weight[group], 9), self._sizes[group], group))
        if found[best] < max(min(self.min_shared, len(query)), self.min_share * len(query)):
            return None
        return self._groups[best]

    def _lookup_short(self, tokens: Sequence[str]) -> TruthRow | None:
        """A document of a few words ("Coming soon."): the smallest page holding those words in order."""
        needle = f" {' '.join(tokens)} "
        holding = [group for group, text in self._words.items() if needle in text]
        if not holding:
            return None
        return self._groups[min(holding, key=lambda group: (len(self._words[group]), group))]

    def judge(self, text: str) -> Judgement:
        """Find the page `text` came from and label it."""
        return self.labels(self.lookup(text), text)

    def labels(self, row: TruthRow | None, text: str) -> Judgement:
        """Scores and domain for `text`, read as the page `row` (None: a text the sample does not hold).

        The page's own scores are drawn from a generator seeded by the seed and the page's URL, the noise on
        top from one seeded by the seed and the text: a text gets the same answer however often it is asked,
        in whatever order.
        """
        profile = _profile(row)
        domain = row.true_domain if row is not None else OTHER
        page_rng = random.Random(f"{self.seed}\0page\0{row.url if row is not None else text}")
        dimensions = _base_dimensions(profile, domain, page_rng)
        overall = _overall(dimensions)
        noise_rng = _text_rng(self.seed, text, "noise")
        scores: dict[str, float] = {}
        for key in SCORE_KEYS:
            value = overall if key == OVERALL else dimensions[key]
            jitter, up = noise_rng.random(), noise_rng.random() < 0.5
            if key != "safety" and jitter < self.noise:
                value += 1.0 if up else -1.0
            if key == OVERALL:
                value = _clamp(value, *OVERALL_RANGE[profile])
            scores[key] = _as_expectation(value)
        return Judgement(scores, *self._domain(domain, row is None, noise_rng), row=row)

    def _domain(self, true: str, unknown: bool, rng: random.Random) -> tuple[str, float, str]:
        """(domain written, its probability, the runner-up): now and then a neighbour instead of the truth."""
        flip, confidence = rng.random(), rng.uniform(0.8, 0.99)
        neighbour = rng.choice(NEIGHBOURS.get(true, NEIGHBOURS[OTHER]))
        if unknown:
            return OTHER, round(confidence - 0.4, 3), neighbour
        if flip < self.noise:
            return neighbour, round(confidence - 0.35, 3), true
        return true, round(confidence, 3), neighbour


def _original(row: TruthRow, by_url: Mapping[str, TruthRow]) -> TruthRow:
    """Follow `duplicate_of` to the first copy (a chain or a loop in a hand-edited truth file ends safely)."""
    seen = {row.url}
    while row.duplicate_of and row.duplicate_of in by_url and row.duplicate_of not in seen:
        row = by_url[row.duplicate_of]
        seen.add(row.url)
    return row
