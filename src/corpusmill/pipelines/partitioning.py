"""Input files -> parts: the units of work every engine schedules, and the names a resumed run finds again.

A big input file (a 1 GB Common Crawl WARC) is a part of its own; small files (a directory of HTML pages,
many little JSONL files) are bundled in input order until a bundle reaches `part_bytes`, so that per-part
costs (a task, a parquet file, a marker) stay small next to the work. Bundling only looks at the sorted file
list and file sizes, so a rerun on any machine and engine finds the same parts.
"""

from __future__ import annotations

from collections.abc import Iterable

import fsspec

from corpusmill.pipelines.parts import PartSpec


def file_size(uri: str) -> int:
    """Size in bytes of a local path or fsspec URI (0 when the filesystem cannot tell)."""
    fs, path = fsspec.core.url_to_fs(uri)
    return int(fs.size(path) or 0)


def plan_input_parts(inputs: Iterable[tuple[str, str, int]], part_bytes: int) -> list[PartSpec]:
    """Bundle `(uri, format, size)` triples, in order, into parts of at most about `part_bytes` each.

    A bundle never mixes formats, and a file at least `part_bytes` big is always alone.
    """
    parts: list[PartSpec] = []
    bundle: list[str] = []
    bundle_fmt: str | None = None
    bundle_bytes = 0

    def flush() -> None:
        nonlocal bundle, bundle_bytes
        if bundle:
            assert bundle_fmt is not None
            parts.append(PartSpec(f"part-{len(parts):05d}", tuple(bundle), bundle_fmt))
        bundle, bundle_bytes = [], 0

    for uri, fmt, size in inputs:
        if bundle and (fmt != bundle_fmt or bundle_bytes + size > part_bytes):
            flush()
        bundle.append(uri)
        bundle_fmt = fmt
        bundle_bytes += size
        if bundle_bytes >= part_bytes:
            flush()
    flush()
    return parts
