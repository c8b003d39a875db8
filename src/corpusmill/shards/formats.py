"""The shard formats a run can write, and how to open a shard listed in a manifest whatever its format.

Megatron indexed datasets are the default (Megatron-LM, NeMo and corpusmill's own trainer read them);
datatrove's tokenized files are offered for nanotron users. Everything that reads shards goes through
`open_shard`, so adding a format means one writer, one reader and one line here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from corpusmill.core.location import RunPath, run_path
from corpusmill.shards.datatrove_format import DATA_SUFFIX, DatatroveReader, DatatroveWriter
from corpusmill.shards.megatron import MegatronReader, MegatronWriter

ShardFormat = Literal["megatron", "datatrove"]
MANIFEST_FORMAT_OF: dict[str, str] = {"megatron": "megatron-indexed", "datatrove": "datatrove-tokenized"}
SHARD_FORMAT_OF: dict[str, str] = {v: k for k, v in MANIFEST_FORMAT_OF.items()}
DTYPE_OF: dict[str, str] = {"megatron": "int32", "datatrove": "uint32"}

ShardReader = MegatronReader | DatatroveReader


def new_writer(fmt: str, prefix: Path) -> MegatronWriter:
    """A streaming writer for one shard at `prefix` in the given format."""
    if fmt == "megatron":
        return MegatronWriter(prefix, dtype=np.int32)
    if fmt == "datatrove":
        return DatatroveWriter(prefix)
    raise ValueError(f"unknown shard format {fmt!r}; allowed: {', '.join(MANIFEST_FORMAT_OF)}")


def shard_prefix(shards_dir: Path | RunPath, data_file: str) -> RunPath:
    """The prefix of a shard from its data file name as listed in a manifest (`a/x.bin` or `a/x.ds` -> `a/x`).

    `shards_dir` may be on object storage (a URI or `UPath`); the prefix is then there too.
    """
    path = run_path(shards_dir) / data_file
    suffix = DATA_SUFFIX if path.name.endswith(DATA_SUFFIX) else path.suffix
    return path.with_name(path.name[: len(path.name) - len(suffix)])


def open_shard(manifest_format: str, shards_dir: Path | RunPath, data_file: str) -> ShardReader:
    """Open a shard by its manifest format name (`megatron-indexed`, `datatrove-tokenized`) and data file."""
    fmt = SHARD_FORMAT_OF.get(manifest_format)
    if fmt is None:
        raise ValueError(f"unknown manifest format {manifest_format!r}; known: {', '.join(SHARD_FORMAT_OF)}")
    prefix = shard_prefix(shards_dir, data_file)
    return MegatronReader(prefix) if fmt == "megatron" else DatatroveReader(prefix)
