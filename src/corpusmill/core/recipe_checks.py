"""Checks of a parsed recipe as a whole: stage order, repeated stages, and labels no stage writes.

Each stage's parameters can be valid on their own while the recipe cannot be right: a stage after the sink
changes `documents/` but not the shards, so `verify` fails; deduplication after a mixture deletes every
up-sampled copy; `languages: [english]` or a misspelt domain selects nothing and the run silently keeps or
drops everything. These checks use the stage kinds (`SinkStage`, `GroupStage`, `PlanStage`) and what stages
declare (`column_labels`, `label_references`), not stage names, so a new stage is checked without editing
this file. Every message names the stage by index and versioned name, and says what to change.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from corpusmill.core.labels import LabelReference
from corpusmill.core.stage import GroupStage, PlanStage, SinkStage, Stage

if TYPE_CHECKING:
    from corpusmill.core.recipe import Recipe


def check_recipe(recipe: Recipe) -> list[str]:
    """Every problem the checks below find, in recipe order within each check."""
    stages = [entry.build() for entry in recipe.stages]
    return [
        *check_after_sink(stages),
        *check_dedup_after_plan(stages),
        *check_repeated_stages(stages),
        *check_labels(stages),
    ]


def _label(index: int, stage: Stage) -> str:
    return f"stages[{index}] ({stage.versioned_name()})"


def check_after_sink(stages: list[Stage]) -> list[str]:
    """A sink writes what reaches it; a later stage would change `documents/` but not the shards."""
    sink = next((i for i, stage in enumerate(stages) if isinstance(stage, SinkStage)), None)
    if sink is None:
        return []
    return [
        f"{_label(index, stage)}: comes after the sink {_label(sink, stages[sink])}, so the shards would not "
        f"hold what documents/ holds and `verify` would fail; move '{stage.name}' before "
        f"'{stages[sink].name}' or remove it"
        for index, stage in enumerate(stages[sink + 1 :], start=sink + 1)
    ]


def check_dedup_after_plan(stages: list[Stage]) -> list[str]:
    """A plan stage (a mixture) may repeat documents, and deduplication would delete every repeat."""
    plan = next((i for i, stage in enumerate(stages) if isinstance(stage, PlanStage)), None)
    if plan is None:
        return []
    return [
        f"{_label(index, stage)}: deduplicates after {_label(plan, stages[plan])}, whose up-sampled copies "
        f"are exact duplicates it would all remove; move '{stage.name}' before '{stages[plan].name}'"
        for index, stage in enumerate(stages[plan + 1 :], start=plan + 1)
        if isinstance(stage, GroupStage)
    ]


def check_repeated_stages(stages: list[Stage]) -> list[str]:
    """A stage named twice (in any versions) is one stage's parameters split over two entries."""
    positions: dict[str, list[int]] = defaultdict(list)
    for index, stage in enumerate(stages):
        positions[stage.name].append(index)
    problems = []
    for name, where in positions.items():
        listed = ", ".join(f"stages[{i}]" for i in where)
        problems.extend(
            f"{_label(index, stages[index])}: '{name}' is listed more than once ({listed}); merge the "
            "parameters into one entry"
            for index in where[1:]
        )
    return problems


def check_labels(stages: list[Stage]) -> list[str]:
    """Parameters must name values that the stage writing the column can write (`languages: [english]`)."""
    problems = []
    for index, stage in enumerate(stages):
        for reference in stage.params.label_references():
            problems.extend(_check_reference(stages, index, reference))
    return problems


def _writer(stages: list[Stage], index: int, column: str) -> int | None:
    """The last stage up to `index` (itself included) that writes `column`; None when only the reader does."""
    for j in range(index, -1, -1):
        if any(field.name == column for field in stages[j].output_fields()):
            return j
    return None


def _check_reference(stages: list[Stage], index: int, reference: LabelReference) -> list[str]:
    writer = _writer(stages, index, reference.column)
    labels = stages[writer].column_labels.get(reference.column) if writer is not None else None
    if writer is None or labels is None:
        return []  # the reader's or an open-ended column: nothing to check against
    source = (
        "" if writer == index else f" (what {_label(writer, stages[writer])} writes to '{reference.column}')"
    )
    problems = []
    for value in reference.values:
        if value in labels.labels:
            continue
        suggestion = labels.suggest(value)
        fix = f"did you mean '{suggestion}'?" if suggestion else labels.describe()
        problems.append(
            f"{_label(index, stages[index])}.{reference.field}: {value!r} is not a {labels.what}{source}, so "
            f"it matches no document; {fix}"
        )
    return problems
