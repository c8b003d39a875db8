"""Local copies of shards that live on object storage, so training can memory-map them.

The trainer reads every shard through `np.memmap` (`data.py`), which needs a local file; a shards directory
given as an fsspec URI (`s3://`, `gs://`, any protocol fsspec knows) is therefore copied into a cache
directory first, guided by its manifest, which lists every shard file with its byte size and SHA-256:

* Each file is streamed (never held in memory) to a temporary beside its place and hashed as it arrives;
  only when its size and hash match the manifest is it renamed into place. A file under its own name in the
  cache is thus always whole and correct, and a transfer cut short leaves only a temporary, which the next
  fetch removes. A mismatch is an error naming the object: a corrupt object, or one replaced after the
  manifest was written, must not be trained on.
* A cached file that matches the manifest is kept, so rerunning or resuming a job downloads nothing. What
  was verified (hash, size, modification time and inode of the file) is remembered in `.cache.json`, so an
  unchanged cached file is not even read again: on hundreds of gigabytes, hashing is most of the cost.
* The manifest is copied last, so a cache directory holding a manifest holds every shard it lists, and
  training then reads the cache exactly as a local shards directory.
* Processes sharing a cache (the ranks of a `torchrun` node) take turns under a lock file: the first copies,
  the others find every file in place. Every rank fetches before the process group starts, so no rank waits
  on a collective with a timeout while another downloads.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec

from corpusmill.core.atomic import naming_errors, publish, remove_temporaries, temporary_file, write_json
from corpusmill.shards.manifest import ShardManifest, sha256_file
from corpusmill.shards.writer import MANIFEST_NAME

logger = logging.getLogger(__name__)

# What the cache knows it verified, and the lock its writers take turns under.
INDEX_NAME = ".cache.json"
LOCK_NAME = ".lock"
_CHUNK = 8 << 20  # per read from the store: large enough that a request's latency is small beside it


def default_cache_dir(uri: str) -> Path:
    """`$XDG_CACHE_HOME/corpusmill/shards/<digest of the URI>` (`~/.cache` without it): one cache per source,
    shared by every run that trains on it."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "corpusmill" / "shards" / hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16]


@dataclass
class FetchResult:
    """Where the local copy is, and what this fetch had to download for it."""

    source: str
    local_dir: Path
    downloaded: list[str] = field(default_factory=list)  # files relative to the shards directory
    cached: list[str] = field(default_factory=list)
    bytes_downloaded: int = 0


def fetch_shards(
    uri: str, cache_dir: str | os.PathLike[str] | None = None, *, verbose: bool = True
) -> FetchResult:
    """Copy the shards directory at `uri` into `cache_dir` (default: `default_cache_dir(uri)`), checked file by
    file against its manifest; files already cached and matching are kept. `verbose=False` logs at debug level
    only (the ranks of a job other than the first)."""
    log: Callable[..., None] = logger.info if verbose else logger.debug
    uri = uri.rstrip("/")
    local_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(uri)
    fs, root = fsspec.core.url_to_fs(uri)
    # A filesystem instance outlives a call and keeps its listings (s3fs, gcsfs): without this a second fetch in
    # the same process would see objects as they were at the first.
    fs.invalidate_cache()
    manifest_bytes, manifest = _read_remote_manifest(fs, root, uri)
    result = FetchResult(source=uri, local_dir=local_dir)
    local_dir.mkdir(parents=True, exist_ok=True)
    with _locked(local_dir / LOCK_NAME):
        remove_temporaries(local_dir)  # left by a copy that was killed; only the lock holder writes here
        current = local_dir / MANIFEST_NAME
        if current.is_file() and current.read_bytes() != manifest_bytes:
            current.unlink()  # the shards were rewritten: this cache is not a shards directory until refreshed
        index = _read_index(local_dir)
        try:
            for entry in manifest.shards:
                for name, size, sha in (
                    (entry.bin_file, entry.bin_bytes, entry.bin_sha256),
                    (entry.idx_file, entry.idx_bytes, entry.idx_sha256),
                ):
                    target = local_dir / name
                    if _is_cached(target, name, size, sha, index):
                        result.cached.append(name)
                        continue
                    log("copying %s/%s (%d bytes) to %s", uri, name, size, target)
                    _download(fs, f"{root.rstrip('/')}/{name}", f"{uri}/{name}", target, size, sha)
                    index[name] = _stamp(target, sha)
                    result.downloaded.append(name)
                    result.bytes_downloaded += size
        finally:
            write_json(local_dir / INDEX_NAME, {"files": index})
        with naming_errors(current):
            if not current.is_file():
                tmp = temporary_file(current)
                try:
                    tmp.write_bytes(manifest_bytes)
                    publish(tmp, current)
                finally:
                    tmp.unlink(missing_ok=True)
    log(
        "shards of %s in %s: %d file(s) copied (%d bytes), %d already cached",
        uri,
        local_dir,
        len(result.downloaded),
        result.bytes_downloaded,
        len(result.cached),
    )
    return result


def _read_remote_manifest(fs: fsspec.AbstractFileSystem, root: str, uri: str) -> tuple[bytes, ShardManifest]:
    location = f"{uri}/{MANIFEST_NAME}"
    try:
        data = fs.cat_file(f"{root.rstrip('/')}/{MANIFEST_NAME}")
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{location} does not exist; point training at a directory written by the shards stage"
        ) from exc
    try:
        return data, ShardManifest.model_validate(json.loads(data))
    except ValueError as exc:
        raise ValueError(f"{location}: not a valid shard manifest: {exc}") from exc


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the block; released by the kernel if the process dies."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_index(local_dir: Path) -> dict[str, dict[str, Any]]:
    """What earlier fetches verified; an unreadable index only costs a rehash, never a wrong answer."""
    try:
        files = json.loads((local_dir / INDEX_NAME).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return files if isinstance(files, dict) else {}


def _stamp(path: Path, sha256: str) -> dict[str, Any]:
    """The hash a file was verified to have, with what tells the same file unchanged since."""
    stat = path.stat()
    return {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}


def _is_cached(target: Path, name: str, size: int, sha256: str, index: dict[str, dict[str, Any]]) -> bool:
    """Whether `target` already holds the file the manifest lists (its index stamp, or else its hash, agrees)."""
    try:
        if target.stat().st_size != size:
            return False
    except FileNotFoundError:
        return False
    if index.get(name) == _stamp(target, sha256):
        return True
    if sha256_file(target) == sha256:
        index[name] = _stamp(target, sha256)
        return True
    logger.warning("%s: cached copy does not match the manifest's sha256; copying it again", target)
    index.pop(name, None)
    return False


def _download(
    fs: fsspec.AbstractFileSystem, path: str, location: str, target: Path, size: int, sha256: str
) -> None:
    """Stream one object to a temporary beside `target`, hashing it; rename it into place only if it matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_file(target)
    try:
        digest, copied = hashlib.sha256(), 0
        try:
            source = fs.open(path, "rb", block_size=_CHUNK)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{location} is listed in the manifest but does not exist") from exc
        with source, naming_errors(target), open(tmp, "wb") as out:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                copied += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if copied != size or digest.hexdigest() != sha256:
            raise ValueError(
                f"{location}: checksum mismatch after download: {copied} bytes with sha256 {digest.hexdigest()}, "
                f"the manifest says {size} bytes with sha256 {sha256}; the object is corrupt or was replaced "
                "after the manifest was written"
            )
        publish(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
