"""A human-readable look into a shards directory: what it holds, a few decoded documents, and what is broken.

Before a training run (or after copying shards between clusters) a person wants one command that says how many
shards, documents and tokens there are, shows a couple of documents as text to catch a wrong tokenizer or
garbage input, and lists every problem at once. The report is gathered from the shards themselves (read through
`MegatronReader`, so a damaged index is caught) and compared with `manifest.json`; nothing stops at the first
problem. Shards are listed from the manifest when there is one, else from the `.idx` files on disk.

The directory may be on object storage (`s3://bucket/runs/x/shards`, any fsspec URI; see `core/location.py`):
indexes are read whole, checksums streamed, and only the tokens of the sampled documents are read from the
`.bin` files (ranged reads), so a look at a large remote directory downloads little beyond its indexes unless
checksums are verified.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from corpusmill.core.location import RunPath, run_path
from corpusmill.shards.formats import open_shard, shard_prefix
from corpusmill.shards.manifest import ShardEntry, ShardManifest
from corpusmill.shards.megatron import MegatronFormatError, MegatronReader
from corpusmill.shards.tokenizer import TOKENIZER_NAME, decode
from corpusmill.shards.writer import MANIFEST_NAME

logger = logging.getLogger(__name__)

SAMPLE_CHARS = 300


@dataclass(frozen=True)
class ShardRow:
    """One shard as read from disk."""

    name: str
    num_documents: int
    num_tokens: int
    dtype: str
    bin_bytes: int
    min_document_tokens: int
    max_document_tokens: int


@dataclass
class ShardsReport:
    """What `inspect_shards` found; `problems` is empty when the directory is healthy."""

    shards_dir: RunPath
    num_shards: int = 0
    num_documents: int = 0
    num_tokens: int = 0
    has_manifest: bool = False
    provenance: str = ""  # format, recipe and shuffle as the manifest states them
    shards: list[ShardRow] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong, so a CLI can turn the report into an exit code."""
        return not self.problems


def _listed_shards(
    shards_dir: RunPath, manifest: ShardManifest | None
) -> list[tuple[RunPath, ShardEntry | None]]:
    """Shard prefixes in file-name order with their manifest entries, or from the `.idx` files if no manifest."""
    if manifest is not None:
        return [(shard_prefix(shards_dir, entry.bin_file), entry) for entry in manifest.shards]
    return [(path.with_suffix(""), None) for path in sorted(shards_dir.glob("*.idx"))]


def _provenance(manifest: ShardManifest) -> str:
    """One line on where the shards come from, for a person checking them before training."""
    parts = [f"format {manifest.format} ({manifest.dtype})"]
    if manifest.recipe is not None:
        parts.append(f"recipe {manifest.recipe.name} {manifest.recipe.fingerprint}")
    if manifest.shuffle is not None:
        seed = f" seed {manifest.shuffle.seed}" if manifest.shuffle.seed is not None else ""
        parts.append(f"order {manifest.shuffle.method}{seed}")
    return "; ".join(parts)


def _compare(entry: ShardEntry, row: ShardRow, prefix: RunPath) -> list[str]:
    """Counts the manifest claims for a shard versus what its index holds."""
    problems = []
    if entry.num_documents != row.num_documents:
        problems.append(f"{prefix}: {row.num_documents} documents, manifest says {entry.num_documents}")
    if entry.num_tokens != row.num_tokens:
        problems.append(f"{prefix}: {row.num_tokens} tokens, manifest says {entry.num_tokens}")
    return problems


def inspect_shards(
    shards_dir: str | os.PathLike[str] | RunPath, *, sample: int = 2, verify: bool = True
) -> ShardsReport:
    """Summarise a shards directory (local or on object storage), decode its first `sample` documents and
    collect every problem found."""
    shards_dir = run_path(shards_dir)
    if not isinstance(shards_dir, Path):
        # An fsspec filesystem keeps its listings for the life of the process; look at the objects as they are now.
        shards_dir.fs.invalidate_cache()
    if not shards_dir.is_dir():
        raise FileNotFoundError(f"shards directory {shards_dir} does not exist")
    if sample < 0:
        raise ValueError(f"sample must be 0 or more, got {sample}")
    report = ShardsReport(shards_dir=shards_dir)

    manifest: ShardManifest | None = None
    manifest_path = shards_dir / MANIFEST_NAME
    if manifest_path.is_file():
        try:
            manifest = ShardManifest.read(manifest_path)
            report.has_manifest = True
            report.provenance = _provenance(manifest)
        except ValueError as exc:
            report.problems.append(str(exc))
    else:
        report.problems.append(f"{manifest_path}: missing; shards cannot be checked against their hashes")

    can_decode = True
    if manifest is not None:
        if manifest.tokenizer.name != TOKENIZER_NAME:
            can_decode = False
            report.problems.append(
                f"{manifest_path}: written with tokenizer {manifest.tokenizer.name!r}, samples are decoded "
                f"only for {TOKENIZER_NAME!r}"
            )
        if verify:
            report.problems.extend(manifest.verify(shards_dir))
        listed = {entry.idx_file for entry in manifest.shards}
        index_glob = "*.ds.index" if manifest.format == "datatrove-tokenized" else "*.idx"
        for path in sorted(shards_dir.glob(index_glob)):
            if str(path.relative_to(shards_dir)) not in listed:
                report.problems.append(f"{path}: on disk but not in {manifest_path}")

    for prefix, entry in _listed_shards(shards_dir, manifest):
        try:
            reader = (
                open_shard(manifest.format, shards_dir, entry.bin_file)
                if manifest is not None and entry is not None
                else MegatronReader(prefix)
            )
        except (FileNotFoundError, MegatronFormatError) as exc:
            report.problems.append(str(exc))
            continue
        lengths = reader.sequence_lengths
        row = ShardRow(
            name=prefix.name,
            num_documents=len(reader),
            num_tokens=reader.num_tokens,
            dtype=str(reader.dtype),
            bin_bytes=reader.bin_path.stat().st_size,
            min_document_tokens=int(lengths.min()) if len(reader) else 0,
            max_document_tokens=int(lengths.max()) if len(reader) else 0,
        )
        report.shards.append(row)
        if entry is not None:
            report.problems.extend(_compare(entry, row, prefix))
        if can_decode:
            for i in range(min(len(reader), sample - len(report.samples))):
                report.samples.append(decode(reader[i].tolist())[:SAMPLE_CHARS])

    report.num_shards = len(report.shards)
    report.num_documents = sum(row.num_documents for row in report.shards)
    report.num_tokens = sum(row.num_tokens for row in report.shards)
    logger.debug("inspected %s: %d shards, %d problems", shards_dir, report.num_shards, len(report.problems))
    return report
