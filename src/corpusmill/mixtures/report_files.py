"""Writing the report's many small pages at once, on a local disk or on object storage, and nothing stale left.

The sample pages number in the hundreds. `atomic_open` syncs every file to disk, which for pages that are
derived from the run and rebuilt at will costs more than writing them; here each page is still written under a
temporary name and renamed into place (no reader sees half a page) but not synced. On object storage every
page is one whole object, all put in one batched call. Pages of an earlier build that the new one no longer
has are deleted afterwards, so a link never leads to a sample of another build.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from corpusmill.core.atomic import naming_errors, publish, temporary_file
from corpusmill.core.location import RunPath

logger = logging.getLogger(__name__)


def write_tree(root: RunPath, files: Mapping[str, str], prune: Iterable[str] = ()) -> None:
    """Write `files` (relative path -> text, UTF-8) under `root`, then delete the other `.html` files under the
    `prune` folders of `root`."""
    if isinstance(root, Path):
        for relative, text in files.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary_file(target)
            try:
                with naming_errors(target):
                    tmp.write_text(text, encoding="utf-8")
                    publish(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
    else:
        base = root.path.rstrip("/")
        root.fs.pipe({f"{base}/{relative}": text.encode("utf-8") for relative, text in files.items()})
    for stale in sorted(set(_existing(root, prune)) - set(files)):
        logger.info("report: removing %s, which this build no longer has", stale)
        _remove(root, stale)


def _existing(root: RunPath, folders: Iterable[str]) -> Iterable[str]:
    """The `.html` files under `root`'s `folders`, as paths relative to `root`."""
    for folder in folders:
        if isinstance(root, Path):
            if (root / folder).is_dir():
                yield from (p.relative_to(root).as_posix() for p in (root / folder).rglob("*.html"))
            continue
        base = root.path.rstrip("/")
        try:
            found = root.fs.find(f"{base}/{folder}")
        except FileNotFoundError:
            continue
        yield from (p[len(base) + 1 :] for p in found if p.endswith(".html"))


def _remove(root: RunPath, relative: str) -> None:
    if isinstance(root, Path):
        (root / relative).unlink(missing_ok=True)
    else:
        root.fs.rm_file(f"{root.path.rstrip('/')}/{relative}")
