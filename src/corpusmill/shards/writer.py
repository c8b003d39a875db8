"""The `write_shards` sink: kept documents' tokens into shards with a seeded global shuffle, plus a manifest.

A training run reads shards in order, so documents must be spread evenly: a shard holding one part's
documents holds one crawl file's sites and dates. `write_shards_v2` shuffles globally and reproducibly in two
parallel phases, without any process seeing more than one shard's worth of tokens:

1. per part (scatter): each kept document gets a key `blake2b(seed, id)` (64 bits); the part's
   `(key, id, tokens)` rows are staged sorted by key in one Parquet file;
2. per shard (gather): the driver sums the parts' token counts and cuts the 64-bit key space into
   `ceil(total / (0.9 * max_tokens_per_shard))` equal ranges; one task per range reads the rows whose key
   falls in it from every staged file (row-group statistics skip the rest), orders them by (key, id) and
   writes `shard-<range>-<n>`, rolling to the next `n` only when a range exceeds the limit.

Keys depend only on the seed and the document id, so the shard files are byte-identical whatever the engine,
the number of workers or the way the input was split into parts. A document is never split across shards.
Staged files are removed once the manifest is written. `write_shards_v1` keeps the earlier per-part layout
(`<part>-<n>`, documents in input order) for recipes that pin it.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from corpusmill.core import schema
from corpusmill.core.atomic import atomic_path
from corpusmill.core.hashing import hash64
from corpusmill.core.stage import SinkContext, SinkStage, StageParams, register
from corpusmill.shards.formats import DTYPE_OF, MANIFEST_FORMAT_OF, new_writer
from corpusmill.shards.manifest import RecipeRef, ShardEntry, ShardManifest, ShuffleInfo
from corpusmill.shards.megatron import MegatronWriter, ShardInfo

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
SHARD_DTYPE = np.int32
FILL_FACTOR = 0.9  # hash ranges are sized to 90% of the limit, so random variation rarely forces a roll-over
KEY_SPACE = 1 << 64
_TOKENS = "tokens"
_STAGING = "staging"
_STAGING_ROW_GROUP = 1024
STAGING_SCHEMA = pa.schema(
    [pa.field("key", pa.uint64()), pa.field("id", pa.string()), pa.field(_TOKENS, pa.list_(pa.int32()))]
)


class WriteShardsParams(StageParams):
    """How kept documents are ordered and cut into shards."""

    max_tokens_per_shard: int = Field(default=100_000_000, ge=1)
    shuffle: bool = True
    seed: int | None = None  # the shuffle seed; None takes the recipe's seed
    format: Literal["megatron", "datatrove"] = "megatron"


class WriteShardsV1Params(WriteShardsParams):
    """Version 1 wrote each part's documents in input order; that stays its default."""

    shuffle: bool = False


@register
class WriteShardsStage(SinkStage):
    """Writes kept documents' tokens as globally shuffled shards and the run's manifest."""

    name = "write_shards"
    version = 2
    Params = WriteShardsParams
    requires = (_TOKENS,)

    @property
    def _params(self) -> WriteShardsParams:
        return self.params  # type: ignore[return-value]

    def write_part(
        self, batches: Iterable[pa.RecordBatch], out_dir: Path, part_name: str, context: SinkContext
    ) -> dict[str, Any]:
        """Stage the part sorted by shuffle key (or, unshuffled, write its shards directly)."""
        if not self._params.shuffle:
            documents = (tokens for _, tokens in _documents(batches, part_name, self))
            shards = self._write_shards(documents, Path(out_dir), part_name)
            return {"part": part_name, "shards": shards}
        seed = self._seed(context)
        ids: list[str] = []
        token_lists: list[np.ndarray] = []
        for doc_id, tokens in _documents(batches, part_name, self):
            ids.append(doc_id)
            token_lists.append(tokens)
        keys = [hash64(seed, doc_id) for doc_id in ids]
        order = sorted(range(len(ids)), key=lambda i: (keys[i], ids[i]))
        staged = Path(context.work_dir) / _STAGING / f"{part_name}.parquet"
        staged.parent.mkdir(parents=True, exist_ok=True)
        lengths = np.asarray([len(token_lists[i]) for i in order], dtype=np.int64)
        offsets = np.zeros(len(order) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        values = (
            np.concatenate([token_lists[i] for i in order]).astype(np.int32)
            if order
            else np.zeros(0, np.int32)
        )
        table = pa.table(
            {
                "key": pa.array([keys[i] for i in order], pa.uint64()),
                "id": pa.array([ids[i] for i in order], pa.string()),
                _TOKENS: pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)),
            },
            schema=STAGING_SCHEMA,
        )
        with atomic_path(staged) as tmp:
            pq.write_table(table, tmp, row_group_size=_STAGING_ROW_GROUP)
        num_tokens = int(lengths.sum())
        self.stats.incr("staged_documents", len(ids))
        return {"part": part_name, "staged": str(staged), "documents": len(ids), "tokens": num_tokens}

    def plan_gather(self, parts: list[dict[str, Any]], context: SinkContext) -> list[dict[str, Any]]:
        """One task per hash range, sized from the parts' token counts."""
        if not self._params.shuffle:
            return []
        total = sum(int(part["tokens"]) for part in parts)
        staged = sorted(part["staged"] for part in parts if part["documents"])
        if not staged:
            return []
        ranges = max(1, math.ceil(total / (FILL_FACTOR * self._params.max_tokens_per_shard)))
        return [
            {"name": f"shard-{index:05d}", "range": index, "ranges": ranges, "staged": staged}
            for index in range(ranges)
        ]

    def gather(self, task: dict[str, Any], out_dir: Path, context: SinkContext) -> dict[str, Any]:
        """Write one hash range's documents, from every staged part, in key order."""
        import pyarrow.dataset as ds  # imports pandas (0.2 s): only in the gather phase that needs it

        low = task["range"] * KEY_SPACE // task["ranges"]
        high = (task["range"] + 1) * KEY_SPACE // task["ranges"]
        key = ds.field("key")
        condition = key >= pa.scalar(low, pa.uint64())
        if high < KEY_SPACE:
            condition = condition & (key < pa.scalar(high, pa.uint64()))
        table = ds.dataset(task["staged"], format="parquet", schema=STAGING_SCHEMA).to_table(filter=condition)
        table = table.sort_by([("key", "ascending"), ("id", "ascending")])
        shards = self._write_shards(_TokenViews(table.column(_TOKENS)), Path(out_dir), task["name"])
        return {"name": task["name"], "shards": shards}

    def finalize(
        self,
        parts: list[dict[str, Any]],
        gathered: list[dict[str, Any]],
        out_dir: Path,
        context: SinkContext,
    ) -> dict[str, Any]:
        """Write `out_dir/manifest.json` listing every shard, then drop the staged files; returns the manifest."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        params = self._params
        written = gathered if params.shuffle else parts
        entries = [ShardEntry.model_validate(shard) for item in written for shard in item.get("shards", [])]
        manifest = ShardManifest.from_shards(
            entries,
            dtype=DTYPE_OF[params.format],
            format=MANIFEST_FORMAT_OF[params.format],
            recipe=RecipeRef(name=context.recipe_name, fingerprint=context.recipe_fingerprint),
            shuffle=ShuffleInfo(method="hash-range", seed=self._seed(context))
            if params.shuffle
            else ShuffleInfo(method="per-part"),
        )
        problems = manifest.verify(out_dir, check_hashes=False)
        if problems:
            raise FileNotFoundError(
                f"cannot write the manifest in {out_dir}: shard files differ from what the tasks reported "
                f"({'; '.join(problems[:5])}); rerun the tasks whose shards are missing"
            )
        manifest.write(out_dir / MANIFEST_NAME)
        shutil.rmtree(Path(context.work_dir) / _STAGING, ignore_errors=True)
        logger.info(
            "wrote %s: %d shards, %d documents, %d tokens",
            out_dir / MANIFEST_NAME,
            len(manifest.shards),
            manifest.total_documents,
            manifest.total_tokens,
        )
        return manifest.model_dump(mode="json")

    def _seed(self, context: SinkContext) -> int:
        return context.seed if self._params.seed is None else self._params.seed

    def _write_shards(
        self, documents: Iterable[np.ndarray], out_dir: Path, name: str
    ) -> list[dict[str, Any]]:
        """Write documents as `<name>-NNNNN` shards, rolling over before one would pass the token limit."""
        out_dir.mkdir(parents=True, exist_ok=True)
        limit = self._params.max_tokens_per_shard
        shards: list[ShardInfo] = []
        writer: MegatronWriter | None = None
        try:
            for tokens in documents:
                if writer is not None and writer.num_tokens + len(tokens) > limit:
                    shards.append(writer.finalize())
                    writer = None
                if writer is None:
                    writer = new_writer(self._params.format, out_dir / f"{name}-{len(shards):05d}")
                writer.add_document(tokens)
            if writer is not None:
                shards.append(writer.finalize())
                writer = None
        finally:
            if writer is not None:
                writer.abort()
        _remove_stale_shards(out_dir, name, keep={shard_name(info) for info in shards})
        for info in shards:
            self.stats.incr("shards")
            self.stats.incr("shard_tokens", info.num_tokens)
            self.stats.observe("tokens_per_shard", info.num_tokens)
        return [ShardEntry.from_info(info, out_dir).model_dump(mode="json") for info in shards]


@register
class WriteShardsV1Stage(WriteShardsStage):
    """The first version: per-part shards in input order unless `shuffle: true` is asked for."""

    version = 1
    Params = WriteShardsV1Params


def shard_name(info: ShardInfo) -> str:
    """`shard-00003-00000` for `shard-00003-00000.bin` or `.ds`."""
    return info.bin_path.name.split(".", 1)[0]


def _documents(
    batches: Iterable[pa.RecordBatch], part_name: str, stage: WriteShardsStage
) -> Iterator[tuple[str, np.ndarray]]:
    """Each kept document's id and tokens (a numpy view); rows marked dropped are skipped."""
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
        ids = batch.column(schema.ID).to_pylist() if schema.ID in batch.schema.names else None
        missing = np.flatnonzero(keep & ~has_tokens)
        if missing.size:
            example = ids[missing[0]] if ids else f"row {missing[0]}"
            raise ValueError(
                f"part {part_name}: {missing.size} kept documents have no tokens (e.g. {example}); "
                "every kept document must pass through `tokenize` before `write_shards`"
            )
        if ids is None and stage._params.shuffle:
            raise KeyError(f"part {part_name}: shuffling needs the `{schema.ID}` column to key documents")
        views = _TokenViews(column)
        for row in np.flatnonzero(keep):
            yield (ids[row] if ids else ""), views[row]


class _TokenViews:
    """Row `i` of a list column as a zero-copy numpy slice of the column's flat values.

    A sliced list array's offsets point into its parent's values, which `.values` returns whole, so the two
    stay consistent without copying.
    """

    def __init__(self, column: pa.Array | pa.ChunkedArray) -> None:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
        self._offsets = column.offsets.to_numpy()
        self._values = column.values.to_numpy(zero_copy_only=False)
        self._length = len(column)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, row: int) -> np.ndarray:
        return self._values[self._offsets[row] : self._offsets[row + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        for row in range(self._length):
            yield self[row]


def _remove_stale_shards(out_dir: Path, name: str, keep: set[str]) -> None:
    """Delete this task's shards left by an earlier attempt that rolled into more files than this one."""
    pattern = re.compile(re.escape(name) + r"-\d{5}(\..+)")
    for path in sorted(out_dir.iterdir()):
        match = pattern.fullmatch(path.name)
        if match and path.name[: -len(match.group(1))] not in keep:
            logger.info("removing stale shard file %s", path)
            path.unlink(missing_ok=True)
