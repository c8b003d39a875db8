"""How two runs' mixtures differ, per domain: tokens and shares before (one run) and after (the other).

Both sides come from the runs' `report/mixture.json`, the single source of a run's mixture numbers. The k-th
`mix` stage of one run is compared with the k-th of the other (recipes usually have one). Domains present in
only one run count as zero tokens and zero share in the other, so a domain that appears or vanishes shows up
with its whole size as the delta.
"""

from __future__ import annotations

from typing import Any


class NoMixture(ValueError):
    """A run's report has no mixture to compare."""


def _domains(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["domain"]: d for d in section.get("domains", [])}


def mixture_diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per pair of mix stages: totals and per-domain tokens, shares and deltas."""
    if not before.get("mixtures") or not after.get("mixtures"):
        side = "first" if not before.get("mixtures") else "second"
        raise NoMixture(f"the {side} run's report has no mixture (its recipe has no `mix` stage)")
    sections = []
    for old, new in zip(before["mixtures"], after["mixtures"], strict=False):
        old_domains, new_domains = _domains(old), _domains(new)
        names = list(new_domains) + [name for name in old_domains if name not in new_domains]
        rows = []
        for name in names:
            a, b = old_domains.get(name, {}), new_domains.get(name, {})
            tokens_before, tokens_after = int(a.get("achieved_tokens", 0)), int(b.get("achieved_tokens", 0))
            share_before, share_after = float(a.get("share_after", 0.0)), float(b.get("share_after", 0.0))
            rows.append(
                {
                    "domain": name,
                    "tokens_before": tokens_before,
                    "tokens_after": tokens_after,
                    "delta_tokens": tokens_after - tokens_before,
                    "share_before": share_before,
                    "share_after": share_after,
                    "delta_share": share_after - share_before,
                }
            )
        total_before, total_after = int(old.get("achieved_tokens", 0)), int(new.get("achieved_tokens", 0))
        sections.append(
            {
                "stage_before": old.get("stage"),
                "stage_after": new.get("stage"),
                "tokens_before": total_before,
                "tokens_after": total_after,
                "delta_tokens": total_after - total_before,
                "domains": rows,
            }
        )
    return sections
