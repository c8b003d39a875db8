"""Input readers: one input file (local path or any fsspec URI) in, reader-schema record batches out.

The package front is deliberately small: `expand_inputs` turns a recipe's patterns into a sorted list of
files (one part each), `detect_format` names the reader a file needs from its suffix, and `read_batches`
streams a file through that reader. Readers live in one module per format and share only batch building
(`batching`) and charset handling (`decoding`). Every record they pass over is a row of the file's `SkipLog`
(counted as `reader.<reason>` in the `Stats` they are given), and they never stop a run over a damaged file.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from typing import Any

import fsspec
import pyarrow as pa

from corpusmill.core.skips import SkipLog
from corpusmill.core.stats import Stats
from corpusmill.io.html_files import read_html
from corpusmill.io.jsonl import read_jsonl
from corpusmill.io.parquet import read_parquet
from corpusmill.io.warc import read_warc, read_wet

__all__ = ["FORMATS", "KNOWN_SUFFIXES", "detect_format", "expand_inputs", "read_batches"]

# Checked in order, so the WET suffixes (`.warc.wet.gz`) are tried before the WARC ones.
KNOWN_SUFFIXES: dict[str, tuple[str, ...]] = {
    "wet": (".wet", ".wet.gz", ".wet.zst"),
    "warc": (".warc", ".warc.gz", ".warc.zst"),
    "html": (".html", ".htm", ".html.gz", ".htm.gz"),
    "jsonl": (".jsonl", ".jsonl.gz", ".jsonl.zst", ".jsonl.bz2", ".jsonl.xz", ".json.gz", ".json.zst"),
    "parquet": (".parquet", ".pq"),
}

FORMATS: dict[str, Callable[..., Iterator[pa.RecordBatch]]] = {
    "warc": read_warc,
    "wet": read_wet,
    "html": read_html,
    "jsonl": read_jsonl,
    "parquet": read_parquet,
}

_GLOB_CHARS = frozenset("*?[")


def detect_format(uri: str) -> str:
    """The reader format a file needs, told from its name, so recipes can say `format: auto`."""
    name = uri.rstrip("/").lower()
    for fmt, suffixes in KNOWN_SUFFIXES.items():
        if name.endswith(suffixes):
            return fmt
    known = "; ".join(f"{fmt}: {' '.join(suffixes)}" for fmt, suffixes in KNOWN_SUFFIXES.items())
    raise ValueError(
        f"cannot tell the format of {uri!r} from its name (known suffixes: {known}); set the format"
    )


def expand_inputs(patterns: list[str]) -> list[str]:
    """Resolve globs and directories to the sorted, de-duplicated list of input files, one part each."""
    return sorted(expand_inputs_with_info(patterns))


def expand_inputs_with_info(patterns: list[str]) -> dict[str, dict[str, Any]]:
    """Every input file with what its listing says of it (size, modification time or ETag), by uri.

    The listing that finds the files also describes them, so an object store answers one request per
    directory page rather than one per file.
    """
    # A filesystem instance lives as long as the process and keeps its listings (s3fs, gcsfs): a second run in
    # the same process would otherwise see the objects as they were at the first, and miss a replaced input.
    for fs in {id(fs): fs for fs in (fsspec.core.url_to_fs(p)[0] for p in patterns)}.values():
        fs.invalidate_cache()
    found: dict[str, dict[str, Any]] = {}
    for pattern in patterns:
        matches = _expand(pattern)
        if not matches:
            raise FileNotFoundError(
                f"input {pattern!r} matches no file (directories are searched for: {_all_suffixes()})"
            )
        found.update(matches)
    return found


def read_batches(
    uri: str,
    fmt: str | None,
    *,
    batch_size: int,
    stats: Stats,
    skips: SkipLog | None = None,
    **options: Any,
) -> Iterator[pa.RecordBatch]:
    """Stream one input file as reader-schema batches of at most `batch_size` rows.

    Records the reader passes over go to `skips` (the file's log; one is made on `stats` when none is given).
    """
    fmt = fmt if fmt not in (None, "auto") else detect_format(uri)
    reader = FORMATS.get(fmt)
    if reader is None:
        raise ValueError(f"unknown input format {fmt!r} for {uri!r}; known: {', '.join(FORMATS)}")
    accepted = _options_of(reader)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(
            f"the {fmt} reader (reading {uri!r}) does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(accepted)) or 'none'}"
        )
    return reader(uri, batch_size=batch_size, stats=stats, skips=skips, **options)


def _options_of(reader: Callable[..., Any]) -> set[str]:
    params = inspect.signature(reader).parameters.values()
    given = {"batch_size", "stats", "skips"}
    return {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY} - given


def _all_suffixes() -> str:
    return " ".join(suffix for suffixes in KNOWN_SUFFIXES.values() for suffix in suffixes)


def _has_known_suffix(path: str) -> bool:
    try:
        detect_format(path)
    except ValueError:
        return False
    return True


def _expand(pattern: str) -> dict[str, dict[str, Any]]:
    fs, path = fsspec.core.url_to_fs(pattern)
    local = _is_local(fs)
    if local:
        path = os.path.abspath(os.path.expanduser(path))
    if _GLOB_CHARS & set(path):
        entries = fs.glob(path, detail=True)  # one listing gives the types, not one request per match
    else:
        try:
            entries = {path: fs.info(path)}
        except FileNotFoundError:
            entries = {}
    files: dict[str, dict[str, Any]] = {}
    for name, info in entries.items():
        if info.get("type") == "directory":
            found = fs.find(name, detail=True)
            files.update((p, i) for p, i in found.items() if _has_known_suffix(p))
        else:
            files[name] = info
    return {(p if local else fs.unstrip_protocol(p)): info for p, info in files.items()}


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")
