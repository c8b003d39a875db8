"""Checks that a finished run is what its manifest says, and that its shards hold its documents.

Two independent checks: every file listed in `manifest.json` still has its size and sha256; and the shards
decode (tokens -> text) to exactly the kept documents' text, each ending with the end-of-text token, in the
order the shard manifest claims: globally by shuffle key (recomputed here from the ids and the seed), or part
by part in input order. When the shards hold documents out of training, each document's split is recomputed
too (from its original id, so `mix` copies go with their original) and each split's shards must hold exactly
that split's documents. The second check is what a training team wants before spending GPU hours.

A temporary file anywhere in the run directory (`.<name>.<random>.tmp`, see `core/atomic.py`) is a problem too:
it is a write that never finished, left by a process that was killed, and a resumed run removes them.

The run may be a local directory or a finished run copied to object storage (`s3://bucket/runs/x`, any fsspec
URI; see `core/location.py`), with the same checks and messages. Objects are streamed: checksums are computed
from 1 MiB reads, and shard tokens are read document by document through ranged reads (`MegatronReader`), one
shard at a time, so memory does not grow with a shard's size; each shard is read twice there, as it is locally
(once for its checksum, once to decode it).
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from corpusmill.core import schema
from corpusmill.core.atomic import TEMP_SUFFIX, is_temporary
from corpusmill.core.location import RunPath, run_path
from corpusmill.shards.manifest import ShardManifest, sha256_file
from corpusmill.shards.split import HELDOUT, MIX_COPY, SPLITS, TRAIN, heldout_mask, heldout_threshold


@dataclass
class VerifyReport:
    """What was checked and every problem found."""

    files_checked: int = 0
    documents_checked: int = 0
    tokens_checked: int = 0
    problems: list[str] = field(default_factory=list)


def verify_run(run_dir: str | os.PathLike[str] | RunPath) -> VerifyReport:
    """Verify checksums and shard contents of a run directory, local or on object storage."""
    run_dir = run_path(run_dir)
    if not isinstance(run_dir, Path):
        # An fsspec filesystem keeps its listings for the life of the process; check the objects as they are now.
        run_dir.fs.invalidate_cache()
    report = VerifyReport()
    _report_temporaries(run_dir, report)
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        report.problems.append(f"{manifest_path} is missing: the run did not finish")
        return report
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        path = run_dir / entry["path"]
        report.files_checked += 1
        if not path.exists():
            report.problems.append(f"{entry['path']}: listed in the manifest but missing")
        elif path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            report.problems.append(f"{entry['path']}: size or sha256 differs from the manifest")
    shards_dir = run_dir / "shards"
    if shards_dir.is_dir():
        _verify_shards(run_dir, shards_dir, report)
    return report


def _report_temporaries(run_dir: RunPath, report: VerifyReport) -> None:
    """Name every unfinished write left in the run directory, which no complete run should hold."""
    if not run_dir.is_dir():
        return
    found = (p for p in run_dir.rglob(f"*{TEMP_SUFFIX}") if is_temporary(p.name) and p.is_file())
    for path in sorted(found, key=lambda p: p.relative_to(run_dir).parts):
        report.problems.append(
            f"{path.relative_to(run_dir)}: a temporary file left by an interrupted write; delete it "
            "(running an unfinished run again removes such files)"
        )


def _verify_shards(run_dir: RunPath, shards_dir: RunPath, report: VerifyReport) -> None:
    from corpusmill.core.hashing import hash64
    from corpusmill.shards.formats import open_shard

    manifest_path = shards_dir / "manifest.json"
    if not manifest_path.is_file():
        report.problems.append(f"{manifest_path} is missing")
        return
    manifest = ShardManifest.read(manifest_path)

    def sequences(entries: list) -> tuple[int, Iterator[np.ndarray]]:
        """How many sequences the shards hold (from their indexes), and each in order, one shard at a time."""
        readers = [open_shard(manifest.format, shards_dir, entry.bin_file) for entry in entries]
        count = sum(len(reader) for reader in readers)

        def each() -> Iterator[np.ndarray]:
            while readers:
                yield from readers.pop(0)  # a shard read to its end is let go (and its file closed)

        return count, each()

    parts = sorted((run_dir / "documents").glob("*.parquet"))
    if manifest.shuffle is not None and manifest.shuffle.method == "hash-range":
        rows = [row for part in parts for row in _split_rows(part, manifest)]
        seed = manifest.shuffle.seed or 0
        rows.sort(key=lambda row: (hash64(seed, row[schema.ID]), row[schema.ID]))
        for split in SPLITS:
            mine = [row for row in rows if row["split"] == split]
            entries = manifest.split_shards(split)
            if mine or entries:
                _compare_documents(f"{split} documents in shuffle order", mine, *sequences(entries), report)
        return
    for part in parts:
        rows = _parquet(part).read(columns=[schema.TEXT, schema.ID]).to_pylist()
        entries = [e for e in manifest.shards if Path(e.bin_file).name.startswith(f"{part.stem}-")]
        _compare_documents(part.name, rows, *sequences(entries), report)


def _parquet(part: RunPath) -> pq.ParquetFile:
    """A documents file, read where it is: a local file directly, an object through its fsspec filesystem."""
    if isinstance(part, Path):
        return pq.ParquetFile(part)
    return pq.ParquetFile(part.path, filesystem=part.fs)


def _split_rows(part: RunPath, manifest: ShardManifest) -> list[dict]:
    """A documents file's ids and texts, each with the split the manifest's held-out rule puts it in."""
    columns = [schema.ID, schema.TEXT]
    parquet = _parquet(part)
    has_copies = MIX_COPY in parquet.schema_arrow.names
    table = parquet.read(columns=[*columns, MIX_COPY] if has_copies else columns)
    rows = table.select(columns).to_pylist()
    heldout = manifest.heldout
    if heldout is None:
        return [{**row, "split": TRAIN} for row in rows]
    ids = [row[schema.ID] for row in rows]
    copies = table.column(MIX_COPY).to_pylist() if has_copies else None
    mask = heldout_mask(heldout.seed, ids, copies, heldout_threshold(heldout.fraction))
    return [{**row, "split": HELDOUT if held else TRAIN} for row, held in zip(rows, mask, strict=True)]


def _compare_documents(
    what: str, rows: list[dict], count: int, sequences: Iterator[np.ndarray], report: VerifyReport
) -> None:
    """Each row against its shard sequence; `count` is how many sequences `sequences` yields."""
    from corpusmill.shards.tokenizer import EOS_ID, decode

    if count != len(rows):
        report.problems.append(f"{what}: {len(rows)} documents but {count} shard sequences")
        return
    for row, tokens in zip(rows, sequences, strict=True):
        report.documents_checked += 1
        report.tokens_checked += len(tokens)
        if len(tokens) == 0 or int(tokens[-1]) != EOS_ID:
            report.problems.append(
                f"document {row[schema.ID]}: shard sequence does not end with <|endoftext|>"
            )
            continue
        expected = unicodedata.normalize("NFC", row[schema.TEXT] or "")
        if decode([int(t) for t in tokens[:-1]]) != expected:
            report.problems.append(f"document {row[schema.ID]}: shard tokens do not decode to its text")
