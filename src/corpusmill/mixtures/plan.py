"""From token accounting and a mixture spec to a sampling rate per domain, with warnings that say what is possible.

The plan is a pure function of the counts, so `corpusmill plan` can print it from a finished run's accounting
without touching a document, and the `mix` stage computes the very same rates on the driver. A rate `w` means
"keep `w` times this domain's eligible tokens": below 1 it down-samples, above 1 it repeats, never past
`max_epochs`. Every target the data cannot meet produces a warning naming the domain, what was asked and what
is achievable instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from corpusmill.mixtures.spec import MixParams


@dataclass(frozen=True)
class DomainCount:
    """What the accounting found for one domain: all documents, and those above its quality floor."""

    documents: int = 0
    tokens: int = 0
    eligible_documents: int = 0
    eligible_tokens: int = 0


@dataclass(frozen=True)
class DomainPlan:
    """One row of the plan."""

    domain: str
    eligible_documents: int
    eligible_tokens: int
    requested: float  # the weight or multiplier asked for (0 when the spec does not name the domain)
    rate: float
    expected_tokens: float
    expected_documents: float
    capped: bool


@dataclass
class MixturePlan:
    """Rates per domain, expected totals, and every warning."""

    mode: str
    budget: int | None
    max_epochs: float
    domains: list[DomainPlan]
    warnings: list[str] = field(default_factory=list)

    @property
    def expected_tokens(self) -> float:
        """The mixture's expected size in tokens."""
        return sum(d.expected_tokens for d in self.domains)

    def rates(self) -> dict[str, float]:
        """Domain -> sampling rate, as the `mix` stage applies it."""
        return {d.domain: d.rate for d in self.domains}

    def to_dict(self) -> dict[str, Any]:
        """JSON form for stats and reports."""
        return {
            "mode": self.mode,
            "budget": self.budget,
            "max_epochs": self.max_epochs,
            "expected_tokens": self.expected_tokens,
            "domains": [asdict(d) for d in self.domains],
            "warnings": list(self.warnings),
        }


def _fill(wanted: dict[str, float], caps: dict[str, float], budget: float) -> tuple[dict[str, float], bool]:
    """Scale `wanted` by one factor so the capped sum meets `budget` (water-filling); False if even all caps fall short."""
    if sum(caps.values()) <= budget:
        return dict(caps), sum(caps.values()) >= budget
    free = {d for d, amount in wanted.items() if amount > 0}
    result = {d: 0.0 for d in wanted}
    remaining = budget
    while free:
        scale = remaining / sum(wanted[d] for d in free)
        newly_capped = {d for d in free if wanted[d] * scale >= caps[d]}
        if not newly_capped:
            for d in free:
                result[d] = wanted[d] * scale
            return result, True
        for d in newly_capped:
            result[d] = caps[d]
            remaining -= caps[d]
        free -= newly_capped
    return result, remaining <= 0


def plan_mixture(counts: dict[str, DomainCount], params: MixParams) -> MixturePlan:
    """Rates per domain that hit the spec's targets as closely as the data and the epoch cap allow."""
    warnings: list[str] = []
    domains = sorted(set(counts) | set(params.weights or {}) | set(params.multipliers or {}))
    available = {d: counts.get(d, DomainCount()).eligible_tokens for d in domains}
    caps = {d: params.max_epochs * available[d] for d in domains}
    requested: dict[str, float]
    if params.weights is not None:
        assert params.budget is not None
        total_weight = sum(params.weights.values())
        if abs(total_weight - 1.0) > 1e-9:
            warnings.append(
                f"weights sum to {total_weight:g}, not 1: they were normalised to fractions of the budget"
            )
        requested = {d: params.weights.get(d, 0.0) for d in domains}
        targets = {d: params.budget * requested[d] / total_weight for d in domains}
        for d in domains:
            if d in counts and requested[d] == 0 and counts[d].tokens:
                warnings.append(
                    f"{d}: {counts[d].tokens:,} tokens in the corpus but no weight; left out of the mixture"
                )
        if params.fill_budget:
            expected, met = _fill(targets, caps, params.budget)
        else:
            expected = {d: min(targets[d], caps[d]) for d in domains}
            met = sum(expected.values()) >= params.budget * (1 - 1e-9)
        for d in domains:
            if targets[d] > caps[d] * (1 + 1e-12):
                warnings.append(_short(d, targets[d], available[d], params.max_epochs))
    else:
        multipliers = params.multipliers or {}
        requested = {d: multipliers.get(d, params.default_multiplier) for d in domains}
        wanted = {d: requested[d] * available[d] for d in domains}
        if params.budget is None:
            expected = {d: min(wanted[d], caps[d]) for d in domains}
            for d in domains:
                if requested[d] > params.max_epochs:
                    warnings.append(_short(d, wanted[d], available[d], params.max_epochs))
            met = True
        elif sum(wanted.values()) <= 0:
            expected, met = {d: 0.0 for d in domains}, False
        else:
            expected, met = _fill(wanted, caps, params.budget)
            for d in domains:
                scaled = wanted[d] * params.budget / sum(wanted.values())
                if scaled > caps[d] * (1 + 1e-12):
                    warnings.append(_short(d, scaled, available[d], params.max_epochs))
    for d in domains:
        if requested[d] > 0 and available[d] == 0:
            found = counts.get(d, DomainCount())
            why = (
                "no documents"
                if found.documents == 0
                else f"no documents above its quality floor ({found.documents} below)"
            )
            warnings.append(f"{d}: requested but the corpus has {why}; it contributes 0 tokens")
    if params.budget is not None and not met:
        achievable = sum(expected.values())
        warnings.append(
            f"the budget of {params.budget:,} tokens cannot be met: at most {achievable:,.0f} tokens are achievable "
            f"with these targets under the {params.max_epochs:g}-epoch cap"
            + (
                ""
                if params.mode == "multipliers" or params.fill_budget
                else " (set fill_budget to give the shortfall to other domains)"
            )
        )
    rows = []
    for d in domains:
        count = counts.get(d, DomainCount())
        rate = expected[d] / available[d] if available[d] else 0.0
        rows.append(
            DomainPlan(
                domain=d,
                eligible_documents=count.eligible_documents,
                eligible_tokens=available[d],
                requested=requested[d],
                rate=rate,
                expected_tokens=expected[d],
                expected_documents=rate * count.eligible_documents,
                capped=available[d] > 0 and rate >= params.max_epochs * (1 - 1e-12),
            )
        )
    return MixturePlan(params.mode, params.budget, params.max_epochs, rows, warnings)


def _short(domain: str, target: float, available: int, max_epochs: float) -> str:
    return (
        f"{domain}: target {target:,.0f} tokens needs {target / available if available else float('inf'):.2f} epochs of its "
        f"{available:,} unique tokens; capped at {max_epochs:g} epochs = {max_epochs * available:,.0f} tokens"
    )
