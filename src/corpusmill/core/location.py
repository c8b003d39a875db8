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
from pathlib import Path

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


def write_whole(path: RunPath, data: bytes) -> None:
    """Write one object in a single put: a store has no rename, and a reader sees the old object or the new."""
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    path.fs.pipe_file(path.path, data)
