"""Atomic file writes: a reader never sees half a file, and a crash leaves no file rather than a torn one.

Every output of a run (parts, stats, shards, manifests) is written under a temporary name in the same
directory and renamed into place, which POSIX guarantees to be atomic. Resume logic can then trust that a
file which exists is complete.

A temporary is named `.<target name>.<8 random characters>.tmp` (`temporary_file`), and nothing else the project
writes is, so a file left by a writer that was killed can be recognised by its name alone (`is_temporary`):
resuming a run removes them (`remove_temporaries`) and `corpusmill verify` reports any that remain.

A failed write names the file it was writing (`naming_errors`): an OSError raised by a write to an open file
(`[Errno 28] No space left on device`) carries no file name of its own, and a user needs one to act on it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

from corpusmill.core.location import run_path

TEMP_SUFFIX = ".tmp"

# `.<target>.<tempfile's 8 random characters>.tmp`: what `temporary_file` creates, and only that.
_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")

# Errors that only a write can raise: an OSError with one of these and no file name is about the file being
# written, so that file's name can be given to it. A read error (EIO, ENOENT) is never renamed this way.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_file(target: str | os.PathLike[str]) -> Path:
    """Create an empty temporary file beside `target`, named so that `is_temporary` recognises it.

    An object on object storage has no "beside": its temporary is a local file, which `publish` puts as the
    object in one request (an object store shows an object only once it is whole).
    """
    target = run_path(target)
    directory = target.parent if isinstance(target, Path) else None
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=directory)
    os.close(fd)
    return Path(name)


def is_temporary(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is named like a temporary of `temporary_file` (a write that was never finished)."""
    return _TEMPORARY.match(Path(path).name) is not None


def target_of(path: str | os.PathLike[str]) -> Path:
    """The file a temporary stands for (`.a.parquet.x1y2z3w4.tmp` -> `a.parquet`); other paths unchanged."""
    path = Path(path)
    found = _TEMPORARY.match(path.name)
    return path.with_name(found["target"]) if found else path


def find_temporaries(root: str | os.PathLike[str]) -> list[Path]:
    """Every temporary under `root`, sorted; nothing else (user files are never matched). Object storage holds
    none: its temporaries are local files."""
    root = run_path(root)
    if not isinstance(root, Path) or not root.is_dir():
        return []
    return sorted(path for path in root.rglob(f"*{TEMP_SUFFIX}") if path.is_file() and is_temporary(path))


def remove_temporaries(root: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries a killed writer left under `root`; call only while nothing writes there."""
    found = find_temporaries(root)
    for path in found:
        path.unlink(missing_ok=True)
    return found


def raise_naming(exc: OSError, path: str | os.PathLike[str]) -> NoReturn:
    """Raise `exc`, or, for a write error that names no file (a full disk met by `write()`), one naming `path`.

    For a hot loop's `except OSError as exc:` clause, where a `with naming_errors(...)` block would cost about a
    microsecond per call.
    """
    if exc.filename is None and exc.errno in _WRITE_ERRNOS:
        raise OSError(exc.errno, os.strerror(exc.errno), str(path)) from exc
    raise exc


@contextlib.contextmanager
def naming_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """Give a write error that names no file (a full disk met by `write()`) the name of `path`."""
    try:
        yield
    except OSError as exc:
        raise_naming(exc, path)


def publish(tmp: Path, target: str | os.PathLike[str]) -> None:
    """Give a finished temporary file ordinary permissions and rename it onto `target`; on object storage, put
    it as the object (one request, or a multipart upload that shows the object only once complete)."""
    target = run_path(target)
    if not isinstance(target, Path):
        target.fs.put_file(str(tmp), target.path)
        tmp.unlink()
        return
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, target)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds."""
    target = run_path(target)
    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_file(target)
    try:
        with naming_errors(target):
            yield tmp
            publish(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces `target` when the block exits cleanly."""
    with atomic_path(target) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def write_json(target: str | os.PathLike[str], data: Any) -> None:
    """Write JSON atomically, sorted and indented so files diff cleanly."""
    with atomic_open(target, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")
