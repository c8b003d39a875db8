"""parse_answer: strict JSON only, a precise error for every malformation, digit expectations from logprobs."""

from __future__ import annotations

import json
import math
import re

import pytest

from corpusmill.classifiers.answers import TokenLogprobs, parse_answer
from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, DOMAIN_NAMES

GOOD = {
    "educational_value": 4,
    "coherence": 5,
    "knowledge_density": 3,
    "originality": 2,
    "safety": 5,
    "overall": 4,
    "domain": "science",
}


def answer(**changes: object) -> str:
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


def test_plain_json_is_read_as_written_integers() -> None:
    parsed = parse_answer(answer())
    assert parsed.status == "ok" and parsed.error is None
    assert parsed.scores == {name: float(GOOD[name]) for name in DIMENSION_NAMES}
    assert parsed.overall == 4.0
    assert parsed.domain == "science"
    assert parsed.domain_confidence is None


@pytest.mark.parametrize(
    "text",
    [
        "\n\n  " + answer() + "  \n",
        "```json\n" + answer() + "\n```",
        "```\n" + answer() + "\n```",
        "  ```JSON\n" + answer() + "```\n",
        json.dumps(GOOD, indent=2),
    ],
)
def test_whitespace_and_a_json_fence_are_allowed(text: str) -> None:
    parsed = parse_answer(text)
    assert parsed.status == "ok", parsed.error
    assert parsed.scores["knowledge_density"] == 3.0


@pytest.mark.parametrize(
    ("text", "expected_error"),
    [
        ("", "empty answer"),
        ("   \n", "empty answer"),
        (None, "empty answer"),
        ("Here is my rating: " + answer(), "not valid JSON"),
        (answer() + "\nI hope this helps!", "not valid JSON: Extra data"),
        (answer()[:-10], "not valid JSON"),
        ("{'educational_value': 4}", "not valid JSON"),
        ("[" + answer() + "]", "expected one JSON object, got list"),
        ("```python\n" + answer() + "\n```", "not valid JSON"),
        ('{"educational_value": 4, "educational_value": 5}', "key 'educational_value' appears twice"),
        (answer(coherence=...), "missing keys: coherence"),
        (answer(domain=..., overall=...), "missing keys: overall, domain"),
        (answer(reasoning="looks fine"), "unexpected keys: 'reasoning'"),
        (answer(educational_value=6), "educational_value must be in 0-5, got 6"),
        (answer(safety=-1), "safety must be in 0-5, got -1"),
        (answer(coherence=3.5), "coherence must be an integer 0-5, got 3.5"),
        (answer(coherence=4.0), "coherence must be an integer 0-5, got 4.0"),
        (answer(overall="4"), 'overall must be an integer 0-5, got "4"'),
        (answer(originality=True), "originality must be an integer 0-5, got true"),
        (answer(originality=None), "originality must be an integer 0-5, got null"),
        (answer(domain=["science"]), "domain must be a string"),
        (answer(domain=None), "domain must be a string"),
        (answer().replace("4", "NaN", 1), "not valid JSON: NaN is not a number JSON allows"),
    ],
)
def test_every_malformation_is_unparseable_with_a_reason(text: str | None, expected_error: str) -> None:
    parsed = parse_answer(text)
    assert parsed.status == "unparseable"
    assert expected_error in (parsed.error or ""), parsed.error
    # Nothing is guessed from a broken answer.
    assert parsed.scores == {} and parsed.overall is None and parsed.domain is None


def test_all_problems_are_reported_together() -> None:
    parsed = parse_answer(answer(safety=9, domain="cooking", coherence=...))
    assert parsed.status == "unparseable" and parsed.error is not None
    assert "missing keys: coherence" in parsed.error
    assert "safety must be in 0-5, got 9" in parsed.error
    assert "domain 'cooking' is not in the taxonomy" in parsed.error


@pytest.mark.parametrize("domain", ["cooking", "Science", ""])
def test_a_domain_outside_the_taxonomy_keeps_the_scores(domain: str) -> None:
    text = answer(domain=domain)
    parsed = parse_answer(text)
    assert parsed.status == "off_taxonomy"
    assert parsed.scores == {name: float(GOOD[name]) for name in DIMENSION_NAMES} and parsed.overall == 4.0
    # The domain is not guessed; the name the model wrote is in the error.
    assert parsed.domain is None and parsed.domain_confidence is None
    assert parsed.error == f"domain {domain!r} is not in the taxonomy"


def tokens_of(text: str, top_at: dict[int, list[tuple[str, float]]] | None = None) -> list[TokenLogprobs]:
    """Split like a BPE tokenizer would around JSON (digits and quotes alone); 0.9 per token unless given."""
    pieces = re.findall(r'\d|"[a-z_]+"(?=:)|[a-z]+|-[a-z]+|[^\w"]+|"', text)
    assert "".join(pieces) == text
    tokens = []
    for index, piece in enumerate(pieces):
        top = (top_at or {}).get(index)
        own = dict(top)[piece] if top and piece in dict(top) else math.log(0.9)
        tokens.append(TokenLogprobs(piece, own, tuple(top or [(piece, own)])))
    return tokens


def index_of_value(tokens: list[TokenLogprobs], key: str) -> int:
    """The token index of the digit written for `key`."""
    for index, token in enumerate(tokens):
        if token.token == f'"{key}"':
            return next(i for i in range(index + 1, len(tokens)) if tokens[i].token.strip().isdigit())
    raise AssertionError(key)


def test_scores_are_digit_expectations_renormalised_over_digits() -> None:
    text = answer()
    plain = tokens_of(text)
    position = index_of_value(plain, "educational_value")
    overall_position = index_of_value(plain, "overall")
    # The written 4 had 0.5, a 5 had 0.3, a 2 had 0.1 and a non-digit 0.1 (dropped, the rest renormalised).
    top_ev = [("4", math.log(0.5)), ("5", math.log(0.3)), ("2", math.log(0.1)), ("x", math.log(0.1))]
    top_overall = [("4", math.log(0.6)), (" 3", math.log(0.2)), ("3", math.log(0.2))]
    tokens = tokens_of(text, {position: top_ev, overall_position: top_overall})
    parsed = parse_answer(text, tokens)
    assert parsed.status == "ok"
    assert parsed.scores["educational_value"] == pytest.approx((4 * 0.5 + 5 * 0.3 + 2 * 0.1) / 0.9)
    # " 3" and "3" are the same digit: their probabilities add up.
    assert parsed.overall == pytest.approx(4 * 0.6 + 3 * 0.4)
    # Positions with only the written digit in their top list keep exactly that digit.
    assert parsed.scores["coherence"] == 5.0
    # The domain's confidence is the probability of the tokens spelling it ("science": one token at 0.9).
    assert parsed.domain_confidence == pytest.approx(0.9)


def test_domain_confidence_multiplies_the_label_tokens() -> None:
    text = answer(domain="law-and-government")
    tokens = tokens_of(text)
    label_tokens = [t.token for t in tokens if t.token in ("law", "-and", "-government")]
    assert label_tokens == ["law", "-and", "-government"]
    assert parse_answer(text, tokens).domain_confidence == pytest.approx(0.9**3)


def test_logprobs_that_do_not_spell_the_answer_are_ignored() -> None:
    text = answer()
    tokens = tokens_of(text.replace("4", "1"), {})
    parsed = parse_answer(text, tokens)
    assert parsed.status == "ok"
    assert parsed.scores["educational_value"] == 4.0 and parsed.domain_confidence is None


def test_logprobs_align_through_a_fence_and_leading_whitespace() -> None:
    body = answer()
    text = "\n```json\n" + body + "\n```"
    plain = tokens_of(body)
    position = index_of_value(plain, "safety")
    fence = [TokenLogprobs(piece, math.log(0.9), ()) for piece in ("\n", "```", "json", "\n")]
    tokens = [*fence, *tokens_of(body, {position: [("5", math.log(0.5)), ("4", math.log(0.5))]})]
    tokens.append(TokenLogprobs("\n```", math.log(0.9), ()))
    parsed = parse_answer(text, tokens)
    assert parsed.status == "ok"
    assert parsed.scores["safety"] == pytest.approx(4.5)


def test_every_taxonomy_domain_is_accepted() -> None:
    for domain in DOMAIN_NAMES:
        assert parse_answer(answer(domain=domain)).domain == domain


def test_an_off_taxonomy_answer_still_reads_digit_expectations() -> None:
    text = answer(domain="cooking")
    position = index_of_value(tokens_of(text), "safety")
    parsed = parse_answer(text, tokens_of(text, {position: [("5", math.log(0.5)), ("4", math.log(0.5))]}))
    assert parsed.status == "off_taxonomy" and parsed.scores["safety"] == pytest.approx(4.5)
