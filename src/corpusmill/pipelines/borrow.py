"""Taking finished parts over from a base run: what makes an incremental rebuild cost what its new data costs.

An incremental run plans its parts over all of its input files exactly as a full run would. A part whose input
files (names, sizes, content versions) equal those of a part of the base run, and which no new takedown entry
touches, is *borrowed*: at every step, when the base's marker for that part was written for the same identity
as this run's input to the step, the base's files are hard-linked (copied across file systems) into this run
under this run's part name, and the base's marker, with its stats, becomes this run's. Identities change with
what a step's output depends on beyond its input (a dedup step's decisions for the part, a mix plan), so a part
whose duplicates changed is recomputed from that step on while its extraction and filtering stay borrowed.
The result is the full run's, file for file: every borrowed file is the file a full run would have written.

Files are linked first and the marker is written last, atomically, so a killed run resumes like any other.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpusmill.core.atomic import write_json
from corpusmill.core.location import copy_file, run_path

logger = logging.getLogger(__name__)

PARTS_FILE = "parts.json"


def derived_identity(identity: str, *extra: str) -> str:
    """The identity of an output that depends on more than its input (decisions, a plan, takedown hits)."""
    if not any(extra):
        return identity
    data = json.dumps([identity, *extra], separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class Borrower:
    """Where the base run is, and which of this run's parts (by name) stem from which of its parts."""

    base_dir: str
    run_dir: str
    names: Mapping[str, str] = field(default_factory=dict)  # this run's part name -> the base's

    def base_of(self, directory: Path) -> Path:
        """The base run's directory at the place `directory` has in this run."""
        relative = run_path(directory).relative_to(run_path(self.run_dir))
        return run_path(self.base_dir) / relative.as_posix()

    def base_name(self, part_name: str) -> str | None:
        """The base part this run's part stems from, or None for a part of new (or changed) input."""
        return self.names.get(part_name)

    def marker(self, directory: Path, part_name: str, identity: str) -> dict[str, Any] | None:
        """The base's marker for the part in the same step directory, if it was written for `identity`."""
        base_name = self.base_name(part_name)
        if base_name is None:
            return None
        path = self.base_of(directory) / f"{base_name}.done.json"
        try:
            done = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return done if done.get("identity", "") == identity else None

    def renamed(self, file_name: str, part_name: str) -> str:
        """A base file's name with the base part's name replaced by this run's (`03-x-part-00002.parquet`)."""
        base_name = self.names[part_name]
        stem, dot, suffix = file_name.rpartition(".")
        if not stem.endswith(base_name):
            raise ValueError(f"{file_name} is not a file of base part {base_name}")
        return f"{stem[: len(stem) - len(base_name)]}{part_name}{dot}{suffix}"

    def read_files(self, part_name: str, folders: Sequence[Path | None]) -> list[tuple[Path, str]]:
        """The files a first step's read wrote for the base part into `folders` (skipped input, the documents
        index), as (folder, base file name) pairs to take over; a file of this run's part that the base part
        has no twin of is removed, so none lingers from an earlier attempt."""
        name = f"{self.names[part_name]}.parquet"
        found = []
        for folder in folders:
            if folder is None:
                continue
            if (self.base_of(folder) / name).exists():
                found.append((folder, name))
            else:
                (run_path(folder) / f"{part_name}.parquet").unlink(missing_ok=True)
        return found

    def take(
        self,
        directory: Path,
        part_name: str,
        identity: str,
        files: Callable[[dict[str, Any]], list[tuple[Path, str]]],
        rewrite: Callable[[dict[str, Any], dict[str, str]], dict[str, Any]],
    ) -> dict[str, Any] | None:
        """Borrow a finished part: link its files, then write its marker into `directory`; None if not borrowable.

        `files(marker)` lists the base files to link as (this run's folder, base file name) pairs; `rewrite`
        turns the base marker into this run's given a map from `str(folder / base file name)` to the path
        the file has in this run.
        """
        base = self.marker(directory, part_name, identity)
        if base is None:
            return None
        linked: dict[str, str] = {}
        for folder, name in files(base):
            source = self.base_of(folder) / name
            if not source.exists():
                logger.warning("base file %s is missing; computing part %s again", source, part_name)
                return None
            target = run_path(folder) / self.renamed(name, part_name)
            copy_file(source, target)  # a hard link locally, the store's copy on object storage
            linked[str(run_path(folder) / name)] = str(target)
        done = rewrite({**base, "part": part_name, "borrowed": True}, linked)
        write_json(run_path(directory) / f"{part_name}.done.json", done)
        return done


def write_parts(run_dir: Path, parts: list[Any]) -> None:
    """Record the planned input parts (name, identity, file names): what a later incremental run matches."""
    write_json(
        run_path(run_dir) / PARTS_FILE,
        [{"name": p.name, "identity": p.identity, "names": list(p.file_names())} for p in parts],
    )


def read_parts(run_dir: Path) -> list[dict[str, Any]]:
    """The parts a run planned (see `write_parts`)."""
    return json.loads((run_path(run_dir) / PARTS_FILE).read_text(encoding="utf-8"))
