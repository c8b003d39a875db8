"""Megatron-LM indexed datasets (`.bin` + `.idx`), written streaming and read by memory map.

The format is what Megatron-LM's `IndexedDataset` loads, so shards feed training with no conversion step:

    .idx  b"MMIDIDX\\x00\\x00" | uint64 version (1) | uint8 dtype code | uint64 N sequences
          | uint64 N+1 document indices | int32[N] sequence lengths | int64[N] byte offsets into .bin
          | int64[N+1] document indices (0..N: one sequence per document)
    .bin  every sequence's tokens back to back, little-endian

The writer streams tokens to disk as they arrive and keeps only the per-document lengths in memory, so a
shard of billions of tokens needs memory proportional to its document count. Both files are written under
temporary names and renamed into place only by `finalize()`; an exception or an abandoned writer leaves
nothing behind, so a shard that exists is complete. SHA-256 of the `.bin` is computed while writing, which
saves a second pass over the largest file.

The reader also takes a shard on object storage (a `UPath`, see `core/location.py`): the index is read whole
(it is small, like the writer's lengths) and each document's tokens by a ranged read of the `.bin`, through
one fsspec file per shard that buffers `REMOTE_BLOCK_SIZE` bytes, so memory stays bounded however big the
shard and a look at a few documents downloads little more than the index.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import struct
from array import array
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

from corpusmill.core.atomic import atomic_open, atomic_path, naming_errors, raise_naming
from corpusmill.core.location import RunPath, run_path

logger = logging.getLogger(__name__)

INDEX_MAGIC = b"MMIDIDX\x00\x00"
INDEX_VERSION = 1
_HEADER = struct.Struct("<9sQBQQ")  # magic, version, dtype code, sequence count, document count
HEADER_SIZE = _HEADER.size

# Megatron-LM's dtype codes.
DTYPE_CODES: dict[int, np.dtype] = {
    1: np.dtype(np.uint8),
    2: np.dtype(np.int8),
    3: np.dtype(np.int16),
    4: np.dtype(np.int32),
    5: np.dtype(np.int64),
    6: np.dtype(np.float64),
    7: np.dtype(np.float32),
    8: np.dtype(np.uint16),
}
_CODE_OF: dict[np.dtype, int] = {dtype: code for code, dtype in DTYPE_CODES.items()}
_MAX_SEQUENCE_LENGTH = np.iinfo(np.int32).max
# How much one ranged read of a shard on object storage fetches (and its file buffers) at most beyond the request.
REMOTE_BLOCK_SIZE = 8 << 20


def bin_path(prefix: str | Path | RunPath) -> RunPath:
    """The token file of a shard prefix (`shards/part-00000` -> `shards/part-00000.bin`)."""
    prefix = run_path(prefix)
    return prefix.with_name(prefix.name + ".bin")


def idx_path(prefix: str | Path | RunPath) -> RunPath:
    """The index file of a shard prefix."""
    prefix = run_path(prefix)
    return prefix.with_name(prefix.name + ".idx")


class RangedTokens:
    """A token file on object storage, sliced like the memory map of a local one: `tokens[a:b]` reads that range.

    The file is opened at the first read and kept open; fsspec buffers at most `REMOTE_BLOCK_SIZE` bytes ahead
    of what was asked, so reading every document in order costs a request per block, not per document.
    """

    def __init__(self, path: RunPath, dtype: np.dtype, num_bytes: int) -> None:
        self.path = path
        self.dtype = dtype
        self._length = num_bytes // dtype.itemsize
        self._handle: IO[bytes] | None = None

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice):
            raise TypeError(f"{self.path}: tokens are read by slices, not {type(key).__name__}")
        start, stop, step = key.indices(self._length)
        if step != 1:
            raise ValueError(f"{self.path}: tokens are read in contiguous ranges")
        if stop <= start:
            return np.zeros(0, dtype=self.dtype)
        if self._handle is None:
            self._handle = self.path.fs.open(self.path.path, "rb", block_size=REMOTE_BLOCK_SIZE)
        self._handle.seek(start * self.dtype.itemsize)
        wanted = (stop - start) * self.dtype.itemsize
        data = self._handle.read(wanted)
        if len(data) != wanted:
            raise OSError(
                f"{self.path}: {len(data)} bytes read where {wanted} were asked for; it changed while read"
            )
        return np.frombuffer(data, dtype=self.dtype)


def _read_head(path: RunPath, size: int) -> bytes:
    """The first `size` bytes of a file (of an object: that range alone)."""
    if isinstance(path, Path):
        with open(path, "rb") as handle:
            return handle.read(size)
    return path.fs.cat_file(path.path, start=0, end=size)


def read_array(path: RunPath, dtype: np.dtype | str) -> np.ndarray:
    """A whole file as an array: a memory map of a local file, the bytes of an object read in one request."""
    if not isinstance(path, Path):
        return np.frombuffer(path.read_bytes(), dtype=dtype)
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=dtype)  # mmap of an empty file is an error
    return np.memmap(path, dtype=dtype, mode="r")


def token_array(path: RunPath, dtype: np.dtype, num_bytes: int) -> np.ndarray | RangedTokens:
    """A shard's tokens, sliceable: a memory map of a local file, ranged reads of an object."""
    if num_bytes == 0:
        return np.zeros(0, dtype=dtype)  # mmap of an empty file is an error
    if isinstance(path, Path):
        return np.memmap(path, dtype=dtype, mode="r")
    return RangedTokens(path, dtype, num_bytes)


@dataclass(frozen=True)
class ShardInfo:
    """What one finished shard holds, enough to list and verify it in a manifest."""

    bin_path: Path
    idx_path: Path
    dtype: str
    num_documents: int
    num_tokens: int
    bin_bytes: int
    idx_bytes: int
    bin_sha256: str
    idx_sha256: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (paths as strings)."""
        data = asdict(self)
        data["bin_path"] = str(self.bin_path)
        data["idx_path"] = str(self.idx_path)
        return data


def _little_endian(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("<")


class MegatronWriter:
    """Writes one shard; use as a context manager, or call `finalize()` (success) / `abort()` (discard)."""

    def __init__(self, prefix: str | Path, dtype: np.dtype | type = np.int32) -> None:
        self.prefix = run_path(prefix)
        self.dtype = self._checked_dtype(np.dtype(dtype))
        self.data_path = self._data_path(self.prefix)
        self.index_path = self._index_path(self.prefix)
        self._limits = np.iinfo(self.dtype)
        self._lengths = array("i")
        self._num_tokens = 0
        self._bin_sha = hashlib.sha256()
        self._stack = contextlib.ExitStack()
        self._bin_tmp = self._stack.enter_context(atomic_path(self.data_path))
        # Kept open across add_document calls, hence no `with`.
        self._bin: IO[bytes] | None = open(self._bin_tmp, "wb")  # noqa: SIM115
        self._done = False

    def _checked_dtype(self, dtype: np.dtype) -> np.dtype:
        if dtype.kind not in "iu" or dtype.newbyteorder("=") not in _CODE_OF:
            raise ValueError(
                f"shard {self.prefix}: token dtype {dtype} is not one Megatron supports for tokens; "
                "use int32 (any vocabulary) or uint16 (vocabularies under 65,536)"
            )
        return dtype.newbyteorder("=")

    @staticmethod
    def _data_path(prefix: Path) -> Path:
        return bin_path(prefix)

    @staticmethod
    def _index_path(prefix: Path) -> Path:
        return idx_path(prefix)

    def _write_extra_files(self) -> None:
        """Files a format keeps beside its data and index (none for Megatron)."""

    @property
    def num_documents(self) -> int:
        """Documents added so far."""
        return len(self._lengths)

    @property
    def num_tokens(self) -> int:
        """Tokens added so far (lets a caller roll to a new shard before one grows too big)."""
        return self._num_tokens

    def add_document(self, tokens: np.ndarray | list[int]) -> None:
        """Append one document's tokens; they are on disk (buffered) when this returns."""
        if self._bin is None:
            raise RuntimeError(f"shard {self.prefix}: add_document after finalize/abort")
        arr = np.asarray(tokens)
        if arr.ndim != 1:
            raise ValueError(
                f"shard {self.prefix}: a document must be a 1-D token array, not shape {arr.shape}"
            )
        if arr.size and arr.dtype != self.dtype:
            if arr.dtype.kind not in "iu":
                raise ValueError(f"shard {self.prefix}: tokens must be integers, got dtype {arr.dtype}")
            low, high = int(arr.min()), int(arr.max())
            if low < self._limits.min or high > self._limits.max:
                raise ValueError(
                    f"shard {self.prefix}: token ids {low}..{high} do not fit {self.dtype}; "
                    "write this vocabulary with dtype=np.int32"
                )
        if arr.size > _MAX_SEQUENCE_LENGTH:
            raise ValueError(
                f"shard {self.prefix}: a document of {arr.size} tokens exceeds the int32 length field"
            )
        data = np.ascontiguousarray(arr, dtype=_little_endian(self.dtype)).tobytes()
        try:
            self._bin.write(data)
        except OSError as exc:
            raise_naming(exc, self.data_path)
        self._bin_sha.update(data)
        self._lengths.append(int(arr.size))
        self._num_tokens += int(arr.size)

    def _index_bytes(self) -> bytes:
        n = len(self._lengths)
        lengths = np.frombuffer(self._lengths, dtype=np.int32) if n else np.zeros(0, dtype=np.int32)
        pointers = np.zeros(n, dtype=np.int64)
        if n > 1:
            np.cumsum(lengths[:-1], dtype=np.int64, out=pointers[1:])
        pointers *= self.dtype.itemsize
        doc_index = np.arange(n + 1, dtype=np.int64)
        header = _HEADER.pack(INDEX_MAGIC, INDEX_VERSION, _CODE_OF[self.dtype], n, n + 1)
        return b"".join(
            [
                header,
                lengths.astype("<i4").tobytes(),
                pointers.astype("<i8").tobytes(),
                doc_index.astype("<i8").tobytes(),
            ]
        )

    def finalize(self) -> ShardInfo:
        """Write the index and move both files into place (data first, so an index implies its data file)."""
        if self._bin is None:
            raise RuntimeError(f"shard {self.prefix}: finalize called twice or after abort")
        bin_in_place = False
        try:
            with naming_errors(self.data_path):
                self._bin.flush()
                os.fsync(self._bin.fileno())
                self._bin.close()
            self._bin = None
            index = self._index_bytes()
            self._stack.close()  # renames the .bin into place
            bin_in_place = True
            self._write_extra_files()
            with atomic_open(self.index_path, "wb") as handle:
                handle.write(index)
        except BaseException:
            if bin_in_place:
                self.data_path.unlink(missing_ok=True)  # a data file without its index is no shard
            self.abort()
            raise
        self._done = True
        info = ShardInfo(
            bin_path=self.data_path,
            idx_path=self.index_path,
            dtype=str(self.dtype),
            num_documents=len(self._lengths),
            num_tokens=self._num_tokens,
            bin_bytes=self._num_tokens * self.dtype.itemsize,
            idx_bytes=len(index),
            bin_sha256=self._bin_sha.hexdigest(),
            idx_sha256=hashlib.sha256(index).hexdigest(),
        )
        logger.debug(
            "wrote shard %s: %d documents, %d tokens", self.prefix, info.num_documents, info.num_tokens
        )
        return info

    def abort(self) -> None:
        """Discard everything written so far; safe to call more than once."""
        if self._bin is not None:
            self._bin.close()
            self._bin = None
        if not self._done:
            # Throwing into atomic_path makes it delete its temporary file instead of renaming it.
            self._stack.__exit__(_Aborted, _Aborted(), None)
            self._done = True

    def __enter__(self) -> MegatronWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif self._bin is not None:
            self.finalize()

    def __del__(self) -> None:
        if getattr(self, "_bin", None) is not None:
            self.abort()


class _Aborted(Exception):
    """Thrown into the temporary-file context to discard an unfinished shard."""


class MegatronFormatError(ValueError):
    """A shard file is not a valid Megatron indexed dataset."""


class MegatronReader:
    """Random access to a shard's documents through memory maps, or ranged reads on object storage (nothing is
    read until indexed)."""

    def __init__(self, prefix: str | Path | RunPath) -> None:
        self.prefix = run_path(prefix)
        self.idx_path = idx_path(self.prefix)
        self.bin_path = bin_path(self.prefix)
        for path in (self.idx_path, self.bin_path):
            if not path.is_file():
                raise FileNotFoundError(f"Megatron shard file {path} does not exist")
        self._parse_index()
        bin_size = self.bin_path.stat().st_size
        expected = self.num_tokens * self.dtype.itemsize
        if bin_size != expected:
            raise MegatronFormatError(
                f"{self.bin_path}: {bin_size} bytes, but {self.idx_path} describes {self.num_tokens} "
                f"{self.dtype} tokens ({expected} bytes); the pair is truncated or mismatched, "
                "rewrite the shard"
            )
        self._tokens = token_array(self.bin_path, _little_endian(self.dtype), bin_size)

    def _fail(self, what: str) -> MegatronFormatError:
        return MegatronFormatError(
            f"{self.idx_path}: {what}; it is not a valid Megatron .idx file, rewrite the shard"
        )

    def _parse_index(self) -> None:
        size = self.idx_path.stat().st_size
        if size < HEADER_SIZE:
            raise self._fail(f"only {size} bytes, shorter than the {HEADER_SIZE}-byte header")
        magic, version, code, n_seq, n_doc = _HEADER.unpack(_read_head(self.idx_path, HEADER_SIZE))
        if magic != INDEX_MAGIC:
            raise self._fail(f"magic bytes {magic!r}, expected {INDEX_MAGIC!r}")
        if version != INDEX_VERSION:
            raise self._fail(f"version {version}, only version {INDEX_VERSION} is supported")
        if code not in DTYPE_CODES:
            raise self._fail(f"unknown dtype code {code} (known: {sorted(DTYPE_CODES)})")
        self.dtype = DTYPE_CODES[code]
        expected = HEADER_SIZE + 4 * n_seq + 8 * n_seq + 8 * n_doc
        if size != expected:
            raise self._fail(
                f"{size} bytes, but a header of {n_seq} sequences and {n_doc} documents needs {expected}"
            )
        index = read_array(self.idx_path, np.uint8)
        offset = HEADER_SIZE
        self._lengths = index[offset : offset + 4 * n_seq].view("<i4")
        offset += 4 * n_seq
        self._pointers = index[offset : offset + 8 * n_seq].view("<i8")
        offset += 8 * n_seq
        self.document_indices = index[offset : offset + 8 * n_doc].view("<i8")
        if n_seq and (self._lengths < 0).any():
            raise self._fail("negative sequence lengths")
        self.num_tokens = int(self._lengths.sum(dtype=np.int64))
        expected_pointers = np.zeros(n_seq, dtype=np.int64)
        if n_seq > 1:
            np.cumsum(self._lengths[:-1], dtype=np.int64, out=expected_pointers[1:])
        if not np.array_equal(self._pointers, expected_pointers * self.dtype.itemsize):
            raise self._fail("sequence pointers do not match the sequence lengths")

    def __len__(self) -> int:
        return len(self._lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        n = len(self._lengths)
        if not -n <= i < n:
            raise IndexError(f"{self.prefix}: document {i} out of range for {n} documents")
        i %= n
        start = int(self._pointers[i]) // self.dtype.itemsize
        return self._tokens[start : start + int(self._lengths[i])]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    @property
    def sequence_lengths(self) -> np.ndarray:
        """Tokens per document, as stored in the index."""
        return self._lengths
