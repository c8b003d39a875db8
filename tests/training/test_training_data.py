"""Packed windows over memory-mapped shards: exact contents, deterministic order, disjoint held-out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corpusmill.shards.manifest import HeldoutInfo, ShardEntry, ShardManifest
from corpusmill.shards.megatron import MegatronWriter
from corpusmill.training.data import open_shards


def write_shards(out: Path, shards: list[list[np.ndarray]], splits: list[str] | None = None) -> None:
    """Write each list of documents as one shard of the given split (default: the last held out), plus the manifest."""
    splits = splits or ["train"] * (len(shards) - 1) + ["heldout"]
    entries = []
    for number, (docs, split) in enumerate(zip(shards, splits, strict=True)):
        writer = MegatronWriter(out / f"{'shard' if split == 'train' else 'heldout'}-{number:05d}")
        for doc in docs:
            writer.add_document(doc)
        entries.append(ShardEntry.from_info(writer.finalize(), out, split))
    heldout = HeldoutInfo(fraction=0.1, seed=0) if "heldout" in splits else None
    ShardManifest.from_shards(entries, heldout=heldout).write(out / "manifest.json")


def split_docs(tokens: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    return np.split(tokens, np.cumsum(sizes)[:-1])


def test_windows_are_consecutive_slices_of_the_concatenated_stream(tmp_path: Path) -> None:
    # Token value == position in the stream, so a window's contents say where it came from.
    stream = np.arange(1000, dtype=np.int32)
    write_shards(
        tmp_path,
        [split_docs(stream[:370], [100, 270]), split_docs(stream[370:800], [30, 400]), [stream[800:]]],
    )
    data = open_shards(tmp_path, seq_len=16, heldout_windows=4, seed=0)
    # Two train shards (800 tokens) then the last shard held out (200 tokens).
    assert data.train.num_tokens == 800 and data.heldout.num_tokens == 200
    assert data.train.num_windows == (800 - 1) // 16
    for i in range(data.train.num_windows):
        np.testing.assert_array_equal(data.train.window(i), stream[i * 16 : i * 16 + 17])
    # Window 23 spans tokens 368..384, straddling the first shard boundary at 370.
    np.testing.assert_array_equal(data.train.window(23), np.arange(368, 385))
    np.testing.assert_array_equal(data.heldout.window(0), stream[800:817])
    assert data.train.batch([3, 1]).shape == (2, 17)
    with pytest.raises(IndexError, match="window 49 out of range"):
        data.train.window(49)


def test_training_reads_train_shards_and_evaluation_the_held_out_ones(tmp_path: Path) -> None:
    # The held-out shard sorts first by name and sits between training shards in the manifest: only its split
    # decides where it goes, and evaluation never cuts into a training shard.
    stream = np.arange(1000, dtype=np.int32)
    write_shards(
        tmp_path,
        [split_docs(stream[:300], [100, 200]), [stream[300:500]], split_docs(stream[500:], [250, 250])],
        splits=["train", "heldout", "train"],
    )
    data = open_shards(tmp_path, seq_len=10, heldout_windows=5, seed=0)
    train_tokens = np.concatenate([data.train.window(i) for i in range(data.train.num_windows)])
    heldout_tokens = np.concatenate([data.heldout.window(i) for i in range(data.heldout.num_windows)])
    np.testing.assert_array_equal(np.unique(heldout_tokens), np.arange(300, 300 + 19 * 10 + 1))
    assert not np.intersect1d(train_tokens, np.arange(300, 500)).size
    assert data.train.num_tokens == 800 and data.heldout.num_tokens == 200
    # Evaluation scores heldout_windows windows, from the start of the held-out stream.
    np.testing.assert_array_equal(data.heldout_indices(), np.arange(5))
    assert data.heldout_size.to_dict() == {
        "shards": 1,
        "documents": 1,
        "tokens": 200,
        "windows": 19,
        "windows_used": 5,
    }
    assert (data.train_size.shards, data.train_size.documents, data.train_size.tokens) == (2, 4, 800)


def test_order_is_a_seeded_permutation_that_crosses_epochs(tmp_path: Path) -> None:
    stream = np.arange(2000, dtype=np.int32)
    write_shards(tmp_path, [[stream], [stream[:100]]])
    a = open_shards(tmp_path, seq_len=8, heldout_windows=2, seed=7)
    b = open_shards(tmp_path, seq_len=8, heldout_windows=2, seed=7)
    c = open_shards(tmp_path, seq_len=8, heldout_windows=2, seed=8)
    n = a.train.num_windows
    first_epoch = a.sample_indices(0, n)
    assert sorted(first_epoch.tolist()) == list(range(n))
    assert not np.array_equal(first_epoch, np.arange(n))
    np.testing.assert_array_equal(first_epoch, b.sample_indices(0, n))
    assert not np.array_equal(first_epoch, c.sample_indices(0, n))
    # Reading in pieces (as a resumed run does) gives the same sequence, across the epoch boundary too.
    whole = a.sample_indices(0, 2 * n + 5)
    pieces = np.concatenate([b.sample_indices(start, 7) for start in range(0, 2 * n + 5, 7)])[: 2 * n + 5]
    np.testing.assert_array_equal(whole, pieces)
    assert sorted(whole[n : 2 * n].tolist()) == list(range(n))
    assert not np.array_equal(whole[:n], whole[n : 2 * n])


def test_too_few_held_out_tokens_is_a_clear_error(tmp_path: Path) -> None:
    write_shards(tmp_path, [[np.arange(500, dtype=np.int32)], [np.arange(6, dtype=np.int32)]])
    with pytest.raises(
        ValueError,
        match=r"held-out shards hold 6 tokens \(1 documents\), fewer than one window of 9.*heldout_fraction",
    ):
        open_shards(tmp_path, seq_len=8, heldout_windows=10, seed=0)


def test_fewer_held_out_windows_than_asked_uses_them_all(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_shards(tmp_path, [[np.arange(500, dtype=np.int32)], [np.arange(30, dtype=np.int32)]])
    data = open_shards(tmp_path, seq_len=8, heldout_windows=10, seed=0)
    assert data.heldout_size.windows == data.heldout_size.windows_used == 3
    assert "fewer than heldout_windows 10" in caplog.text


def test_shards_without_a_held_out_split_are_refused(tmp_path: Path) -> None:
    write_shards(
        tmp_path, [[np.arange(500, dtype=np.int32)], [np.arange(500, dtype=np.int32)]], ["train", "train"]
    )
    with pytest.raises(
        ValueError, match=r"manifest\.json has no held-out split.*write_shards.*heldout_fraction"
    ):
        open_shards(tmp_path, seq_len=8, heldout_windows=1, seed=0)


def test_too_little_training_data_is_a_clear_error(tmp_path: Path) -> None:
    write_shards(tmp_path, [[np.arange(5, dtype=np.int32)], [np.arange(500, dtype=np.int32)]])
    with pytest.raises(ValueError, match="training shards hold 5 tokens"):
        open_shards(tmp_path, seq_len=8, heldout_windows=1, seed=0)


def test_missing_manifest_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"manifest\.json does not exist"):
        open_shards(tmp_path, seq_len=8, heldout_windows=1, seed=0)
