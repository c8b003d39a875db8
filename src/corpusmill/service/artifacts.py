"""A run's files as the service hands them out: the manifest's listing, single files, the report.

A run directory is a local directory or a prefix on object storage (`s3://bucket/runs/demo/run-000001`, when
the service's runs root is a URI); `run_location` gives either with pathlib's API. The service reads
directories that jobs keep writing to, so on object storage its reads never use a cached listing: a marker or
a `manifest.json` put a second ago is seen at once.

Only regular files inside the run directory are ever served. Locally, the requested path is joined to the run
directory and resolved (which follows symlinks and removes `..`), and the result must still lie inside the
resolved run directory; an absolute path, a `..` escape or a symlink pointing out all fail that test and look
exactly like a missing file (404), so the answer says nothing about what exists outside. On object storage,
where keys are plain names and nothing resolves, a path with an empty, `.` or `..` segment is refused outright.
A file on object storage is streamed to the client in bounded ranges, never read whole.
"""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.responses import FileResponse, Response, StreamingResponse
from upath import UPath

from corpusmill.core.location import RunPath, run_path

STREAM_CHUNK = 4 << 20  # bytes per ranged read of an object being downloaded
WHOLE_FILE_BYTES = 1 << 20  # local files up to this size are sent from memory in one piece


class ArtifactMissing(LookupError):
    """The run has no such file (or the path is not allowed, which looks the same)."""


def run_location(run_dir: str | os.PathLike[str] | UPath) -> RunPath:
    """A run directory (or any path in one) as the service reads it: a local `Path`, or a `UPath` whose reads
    always ask the store (no cached listings, which would hide objects written since)."""
    path = run_path(run_dir)
    if isinstance(path, Path) or path.storage_options.get("use_listings_cache") is False:
        return path
    return UPath(str(path), **{**path.storage_options, "use_listings_cache": False})


def safe_file(base: str | os.PathLike[str] | UPath, relative: str) -> RunPath:
    """The regular file `relative` inside `base`; ArtifactMissing for anything else."""
    root = run_location(base)
    if not relative or "\x00" in relative or relative.startswith("/") or Path(relative).is_absolute():
        raise ArtifactMissing(relative)
    if not isinstance(root, Path):
        return _safe_object(root, relative)
    root = root.resolve()
    try:
        target = (root / relative).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise ArtifactMissing(relative) from None
    if not target.is_relative_to(root) or not target.is_file():
        raise ArtifactMissing(relative)
    return target


def _safe_object(root: UPath, relative: str) -> UPath:
    if any(part in ("", ".", "..") for part in relative.split("/")):
        raise ArtifactMissing(relative)
    target = root.joinpath(*relative.split("/"))
    if not target.path.startswith(root.path.rstrip("/") + "/"):
        raise ArtifactMissing(relative)
    try:
        if target.fs.info(target.path)["type"] != "file":
            raise ArtifactMissing(relative)
    except (FileNotFoundError, NotADirectoryError):
        raise ArtifactMissing(relative) from None
    return target


def file_response(path: RunPath, download: bool, ranged: bool = False) -> Response:
    """A file found by `safe_file` as the HTTP answer: sent from disk, or streamed from the store; a download
    is marked as an attachment under its own name, anything else is shown inline (the report page).

    A small local file asked for whole (`ranged` False: no Range header) is read here, in the request's
    thread, and sent in one piece: a streamed file costs a thread hop per stat, open and chunk, which under
    many concurrent requests costs more than the read. Range requests and big files stream as before."""
    if isinstance(path, Path):
        stat = path.stat()
        if stat.st_size <= WHOLE_FILE_BYTES and not ranged:
            return _whole_file(path, stat, download)
        return FileResponse(path, filename=path.name if download else None, stat_result=stat)
    size = int(path.fs.info(path.path)["size"])
    headers = {"content-length": str(size)}
    if download:
        headers["content-disposition"] = _attachment(path.name)
    return StreamingResponse(_chunks(path), media_type=_media_type(path.name), headers=headers)


def _media_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _attachment(name: str) -> str:
    quoted = quote(name)
    return f"attachment; filename*=utf-8''{quoted}" if quoted != name else f'attachment; filename="{name}"'


def _whole_file(path: Path, stat: os.stat_result, download: bool) -> Response:
    headers = {
        "accept-ranges": "bytes",
        "last-modified": formatdate(stat.st_mtime, usegmt=True),
        "etag": f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"',
    }
    if download:
        headers["content-disposition"] = _attachment(path.name)
    return Response(path.read_bytes(), media_type=_media_type(path.name), headers=headers)


def _chunks(path: UPath) -> Iterator[bytes]:
    # No read-ahead cache: each read is one ranged GET of STREAM_CHUNK bytes, so a shard of any size costs
    # one chunk of memory.
    with path.fs.open(path.path, "rb", block_size=STREAM_CHUNK, cache_type="none") as reading:
        while chunk := reading.read(STREAM_CHUNK):
            yield chunk


def read_manifest(run_dir: str | os.PathLike[str] | UPath) -> dict[str, Any]:
    """The run's manifest.json (present only once the run is complete)."""
    path = run_location(run_dir) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactMissing("manifest.json") from None


def artifact_list(run_dir: str | os.PathLike[str] | UPath) -> list[dict[str, Any]]:
    """Every output file of a finished run with its bytes and sha256, as the manifest records them."""
    files = read_manifest(run_dir).get("files", [])
    return [{"path": f["path"], "bytes": int(f["bytes"]), "sha256": f["sha256"]} for f in files]


def read_mixture(run_dir: str | os.PathLike[str] | UPath) -> dict[str, Any]:
    """The run's report data (report/mixture.json)."""
    path = run_location(run_dir) / "report" / "mixture.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactMissing("report/mixture.json") from None
