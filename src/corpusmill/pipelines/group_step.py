"""The driver's side of a group step: which bucketed phases to run, and when components have converged.

The driver never reads keys, edges or decisions; it schedules the tasks of `group_tasks` and sums the counts
their markers report (edges written, nodes changed). Verification phases run only when the stage produced
side data and some documents share a key; component steps only when some edge was confirmed. Every phase
leaves markers, so a rerun replays the same sequence of decisions from them without redoing any work.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from corpusmill.core.atomic import write_json
from corpusmill.pipelines.borrow import Borrower
from corpusmill.pipelines.graph import PlannedStage
from corpusmill.pipelines.group_tasks import (
    AttachTask,
    BucketLayout,
    CandidatesTask,
    ConfirmTask,
    KeysTask,
    StarTask,
    decisions_phase,
)
from corpusmill.pipelines.parts import PartSource, PartSpec

MapPhase = Callable[[str, Any, list[PartSpec], float], list[dict[str, Any]]]
# Alternating star steps converge in O(log^2 n) rounds; this bound is far beyond any real component.
MAX_STAR_STEPS = 400
SUMMARY = "duplicates.json"


def bucket_count(parts: list[PartSpec]) -> int:
    """One bucket per part: a bucket task then holds about as many keys as one part produced."""
    return max(1, len(parts))


def resolve_duplicates(
    map_phase: MapPhase,
    planned: PlannedStage,
    source: PartSource,
    parts: list[PartSpec],
    step_dir: Path,
    cpus: float,
    index_dir: Path | None = None,
    borrower: Borrower | None = None,
) -> tuple[BucketLayout, str | None]:
    """Run the keys, candidate, verification and component phases; returns where the decisions are.

    The keys phase writes the step's dedup index into `index_dir`, taking unchanged parts' keys over from
    the base run through `borrower`; every later phase runs over all keys, old and new.
    """
    layout = BucketLayout(step_dir, bucket_count(parts), tuple(part.name for part in parts), index_dir)
    label = step_dir.name
    keys = map_phase(f"{label} keys", KeysTask(planned, source, layout, borrower), parts, cpus)
    side_parts = tuple(sorted(result["part"] for result in keys if result.get("side")))
    verify = bool(side_parts)
    buckets = layout.bucket_parts()
    candidates = map_phase(f"{label} candidates", CandidatesTask(layout, verify), buckets, 1.0)
    edges = candidate_edges = sum(result["rows"] for result in candidates)
    if verify and edges:
        map_phase(f"{label} attach", AttachTask(layout, side_parts), buckets, 1.0)
        confirmed = map_phase(f"{label} confirm", ConfirmTask(planned, layout, side_parts), buckets, cpus)
        edges = sum(result["rows"] for result in confirmed)
    decisions, steps, large_changed = None, 0, -1
    while edges:
        steps += 1
        if steps > MAX_STAR_STEPS:  # pragma: no cover - would mean a bug in the star steps
            raise RuntimeError(f"{label}: connected components did not converge in {MAX_STAR_STEPS} steps")
        results = map_phase(f"{label} components {steps}", StarTask(layout, steps), buckets, 1.0)
        changed = sum(result["changed"] for result in results)
        if steps % 2 == 1:
            large_changed = changed
        elif changed == 0 and large_changed == 0:
            decisions = decisions_phase(steps)
            break
    write_json(
        step_dir / SUMMARY,
        {
            "buckets": layout.buckets,
            "candidate_edges": candidate_edges,
            "confirmed_edges": edges,
            "star_steps": steps,
            "decisions": decisions,
        },
    )
    return layout, decisions
