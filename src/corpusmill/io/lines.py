"""Lines of a possibly compressed file, decompressed piece by piece so that damage costs only what it must.

A cut-off or corrupt compressed file keeps every line that decompressed whole before the damage. The
compressed bytes are fed to the decompressor in small pieces and whatever it gives back is split into lines
at once, so the bytes decompressed before a cut are never thrown away with the block that hit it (reading
through a file object instead loses the whole block the end-of-stream error interrupts). gzip, bz2, xz and
zstd are decompressed here, several members or frames in a row included (parallel writers produce those);
any other compression fsspec knows goes through its reader. The damage is raised as `StreamDamage` after the
last whole line, with the partial line it cut off and the compressed byte offset where it was found.
Splitting big blocks into lines in C is much faster than `readline`.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Iterator
from typing import IO, Any

import fsspec

_BLOCK = 1 << 20
# Compressed bytes fed at once: a corrupt (rather than cut) stream loses what this much decompresses to.
_PIECE = 1 << 16

_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd"}
_UNIT = {"gzip": "member", "bz2": "stream", "xz": "stream", "zstd": "frame"}


class StreamDamage(EOFError):
    """A compressed file that ends early or stops decompressing; the lines before it were all yielded.

    `offset` is the compressed byte offset where the damage was found (the file's end for a cut-off file),
    None when the reader cannot tell; `partial` is the start of the line the damage cut off (may be empty).
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.partial = b""


def iter_lines(uri: str) -> Iterator[bytes]:
    """Yield the lines of `uri` (decompressed by its suffix) without their line endings.

    Raises `StreamDamage` after the last whole line when the compressed data is cut off or corrupt.
    """
    codec = compression_of(uri)
    if codec is None:
        with fsspec.open(uri, "rb", compression="infer") as handle:
            yield from _split_lines(_blocks(handle, uri))
    else:
        with fsspec.open(uri, "rb") as raw:
            yield from _split_lines(_decompressed(raw, codec))


def compression_of(uri: str) -> str | None:
    """The compression decompressed here for `uri`, told from its suffix; None for plain or other files."""
    name = uri.lower()
    return next((codec for suffix, codec in _SUFFIXES.items() if name.endswith(suffix)), None)


def _split_lines(blocks: Iterator[bytes]) -> Iterator[bytes]:
    pending: list[bytes] = []  # pieces of a line that spans blocks, joined once (no quadratic copying)
    try:
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
    except StreamDamage as damage:
        damage.partial = b"".join(pending)
        raise
    if pending:
        yield _strip_cr(b"".join(pending))


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def _blocks(handle: IO[bytes], uri: str) -> Iterator[bytes]:
    """Blocks of a plain file, or of one whose compression fsspec's reader undoes (no offsets then)."""
    try:
        yield from iter(lambda: handle.read(_BLOCK), b"")
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise StreamDamage(f"unreadable data in {uri} ({exc})") from exc


def _decompressor(codec: str) -> Any:
    """A one-stream decompressor; all four share `decompress`, `eof` and `unused_data`."""
    if codec == "gzip":
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if codec == "bz2":
        return bz2.BZ2Decompressor()
    if codec == "xz":
        return lzma.LZMADecompressor()
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj()


def _errors() -> tuple[type[BaseException], ...]:
    import zstandard

    return (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError, zstandard.ZstdError)


def _decompressed(raw: IO[bytes], codec: str) -> Iterator[bytes]:
    """Decompressed bytes of consecutive streams, as soon as the decompressor gives them out."""
    stream = _Stream(codec)
    try:
        for piece in iter(lambda: raw.read(_PIECE), b""):
            yield from stream.feed(piece)
    except OSError as exc:  # the storage failed, not the data
        raise StreamDamage(
            f"reading failed at compressed byte {stream.offset} ({exc})", stream.offset
        ) from exc
    stream.finish()


class _Stream:
    """Consecutive compressed streams (gzip members, zstd frames, ...) fed piece by piece, offsets kept."""

    def __init__(self, codec: str) -> None:
        self.codec = codec
        self.decoder = _decompressor(codec)
        self.errors = _errors()
        self.offset = 0  # compressed bytes consumed so far
        self.start: int | None = None  # where the stream in progress began; None between streams
        self.finished = 0  # streams decompressed whole

    def feed(self, piece: bytes) -> Iterator[bytes]:
        """Decompress one piece of the file, starting new streams where earlier ones end."""
        while piece:
            if self.start is None:
                if self.finished:  # NUL padding between streams (xz allows it, gzip tools tolerate it)
                    stripped = piece.lstrip(b"\x00")
                    self.offset += len(piece) - len(stripped)
                    piece = stripped
                    if not piece:
                        return
                self.start = self.offset
            try:
                out = self.decoder.decompress(piece)
            except self.errors as exc:
                raise StreamDamage(
                    f"{self.codec} data unreadable at or after compressed byte {self.offset}, in the "
                    f"{_UNIT[self.codec]} that starts at byte {self.start} ({exc})",
                    self.offset,
                ) from exc
            if out:
                yield out
            if self.decoder.eof:
                rest = self.decoder.unused_data
                self.offset += len(piece) - len(rest)
                piece = rest
                self.decoder = _decompressor(self.codec)
                self.start = None
                self.finished += 1
            else:
                self.offset += len(piece)
                piece = b""

    def finish(self) -> None:
        """Raise `StreamDamage` when the file ended inside a stream (it was cut short)."""
        if self.start is not None:
            raise StreamDamage(
                f"the {self.codec} data ends at byte {self.offset}, inside the {_UNIT[self.codec]} that "
                f"starts at byte {self.start} (file cut short)",
                self.offset,
            )
