"""Plan a mixture from a run's existing accounting, so trying budgets and weights costs no pipeline run.

A run that went through the `mix` stage keeps its merged first-round accounting in `stats.json` (or, for an
interrupted run, in the accounting markers of the mix step). Planning is a pure function of that accounting
and the mixture spec, so `corpusmill plan` can answer "what would 18T with these weights give?" in a second.
The accounting's eligibility reflects the quality floors of the run it came from; a spec with other floors
gets a warning, since those counts would need a new accounting pass.

The run may be a local directory or a copy on object storage (`s3://bucket/runs/x`): the same files are read.
"""

from __future__ import annotations

import json
import os
from typing import Any

from corpusmill.core.location import RunPath, run_path
from corpusmill.mixtures.accounting import domain_counts, merge_summaries
from corpusmill.mixtures.plan import MixturePlan, plan_mixture
from corpusmill.mixtures.spec import MixParams


def run_accounting(run_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The merged accounting and the mix stage's params of a run, or None when it has none yet."""
    run_dir = run_path(run_dir)
    stats_path = run_dir / "stats.json"
    if stats_path.is_file():
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
        for _, plan in sorted(stats.get("plans", {}).items()):
            if "accounting" in plan:
                return plan["accounting"], _params_of(run_dir)
    for step in sorted((run_dir / "stages").glob("*-mix_v*")):
        markers = sorted((step / "account-1").glob("*.done.json"))
        if not markers:
            continue
        merged: dict[str, Any] | None = None
        for marker in markers:
            account = json.loads(marker.read_text(encoding="utf-8")).get("account")
            if account is not None:
                merged = account if merged is None else merge_summaries(merged, account)
        if merged is not None:
            return merged, _params_of(run_dir)
    return None


def _params_of(run_dir: RunPath) -> dict[str, Any]:
    """The parameters of the run's (first) mix stage, from its normalised recipe."""
    import yaml

    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
    for entry in recipe.get("stages", []):
        if str(entry.get("stage", "")).startswith("mix_v"):
            return {k: v for k, v in entry.items() if k != "stage"}
    return {}


def replan(run_dir: str | os.PathLike[str], params: MixParams) -> MixturePlan:
    """The plan `params` would give on the run's accounting (warning when quality floors differ)."""
    found = run_accounting(run_dir)
    if found is None:
        raise FileNotFoundError(
            f"{run_dir} has no mixture accounting yet; run a recipe with a `mix` stage into it first "
            "(the accounting is written before any document is sampled)"
        )
    accounting, used = found
    plan = plan_mixture(domain_counts(accounting), params)
    if used.get("min_quality", {}) != params.min_quality:
        plan.warnings.append(
            f"the accounting in {run_dir} counted eligible tokens with quality floors {used.get('min_quality', {})}, "
            f"not {params.min_quality}; rerun the recipe for exact eligible counts"
        )
    return plan
