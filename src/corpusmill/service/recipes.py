"""Registering recipes: the CLI's own validation, plus what only a service has to insist on.

A posted recipe goes through `parse_recipe`, the pydantic model `corpusmill validate` uses, so the service
accepts exactly what the CLI accepts and reports the same problems. A job runs on some Ray node, in a working
directory the poster does not know, so input paths, and every path a stage names (its parameters marked
`NAMES_PATH`: models, lists), must be absolute or URIs. When the service runs its jobs on its own local Ray
head, that head shares the service's disk, so an absolute local path that does not exist here is refused too;
a cluster given by address may have paths this machine lacks, so there they are accepted. A version is
identified by the whole validated model (description included): re-posting the same recipe with other
comments or spacing is not a new version, and any real change is. Jobs run the normalised YAML (stage
versions resolved at registration), so a later stage version never changes what a registered version runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import yaml

from corpusmill.core.recipe import Recipe, RecipeError, parse_recipe
from corpusmill.core.stage import path_params
from corpusmill.service.store import RecipeVersion, Store

SOURCE = "<posted recipe>"


def stage_paths(recipe: Recipe) -> list[tuple[str, str]]:
    """(where, path) for every path a stage names, e.g. ("stages[0] (quality_v1).model", "/models/q")."""
    found = []
    for index, entry in enumerate(recipe.stages):
        for name in path_params(entry.stage_class().Params):
            value = entry.params.get(name)
            values = value if isinstance(value, list) else [value]
            for i, path in enumerate(values):
                if isinstance(path, str):
                    suffix = f"[{i}]" if isinstance(value, list) else ""
                    found.append((f"stages[{index}] ({entry.stage}).{name}{suffix}", path))
    return found


def path_problems(recipe: Recipe, local_disk: bool) -> list[str]:
    """Paths the job could not resolve as the service sees them: relative ones always; absolute local ones
    missing on this machine when the jobs run on this machine's disk (`local_disk`)."""
    named = [(f"input.paths[{i}]", p) for i, p in enumerate(recipe.input.paths)] + stage_paths(recipe)
    problems = []
    for where, path in named:
        if "://" in path:
            continue
        if not Path(path).is_absolute():
            problems.append(
                f"{where}: {path!r} is a relative path, which has no meaning on the Ray node that runs the job; "
                "use an absolute path (on storage every node sees) or an object-storage URI such as s3://..."
            )
        elif local_disk and not where.startswith("input.") and not Path(path).exists():
            problems.append(
                f"{where}: {path!r} does not exist on the service's machine, whose local Ray head runs the "
                "job; use an absolute path that exists there or an object-storage URI such as s3://..."
            )
    return problems


def validate_recipe(text: str, local_disk: bool = False) -> Recipe:
    """The recipe in `text`, validated as the CLI does, with its paths checked as the job will resolve them
    (`local_disk`: the jobs run on this machine); RecipeError lists every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(SOURCE, [f"not valid YAML: {exc}"]) from None
    recipe = parse_recipe(data, source=SOURCE)
    problems = path_problems(recipe, local_disk)
    if problems:
        raise RecipeError(SOURCE, problems)
    return recipe


def recipe_digest(recipe: Recipe) -> str:
    """What makes two postings the same version: the validated model, field by field."""
    canonical = json.dumps(recipe.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def register_recipe(
    store: Store, text: str, now: dt.datetime, local_disk: bool = False
) -> tuple[RecipeVersion, bool]:
    """Validate and store a recipe; a new version only when it differs from the newest one."""
    recipe = validate_recipe(text, local_disk)
    return store.add_recipe(
        recipe.name, text, recipe.to_yaml(), recipe.fingerprint(), recipe_digest(recipe), now
    )
