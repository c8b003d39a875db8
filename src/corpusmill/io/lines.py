"""Lines of a possibly compressed file, read in large blocks, with truncation reported rather than hidden.

fsspec's `compression="infer"` covers gzip, bz2 and xz, whose readers raise `EOFError` on a cut-off file.
Its zstd reader instead ends quietly at a truncated frame, losing the rest without a word, so `.zst` files go
through a small frame-aware decompressor here that raises `EOFError` the same way. Splitting big blocks
into lines in C is much faster than `readline`, which not every decompressing reader supports anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import fsspec

_BLOCK = 1 << 20


def iter_lines(uri: str) -> Iterator[bytes]:
    """Yield the lines of `uri` (decompressed by its suffix) without their line endings."""
    if _is_zstd(uri):
        with fsspec.open(uri, "rb") as raw:
            yield from _split_lines(_zstd_blocks(raw, uri))
    else:
        with fsspec.open(uri, "rb", compression="infer") as handle:
            yield from _split_lines(iter(lambda: handle.read(_BLOCK), b""))


def _is_zstd(uri: str) -> bool:
    return uri.lower().endswith((".zst", ".zstd"))


def _split_lines(blocks: Iterator[bytes]) -> Iterator[bytes]:
    pending: list[bytes] = []  # pieces of a line that spans blocks, joined once (no quadratic copying)
    for block in blocks:
        first_end = block.find(b"\n")
        if first_end < 0:
            pending.append(block)
            continue
        pending.append(block[:first_end])
        yield _strip_cr(b"".join(pending))
        pending = []
        parts = block[first_end + 1 :].split(b"\n")
        tail = parts.pop()
        for line in parts:
            yield _strip_cr(line)
        if tail:
            pending.append(tail)
    if pending:
        yield _strip_cr(b"".join(pending))


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def _zstd_blocks(raw: IO[bytes], uri: str) -> Iterator[bytes]:
    import zstandard

    decompressor = zstandard.ZstdDecompressor()
    frame = decompressor.decompressobj()
    fed = False
    for chunk in iter(lambda: raw.read(_BLOCK), b""):
        while chunk:
            out = frame.decompress(chunk)
            fed = True
            if out:
                yield out
            if frame.eof:
                chunk = frame.unused_data
                frame = decompressor.decompressobj()
                fed = False
            else:
                chunk = b""
    if fed:
        raise EOFError(f"{uri}: zstd stream ends inside a frame (file truncated)")
