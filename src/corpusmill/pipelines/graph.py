"""From a recipe's ordered stages to the steps an engine executes.

Consecutive map stages fuse into one step (a part is read once, passed through all of them batch by batch,
and written once); each group stage (deduplication), plan stage (mixing) and sink stage is a step of its own,
because it needs the whole dataset or writes outside the document stream. Every step's output lives under
`stages/<NN>-<name>/`, which is what makes a rerun resume instead of redo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from corpusmill.core.recipe import Recipe, StageEntry
from corpusmill.core.stage import GroupStage, MapStage, PlanStage, SinkStage

StepKind = Literal["map", "group", "plan", "sink"]


@dataclass(frozen=True)
class PlannedStage:
    """A stage with its 1-based position in the recipe (positions name rejected files and stats)."""

    position: int
    entry: StageEntry

    @property
    def label(self) -> str:
        """`03-heuristics_v1`: unique within a run and sorted in recipe order."""
        return f"{self.position:02d}-{self.entry.stage}"


@dataclass(frozen=True)
class Step:
    """One unit of execution over all parts."""

    index: int
    kind: StepKind
    stages: tuple[PlannedStage, ...]

    @property
    def dirname(self) -> str:
        """Directory name under `stages/`, e.g. `01-extract_v1+langid_v1`; a step of no stages is the takedown
        step `00-takedown` that a run with a takedown list puts before a first step that cannot drop."""
        if not self.stages:
            return f"{self.index:02d}-takedown"
        return f"{self.index:02d}-" + "+".join(stage.entry.stage for stage in self.stages)


def _kind_of(entry: StageEntry) -> StepKind:
    cls = entry.stage_class()
    if issubclass(cls, MapStage):
        return "map"
    if issubclass(cls, GroupStage):
        return "group"
    if issubclass(cls, PlanStage):
        return "plan"
    if issubclass(cls, SinkStage):
        return "sink"
    raise TypeError(f"stage {entry.stage} is neither a map, group, plan nor sink stage")


def plan_steps(recipe: Recipe) -> list[Step]:
    """Fuse runs of map stages; give group and sink stages a step each."""
    steps: list[Step] = []
    pending: list[PlannedStage] = []

    def flush() -> None:
        if pending:
            steps.append(Step(len(steps) + 1, "map", tuple(pending)))
            pending.clear()

    for position, entry in enumerate(recipe.stages, start=1):
        kind = _kind_of(entry)
        planned = PlannedStage(position, entry)
        if kind == "map":
            pending.append(planned)
            continue
        flush()
        steps.append(Step(len(steps) + 1, kind, (planned,)))
    flush()
    return steps
