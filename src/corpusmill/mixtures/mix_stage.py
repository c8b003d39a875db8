"""The `mix` stage: sample every domain at its planned rate, deterministically and within one document of plan.

A rate `w` keeps `floor(w)` copies of each eligible document plus one more when `u < t`, where
`u = hash(seed, id, copy)` for the copy in question and `t` is the domain's threshold. Drawing `u < frac(w)`
per document would be right only on average: a domain of 200 documents sampled at 0.5 would land several
documents off. So the threshold is fitted to the data instead, in accounting rounds over light columns:

1. documents, tokens, bytes and quality per domain -> the plan (rates per domain, `plan.py`);
2. and on, for each domain with a fractional rate: documents and tokens per slice of a window of the `u`
   range that holds the point where the cumulative tokens cross `frac(w) * eligible tokens`, each round
   narrowing the window, until it holds few enough documents to fit the exact threshold (`threshold.py`).

No summary holds a document id, and none grows with the corpus. Every decision depends only on the seed,
the document id and the merged counts, so the output is the same on every engine and for every partitioning.
Copy `c > 0` of a document gets the id `<id>#<c>`.

Version 2 fits the threshold by narrowing windows instead of gathering the ids of every document in the
crossing 1/1024 slice on the driver, and draws with `hash64`'s length-prefixed key encoding; version 1's
draws cannot be reproduced any more, so it is not kept.
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
from corpusmill.mixtures.threshold import Counts, Fit, Window, add_counts, narrow, start

MIX_COPY_FIELD = pa.field("mix_copy", pa.int32())


def _fraction(rate: float) -> float:
    return rate - math.floor(rate)


def _recorded(plan: dict[str, Any], steps: dict[str, Window | Fit]) -> tuple[dict[str, Any], bool]:
    """The plan with settled domains' thresholds added and the rest's windows for the next round; True once
    every domain has settled (the final plan then has no `windows`)."""
    thresholds, fitted = dict(plan["thresholds"]), dict(plan["fitted_tokens"])
    windows = {}
    for domain, step in sorted(steps.items()):
        if isinstance(step, Fit):
            thresholds[domain], fitted[domain] = step.threshold, step.tokens
        else:
            windows[domain] = step.to_dict()
    plan = {
        **plan,
        "thresholds": dict(sorted(thresholds.items())),
        "fitted_tokens": dict(sorted(fitted.items())),
    }
    plan.pop("windows", None)
    if windows:
        plan["windows"] = windows
    return plan, not windows


@register
class MixStage(PlanStage):
    """Down- or up-samples each domain to the planned rate."""

    name = "mix"
    version = 2
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
        """Round 1: per-domain counts. Later rounds: where the fractional copies' draws fall in each window."""
        if plan is None:
            return account_batch(batch, self._params)
        return {"domains": self._window_counts(batch, plan)}

    def _window_counts(self, batch: pa.RecordBatch, plan: dict[str, Any]) -> dict[str, Counts]:
        """Documents and tokens per key of each open window, for the eligible documents drawn in it."""
        windows = {domain: Window.from_dict(w) for domain, w in plan["windows"].items()}
        if not windows:
            return {}
        domains = document_domains(batch, self._params)
        tokens = token_counts(batch)
        ineligible = eligibility(batch, domains, self._params)
        ids = batch.column(schema.ID).to_pylist()
        copies = {domain: math.floor(plan["rates"][domain]) for domain in windows}
        out: dict[str, Counts] = {}
        for row, domain in enumerate(domains):
            window = windows.get(domain)
            if window is None or ineligible[row] is not None:
                continue
            key = window.key(hash64(self._params.seed, ids[row], copies[domain]))
            if key is not None:
                add_counts(out.setdefault(domain, {}), key, int(tokens[row]))
        return out

    def merge(self, left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
        """Summaries add up (counts per domain, per key)."""
        return merge_summaries(left, right)

    def plan(self, account: dict[str, Any], previous: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
        """Rates and the first windows after round 1; narrower windows, then thresholds, after each later one."""
        if previous is None:
            return self._first_plan(account)
        found = account.get("domains", {})
        steps = {
            domain: narrow(Window.from_dict(window), found.get(domain, {}), previous["targets"][domain])
            for domain, window in previous["windows"].items()
        }
        return _recorded({**previous, "round": previous["round"] + 1}, steps)

    def _first_plan(self, account: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The mixture's rates, and where each fractional domain's threshold is looked for first."""
        mixture = plan_mixture(domain_counts(account), self._params)
        rates = mixture.rates()
        rows = {d.domain: d for d in mixture.domains}
        fractional = sorted(d for d, r in rates.items() if _fraction(r) > 0 and rows[d].eligible_tokens > 0)
        targets = {d: _fraction(rates[d]) * rows[d].eligible_tokens for d in fractional}
        steps = {
            d: start(rows[d].eligible_documents, rows[d].eligible_tokens, targets[d]) for d in fractional
        }
        plan = {
            "round": 2,
            "seed": self._params.seed,
            "rates": rates,
            "fractional": fractional,
            "targets": targets,
            "thresholds": {},
            "fitted_tokens": {},
            "mixture": mixture.to_dict(),
            "accounting": account,
        }
        return _recorded(plan, steps)

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
