"""Reading the annotator's answer: strict JSON in, scores out, and nothing guessed in between.

A label that was guessed from a half-broken answer is worse than no label: it trains the distilled classifier
on noise nobody can find afterwards. So the answer must be one JSON object (optionally inside a ```json fence)
with exactly the expected keys, integer scores in 0..5 and a domain from the taxonomy; anything else is
`unparseable`, with a message that says what was wrong, and the raw text is kept for audit.

One malformation is told apart: an answer that is right in every way but names a domain the taxonomy does not
have ("cooking", "Science") is `off_taxonomy`. Its scores are read as usual (the model did rate the document),
its domain is left empty rather than mapped to a guess, and the name it wrote is in `error`, so how often the
model strays, and where to, can be counted instead of vanishing among the broken answers.

When the backend reports the top log-probabilities of every generated token, a score is not the digit the
model happened to write but its expectation: the probabilities of the digit tokens 0..5 at the position where
that digit was generated, renormalised, weighted by their values. A model torn between 3 and 4 then yields 3.5
rather than a coin flip, which gives the distilled regressor a much better target.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from corpusmill.classifiers.annotations import STATUS_OFF_TAXONOMY, STATUS_OK, STATUS_UNPARSEABLE
from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, DOMAIN_NAMES, OVERALL, SCORE_MAX, SCORE_MIN

logger = logging.getLogger(__name__)

DOMAIN_KEY = "domain"
SCORE_KEYS: tuple[str, ...] = (*DIMENSION_NAMES, OVERALL)
ANSWER_KEYS: tuple[str, ...] = (*SCORE_KEYS, DOMAIN_KEY)
DIGITS: tuple[str, ...] = tuple(str(d) for d in range(SCORE_MIN, SCORE_MAX + 1))

_FENCE = re.compile(r"\s*```(?:json)?[ \t]*\n?(.*?)```\s*", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class TokenLogprobs:
    """One generated token: its text, its log-probability and the most likely tokens at its position."""

    token: str
    logprob: float | None = None
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class ParsedAnswer:
    """What an answer says: status, scores per dimension and overall, domain (+ confidence) or an error."""

    status: str
    scores: dict[str, float] = field(default_factory=dict)
    overall: float | None = None
    domain: str | None = None
    domain_confidence: float | None = None
    error: str | None = None

    @classmethod
    def unparseable(cls, error: str) -> ParsedAnswer:
        """An answer that could not be read, with the reason."""
        return cls(status=STATUS_UNPARSEABLE, error=error)


class _DuplicateKeyError(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"key {key!r} appears twice")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _json_body(text: str) -> tuple[str, int]:
    """The JSON part of an answer and its offset in `text`: inside a ```json fence or the stripped text."""
    fence = _FENCE.fullmatch(text)
    if fence:
        body, offset = fence.group(1), fence.start(1)
    else:
        body, offset = text, 0
    stripped = body.lstrip()
    return stripped.rstrip(), offset + len(body) - len(stripped)


def _check_values(data: dict[str, Any]) -> list[str]:
    problems = []
    missing = [key for key in ANSWER_KEYS if key not in data]
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    unexpected = [key for key in data if key not in ANSWER_KEYS]
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(repr(k) for k in unexpected)}")
    for key in SCORE_KEYS:
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{key} must be an integer {SCORE_MIN}-{SCORE_MAX}, got {json.dumps(value)}")
        elif not SCORE_MIN <= value <= SCORE_MAX:
            problems.append(f"{key} must be in {SCORE_MIN}-{SCORE_MAX}, got {value}")
    if DOMAIN_KEY in data and not isinstance(data[DOMAIN_KEY], str):
        problems.append(f"domain must be a string, got {json.dumps(data[DOMAIN_KEY])}")
    return problems


def _off_taxonomy(data: dict[str, Any]) -> str | None:
    """Why the answer's domain is not ours (a string naming no taxonomy domain), or None."""
    domain = data.get(DOMAIN_KEY)
    if isinstance(domain, str) and domain not in DOMAIN_NAMES:
        return f"domain {domain!r} is not in the taxonomy"
    return None


class _TokenIndex:
    """Maps character offsets of the answer text to the generated tokens that produced them."""

    def __init__(self, text: str, tokens: Sequence[TokenLogprobs]) -> None:
        joined = "".join(t.token for t in tokens)
        # Servers report the tokens of the whole completion; the text may have lost surrounding whitespace.
        self.base = joined.find(text) if text else -1
        self.tokens = tokens
        self.ends: list[int] = []
        end = 0
        for token in tokens:
            end += len(token.token)
            self.ends.append(end)

    @property
    def usable(self) -> bool:
        return self.base >= 0

    def covering(self, start: int, end: int) -> list[int]:
        """Indices of the tokens that overlap the characters [start, end) of the answer text."""
        first = bisect.bisect_right(self.ends, self.base + start)
        last = bisect.bisect_left(self.ends, self.base + end)
        return list(range(first, min(last, len(self.tokens) - 1) + 1))


def digit_expectation(token: TokenLogprobs, written: int) -> float | None:
    """Probability-weighted mean of the digits 0..5 at one position; None if the position is not a digit."""
    if token.token.strip() != str(written):
        return None
    probs = dict.fromkeys(DIGITS, 0.0)
    seen = set()
    for text, logprob in token.top:
        digit = text.strip()
        if digit in probs and text not in seen:
            seen.add(text)
            probs[digit] += math.exp(logprob)
    if token.token not in seen and token.logprob is not None:
        probs[token.token.strip()] += math.exp(token.logprob)
    total = sum(probs.values())
    if total <= 0.0:
        return None
    return sum(int(d) * p for d, p in probs.items()) / total


def _value_span(text: str, offset: int, body: str, key: str) -> tuple[int, int] | None:
    """Character span in `text` of the value written for `key` (digits, or the string without quotes)."""
    match = re.search(rf'"{re.escape(key)}"\s*:\s*("([^"\\]*)"|-?\d+)', body)
    if match is None:
        return None
    group = 2 if match.group(2) is not None else 1
    return offset + match.start(group), offset + match.end(group)


def _weighted(
    text: str, offset: int, body: str, data: dict[str, Any], token_probs: Sequence[TokenLogprobs]
) -> tuple[dict[str, float], float | None]:
    """Scores as digit expectations, and the domain's probability, from per-token log-probabilities."""
    scores = {key: float(data[key]) for key in SCORE_KEYS}
    index = _TokenIndex(text, token_probs)
    if not index.usable:
        logger.debug("token log-probabilities do not spell the answer; using the written integers")
        return scores, None
    for key in SCORE_KEYS:
        span = _value_span(text, offset, body, key)
        if span is None:
            continue
        covering = index.covering(*span)
        if len(covering) == 1:
            expectation = digit_expectation(token_probs[covering[0]], data[key])
            if expectation is not None:
                scores[key] = expectation
    confidence = None
    span = _value_span(text, offset, body, DOMAIN_KEY)
    if span is not None and span[1] > span[0]:
        logprobs = [token_probs[i].logprob for i in index.covering(*span)]
        if logprobs and all(lp is not None for lp in logprobs):
            confidence = math.exp(sum(lp for lp in logprobs if lp is not None))
    return scores, confidence


def parse_answer(text: str | None, token_probs: Sequence[TokenLogprobs] | None = None) -> ParsedAnswer:
    """Read one answer strictly; scores are digit expectations when per-token log-probabilities are given.

    The status is `ok`, `off_taxonomy` (well-formed, scores kept, domain outside the taxonomy: see the module
    docstring) or `unparseable`.
    """
    if text is None or not text.strip():
        return ParsedAnswer.unparseable("empty answer")
    body, offset = _json_body(text)
    try:
        data = json.loads(body, object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return ParsedAnswer.unparseable(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except ValueError as exc:
        return ParsedAnswer.unparseable(f"not valid JSON: {exc}")
    if not isinstance(data, dict):
        return ParsedAnswer.unparseable(f"expected one JSON object, got {type(data).__name__}")
    problems = _check_values(data)
    off_taxonomy = _off_taxonomy(data)
    if problems:
        return ParsedAnswer.unparseable("; ".join([*problems, *([off_taxonomy] if off_taxonomy else [])]))
    if token_probs:
        scores, confidence = _weighted(text, offset, body, data, token_probs)
    else:
        scores, confidence = {key: float(data[key]) for key in SCORE_KEYS}, None
    if off_taxonomy:
        return ParsedAnswer(
            status=STATUS_OFF_TAXONOMY,
            scores={name: scores[name] for name in DIMENSION_NAMES},
            overall=scores[OVERALL],
            error=off_taxonomy,
        )
    return ParsedAnswer(
        status=STATUS_OK,
        scores={name: scores[name] for name in DIMENSION_NAMES},
        overall=scores[OVERALL],
        domain=data[DOMAIN_KEY],
        domain_confidence=confidence,
    )
