"""Registering recipes: the CLI's own validation, plus what only a service has to insist on.

A posted recipe goes through `parse_recipe`, the pydantic model `corpusmill validate` uses, so the service
accepts exactly what the CLI accepts and reports the same problems. A job runs on some Ray node, in a working
directory the poster does not know, so input paths must be absolute or URIs. A version is identified by the
whole validated model (description included): re-posting the same recipe with other comments or spacing is
not a new version, and any real change is. Jobs run the normalised YAML (stage versions resolved at
registration), so a later stage version never changes what a registered version runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import yaml

from corpusmill.core.recipe import Recipe, RecipeError, parse_recipe
from corpusmill.service.store import RecipeVersion, Store

SOURCE = "<posted recipe>"


def validate_recipe(text: str) -> Recipe:
    """The recipe in `text`, validated as the CLI does; RecipeError lists every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(SOURCE, [f"not valid YAML: {exc}"]) from None
    recipe = parse_recipe(data, source=SOURCE)
    relative = [
        f"input.paths[{i}]: {path!r} is a relative path, which has no meaning on the Ray node that runs the job; "
        "give an absolute path (on storage every node sees) or a URI such as s3://..."
        for i, path in enumerate(recipe.input.paths)
        if "://" not in path and not Path(path).is_absolute()
    ]
    if relative:
        raise RecipeError(SOURCE, relative)
    return recipe


def recipe_digest(recipe: Recipe) -> str:
    """What makes two postings the same version: the validated model, field by field."""
    canonical = json.dumps(recipe.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def register_recipe(store: Store, text: str, now: dt.datetime) -> tuple[RecipeVersion, bool]:
    """Validate and store a recipe; a new version only when it differs from the newest one."""
    recipe = validate_recipe(text)
    return store.add_recipe(
        recipe.name, text, recipe.to_yaml(), recipe.fingerprint(), recipe_digest(recipe), now
    )
