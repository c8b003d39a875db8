"""The `mix` stage: sample every domain at its planned rate, deterministically and within one document of plan.

A rate `w` keeps `floor(w)` copies of each eligible document plus one more when `u < t`, where
`u = hash(seed, id, copy)` for the copy in question and `t` is the domain's threshold. Drawing `u < frac(w)`
per document would be right only on average: a domain of 200 documents sampled at 0.5 would land several
documents off. So the threshold is fitted to the data instead, in three accounting rounds over light columns:

1. documents, tokens, bytes and quality per domain -> the plan (rates per domain, `plan.py`);
2. for each domain with a fractional rate, tokens per 1/1024 slice of the `u` range -> the slice where the
   cumulative tokens cross `frac(w) * eligible tokens`;
3. `(u, tokens)` of just the documents in that slice -> the exact threshold, within one document of target.

Every decision depends only on the seed, the document id and the merged counts, so the output is the same on
every engine and for every partitioning. Copy `c > 0` of a document gets the id `<id>#<c>`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from corpusmill.core import schema
from corpusmill.core.hashing import hash64
from corpusmill.core.stage import PlanStage, register
from corpusmill.mixtures.accounting import (
    account_batch,
    document_domains,
    domain_counts,
    eligibility,
    merge_summaries,
    token_counts,
)
from corpusmill.mixtures.plan import plan_mixture
from corpusmill.mixtures.spec import MixParams

SLICE_BITS = 10
SLICES = 1 << SLICE_BITS
KEY_BITS = 64
MIX_COPY_FIELD = pa.field("mix_copy", pa.int32())


def _fraction(rate: float) -> float:
    return rate - math.floor(rate)


@register
class MixStage(PlanStage):
    """Down- or up-samples each domain to the planned rate."""

    name = "mix"
    Params = MixParams
    requires = ("token_count",)
    account_columns: ClassVar[tuple[str, ...] | None] = None  # set per instance from the params

    def __init__(self, params: MixParams | None = None) -> None:
        super().__init__(params)
        p = self._params
        self.account_columns = (
            schema.ID,
            schema.TEXT,
            schema.SOURCE,
            schema.LANG,
            "token_count",
            p.domain_column,
            p.quality_column,
        )

    @property
    def _params(self) -> MixParams:
        return self.params  # type: ignore[return-value]

    def output_fields(self) -> list[pa.Field]:
        """`mix_copy`: 0 for the original, 1.. for repeats."""
        return [MIX_COPY_FIELD]

    # --- accounting -----------------------------------------------------------------------------------

    def account(self, batch: pa.RecordBatch, plan: dict[str, Any] | None) -> dict[str, Any]:
        """Round 1: per-domain counts. Rounds 2 and 3: where the fractional copies' draws fall."""
        if plan is None:
            return account_batch(batch, self._params)
        domains = document_domains(batch, self._params)
        tokens = token_counts(batch)
        ineligible = eligibility(batch, domains, self._params)
        ids = batch.column(schema.ID).to_pylist()
        out: dict[str, Any] = {}
        for row, domain in enumerate(domains):
            if ineligible[row] is not None or domain not in plan["fractional"]:
                continue
            copy = math.floor(plan["rates"][domain])
            u = hash64(self._params.seed, ids[row], copy)
            if plan["round"] == 2:
                slices = out.setdefault(domain, [0] * SLICES)
                slices[u >> (KEY_BITS - SLICE_BITS)] += int(tokens[row])
            elif u >> (KEY_BITS - SLICE_BITS) == plan["slices"][domain]["slice"]:
                out.setdefault(domain, []).append([u, int(tokens[row]), ids[row]])
        return {"domains": out}

    def merge(self, left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
        """Summaries add up (histograms elementwise, document lists by concatenation)."""
        return merge_summaries(left, right)

    def plan(self, account: dict[str, Any], previous: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
        """Rates after round 1; the slice after round 2; exact thresholds after round 3."""
        if previous is None:
            mixture = plan_mixture(domain_counts(account), self._params)
            rates = mixture.rates()
            eligible = {d.domain: d.eligible_tokens for d in mixture.domains}
            fractional = sorted(d for d, r in rates.items() if _fraction(r) > 0 and eligible[d] > 0)
            plan = {
                "round": 2,
                "seed": self._params.seed,
                "rates": rates,
                "fractional": fractional,
                "targets": {d: _fraction(rates[d]) * eligible[d] for d in fractional},
                "thresholds": {},
                "mixture": mixture.to_dict(),
                "accounting": account,
            }
            return plan, not fractional
        plan = dict(previous)
        found = account.get("domains", {})
        if previous["round"] == 2:
            slices = {}
            for domain in previous["fractional"]:
                histogram = found.get(domain, [0] * SLICES)
                target, before = previous["targets"][domain], 0
                for index, amount in enumerate(histogram):
                    if before + amount >= target or index == SLICES - 1:
                        slices[domain] = {"slice": index, "before": before}
                        break
                    before += amount
            plan.update(round=3, slices=slices)
            return plan, False
        thresholds = {}
        for domain in previous["fractional"]:
            entry = previous["slices"][domain]
            documents = sorted(found.get(domain, []), key=lambda d: (d[0], d[2]))
            target, reached = previous["targets"][domain], entry["before"]
            # Keep documents in draw order while that brings the total closer to the target.
            kept = 0
            while kept < len(documents) and abs(reached + documents[kept][1] - target) <= abs(
                reached - target
            ):
                reached += documents[kept][1]
                kept += 1
            low = entry["slice"] << (KEY_BITS - SLICE_BITS)
            thresholds[domain] = (
                documents[kept][0] if kept < len(documents) else low + (1 << (KEY_BITS - SLICE_BITS))
            )
        plan.update(round=4, thresholds=thresholds)
        plan.pop("slices", None)
        return plan, True

    # --- applying -------------------------------------------------------------------------------------

    def apply(self, batch: pa.RecordBatch, plan: dict[str, Any]) -> pa.RecordBatch:
        """Repeat, keep or drop each document as the plan says; copies get `<id>#<copy>` ids."""
        params = self._params
        domains = document_domains(batch, params)
        tokens = token_counts(batch)
        ineligible = eligibility(batch, domains, params)
        ids = batch.column(schema.ID).to_pylist()
        rates, thresholds = plan["rates"], plan["thresholds"]
        take: list[int] = []
        copies: list[int] = []
        reasons: list[str | None] = []
        details: list[str | None] = []
        for row, domain in enumerate(domains):
            rate = rates.get(domain, 0.0)
            count = 0
            if ineligible[row] is None:
                count = math.floor(rate)
                threshold = thresholds.get(domain)
                if threshold is not None and hash64(params.seed, ids[row], count) < threshold:
                    count += 1
            if count == 0:
                take.append(row)
                copies.append(0)
                if ineligible[row] is not None:
                    reasons.append("below_min_quality")
                    details.append(ineligible[row])
                elif rate == 0:
                    reasons.append("mix_excluded")
                    details.append(f"{domain} has no share in the mixture")
                else:
                    reasons.append("mix_downsampled")
                    details.append(f"{domain} sampled at rate {rate:.4f}")
                continue
            self.stats.incr(f"documents_out.{domain}", count)
            self.stats.incr(f"tokens_out.{domain}", count * int(tokens[row]))
            if count > 1:
                self.stats.incr("repeated_copies", count - 1)
            for copy in range(count):
                take.append(row)
                copies.append(copy)
                reasons.append(None)
                details.append(None)
        out = batch.take(pa.array(take, pa.int64()))
        new_ids = [
            ids[row] if copy == 0 else f"{ids[row]}#{copy}" for row, copy in zip(take, copies, strict=True)
        ]
        out = schema.set_column(out, batch.schema.field(schema.ID), new_ids)
        out = schema.set_column(out, MIX_COPY_FIELD, np.asarray(copies, dtype=np.int32))
        return schema.mark_drops(out, reasons, details)
