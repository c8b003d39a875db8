"""Live progress of a run, read from the `.done.json` markers its steps leave under `stages/`.

The runner writes one marker per finished part of a step, atomically, with that part's per-stage counters; a
marker never changes once written, so each is parsed once and cached by path. Progress is therefore exactly
what has been committed to the run directory: documents in and out per stage, summed over the parts done,
and how many parts each step has finished. The steps the recipe will run are listed from the recipe itself,
so the page shows steps that have not started yet too. Markers in sub-folders (dedup keys, mix accounting
rounds, shard gathers) are internal rounds and are not counted. A run directory on object storage is listed
with one recursive listing of its `stages/` prefix per snapshot, rather than a request per folder.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import yaml
from upath import UPath

from corpusmill.core.location import RunPath
from corpusmill.core.recipe import RecipeError, parse_recipe
from corpusmill.service.artifacts import run_location

logger = logging.getLogger(__name__)

_Counts = dict[str, dict[str, int]]


def planned_steps(normalized_recipe: str) -> list[dict[str, Any]]:
    """The steps a recipe runs, in order, with the labels of their stages (empty if it no longer parses)."""
    from corpusmill.pipelines.graph import plan_steps

    try:
        recipe = parse_recipe(yaml.safe_load(normalized_recipe))
    except (RecipeError, yaml.YAMLError):
        return []
    return [{"step": s.dirname, "stages": [p.label for p in s.stages]} for s in plan_steps(recipe)]


def _step_markers(stages_dir: RunPath) -> dict[str, list[RunPath]]:
    """Each step folder under `stages/`, with the markers directly in it, sorted."""
    if isinstance(stages_dir, Path):
        if not stages_dir.is_dir():
            return {}
        return {p.name: sorted(p.glob("*.done.json")) for p in stages_dir.iterdir() if p.is_dir()}
    root = stages_dir.path.rstrip("/") + "/"
    try:
        keys = stages_dir.fs.find(root)
    except FileNotFoundError:
        return {}
    steps: dict[str, list[RunPath]] = {}
    for key in sorted(keys):
        if not key.startswith(root) or "/" not in key[len(root) :]:
            continue  # a stray object beside the step folders
        step, rest = key[len(root) :].split("/", 1)
        markers = steps.setdefault(step, [])
        if "/" not in rest and rest.endswith(".done.json"):
            markers.append(stages_dir / step / rest)
    return steps


def _marker_counts(path: RunPath) -> _Counts:
    data = json.loads(path.read_text(encoding="utf-8"))
    counts: _Counts = {}
    for label, stats in data.get("stats", {}).items():
        counters = stats.get("counters", {})
        counts[label] = {key: int(counters.get(key, 0)) for key in ("docs_in", "docs_out")}
    return counts


class ProgressReader:
    """Per-run progress snapshots; keeps parsed markers so each file is read once."""

    def __init__(self) -> None:
        self._cache: dict[str, _Counts] = {}

    def snapshot(
        self, run_dir: str | os.PathLike[str] | UPath, planned: list[dict[str, Any]], complete: bool = False
    ) -> dict[str, Any]:
        """`{"steps": [{"step", "state", "parts_done", "stages": [{"label", "docs_in", "docs_out"}]}]}`.

        A step is `done` once a later step has started (or the run is complete), `started` while it is the
        latest, and `waiting` before it starts.
        """
        by_step = _step_markers(run_location(run_dir) / "stages")
        found = sorted(by_step)
        names = [s["step"] for s in planned] + [
            name for name in found if name not in {s["step"] for s in planned}
        ]
        steps = []
        last_started = max((i for i, name in enumerate(names) if name in found), default=-1)
        for index, name in enumerate(names):
            totals: dict[str, dict[str, int]] = {}
            markers = by_step.get(name, [])
            for marker in markers:
                for label, counts in self._read(marker).items():
                    entry = totals.setdefault(label, {"docs_in": 0, "docs_out": 0})
                    entry["docs_in"] += counts["docs_in"]
                    entry["docs_out"] += counts["docs_out"]
            steps.append(
                {
                    "step": name,
                    "state": "waiting"
                    if name not in found
                    else ("done" if complete or index < last_started else "started"),
                    "parts_done": len(markers),
                    "stages": [{"label": label, **totals[label]} for label in sorted(totals)],
                }
            )
        return {"steps": steps}

    def _read(self, marker: RunPath) -> _Counts:
        key = str(marker)
        if key not in self._cache:
            try:
                self._cache[key] = _marker_counts(marker)
            except (OSError, ValueError) as exc:  # written atomically, so this is a foreign or damaged file
                logger.warning("%s: cannot read this progress marker (%s); it is left out", marker, exc)
                return {}
        return self._cache[key]

    def forget(self, run_dir: str | os.PathLike[str] | UPath) -> None:
        """Drop the cache of a finished run."""
        prefix = str(run_location(run_dir)) + "/"
        for key in [k for k in self._cache if k.startswith(prefix)]:
            del self._cache[key]
