"""A run's files as the service hands them out: the manifest's listing, single files, the report.

Only regular files inside the run directory are ever served. The requested path is joined to the run
directory and resolved (which follows symlinks and removes `..`), and the result must still lie inside the
resolved run directory; an absolute path, a `..` escape or a symlink pointing out all fail that test and look
exactly like a missing file (404), so the answer says nothing about what exists outside.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class ArtifactMissing(LookupError):
    """The run has no such file (or the path is not allowed, which looks the same)."""


def safe_file(base: str | Path, relative: str) -> Path:
    """The regular file `relative` inside `base`; ArtifactMissing for anything else."""
    root = Path(base).resolve()
    if not relative or "\x00" in relative or Path(relative).is_absolute():
        raise ArtifactMissing(relative)
    try:
        target = (root / relative).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise ArtifactMissing(relative) from None
    if not target.is_relative_to(root) or not target.is_file():
        raise ArtifactMissing(relative)
    return target


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """The run's manifest.json (present only once the run is complete)."""
    path = Path(run_dir) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactMissing("manifest.json") from None


def artifact_list(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every output file of a finished run with its bytes and sha256, as the manifest records them."""
    files = read_manifest(run_dir).get("files", [])
    return [{"path": f["path"], "bytes": int(f["bytes"]), "sha256": f["sha256"]} for f in files]


def read_mixture(run_dir: str | Path) -> dict[str, Any]:
    """The run's report data (report/mixture.json)."""
    path = Path(run_dir) / "report" / "mixture.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactMissing("report/mixture.json") from None
