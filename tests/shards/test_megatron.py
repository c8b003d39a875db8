"""Megatron shards: exact on-disk bytes, round trips, atomicity, and clear errors on damaged files."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from corpusmill.shards.manifest import ShardEntry, ShardManifest, sha256_file
from corpusmill.shards.megatron import MegatronFormatError, MegatronReader, MegatronWriter


def _expected_idx(lengths: list[int], dtype_code: int, itemsize: int) -> bytes:
    """The .idx bytes as Megatron-LM's IndexedDataset lays them out, built field by field."""
    n = len(lengths)
    out = b"MMIDIDX\x00\x00"
    out += struct.pack("<Q", 1)
    out += struct.pack("<B", dtype_code)
    out += struct.pack("<Q", n)
    out += struct.pack("<Q", n + 1)
    out += struct.pack(f"<{n}i", *lengths)
    pointer, pointers = 0, []
    for length in lengths:
        pointers.append(pointer)
        pointer += length * itemsize
    out += struct.pack(f"<{n}q", *pointers)
    out += struct.pack(f"<{n + 1}q", *range(n + 1))
    return out


def test_header_and_files_are_byte_exact(tmp_path: Path) -> None:
    docs = [[151643], [1, 2, 3], [70000, 5]]
    with MegatronWriter(tmp_path / "s") as writer:
        for doc in docs:
            writer.add_document(doc)
    assert (tmp_path / "s.idx").read_bytes() == _expected_idx([1, 3, 2], dtype_code=4, itemsize=4)
    flat = [tok for doc in docs for tok in doc]
    assert (tmp_path / "s.bin").read_bytes() == struct.pack(f"<{len(flat)}i", *flat)


def test_uint16_shards_use_code_8(tmp_path: Path) -> None:
    writer = MegatronWriter(tmp_path / "u", dtype=np.uint16)
    writer.add_document(np.array([1, 65535], dtype=np.int64))
    writer.add_document([7])
    info = writer.finalize()
    assert (tmp_path / "u.idx").read_bytes() == _expected_idx([2, 1], dtype_code=8, itemsize=2)
    assert (tmp_path / "u.bin").read_bytes() == struct.pack("<3H", 1, 65535, 7)
    assert info.bin_bytes == 6
    reader = MegatronReader(tmp_path / "u")
    assert reader.dtype == np.uint16
    assert reader[0].tolist() == [1, 65535]


def test_uint16_rejects_ids_that_do_not_fit(tmp_path: Path) -> None:
    writer = MegatronWriter(tmp_path / "u", dtype=np.uint16)
    with pytest.raises(ValueError, match="do not fit"):
        writer.add_document([151643])
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_round_trip_and_shard_info(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 151_665, size=int(n), dtype=np.int64) for n in rng.integers(1, 500, size=40)]
    with MegatronWriter(tmp_path / "part-00000") as writer:
        for doc in docs:
            writer.add_document(doc)
    with pytest.raises(RuntimeError, match="finalize called twice"):
        writer.finalize()  # the context manager already finalised it
    reader = MegatronReader(tmp_path / "part-00000")
    assert len(reader) == len(docs)
    assert reader.num_tokens == sum(len(d) for d in docs)
    for got, want in zip(reader, docs, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(reader[-1], docs[-1])
    with pytest.raises(IndexError):
        reader[len(docs)]


def test_finalize_reports_sizes_and_hashes(tmp_path: Path) -> None:
    writer = MegatronWriter(tmp_path / "s")
    writer.add_document(np.arange(10, dtype=np.int32))
    writer.add_document([])
    info = writer.finalize()
    assert info.num_documents == 2
    assert info.num_tokens == 10
    assert info.bin_bytes == (tmp_path / "s.bin").stat().st_size == 40
    assert info.idx_bytes == (tmp_path / "s.idx").stat().st_size
    assert info.bin_sha256 == hashlib.sha256((tmp_path / "s.bin").read_bytes()).hexdigest()
    assert info.idx_sha256 == sha256_file(tmp_path / "s.idx")
    reader = MegatronReader(tmp_path / "s")
    assert reader[1].tolist() == []


def test_empty_shard(tmp_path: Path) -> None:
    info = MegatronWriter(tmp_path / "empty").finalize()
    assert (info.num_documents, info.num_tokens, info.bin_bytes) == (0, 0, 0)
    assert (tmp_path / "empty.idx").read_bytes() == _expected_idx([], dtype_code=4, itemsize=4)
    reader = MegatronReader(tmp_path / "empty")
    assert len(reader) == 0
    assert reader.num_tokens == 0
    assert list(reader) == []


def test_files_appear_only_on_finalize_and_exceptions_leave_nothing(tmp_path: Path) -> None:
    writer = MegatronWriter(tmp_path / "s")
    writer.add_document([1, 2, 3])
    assert not (tmp_path / "s.bin").exists()
    assert not (tmp_path / "s.idx").exists()
    writer.finalize()
    assert (tmp_path / "s.bin").exists() and (tmp_path / "s.idx").exists()

    with pytest.raises(RuntimeError, match="boom"), MegatronWriter(tmp_path / "t") as failing:
        failing.add_document([4, 5])
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.bin", "s.idx"]


def test_tokens_are_streamed_to_disk_before_finalize(tmp_path: Path) -> None:
    writer = MegatronWriter(tmp_path / "s")
    for _ in range(64):
        writer.add_document(np.ones(4096, dtype=np.int32))
    temporaries = [p for p in tmp_path.iterdir() if p.name.startswith(".s.bin.")]
    assert len(temporaries) == 1
    assert temporaries[0].stat().st_size >= 64 * 4096 * 4 - (1 << 16)  # at most one buffer not yet flushed
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def _valid_shard(tmp_path: Path) -> Path:
    with MegatronWriter(tmp_path / "s") as writer:
        writer.add_document([1, 2, 3])
        writer.add_document([4])
    return tmp_path / "s"


@pytest.mark.parametrize(
    ("offset", "patch", "message"),
    [
        (0, b"XXIDIDX\x00\x00", "magic bytes"),
        (9, struct.pack("<Q", 2), "version 2"),
        (17, struct.pack("<B", 99), "unknown dtype code 99"),
        (18, struct.pack("<Q", 5), "header of 5 sequences"),
    ],
)
def test_corrupted_header_gives_a_clear_error(
    tmp_path: Path, offset: int, patch: bytes, message: str
) -> None:
    prefix = _valid_shard(tmp_path)
    data = bytearray((tmp_path / "s.idx").read_bytes())
    data[offset : offset + len(patch)] = patch
    (tmp_path / "s.idx").write_bytes(bytes(data))
    with pytest.raises(MegatronFormatError, match=message) as excinfo:
        MegatronReader(prefix)
    assert str(tmp_path / "s.idx") in str(excinfo.value)


def test_truncated_files_give_clear_errors(tmp_path: Path) -> None:
    prefix = _valid_shard(tmp_path)
    (tmp_path / "s.bin").write_bytes((tmp_path / "s.bin").read_bytes()[:-4])
    with pytest.raises(MegatronFormatError, match="truncated") as excinfo:
        MegatronReader(prefix)
    assert str(tmp_path / "s.bin") in str(excinfo.value)

    (tmp_path / "s.idx").write_bytes(b"MMIDIDX")
    with pytest.raises(MegatronFormatError, match="shorter than"):
        MegatronReader(prefix)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.idx"):
        MegatronReader(tmp_path / "nope")


def test_pointer_corruption_is_detected(tmp_path: Path) -> None:
    prefix = _valid_shard(tmp_path)
    data = bytearray((tmp_path / "s.idx").read_bytes())
    pointers_at = 33 + 2 * 4
    data[pointers_at + 8 : pointers_at + 16] = struct.pack("<q", 4)  # second document should start at byte 12
    (tmp_path / "s.idx").write_bytes(bytes(data))
    with pytest.raises(MegatronFormatError, match="pointers"):
        MegatronReader(prefix)


def test_writer_rejects_non_integer_or_nested_tokens(tmp_path: Path) -> None:
    writer = MegatronWriter(tmp_path / "s")
    with pytest.raises(ValueError, match="integers"):
        writer.add_document(np.array([1.5, 2.0]))
    with pytest.raises(ValueError, match="1-D"):
        writer.add_document(np.zeros((2, 2), dtype=np.int32))
    writer.abort()
    with pytest.raises(ValueError, match="dtype"):
        MegatronWriter(tmp_path / "f", dtype=np.float32)


def test_manifest_verify_finds_missing_resized_and_altered_files(tmp_path: Path) -> None:
    infos = []
    for name in ("b-00000", "a-00000"):
        with MegatronWriter(tmp_path / name) as writer:
            writer.add_document([1, 2, 3])
        infos.append(MegatronReader(tmp_path / name))
    entries = [
        ShardEntry(
            name=name,
            bin_file=f"{name}.bin",
            idx_file=f"{name}.idx",
            bin_bytes=(tmp_path / f"{name}.bin").stat().st_size,
            idx_bytes=(tmp_path / f"{name}.idx").stat().st_size,
            bin_sha256=sha256_file(tmp_path / f"{name}.bin"),
            idx_sha256=sha256_file(tmp_path / f"{name}.idx"),
            num_tokens=3,
            num_documents=1,
        )
        for name in ("b-00000", "a-00000")
    ]
    manifest = ShardManifest.from_shards(entries)
    assert [s.name for s in manifest.shards] == ["a-00000", "b-00000"]
    assert (manifest.total_tokens, manifest.total_documents) == (6, 2)
    assert manifest.tokenizer.name == "qwen2.5"
    assert (manifest.tokenizer.vocab_size, manifest.tokenizer.eos_id) == (151665, 151643)
    assert manifest.verify(tmp_path) == []

    manifest.write(tmp_path / "manifest.json")
    assert ShardManifest.read(tmp_path / "manifest.json") == manifest

    (tmp_path / "a-00000.idx").unlink()
    (tmp_path / "b-00000.bin").write_bytes(b"\x00" * 12)  # same size, different content
    (tmp_path / "a-00000.bin").write_bytes(b"\x00" * 4)
    problems = manifest.verify(tmp_path)
    assert len(problems) == 3
    assert any("a-00000.idx: missing" in p for p in problems)
    assert any("a-00000.bin: size 4 bytes" in p for p in problems)
    assert any("b-00000.bin: sha256" in p for p in problems)
    assert len(manifest.verify(tmp_path, check_hashes=False)) == 2


def test_manifest_rejects_inconsistent_totals_and_bad_files(tmp_path: Path) -> None:
    entry = {
        "name": "a",
        "bin_file": "a.bin",
        "idx_file": "a.idx",
        "bin_bytes": 4,
        "idx_bytes": 4,
        "bin_sha256": "0" * 64,
        "idx_sha256": "0" * 64,
        "num_tokens": 1,
        "num_documents": 1,
    }
    with pytest.raises(ValueError, match="totals"):
        ShardManifest(shards=[ShardEntry(**entry)], total_tokens=2, total_documents=1)
    with pytest.raises(ValueError, match="relative"):
        ShardManifest.from_shards([ShardEntry(**{**entry, "bin_file": "../a.bin"})])
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match=r"manifest\.json"):
        ShardManifest.read(tmp_path / "manifest.json")


def test_failure_while_writing_the_index_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import corpusmill.shards.megatron as megatron

    def broken_open(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(megatron, "atomic_open", broken_open)
    writer = MegatronWriter(tmp_path / "s")
    writer.add_document([1, 2])
    with pytest.raises(OSError, match="disk full"):
        writer.finalize()
    assert list(tmp_path.iterdir()) == []
