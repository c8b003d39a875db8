"""The mixture planner's arithmetic and its edge cases, checked against hand-computed numbers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from corpusmill.mixtures.plan import DomainCount, plan_mixture
from corpusmill.mixtures.spec import MixParams, parse_token_count


def counts(**tokens: int) -> dict[str, DomainCount]:
    return {
        d: DomainCount(documents=t // 100, tokens=t, eligible_documents=t // 100, eligible_tokens=t)
        for d, t in tokens.items()
    }


def rows(plan):
    return {d.domain: d for d in plan.domains}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18T", 18 * 10**12),
        ("500B", 5 * 10**11),
        ("2.5M", 2_500_000),
        ("1e9", 10**9),
        (12345, 12345),
        ("7k", 7000),
    ],
)
def test_token_counts_take_unit_suffixes(text: object, expected: int) -> None:
    assert parse_token_count(text) == expected


@pytest.mark.parametrize("bad", ["18X", "", "-5", "T", True, 0])
def test_bad_token_counts_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_token_count(bad)


def test_weights_split_the_budget_and_rates_follow() -> None:
    plan = plan_mixture(
        counts(news=1000, science=500), MixParams(budget=1200, weights={"news": 0.5, "science": 0.5})
    )
    r = rows(plan)
    assert r["news"].rate == pytest.approx(0.6) and r["science"].rate == pytest.approx(1.2)
    assert plan.expected_tokens == pytest.approx(1200) and plan.warnings == []


def test_weights_not_summing_to_one_are_normalised_with_a_warning() -> None:
    plan = plan_mixture(
        counts(news=1000, science=1000), MixParams(budget=1000, weights={"news": 3, "science": 1})
    )
    r = rows(plan)
    assert r["news"].expected_tokens == pytest.approx(750) and r["science"].expected_tokens == pytest.approx(
        250
    )
    assert any("sum to 4" in w for w in plan.warnings)


def test_an_infeasible_target_is_capped_and_says_what_is_achievable() -> None:
    plan = plan_mixture(
        counts(news=1000, science=100),
        MixParams(budget=2000, weights={"news": 0.5, "science": 0.5}, max_epochs=4),
    )
    r = rows(plan)
    assert r["science"].rate == 4 and r["science"].capped and r["science"].expected_tokens == 400
    assert r["news"].expected_tokens == pytest.approx(1000)  # its own share, no more without fill_budget
    assert any("science: target 1,000 tokens needs 10.00 epochs" in w for w in plan.warnings)
    assert any("cannot be met: at most 1,400" in w for w in plan.warnings)


def test_fill_budget_gives_the_shortfall_to_the_other_domains() -> None:
    plan = plan_mixture(
        counts(news=1000, tech=1000, science=100),
        MixParams(budget=2000, weights={"news": 0.25, "tech": 0.25, "science": 0.5}, fill_budget=True),
    )
    r = rows(plan)
    assert r["science"].expected_tokens == 400
    assert r["news"].expected_tokens == pytest.approx(800) and r["tech"].expected_tokens == pytest.approx(800)
    assert plan.expected_tokens == pytest.approx(2000)


def test_a_domain_with_zero_documents_contributes_nothing_and_is_reported() -> None:
    plan = plan_mixture(counts(news=1000), MixParams(budget=500, weights={"news": 0.5, "math": 0.5}))
    r = rows(plan)
    assert r["math"].rate == 0 and r["math"].expected_tokens == 0
    assert any("math: requested but the corpus has no documents" in w for w in plan.warnings)
    assert any("cannot be met" in w for w in plan.warnings)


def test_a_budget_larger_than_the_corpus_under_the_cap_caps_every_domain() -> None:
    plan = plan_mixture(counts(news=100, science=50), MixParams(budget=10_000, multipliers={"science": 2.0}))
    r = rows(plan)
    assert r["news"].rate == 4 and r["science"].rate == 4
    assert plan.expected_tokens == 600
    assert any("at most 600 tokens are achievable" in w for w in plan.warnings)


def test_multipliers_keep_their_ratio_while_scaling_to_the_budget() -> None:
    plan = plan_mixture(
        counts(shop=1000, science=1000, news=1000),
        MixParams(budget=3000, multipliers={"shop": 0.5, "science": 2.0}),  # news at the default 1.0
    )
    r = rows(plan)
    assert r["shop"].expected_tokens == pytest.approx(3000 * 0.5 / 3.5)
    assert r["science"].rate / r["shop"].rate == pytest.approx(4.0)
    assert plan.expected_tokens == pytest.approx(3000)


def test_multipliers_without_a_budget_apply_as_given_under_the_cap() -> None:
    plan = plan_mixture(counts(shop=1000, science=100), MixParams(multipliers={"shop": 0.3, "science": 6.0}))
    r = rows(plan)
    assert r["shop"].rate == pytest.approx(0.3) and r["science"].rate == 4
    assert any(w.startswith("science:") for w in plan.warnings)


def test_the_spec_refuses_ambiguous_or_incomplete_mixtures() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        MixParams(budget=10, weights={"a": 1}, multipliers={"a": 1})
    with pytest.raises(ValidationError, match="set `budget`"):
        MixParams(weights={"a": 1})
    with pytest.raises(ValidationError):
        MixParams(budget=10, weights={"a": -1})
    with pytest.raises(ValidationError, match="fill_budget"):
        MixParams(multipliers={"a": 1}, fill_budget=True)
