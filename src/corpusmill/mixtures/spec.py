"""The mixture a recipe asks for: a token budget and per-domain weights or multipliers, with an epoch cap.

Two ways to say what a mixture should be, because teams think in both: *weights* ("technology is 12% of the
budget") or *multipliers* ("down-sample e-commerce to 0.3x, repeat science 2x"). With multipliers and a
budget, the multipliers fix the relative rates and one common factor scales them to the budget. Repetition is
capped at `max_epochs` per domain (4 by default: beyond about four epochs repeated tokens stop paying off,
Muennighoff et al., 2023); a target the cap makes unreachable is reported, never silently inflated.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from corpusmill.core.labels import LabelReference
from corpusmill.core.stage import StageParams

_UNITS = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12, "P": 10**15}
_COUNT = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?(?:[eE]\d+)?)\s*(?P<unit>[KMBGTP]?)\s*$", re.IGNORECASE)


def parse_token_count(value: Any) -> int:
    """`18T`, `500B`, `2.5M`, `1e9` or a plain integer, as a whole number of tokens."""
    if isinstance(value, bool):
        raise ValueError("a token count must be a number, not a boolean")
    if isinstance(value, int | float):
        number = float(value)
    else:
        match = _COUNT.match(str(value))
        if match is None:
            raise ValueError(f"{value!r} is not a token count; write e.g. 18T, 500B, 2.5M or 1000000")
        number = float(match["number"]) * _UNITS[match["unit"].upper()]
    if number < 1:
        raise ValueError(f"a token budget must be at least 1 token, got {value!r}")
    return round(number)


WILDCARD = "*"  # in `min_quality`: every domain without a floor of its own

TokenCount = Annotated[int, BeforeValidator(parse_token_count)]


class MixParams(StageParams):
    """Parameters of the `mix` stage (the mixture spec)."""

    budget: TokenCount | None = None
    weights: dict[str, Annotated[float, Field(ge=0)]] | None = None
    multipliers: dict[str, Annotated[float, Field(ge=0)]] | None = None
    default_multiplier: float = Field(default=1.0, ge=0)
    max_epochs: float = Field(default=4.0, gt=0)
    fill_budget: bool = False  # weights only: give capped domains' shortfall to the others, by weight
    min_quality: dict[str, float] = Field(default_factory=dict)  # per domain; "*" applies to every domain
    domain_column: str = "domain"
    quality_column: str = "score__quality"
    unlabelled_domain: str = "other"  # what a row with a null domain counts as
    seed: int = 0  # keys the per-document draws: u = hash(seed, id, copy)

    @field_validator("weights", "multipliers")
    @classmethod
    def _no_wildcard(cls, rates: dict[str, float] | None) -> dict[str, float] | None:
        # "*" is a wildcard only in `min_quality`; here it would be one more domain, matching no document.
        if rates is not None and WILDCARD in rates:
            raise ValueError(
                f"{WILDCARD!r} is a wildcard only in min_quality; here name each domain, and give the rest "
                "`default_multiplier` (multipliers) or leave them out (weights)"
            )
        return rates

    @model_validator(mode="after")
    def _one_mode(self) -> MixParams:
        if (self.weights is None) == (self.multipliers is None):
            raise ValueError(
                "give exactly one of `weights` (fractions of the budget) or `multipliers` (rates)"
            )
        if self.weights is not None:
            if self.budget is None:
                raise ValueError("`weights` are fractions of a budget: set `budget` (e.g. 18T)")
            if not self.weights or sum(self.weights.values()) <= 0:
                raise ValueError("`weights` must give at least one domain a positive weight")
        if self.fill_budget and self.weights is None:
            raise ValueError(
                "`fill_budget` applies to `weights`; with `multipliers` a budget is always filled"
            )
        return self

    @property
    def mode(self) -> str:
        """`weights` or `multipliers`."""
        return "weights" if self.weights is not None else "multipliers"

    def label_references(self) -> list[LabelReference]:
        """Domains the mixture names: one the domain column never holds is a share or floor no document gets.

        The unlabelled domain (what a null counts as) and the `*` of `min_quality` are always allowed.
        """
        free = {WILDCARD, self.unlabelled_domain}
        named = {
            "weights": self.weights or {},
            "multipliers": self.multipliers or {},
            "min_quality": self.min_quality,
        }
        return [
            LabelReference(field, self.domain_column, tuple(d for d in domains if d not in free))
            for field, domains in named.items()
        ]

    def min_quality_for(self, domain: str) -> float | None:
        """The quality floor of a domain (its own, else the `*` entry, else none)."""
        return self.min_quality.get(domain, self.min_quality.get(WILDCARD))
