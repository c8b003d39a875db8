"""What the recipe page shows: each version's YAML, how it differs from the version before, its runs, and
the schedules that use the recipe (a recipe a schedule uses cannot be deleted)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from corpusmill.service.store import RecipeVersion, Run, Store

MAX_RUNS = 500


@dataclass
class VersionView:
    """One version with its unified diff against the previous version (None for the first)."""

    recipe: RecipeVersion
    diff: str | None
    runs: list[Run] = field(default_factory=list)


def yaml_diff(before: RecipeVersion, after: RecipeVersion) -> str:
    """The unified diff of two versions' posted YAML (what their authors wrote, comments included)."""
    lines = difflib.unified_diff(
        before.yaml.splitlines(keepends=True),
        after.yaml.splitlines(keepends=True),
        fromfile=f"v{before.version}",
        tofile=f"v{after.version}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def recipe_versions(store: Store, name: str) -> list[VersionView]:
    """Every version, newest first, each with its diff from the one before and its runs (newest first)."""
    versions = store.recipe_versions(name)
    runs = store.runs(recipe=name, limit=MAX_RUNS)
    views = []
    for index, version in enumerate(versions):
        diff = yaml_diff(versions[index - 1], version) if index else None
        views.append(VersionView(version, diff, [r for r in runs if r.version == version.version]))
    return views[::-1]


def schedules_of(store: Store, name: str) -> list[Any]:
    """The schedules that rebuild this recipe."""
    return [s for s in store.schedules() if s.recipe == name]
