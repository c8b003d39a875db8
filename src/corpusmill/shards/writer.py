"""The `write_shards` sink: kept documents' tokens into shards with a seeded global shuffle, plus a manifest.

A training run reads shards in order, so documents must be spread evenly: a shard holding one part's
documents holds one crawl file's sites and dates. `write_shards` shuffles globally and reproducibly in two
parallel phases, in which a part's task holds at most one staged run and a shard's task about one shard:

1. per part (scatter): each kept document gets a key `blake2b(seed, id)` (64 bits) and a split (below); the
   part's `(key, id, tokens)` rows are streamed to staged runs (`corpusmill.shards.staging`): Parquet files
   of at most about `RUN_TOKENS` tokens each, sorted by key, so a part of any size needs bounded memory;
2. per shard (gather): the driver sums each split's token counts and cuts the 64-bit key space into
   `ceil(split tokens / (0.9 * max_tokens_per_shard))` equal ranges; one task per (split, range) reads the
   rows whose key falls in it from every run of that split (row-group statistics skip the rest), orders them
   by (key, id) and writes `shard-<range>-<n>` (held-out: `heldout-<range>-<n>`), rolling to the next `n`
   only when a range exceeds the limit.

`write_shards_v3` can hold documents out of training (`heldout_fraction`): a document is held out when
`hash64(seed, "heldout", original id)` falls below `heldout_fraction * 2**64`, where the original id of a `mix`
copy (`mix_copy = c > 0`, id `<id>#<c>`) is `<id>`, so every copy follows its original into the same split
(`corpusmill.shards.split`). Held-out documents go to their own shards, shuffled the same way, and the
manifest marks each shard's split. Keys and splits depend only on the seed and the document ids, so the shard
files are byte-identical whatever the engine, the number of workers, the way the input was split into parts,
or the run budget. A document is never split across shards. Staged files are removed once the manifest is
written. `write_shards_v2` is v3 without a held-out split; `write_shards_v1` keeps the earlier per-part layout
(`<part>-<n>`, documents in input order) for recipes that pin it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from corpusmill.core import schema
from corpusmill.core.hashing import hash64
from corpusmill.core.location import ensure_dir, remove_tree, run_path
from corpusmill.core.stage import SinkContext, SinkStage, StageParams, register
from corpusmill.shards.formats import DTYPE_OF, MANIFEST_FORMAT_OF, new_writer
from corpusmill.shards.manifest import HeldoutInfo, RecipeRef, ShardEntry, ShardManifest, ShuffleInfo
from corpusmill.shards.megatron import MegatronWriter, ShardInfo
from corpusmill.shards.split import HELDOUT, MIX_COPY, SPLITS, TRAIN, Split, heldout_mask, heldout_threshold
from corpusmill.shards.staging import RUN_TOKENS, TOKEN_TYPE, RunStager, read_range

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
SHARD_DTYPE = np.int32
FILL_FACTOR = 0.9  # hash ranges are sized to 90% of the limit, so random variation rarely forces a roll-over
_TOKENS = "tokens"
_STAGING = "staging"
_SHARD_PREFIX: dict[Split, str] = {TRAIN: "shard", HELDOUT: "heldout"}


class WriteShardsParams(StageParams):
    """How kept documents are ordered and cut into shards."""

    max_tokens_per_shard: int = Field(default=100_000_000, ge=1)
    shuffle: bool = True
    seed: int | None = None  # the shuffle seed; None takes the recipe's seed
    format: Literal["megatron", "datatrove"] = "megatron"


class WriteShardsV1Params(WriteShardsParams):
    """Version 1 wrote each part's documents in input order; that stays its default."""

    shuffle: bool = False


class WriteShardsV3Params(WriteShardsParams):
    """Version 3 adds a held-out split of whole documents (0: none)."""

    heldout_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _heldout_needs_shuffle(self) -> Self:
        if self.heldout_fraction > 0 and not self.shuffle:
            raise ValueError(
                f"heldout_fraction {self.heldout_fraction} needs shuffle: true (held-out shards are cut "
                "from the global shuffle); remove heldout_fraction or set shuffle: true"
            )
        return self


@register
class WriteShardsStage(SinkStage):
    """Writes kept documents' tokens as globally shuffled train (and held-out) shards and the run's manifest."""

    name = "write_shards"
    version = 3
    Params = WriteShardsV3Params
    requires = (_TOKENS,)
    # The scatter phase's memory budget, in tokens per staged run; tests and benchmarks set it per instance.
    run_tokens: int = RUN_TOKENS

    @property
    def _params(self) -> WriteShardsParams:
        return self.params  # type: ignore[return-value]

    @property
    def heldout_fraction(self) -> float:
        """The fraction of documents held out (always 0 before version 3)."""
        return float(getattr(self.params, "heldout_fraction", 0.0))

    def write_part(
        self, batches: Iterable[pa.RecordBatch], out_dir: Path, part_name: str, context: SinkContext
    ) -> dict[str, Any]:
        """Stream the part into key-sorted staged runs (or, unshuffled, write its shards directly)."""
        if not self._params.shuffle:
            documents = (tokens for _, tokens in _documents(batches, part_name, self))
            shards = self._write_shards(documents, run_path(out_dir), part_name, TRAIN)
            return {"part": part_name, "shards": shards}
        seed = self._seed(context)
        threshold = heldout_threshold(self.heldout_fraction)
        stager = RunStager(run_path(context.work_dir) / _STAGING / part_name, self.run_tokens)
        for ids, copies, tokens in _kept_batches(batches, part_name, self):
            keys = [hash64(seed, doc_id) for doc_id in ids]
            stager.add(keys, ids, heldout_mask(seed, ids, copies, threshold), tokens)
        runs = stager.finish()
        documents = {split: sum(r["documents"] for r in runs if r["split"] == split) for split in SPLITS}
        self.stats.incr("staged_documents", sum(documents.values()))
        if documents[HELDOUT]:
            self.stats.incr("heldout_documents", documents[HELDOUT])
        return {
            "part": part_name,
            "runs": runs,
            "documents": sum(documents.values()),
            "tokens": sum(int(r["tokens"]) for r in runs),
        }

    def plan_gather(self, parts: list[dict[str, Any]], context: SinkContext) -> list[dict[str, Any]]:
        """One task per hash range of each split, the ranges sized from that split's token count."""
        if not self._params.shuffle:
            return []
        runs = [run for part in parts for run in _staged_runs(part)]
        tasks: list[dict[str, Any]] = []
        for split in SPLITS:
            mine = [run for run in runs if run["split"] == split]
            if not mine:
                continue
            total = sum(int(run["tokens"]) for run in mine)
            ranges = max(1, math.ceil(total / (FILL_FACTOR * self._params.max_tokens_per_shard)))
            staged = sorted(run["path"] for run in mine)
            tasks.extend(
                {
                    "name": f"{_SHARD_PREFIX[split]}-{index:05d}",
                    "split": split,
                    "range": index,
                    "ranges": ranges,
                    "staged": staged,
                }
                for index in range(ranges)
            )
        return tasks

    def gather(self, task: dict[str, Any], out_dir: Path, context: SinkContext) -> dict[str, Any]:
        """Write one hash range of one split, from every staged run of that split, in key order."""
        table = read_range(task["staged"], task["range"], task["ranges"])
        views = _TokenViews(table.column(_TOKENS))
        shards = self._write_shards(views, run_path(out_dir), task["name"], task["split"])
        return {"name": task["name"], "split": task["split"], "shards": shards}

    def finalize(
        self,
        parts: list[dict[str, Any]],
        gathered: list[dict[str, Any]],
        out_dir: Path,
        context: SinkContext,
    ) -> dict[str, Any]:
        """Write `out_dir/manifest.json` listing every shard, then drop the staged files; returns the manifest."""
        out_dir = run_path(out_dir)
        ensure_dir(out_dir)
        manifest = self._manifest(gathered if self._params.shuffle else parts, context)
        problems = manifest.verify(out_dir, check_hashes=False)
        if problems:
            raise FileNotFoundError(
                f"cannot write the manifest in {out_dir}: shard files differ from what the tasks reported "
                f"({'; '.join(problems[:5])}); rerun the tasks whose shards are missing"
            )
        manifest.write(out_dir / MANIFEST_NAME)
        remove_tree(run_path(context.work_dir) / _STAGING)
        for split, totals in manifest.splits.items():
            logger.info(
                "%s: %s split: %d shards, %d documents, %d tokens",
                out_dir / MANIFEST_NAME,
                split,
                totals.shards,
                totals.documents,
                totals.tokens,
            )
        return manifest.model_dump(mode="json")

    def _manifest(self, written: list[dict[str, Any]], context: SinkContext) -> ShardManifest:
        """The manifest of every shard the tasks reported, with how documents were ordered and split."""
        params = self._params
        entries = [ShardEntry.model_validate(shard) for item in written for shard in item.get("shards", [])]
        heldout = None
        if self.heldout_fraction > 0:
            heldout = HeldoutInfo(fraction=self.heldout_fraction, seed=self._seed(context))
        return ShardManifest.from_shards(
            entries,
            dtype=DTYPE_OF[params.format],
            format=MANIFEST_FORMAT_OF[params.format],
            recipe=RecipeRef(name=context.recipe_name, fingerprint=context.recipe_fingerprint),
            shuffle=ShuffleInfo(method="hash-range", seed=self._seed(context))
            if params.shuffle
            else ShuffleInfo(method="per-part"),
            heldout=heldout,
        )

    def _seed(self, context: SinkContext) -> int:
        return context.seed if self._params.seed is None else self._params.seed

    def _write_shards(
        self, documents: Iterable[np.ndarray], out_dir: Path, name: str, split: Split
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
        return [ShardEntry.from_info(info, out_dir, split).model_dump(mode="json") for info in shards]


@register
class WriteShardsV2Stage(WriteShardsStage):
    """The second version: the global shuffle, every document in training shards."""

    version = 2
    Params = WriteShardsParams


@register
class WriteShardsV1Stage(WriteShardsStage):
    """The first version: per-part shards in input order unless `shuffle: true` is asked for."""

    version = 1
    Params = WriteShardsV1Params


def shard_name(info: ShardInfo) -> str:
    """`shard-00003-00000` for `shard-00003-00000.bin` or `.ds`."""
    return info.bin_path.name.split(".", 1)[0]


def _staged_runs(part: dict[str, Any]) -> list[dict[str, Any]]:
    """A part's staged runs. A part staged before runs existed (a run resumed across an upgrade) names one
    file of training documents, with int32 offsets that the gather reads as 64-bit ones."""
    if "runs" in part:
        return list(part["runs"])
    if not part.get("documents"):
        return []
    return [
        {"split": TRAIN, "path": part["staged"], "documents": part["documents"], "tokens": part["tokens"]}
    ]


def _kept_rows(
    batch: pa.RecordBatch, part_name: str, stage: WriteShardsStage
) -> tuple[np.ndarray, list[str] | None]:
    """The rows of a batch to write (not marked dropped) and the batch's ids; checks every kept row has tokens."""
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
    return np.flatnonzero(keep), ids


def _documents(
    batches: Iterable[pa.RecordBatch], part_name: str, stage: WriteShardsStage
) -> Iterator[tuple[str, np.ndarray]]:
    """Each kept document's id and tokens (a numpy view), one at a time, for the unshuffled layout."""
    for batch in batches:
        rows, ids = _kept_rows(batch, part_name, stage)
        views = _TokenViews(batch.column(_TOKENS))
        for row in rows:
            yield (ids[row] if ids else ""), views[row]


def _kept_batches(
    batches: Iterable[pa.RecordBatch], part_name: str, stage: WriteShardsStage
) -> Iterator[tuple[list[str], list[int] | None, pa.LargeListArray]]:
    """Per batch, the kept documents' ids, `mix_copy` numbers (None without a mix) and tokens (a copy).

    The tokens are taken out of the batch as `large_list<int32>`, so the batch (text and all) is freed as soon
    as the next one is read, and offsets cannot wrap however many tokens a run collects.
    """
    for batch in batches:
        rows, ids = _kept_rows(batch, part_name, stage)
        if not rows.size:
            continue
        assert ids is not None  # _kept_rows insists on ids when shuffling
        take = pa.array(rows, pa.int64())
        tokens = pc.cast(batch.column(_TOKENS).take(take), TOKEN_TYPE)
        copies = None
        if MIX_COPY in batch.schema.names:
            copies = batch.column(MIX_COPY).take(take).to_pylist()
        yield [ids[row] for row in rows], copies, tokens


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
