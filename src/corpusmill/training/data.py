"""Packed fixed-length training windows read straight from memory-mapped Megatron shards.

Documents are concatenated in manifest order (each already ends with EOS, so no separator is added) and
the resulting token stream is cut into windows of `seq_len + 1` tokens with a stride of `seq_len`: input
positions `[0, seq_len)` predict `[1, seq_len]`, and consecutive windows share only their boundary token,
so every token is predicted exactly once. Nothing is copied into RAM: a window is one or two slices of
`np.memmap`s (two when it straddles a shard boundary).

Training reads the manifest's `train` shards and evaluation its `heldout` shards: whole documents that
`write_shards` held out by a hash of their original id, so neither a held-out document nor any `mix` copy of
one is ever trained on. Evaluation scores the first `heldout_windows` windows of the held-out stream (all of
them when it holds fewer). Shards written without a held-out split are refused rather than split here: cutting
a shard's tail would cut a document in two and leave copies of held-out documents in training. Training order
is a seeded permutation per epoch, so sample `g` of a run is a pure function of (seed, g) and a resumed run
only needs the count of samples already consumed.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from corpusmill.shards.formats import ShardReader, open_shard
from corpusmill.shards.manifest import ShardEntry, ShardManifest
from corpusmill.shards.split import HELDOUT, TRAIN, Split
from corpusmill.shards.writer import MANIFEST_NAME

logger = logging.getLogger(__name__)


class TokenStream:
    """A contiguous range of tokens over several shards' memory maps, cut into packed windows."""

    def __init__(self, segments: list[np.ndarray], seq_len: int, *, name: str) -> None:
        self.segments = [s for s in segments if len(s)]
        self.seq_len = seq_len
        self.name = name
        lengths = np.array([len(s) for s in self.segments], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.num_tokens = int(self.starts[-1])
        self.num_windows = max(0, (self.num_tokens - 1) // seq_len)

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Tokens `[start, stop)` of the stream as int64 (a copy of at most a window)."""
        if not 0 <= start <= stop <= self.num_tokens:
            raise IndexError(f"{self.name}: token range {start}:{stop} outside 0:{self.num_tokens}")
        parts = []
        seg = int(np.searchsorted(self.starts, start, side="right")) - 1
        pos = start
        while pos < stop:
            offset = pos - int(self.starts[seg])
            take = min(stop - pos, len(self.segments[seg]) - offset)
            parts.append(np.asarray(self.segments[seg][offset : offset + take], dtype=np.int64))
            pos += take
            seg += 1
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def window(self, i: int) -> np.ndarray:
        """Window `i`: `seq_len + 1` tokens starting at token `i * seq_len`."""
        if not 0 <= i < self.num_windows:
            raise IndexError(f"{self.name}: window {i} out of range for {self.num_windows} windows")
        start = i * self.seq_len
        return self.tokens(start, start + self.seq_len + 1)

    def batch(self, indices: np.ndarray | list[int]) -> np.ndarray:
        """Stack windows into a `(len(indices), seq_len + 1)` int64 array."""
        return np.stack([self.window(int(i)) for i in indices])


def _flat_tokens(reader: ShardReader) -> np.ndarray:
    """The whole `.bin` as one memory map (documents are stored back to back, in order)."""
    if reader.num_tokens == 0:
        return np.zeros(0, dtype=np.int64)
    return np.memmap(reader.bin_path, dtype=reader.dtype.newbyteorder("<"), mode="r")


@dataclass(frozen=True)
class SplitSize:
    """How much one split holds (from the manifest) and how many of its windows a run uses."""

    shards: int
    documents: int
    tokens: int
    windows: int
    windows_used: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for metrics and reports."""
        return asdict(self)


@dataclass
class ShardData:
    """The training and held-out streams of one shards directory, plus the order training reads them in."""

    train: TokenStream
    heldout: TokenStream
    vocab_size: int
    eos_id: int
    seed: int
    train_size: SplitSize
    heldout_size: SplitSize

    def permutation(self, epoch: int) -> np.ndarray:
        """Window order for one pass over the training stream; depends only on (seed, epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        return rng.permutation(self.train.num_windows)

    def sample_indices(self, first: int, count: int) -> np.ndarray:
        """Training window indices of global samples `[first, first + count)`, crossing epochs as needed."""
        n = self.train.num_windows
        out = np.empty(count, dtype=np.int64)
        done = 0
        while done < count:
            epoch, offset = divmod(first + done, n)
            take = min(count - done, n - offset)
            out[done : done + take] = self._cached_permutation(epoch)[offset : offset + take]
            done += take
        return out

    def _cached_permutation(self, epoch: int) -> np.ndarray:
        cache = self.__dict__.setdefault("_perm_cache", {})
        if epoch not in cache:
            cache.clear()
            cache[epoch] = self.permutation(epoch)
        return cache[epoch]

    def heldout_indices(self) -> np.ndarray:
        """The held-out windows every evaluation scores, in order, so each scores the same tokens."""
        return np.arange(self.heldout_size.windows_used, dtype=np.int64)


def _read_manifest(shards_dir: Path) -> ShardManifest:
    manifest_path = shards_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{manifest_path} does not exist; point training at a directory written by the shards stage"
        )
    manifest = ShardManifest.read(manifest_path)
    if not manifest.shards:
        raise ValueError(f"{manifest_path} lists no shards; there is nothing to train on")
    if not manifest.has_split(HELDOUT):
        raise ValueError(
            f"{manifest_path} has no held-out split, so there is nothing to evaluate on that training never "
            "saw; write the shards again with a held-out split: the write_shards stage's heldout_fraction "
            "parameter (write_shards_v3), e.g. `heldout_fraction: 0.01`"
        )
    return manifest


def _segments(shards_dir: Path, manifest: ShardManifest, entries: list[ShardEntry]) -> list[np.ndarray]:
    """Each shard's tokens as a memory map, checked against the manifest's count."""
    segments = [_flat_tokens(open_shard(manifest.format, shards_dir, e.bin_file)) for e in entries]
    for entry, seg in zip(entries, segments, strict=True):
        if len(seg) != entry.num_tokens:
            raise ValueError(
                f"{shards_dir / entry.bin_file}: {len(seg)} tokens on disk, manifest says {entry.num_tokens}; "
                "the shards directory is inconsistent, rewrite it"
            )
    return segments


def _split_stream(
    shards_dir: Path, manifest: ShardManifest, split: Split, seq_len: int, windows: int | None
) -> tuple[TokenStream, SplitSize]:
    """One split's token stream and size; `windows` caps the windows used (None: all of them)."""
    stream = TokenStream(
        _segments(shards_dir, manifest, manifest.split_shards(split)), seq_len, name=f"{shards_dir} ({split})"
    )
    totals = manifest.split_totals(split)
    used = stream.num_windows if windows is None else min(windows, stream.num_windows)
    size = SplitSize(totals.shards, totals.documents, totals.tokens, stream.num_windows, used)
    return stream, size


def open_shards(shards_dir: str | Path, *, seq_len: int, heldout_windows: int, seed: int) -> ShardData:
    """Open a shards directory's train and held-out shards as token streams, checked against the manifest."""
    shards_dir = Path(shards_dir)
    manifest = _read_manifest(shards_dir)
    train, train_size = _split_stream(shards_dir, manifest, TRAIN, seq_len, None)
    heldout, heldout_size = _split_stream(shards_dir, manifest, HELDOUT, seq_len, heldout_windows)
    if train.num_windows == 0:
        raise ValueError(
            f"{shards_dir}: the training shards hold {train.num_tokens} tokens, fewer than one window of "
            f"{seq_len + 1}; write more data or lower seq_len"
        )
    if heldout.num_windows == 0:
        fraction = manifest.heldout.fraction if manifest.heldout is not None else None
        raise ValueError(
            f"{shards_dir}: the held-out shards hold {heldout_size.tokens} tokens "
            f"({heldout_size.documents} documents), fewer than one window of {seq_len + 1}; write the shards "
            f"with a larger write_shards heldout_fraction (now {fraction}), or lower seq_len"
        )
    if heldout_size.windows_used < heldout_windows:
        logger.warning(
            "%s: the held-out shards hold %d windows of %d tokens, fewer than heldout_windows %d; "
            "evaluating on all %d",
            shards_dir,
            heldout.num_windows,
            seq_len,
            heldout_windows,
            heldout.num_windows,
        )
    return ShardData(
        train=train,
        heldout=heldout,
        vocab_size=manifest.tokenizer.vocab_size,
        eos_id=manifest.tokenizer.eos_id,
        seed=seed,
        train_size=train_size,
        heldout_size=heldout_size,
    )
