"""Building on a base run: which base it may be, which of its parts carry over, and what the new run added.

A base must be a finished run of the same recipe (the same fingerprint, so every stage's settings are the
same) made by a corpusmill that records its parts (`parts.json`). A part of this run carries over when its
input files are the same as a base part's (the part identity: format and each file's name, size and content
version) and no takedown entry new since the base touches it: an id entry names the part's file, or a URL
entry is among the URLs the part's input held (the base's documents index, `index/documents/`). Every other
part, new input or touched, is computed; everything downstream follows from identities (`borrow.py`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from corpusmill.core.location import run_path
from corpusmill.core.recipe import Recipe
from corpusmill.core.stats import Stats
from corpusmill.io.inputs import InputFile
from corpusmill.pipelines.borrow import PARTS_FILE, Borrower, read_parts
from corpusmill.pipelines.part_source import DOCUMENTS
from corpusmill.pipelines.parts import PartSpec
from corpusmill.pipelines.takedown import TAKEDOWN_LABEL, TAKEDOWN_REASON, Takedown


class BaseRunError(ValueError):
    """The base run given to an incremental run cannot be built on."""


def check_base(base: Path, recipe: Recipe) -> None:
    """Refuse a base that is not a finished run of this recipe, saying what it is instead."""
    manifest = base / "manifest.json"
    if not manifest.exists():
        raise BaseRunError(
            f"--base {base}: not a finished run (it has no manifest.json); finish it first, or build without "
            "--base"
        )
    fingerprint = json.loads(manifest.read_text(encoding="utf-8")).get("fingerprint")
    if fingerprint != recipe.fingerprint():
        raise BaseRunError(
            f"--base {base}: it is a run of another recipe or of other settings (fingerprint {fingerprint}, this "
            f"recipe is {recipe.fingerprint()}); a base must be a run of the same recipe, or build without --base"
        )
    if not (base / PARTS_FILE).exists():
        raise BaseRunError(
            f"--base {base}: it was made by an earlier corpusmill that did not record its parts, so nothing of it "
            "can be taken over; build without --base once, and build on that run"
        )


def incremental_run_dir(recipe: Recipe, inputs: Sequence[InputFile], takedown: Takedown) -> Path:
    """`runs/<name>-<fingerprint>-<digest of the input files and takedown list>` for a run with --base."""
    data = json.dumps([[f.identity() for f in inputs], takedown.digest()], separators=(",", ":"))
    digest = hashlib.sha256(data.encode("utf-8")).hexdigest()[:8]
    return Path("runs") / f"{recipe.name}-{recipe.fingerprint()}-{digest}"


def _touched(base: Path, part: dict[str, Any], new: Takedown) -> bool:
    """Whether a takedown entry new since the base removes a document of this base part."""
    if not new:
        return False
    if new.hits_files(part["names"]):
        return True
    if not new.urls:
        return False
    documents = base / "index" / DOCUMENTS / f"{part['name']}.parquet"
    if not documents.exists():
        return True  # the base does not say which URLs the part held: compute it again, to be safe
    return new.hits_table(pq.read_table(documents))


def plan_borrowing(base: Path, run_dir: Path, parts: Sequence[PartSpec], new: Takedown) -> Borrower:
    """Match this run's parts to the base's by identity, leaving out base parts a new takedown touches."""
    by_identity = {part["identity"]: part for part in read_parts(base)}
    names: dict[str, str] = {}
    for part in parts:
        found = by_identity.get(part.identity)
        if found is not None and not _touched(base, found, new):
            names[part.name] = found["name"]
    return Borrower(str(base), str(run_dir), names)


def describe_increment(
    borrower: Borrower, inputs: Sequence[InputFile], parts: int, stats: dict[str, Stats]
) -> dict[str, Any]:
    """What `stats.json` says about a run built on a base: the base, the input added and removed, the parts
    of unchanged input (taken over, not read again), and the documents taken down."""
    base = run_path(borrower.base_dir)
    recorded = json.loads((base / "run.json").read_text(encoding="utf-8")).get("files", [])
    then = {name for name, _size, _version in recorded}
    now = {file.name for file in inputs}
    fingerprint = json.loads((base / "manifest.json").read_text(encoding="utf-8")).get("fingerprint")
    takedown = stats.get(TAKEDOWN_LABEL)
    return {
        "base": str(base),
        "base_fingerprint": fingerprint,
        "added_files": sorted(now - then),
        "removed_files": sorted(then - now),
        "parts": parts,
        "reused_parts": len(borrower.names),
        "taken_down": takedown.counters.get(f"dropped.{TAKEDOWN_REASON}", 0) if takedown else 0,
    }
