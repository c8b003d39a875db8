"""Input files -> parts: the units of work every engine schedules, and the names a resumed run finds again.

A big input file (a 1 GB Common Crawl WARC) is a part of its own; small files (a directory of HTML pages,
many little JSONL files) are bundled in input order until a bundle reaches `part_bytes`, so that per-part
costs (a task, a parquet file, a marker) stay small next to the work. Bundling only looks at the sorted file
list and file sizes, so a rerun on any machine and engine finds the same parts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from corpusmill.io.inputs import InputFile
from corpusmill.pipelines.parts import PartSpec


def part_identity(fmt: str, files: Iterable[InputFile]) -> str:
    """A digest of what a part reads: the format and each file's name, size and content version."""
    data = json.dumps([fmt, [f.identity() for f in files]], separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:24]


def plan_input_parts(inputs: Iterable[tuple[InputFile, str]], part_bytes: int) -> list[PartSpec]:
    """Bundle `(file, format)` pairs, in order, into parts of at most about `part_bytes` each.

    A bundle never mixes formats, and a file at least `part_bytes` big is always alone.
    """
    parts: list[PartSpec] = []
    bundle: list[InputFile] = []
    bundle_fmt: str | None = None
    bundle_bytes = 0

    def flush() -> None:
        nonlocal bundle, bundle_bytes
        if bundle:
            assert bundle_fmt is not None
            parts.append(
                PartSpec(
                    f"part-{len(parts):05d}",
                    tuple(f.uri for f in bundle),
                    bundle_fmt,
                    tuple(f.name for f in bundle),
                    part_identity(bundle_fmt, bundle),
                )
            )
        bundle, bundle_bytes = [], 0

    for file, fmt in inputs:
        size = file.size
        if bundle and (fmt != bundle_fmt or bundle_bytes + size > part_bytes):
            flush()
        bundle.append(file)
        bundle_fmt = fmt
        bundle_bytes += size
        if bundle_bytes >= part_bytes:
            flush()
    flush()
    return parts
