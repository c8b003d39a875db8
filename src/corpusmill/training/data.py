"""Packed fixed-length training windows read straight from memory-mapped Megatron shards.

Documents are concatenated in manifest order (each already ends with EOS, so no separator is added) and
the resulting token stream is cut into windows of `seq_len + 1` tokens with a stride of `seq_len`: input
positions `[0, seq_len)` predict `[1, seq_len]`, and consecutive windows share only their boundary token,
so every token is predicted exactly once. Nothing is copied into RAM: a window is one or two slices of
`np.memmap`s (two when it straddles a shard boundary).

The held-out stream is disjoint from the training stream: with several shards it is the whole last shard;
with one shard it is the tail of it, exactly `heldout_windows` windows long. Training order is a seeded
permutation per epoch, so sample `g` of a run is a pure function of (seed, g) and a resumed run only needs
the count of samples already consumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpusmill.shards.formats import ShardReader, open_shard
from corpusmill.shards.manifest import ShardManifest
from corpusmill.shards.writer import MANIFEST_NAME


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


@dataclass
class ShardData:
    """The training and held-out streams of one shards directory, plus the order training reads them in."""

    train: TokenStream
    heldout: TokenStream
    vocab_size: int
    eos_id: int
    seed: int

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

    def heldout_indices(self, count: int) -> np.ndarray:
        """The first `count` held-out windows, in order, so every evaluation scores the same tokens."""
        return np.arange(min(count, self.heldout.num_windows), dtype=np.int64)


def open_shards(shards_dir: str | Path, *, seq_len: int, heldout_windows: int, seed: int) -> ShardData:
    """Open a shards directory's manifest and memory maps and split them into train and held-out."""
    shards_dir = Path(shards_dir)
    manifest_path = shards_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{manifest_path} does not exist; point training at a directory written by the shards stage"
        )
    manifest = ShardManifest.read(manifest_path)
    if not manifest.shards:
        raise ValueError(f"{manifest_path} lists no shards; there is nothing to train on")
    segments = [_flat_tokens(open_shard(manifest.format, shards_dir, e.bin_file)) for e in manifest.shards]
    for entry, seg in zip(manifest.shards, segments, strict=True):
        if len(seg) != entry.num_tokens:
            raise ValueError(
                f"{shards_dir / entry.bin_file}: {len(seg)} tokens on disk, manifest says {entry.num_tokens}; "
                "the shards directory is inconsistent, rewrite it"
            )
    if len(segments) > 1:
        train = TokenStream(segments[:-1], seq_len, name=f"{shards_dir} (train)")
        heldout = TokenStream(segments[-1:], seq_len, name=f"{shards_dir} (held-out last shard)")
    else:
        tokens = segments[0]
        cut = len(tokens) - heldout_windows * seq_len - 1
        if cut < seq_len + 1:
            raise ValueError(
                f"{shards_dir}: one shard of {len(tokens)} tokens is too small to hold out {heldout_windows} "
                f"windows of {seq_len} tokens and still train; write more data, or lower heldout_windows/seq_len"
            )
        train = TokenStream([tokens[:cut]], seq_len, name=f"{shards_dir} (train)")
        heldout = TokenStream([tokens[cut:]], seq_len, name=f"{shards_dir} (held-out tail)")
    if train.num_windows == 0:
        raise ValueError(
            f"{shards_dir}: the training shards hold {train.num_tokens} tokens, fewer than one window of "
            f"{seq_len + 1}; write more data or lower seq_len"
        )
    if heldout.num_windows == 0:
        raise ValueError(
            f"{shards_dir}: the held-out shard holds {heldout.num_tokens} tokens, fewer than one window of "
            f"{seq_len + 1}; write more data or lower seq_len"
        )
    return ShardData(
        train=train,
        heldout=heldout,
        vocab_size=manifest.tokenizer.vocab_size,
        eos_id=manifest.tokenizer.eos_id,
        seed=seed,
    )
