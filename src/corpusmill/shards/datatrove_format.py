"""datatrove's tokenized-file format (`.ds` + `.ds.index` + `.ds.metadata`), for teams that train with nanotron.

The layout is the one datatrove's `DocumentTokenizer` writes and its `DatatroveFileDataset` reads:

    <name>.ds           every document's tokens back to back, little-endian uint32 (4-byte tokens, as any
                        vocabulary over 65,536 ids needs)
    <name>.ds.index     uint64 little-endian: the end offset (in tokens) of each document
    <name>.ds.metadata  text: "<tokenizer>|<token bytes>", the token count, and the count in human units

The writer reuses the Megatron writer's streaming and atomic publication and differs only in file names, token
type and index layout, so both formats share one tested code path for the part that can lose data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from corpusmill.core.atomic import atomic_open
from corpusmill.core.location import RunPath, run_path
from corpusmill.shards.megatron import MegatronFormatError, MegatronWriter, read_array, token_array
from corpusmill.shards.tokenizer import TOKENIZER_NAME

DATA_SUFFIX = ".ds"
INDEX_SUFFIX = ".ds.index"
METADATA_SUFFIX = ".ds.metadata"
TOKEN_DTYPE = np.dtype("<u4")


def _with_suffix(prefix: RunPath, suffix: str) -> RunPath:
    return prefix.with_name(prefix.name + suffix)


def _human(count: int) -> str:
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return str(count)


class DatatroveWriter(MegatronWriter):
    """Writes one `.ds` file with its index and metadata; same streaming and atomicity as `MegatronWriter`."""

    def __init__(self, prefix: str | Path, tokenizer_name: str = TOKENIZER_NAME) -> None:
        self.tokenizer_name = tokenizer_name
        super().__init__(prefix, dtype=np.uint32)

    def _checked_dtype(self, dtype: np.dtype) -> np.dtype:
        if dtype.newbyteorder("=") != np.dtype(np.uint32):
            raise ValueError(f"shard {self.prefix}: datatrove files are written with 4-byte tokens (uint32)")
        return dtype.newbyteorder("=")

    @staticmethod
    def _data_path(prefix: Path) -> Path:
        return _with_suffix(prefix, DATA_SUFFIX)

    @staticmethod
    def _index_path(prefix: Path) -> Path:
        return _with_suffix(prefix, INDEX_SUFFIX)

    def _index_bytes(self) -> bytes:
        lengths = (
            np.frombuffer(self._lengths, dtype=np.int32) if len(self._lengths) else np.zeros(0, np.int32)
        )
        return np.cumsum(lengths, dtype=np.uint64).astype("<u8").tobytes()

    def _write_extra_files(self) -> None:
        with atomic_open(_with_suffix(self.prefix, METADATA_SUFFIX), "w", encoding="utf-8") as handle:
            handle.write(
                f"{self.tokenizer_name}|{TOKEN_DTYPE.itemsize}\n{self.num_tokens}\n{_human(self.num_tokens)}"
            )


class DatatroveReader:
    """Random access to a `.ds` file's documents through memory maps (ranged reads on object storage), with the
    same API as `MegatronReader`."""

    def __init__(self, prefix: str | Path | RunPath) -> None:
        self.prefix = run_path(prefix)
        self.bin_path = _with_suffix(self.prefix, DATA_SUFFIX)
        self.idx_path = _with_suffix(self.prefix, INDEX_SUFFIX)
        self.dtype = TOKEN_DTYPE
        for path in (self.bin_path, self.idx_path):
            if not path.is_file():
                raise FileNotFoundError(f"datatrove shard file {path} does not exist")
        index_size = self.idx_path.stat().st_size
        if index_size % 8:
            raise self._fail(f"{index_size} bytes, not a whole number of uint64 document ends")
        self._ends = read_array(self.idx_path, "<u8").astype(np.int64)
        data_size = self.bin_path.stat().st_size
        if data_size % TOKEN_DTYPE.itemsize:
            raise self._fail(f"{self.bin_path} holds {data_size} bytes, not a whole number of 4-byte tokens")
        self.num_tokens = data_size // TOKEN_DTYPE.itemsize
        if len(self._ends) and (np.any(np.diff(self._ends) < 0) or self._ends[0] < 0):
            raise self._fail("document ends are not increasing")
        last = int(self._ends[-1]) if len(self._ends) else 0
        if last != self.num_tokens:
            raise self._fail(
                f"the last document ends at token {last}, but the data file holds {self.num_tokens}"
            )
        self._starts = np.concatenate([[0], self._ends[:-1]]).astype(np.int64)
        self._tokens = token_array(self.bin_path, TOKEN_DTYPE, data_size)

    def _fail(self, what: str) -> MegatronFormatError:
        return MegatronFormatError(f"{self.idx_path}: {what}; rewrite the shard")

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> np.ndarray:
        n = len(self._ends)
        if not -n <= i < n:
            raise IndexError(f"{self.prefix}: document {i} out of range for {n} documents")
        i %= n
        return self._tokens[int(self._starts[i]) : int(self._ends[i])]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    @property
    def sequence_lengths(self) -> np.ndarray:
        """Tokens per document, from the index."""
        return (self._ends - self._starts).astype(np.int32)
