"""The driver's side of a group step: which bucketed phases to run, and when components have converged.

The driver never reads keys, edges or decisions; it schedules the tasks of `group_tasks` and sums the counts
their markers report (edges written, nodes changed). Verification phases run only when the stage produced
side data and some documents share a key; component steps only when some edge was confirmed. Every phase
leaves markers, so a rerun replays the same sequence of decisions from them without redoing any work.

After the keys phase, a step with few keys (`SERIAL_MAX_KEYS`) runs its remaining phases one after another
inside a single task (`ResolveInOneTask`) instead of as separate engine phases: the same tasks over the same
buckets, writing the same files and markers, so the decisions and the summary are identical either way. A
phase costs an engine a fixed amount however little it does (0.07-0.1 CPU-seconds on Beam, measured), and a
small step has seven or more of them (candidates, attach, confirm, at least four star steps) that each take a
few milliseconds of work; a large step keeps its phases, whose buckets then run in parallel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from corpusmill.core.atomic import write_json
from corpusmill.core.stats import Stats, merge_labelled
from corpusmill.pipelines.graph import PlannedStage
from corpusmill.pipelines.group_tasks import (
    BUCKET,
    AttachTask,
    BucketLayout,
    CandidatesTask,
    ConfirmTask,
    StarTask,
    decisions_phase,
)
from corpusmill.pipelines.parts import RESUMED, PartSpec, not_computed

MapPhase = Callable[[str, Any, list[PartSpec], float], list[dict[str, Any]]]
# Alternating star steps converge in O(log^2 n) rounds; this bound is far beyond any real component.
MAX_STAR_STEPS = 400
SUMMARY = "duplicates.json"
# A step with at most this many keys (rows of its keys phase; `dedup_minhash` gives a document one per band)
# resolves in one task. Its phases then take well under a second in all, far less than a phase costs an
# engine on a cluster, and their buckets would gain little from running in parallel.
SERIAL_MAX_KEYS = 100_000
# The one work item of `ResolveInOneTask`.
RESOLVE_PART = PartSpec("resolve", (), BUCKET)


def bucket_count(parts: list[PartSpec]) -> int:
    """One bucket per part: a bucket task then holds about as many keys as one part produced."""
    return max(1, len(parts))


def group_layout(step_dir: Path, parts: list[PartSpec], index_dir: Path | None = None) -> BucketLayout:
    """Where a group step's keys phase writes, with a bucket per part it may see (`parts`, counted before the
    phases queued ahead of it run: a part they leave empty writes no keys). The layout names no parts: those
    are the keys phase's, once it has run (`resolve_duplicates`)."""
    return BucketLayout(step_dir, bucket_count(parts), (), index_dir)


def resolve_duplicates(
    map_phase: MapPhase,
    planned: PlannedStage,
    layout: BucketLayout,
    keys: list[dict[str, Any]],
    cpus: float,
) -> tuple[BucketLayout, str | None]:
    """After the keys phase (`keys`, its results sorted by part), run the candidate, verification and
    component phases; returns the layout naming the parts that wrote keys, and where the decisions are.

    The keys phase wrote the step's dedup index (taking unchanged parts' keys over from a base run); every
    later phase runs over all keys, old and new. Those later phases run inside one task when the keys number
    at most `SERIAL_MAX_KEYS`.
    """
    layout = replace(layout, part_names=tuple(result["part"] for result in keys))
    label = layout.step_dir.name
    side_parts = tuple(sorted(result["part"] for result in keys if result.get("side")))
    resolution = Resolution(planned, layout, side_parts, cpus)
    if sum(result["rows"] for result in keys) <= SERIAL_MAX_KEYS:
        (result,) = map_phase(f"{label} resolve", ResolveInOneTask(resolution), [RESOLVE_PART], cpus)
        summary = result["summary"]
    else:
        summary = resolution.run(map_phase)
    write_json(layout.step_dir / SUMMARY, summary)
    return layout, summary["decisions"]


@dataclass(frozen=True)
class Resolution:
    """The phases after `keys`: candidates, verification, star steps until the components converge."""

    planned: PlannedStage
    layout: BucketLayout
    side_parts: tuple[str, ...]
    cpus: float

    def run(self, map_phase: MapPhase) -> dict[str, Any]:
        """Run the phases through `map_phase`; returns the step's summary (`SUMMARY`)."""
        layout, label = self.layout, self.layout.step_dir.name
        verify = bool(self.side_parts)
        buckets = layout.bucket_parts()
        candidates = map_phase(f"{label} candidates", CandidatesTask(layout, verify), buckets, 1.0)
        edges = candidate_edges = sum(result["rows"] for result in candidates)
        if verify and edges:
            map_phase(f"{label} attach", AttachTask(layout, self.side_parts), buckets, 1.0)
            confirm = ConfirmTask(self.planned, layout, self.side_parts)
            confirmed = map_phase(f"{label} confirm", confirm, buckets, self.cpus)
            edges = sum(result["rows"] for result in confirmed)
        decisions, steps, large_changed = None, 0, -1
        while edges:
            steps += 1
            if steps > MAX_STAR_STEPS:  # pragma: no cover - would mean a bug in the star steps
                raise RuntimeError(
                    f"{label}: connected components did not converge in {MAX_STAR_STEPS} steps"
                )
            results = map_phase(f"{label} components {steps}", StarTask(layout, steps), buckets, 1.0)
            changed = sum(result["changed"] for result in results)
            if steps % 2 == 1:
                large_changed = changed
            elif changed == 0 and large_changed == 0:
                decisions = decisions_phase(steps)
                break
        return {
            "buckets": layout.buckets,
            "candidate_edges": candidate_edges,
            "confirmed_edges": edges,
            "star_steps": steps,
            "decisions": decisions,
        }


@dataclass(frozen=True)
class ResolveInOneTask:
    """A part task that runs a `Resolution` in the worker that is given its one part (`RESOLVE_PART`).

    Each phase's task runs over every bucket in turn, so the task holds one bucket's rows at a time, as a
    bucket task does. Its result carries the summary and the phases' stats merged; it counts as resumed when
    every bucket's marker was there already. Read back by an engine (`markers_only`), it replays the phases
    from their markers, which gives the same summary without any work.
    """

    resolution: Resolution

    def setup(self) -> None:
        """Nothing to load: the phases' tasks set themselves up when they first have work."""

    def close(self) -> None:
        """Nothing held between parts: each phase's task is closed when its buckets are done."""

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        """Run every phase here; the result has the summary, the phases' stats, and whether all were resumed."""
        results: list[dict[str, Any]] = []

        def run_here(
            _description: str, task: Any, items: list[PartSpec], _num_cpus: float
        ) -> list[dict[str, Any]]:
            try:
                phase = [task(item) for item in items]
            finally:
                task.close()
            results.extend(phase)
            return phase

        summary = self.resolution.run(run_here)
        stats: dict[str, Stats] = {}
        for result in results:
            merge_labelled(stats, result["stats"])
        outcome: dict[str, Any] = {
            "part": part.name,
            "identity": part.identity,
            "output": None,
            "rows": summary["confirmed_edges"],
            "stats": {label: value.to_dict() for label, value in sorted(stats.items())},
            "summary": summary,
        }
        if results and all(not_computed(result) for result in results):
            outcome[RESUMED] = True
        return outcome
