"""The input files of a run: where each is read from, the name it is known by, and what tells a change.

A document's id must not depend on where the corpus is mounted: the same pages under `/data/crawl` on a
laptop, `/mnt/crawl` on a cluster node or `s3://bucket/crawl` give the same ids, so deduplication survivors,
the shuffle and the mixture's draws stay the same when the data moves. So every input file gets a *name*: its
path relative to the input root, with `/` separators. The root is `input.root` when the recipe sets it, else
the deepest directory common to all input patterns (a pattern's own root is the part before its first glob
component, a directory itself, or a file's parent directory). Ids are the name plus the record's place in the
file (`corpusmill.io.batching.document_id`).

What identifies a file's content, cheaply, is recorded with it (`version`: an object store's ETag where the
filesystem gives one, else the modification time in nanoseconds, plus the size), so a resumed run can tell
that an input grew, shrank or was replaced since it started.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from typing import Any

import fsspec

_GLOB_CHARS = frozenset("*?[")
# Keys fsspec filesystems use for a content tag, most specific first.
_VERSION_KEYS = ("ETag", "etag", "md5Hash", "md5", "crc32c", "generation", "version_id")
_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified", "created")


@dataclass(frozen=True)
class InputFile:
    """One input file: `uri` to read it, `name` relative to the input root, `size` and content `version`."""

    uri: str
    name: str
    size: int
    version: str

    def identity(self) -> list[Any]:
        """What a resume compares: name, size and version (never the mount-dependent uri)."""
        return [self.name, self.size, self.version]


@dataclass(frozen=True)
class _Location:
    protocol: str
    path: str
    fs: fsspec.AbstractFileSystem

    def unstrip(self, path: str) -> str:
        return path if self.protocol in ("file", "local") else self.fs.unstrip_protocol(path)


def locate(pattern: str) -> _Location:
    """The filesystem and absolute path of a pattern (local paths made absolute, `~` expanded)."""
    fs, path = fsspec.core.url_to_fs(pattern)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        path = os.path.abspath(os.path.expanduser(path))
    return _Location(protocol, path, fs)


def pattern_root(pattern: str) -> tuple[str, str]:
    """`(protocol, directory)` a pattern's names are relative to."""
    where = locate(pattern)
    path = where.path
    if _GLOB_CHARS & set(path):
        head: list[str] = []
        for component in path.split("/"):
            if _GLOB_CHARS & set(component):
                break
            head.append(component)
        return where.protocol, "/".join(head) or "/"
    try:
        is_dir = where.fs.isdir(path)
    except OSError:
        is_dir = False
    return where.protocol, path.rstrip("/") if is_dir else posixpath.dirname(path.rstrip("/"))


def input_root(patterns: list[str], root: str | None = None) -> tuple[str, str]:
    """`(protocol, directory)` every input name is relative to: `root` if given, else the common one."""
    if root is not None:
        where = locate(root)
        return where.protocol, where.path.rstrip("/") or "/"
    roots = [pattern_root(p) for p in patterns]
    protocols = {protocol for protocol, _ in roots}
    if len(protocols) > 1:
        raise ValueError(
            f"the input paths lie on different filesystems ({', '.join(sorted(protocols))}), so they have no "
            "common root to name files by; read them in separate runs, or copy them to one filesystem"
        )
    common = posixpath.commonpath([path for _, path in roots]) if roots else "/"
    return protocols.pop(), common


def relative_name(path: str, root: str, uri: str) -> str:
    """`path` relative to `root`, with `/` separators; an error when it lies outside."""
    root = root.rstrip("/")
    if root and path.startswith(root + "/"):
        return path[len(root) + 1 :]
    if not root and path:
        return path.lstrip("/")
    raise ValueError(
        f"input {uri!r} is not under the input root {root or '/'!r}; set input.root to a directory above it"
    )


def file_version(info: dict[str, Any]) -> str:
    """A cheap tag of a file's content from its listing: an ETag-like key, else the modification time."""
    for key in _VERSION_KEYS:
        value = info.get(key)
        if value not in (None, ""):
            return f"{key}:{str(value).strip(chr(34))}"
    for key in _MTIME_KEYS:
        value = info.get(key)
        if value not in (None, ""):
            if isinstance(value, int | float):
                return f"mtime:{int(value * 1_000_000_000) if isinstance(value, float) else value}"
            return f"{key}:{value}"
    return "unknown"


def describe(uri: str, root: str, info: dict[str, Any] | None = None) -> InputFile:
    """An `InputFile` for one listed file, from its listing's `info` (or one metadata request)."""
    where = locate(uri)
    if info is None:
        info = where.fs.info(where.path)
    if where.protocol in ("file", "local"):
        stat = os.stat(where.path)
        version = f"mtime_ns:{stat.st_mtime_ns}"
        size = stat.st_size
    else:
        version = file_version(info)
        size = int(info.get("size") or 0)
    return InputFile(uri, relative_name(where.path, root, uri), size, version)


def root_uri(patterns: list[str], root: str | None = None) -> str:
    """The input root as a path or URI that `input_root` (and `list_inputs`) take back unchanged."""
    protocol, directory = input_root(patterns, root)
    return directory if protocol in ("file", "local") else f"{protocol}://{directory}"


def list_inputs(patterns: list[str], root: str | None = None) -> list[InputFile]:
    """Every input file of `patterns`, sorted by name, each named relative to the input root."""
    from corpusmill.io import expand_inputs_with_info

    _, root_dir = input_root(patterns, root)
    files = [describe(uri, root_dir, info) for uri, info in expand_inputs_with_info(patterns).items()]
    return sorted(files, key=lambda f: f.name)
