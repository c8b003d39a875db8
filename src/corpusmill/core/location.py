"""Where a finished run is read from: a local directory, or a copy on object storage.

Runs are written locally; users copy finished ones to object storage (`aws s3 sync runs/demo
s3://bucket/runs/demo`). Commands that read a finished run (`report`, `plan`, `verify`, `shards inspect`) take
either: a URI (`s3://`, `gs://`, any fsspec protocol) becomes a `UPath` (universal-pathlib: pathlib's API over
fsspec), so the same `/`, `is_file()`, `glob()`, `read_text()` and `open()` calls serve both; a local path
stays a plain `pathlib.Path`. Credentials and endpoints come from the environment, as for a run's inputs
(`AWS_ENDPOINT_URL_S3` and the usual AWS variables for S3-compatible stores).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
from fsspec.utils import get_protocol
from upath import UPath

RunPath = Path | UPath


_LOCAL_PROTOCOLS = frozenset({"file", "local"})


def is_uri(path: str | os.PathLike[str] | UPath) -> bool:
    """Whether `path` names a location fsspec reaches over a network (`s3://b/x`), not a local path
    (`file://` URIs are local)."""
    if isinstance(path, Path):
        return False
    if isinstance(path, UPath):
        return path.protocol not in _LOCAL_PROTOCOLS
    return get_protocol(os.fspath(path)) not in _LOCAL_PROTOCOLS


def run_path(path: str | os.PathLike[str] | UPath) -> RunPath:
    """`path` as a `pathlib.Path` when it is local, else as a `UPath`."""
    if isinstance(path, Path):
        return path
    if is_uri(path):
        return path if isinstance(path, UPath) else UPath(os.fspath(path))
    text = str(path) if isinstance(path, UPath) else os.fspath(path)
    return Path(text.removeprefix("file://"))


def ensure_dir(path: RunPath) -> None:
    """Create a local directory (and its parents); object storage has no directories to create."""
    if isinstance(path, Path):
        path.mkdir(parents=True, exist_ok=True)


def remove_tree(path: RunPath) -> None:
    """Delete a directory and everything under it (every object under the prefix); nothing if absent."""
    if isinstance(path, Path):
        if path.is_dir():
            shutil.rmtree(path)
        return
    if path.fs.exists(path.path):
        path.fs.rm(path.path, recursive=True)


def copy_file(source: RunPath, target: RunPath) -> None:
    """Copy a finished file so that `target` appears whole: a hard link (else a copy through a temporary and a
    rename) on a local disk, the store's own copy of an object on object storage (no bytes through here)."""
    if isinstance(source, Path) and isinstance(target, Path):
        from corpusmill.core.atomic import atomic_path

        with atomic_path(target) as tmp:
            tmp.unlink()  # the temporary name was reserved by creating the file; a link needs the name free
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
        return
    if not isinstance(source, Path) and not isinstance(target, Path) and source.fs is target.fs:
        source.fs.copy(source.path, target.path)
        return
    from corpusmill.core.atomic import atomic_path

    with atomic_path(target) as tmp, source.open("rb") as reading, open(tmp, "wb") as writing:
        shutil.copyfileobj(reading, writing, 1 << 20)


def open_parquet(path: RunPath | str) -> pq.ParquetFile:
    """A Parquet file for reading, local or on object storage (read through fsspec, by ranges)."""
    path = run_path(path)
    if isinstance(path, Path):
        return pq.ParquetFile(path)
    return pq.ParquetFile(path.fs.open(path.path, "rb"))
