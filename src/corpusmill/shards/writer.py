"""The `write_shards` sink: kept documents' tokens into Megatron shards, plus one manifest per run.

Each part is written independently (so engines can run parts in parallel and resume part by part) as
`<part>-00000.bin/.idx`, rolling to `-00001`, ... before a shard would exceed `max_tokens_per_shard`.
A document is never split across shards: a document longer than the limit gets a shard of its own, since a
split would join the tail of one document to the head of the next in training samples without an EOS.
`finalize` gathers the parts' shard lists into `manifest.json`, sorted by file name so the manifest does not
depend on the order in which an engine finished the parts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field

from corpusmill.core import schema
from corpusmill.core.stage import SinkStage, StageParams, register
from corpusmill.shards.manifest import ShardEntry, ShardManifest
from corpusmill.shards.megatron import MegatronWriter, ShardInfo

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
SHARD_DTYPE = np.int32
_TOKENS = "tokens"


class WriteShardsParams(StageParams):
    """How kept documents are cut into shards."""

    max_tokens_per_shard: int = Field(default=100_000_000, ge=1)


@register
class WriteShardsStage(SinkStage):
    """Writes each part's tokens as Megatron shards and the run's manifest."""

    name = "write_shards"
    Params = WriteShardsParams
    requires = (_TOKENS,)

    def write_part(self, batches: Iterable[pa.RecordBatch], out_dir: Path, part_name: str) -> dict[str, Any]:
        """Write one part's documents as `out_dir/<part_name>-NNNNN.bin/.idx`; returns its shard list."""
        params: WriteShardsParams = self.params  # type: ignore[assignment]
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        shards: list[ShardInfo] = []
        writer: MegatronWriter | None = None
        try:
            for tokens in _documents(batches, part_name, self):
                if writer is not None and writer.num_tokens + len(tokens) > params.max_tokens_per_shard:
                    shards.append(writer.finalize())
                    writer = None
                if writer is None:
                    writer = MegatronWriter(out_dir / f"{part_name}-{len(shards):05d}", dtype=SHARD_DTYPE)
                writer.add_document(tokens)
            if writer is not None:
                shards.append(writer.finalize())
                writer = None
        finally:
            if writer is not None:
                writer.abort()
        _remove_stale_shards(out_dir, part_name, keep={info.bin_path.name for info in shards})
        for info in shards:
            self.stats.incr("shards")
            self.stats.incr("shard_tokens", info.num_tokens)
            self.stats.observe("tokens_per_shard", info.num_tokens)
        entries = [ShardEntry.from_info(info, out_dir).model_dump(mode="json") for info in shards]
        return {"part": part_name, "shards": entries}

    def finalize(self, parts: list[dict[str, Any]], out_dir: Path) -> dict[str, Any]:
        """Write `out_dir/manifest.json` listing every part's shards; returns the manifest as a dict."""
        out_dir = Path(out_dir)
        entries = [ShardEntry.model_validate(shard) for part in parts for shard in part.get("shards", [])]
        manifest = ShardManifest.from_shards(entries, dtype=np.dtype(SHARD_DTYPE).name)
        problems = manifest.verify(out_dir, check_hashes=False)
        if problems:
            raise FileNotFoundError(
                f"cannot write the manifest in {out_dir}: shard files differ from what the parts reported "
                f"({'; '.join(problems[:5])}); rerun the parts whose shards are missing"
            )
        manifest.write(out_dir / MANIFEST_NAME)
        logger.info(
            "wrote %s: %d shards, %d documents, %d tokens",
            out_dir / MANIFEST_NAME,
            len(manifest.shards),
            manifest.total_documents,
            manifest.total_tokens,
        )
        return manifest.model_dump(mode="json")


def _documents(
    batches: Iterable[pa.RecordBatch], part_name: str, stage: WriteShardsStage
) -> Iterator[np.ndarray]:
    """Each kept document's tokens as a numpy view; rows marked dropped are skipped."""
    for batch in batches:
        if _TOKENS not in batch.schema.names:
            raise KeyError(
                f"part {part_name}: write_shards needs a `{_TOKENS}` column (run `tokenize` first); "
                f"the batch has {batch.schema.names}"
            )
        column = batch.column(_TOKENS)
        if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
            raise TypeError(f"part {part_name}: `{_TOKENS}` must be a list of integers, got {column.type}")
        has_tokens = column.is_valid().to_numpy(zero_copy_only=False)
        keep = np.ones(batch.num_rows, dtype=bool)
        if schema.DROP_REASON in batch.schema.names:
            keep = ~batch.column(schema.DROP_REASON).is_valid().to_numpy(zero_copy_only=False)
            stage.stats.incr("skipped_dropped", int((~keep).sum()))
        missing = np.flatnonzero(keep & ~has_tokens)
        if missing.size:
            ids = batch.column(schema.ID).to_pylist() if schema.ID in batch.schema.names else None
            example = ids[missing[0]] if ids else f"row {missing[0]}"
            raise ValueError(
                f"part {part_name}: {missing.size} kept documents have no tokens (e.g. {example}); "
                "every kept document must pass through `tokenize` before `write_shards`"
            )
        offsets = column.offsets.to_numpy()
        values = column.values.to_numpy(zero_copy_only=False)
        for row in np.flatnonzero(keep):
            yield values[offsets[row] : offsets[row + 1]]


def _remove_stale_shards(out_dir: Path, part_name: str, keep: set[str]) -> None:
    """Delete this part's shards left by an earlier attempt that rolled into more files than this one."""
    pattern = re.compile(re.escape(part_name) + r"-\d{5}\.(bin|idx)")
    for path in sorted(out_dir.iterdir()):
        if pattern.fullmatch(path.name) and path.with_suffix(".bin").name not in keep:
            logger.info("removing stale shard file %s", path)
            path.unlink(missing_ok=True)
