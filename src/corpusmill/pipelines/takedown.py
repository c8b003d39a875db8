"""Takedowns: documents (by id) and whole URLs removed from a build, as if they had never been crawled.

A takedown list holds one entry per line; blank lines and lines starting with `#` are ignored. An entry that
contains `://` is a URL and removes every document of that URL; anything else is a document id
(`<file name>:<place>`, see the README's "The run directory"). The first step of a run drops every matching
document before any stage sees it, as rejected with the reason `taken_down` under the label `00-takedown`, so
nothing downstream (deduplication above all) knows it existed: a document that had been dropped as a
duplicate of a taken-down one comes back exactly when a build without that document keeps it.

Takedowns are cumulative: a run keeps its list in `removed.txt`, and a run built on it (`--base`) starts from
that list, so a later rebuild never brings a taken-down document back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core import schema
from corpusmill.core.atomic import atomic_open
from corpusmill.core.location import run_path

TAKEDOWN_LABEL = "00-takedown"
TAKEDOWN_REASON = "taken_down"
REMOVED_FILE = "removed.txt"


class TakedownError(ValueError):
    """A takedown list that cannot be read."""


@dataclass(frozen=True)
class Takedown:
    """The ids and URLs removed from a build."""

    ids: frozenset[str] = frozenset()
    urls: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.ids or self.urls)

    @property
    def entries(self) -> list[str]:
        """Every entry, sorted: the canonical form written to `removed.txt` and digested."""
        return sorted(self.ids | self.urls)

    def digest(self) -> str:
        """sha256 of the canonical list: what `run.json` records, so a resume under another list is refused."""
        return hashlib.sha256("\n".join(self.entries).encode("utf-8")).hexdigest()

    def union(self, other: Takedown) -> Takedown:
        """Both lists together (an incremental run's own list added to its base's)."""
        return Takedown(self.ids | other.ids, self.urls | other.urls)

    def minus(self, other: Takedown) -> Takedown:
        """The entries not already in `other`."""
        return Takedown(self.ids - other.ids, self.urls - other.urls)

    def record(self) -> dict[str, object] | None:
        """What `run.json` says about the list (None without one)."""
        return {"entries": len(self.entries), "sha256": self.digest()} if self else None

    def write(self, path: Path) -> None:
        """Write the canonical list atomically (or remove a stale one when the list is empty)."""
        if not self:
            path.unlink(missing_ok=True)
            return
        with atomic_open(path, "w", encoding="utf-8") as handle:
            handle.write("".join(f"{entry}\n" for entry in self.entries))

    def hits_files(self, names: Iterable[str]) -> bool:
        """Whether an id entry names a document of one of these input files (an id is `<name>:<place>`, or
        the name alone for an HTML file)."""
        wanted = set(names)
        return any(entry in wanted or entry.rpartition(":")[0] in wanted for entry in self.ids)

    def hits_table(self, table: pa.Table) -> bool:
        """Whether any row of an (id, url) table is removed."""
        return bool(self._removed(table.column(schema.ID), table.column(schema.URL)).true_count)

    def _removed(self, ids: pa.Array | pa.ChunkedArray, urls: pa.Array | pa.ChunkedArray) -> pa.Array:
        by_id = pc.is_in(ids, value_set=pa.array(sorted(self.ids), pa.string()))
        by_url = pc.is_in(urls, value_set=pa.array(sorted(self.urls), pa.string()))
        removed = pc.or_(pc.fill_null(by_id, False), pc.fill_null(by_url, False))
        return removed.combine_chunks() if isinstance(removed, pa.ChunkedArray) else removed

    def mark(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Mark every removed document of a batch as dropped (`taken_down`, detail: by id or by URL)."""
        ids, urls = batch.column(schema.ID), batch.column(schema.URL)
        removed = self._removed(ids, urls).to_pylist()
        if not any(removed):
            return batch
        id_hits = pc.fill_null(pc.is_in(ids, value_set=pa.array(sorted(self.ids), pa.string())), False)
        details = ["id" if by_id else "url" for by_id in id_hits.to_pylist()]
        reasons = [TAKEDOWN_REASON if hit else None for hit in removed]
        return schema.mark_drops(
            batch, reasons, [detail if hit else None for hit, detail in zip(removed, details, strict=True)]
        )


def parse_takedown(text: str, origin: str = "takedown list") -> Takedown:
    """Parse a takedown list; an entry with whitespace inside is refused (it is neither an id nor a URL)."""
    ids: set[str] = set()
    urls: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        if any(char.isspace() for char in entry):
            raise TakedownError(
                f"{origin}, line {number}: {entry!r} holds whitespace; give one document id or URL per line"
            )
        (urls if "://" in entry else ids).add(entry)
    return Takedown(frozenset(ids), frozenset(urls))


def read_takedown(path: Path) -> Takedown:
    """Read a takedown list from a file, naming the file in any error."""
    try:
        text = run_path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TakedownError(f"cannot read the takedown list {path}: {exc}") from exc
    return parse_takedown(text, str(path))


def run_takedown(run_dir: Path) -> Takedown:
    """The takedown list a run was built with (empty when it has none)."""
    path = run_path(run_dir) / REMOVED_FILE
    return read_takedown(path) if path.exists() else Takedown()
