"""Finding one's way in a damaged WARC file: where a record ends, where the next one starts, what lies between.

The WARC reader hands the parsing of whole records to fastwarc; these helpers look at the raw bytes only when
something went wrong, to say exactly what: a record whose Content-Length runs past its data into the records
after it, a stretch of bytes between records that is a garbled record header or plain garbage, the next
offset where a real record starts. Offsets are raw file offsets (of gzip members in a gzipped file).
Nothing here is on the path of an undamaged file, except the search for a swallowed record header, which
looks at every byte of every block and is built to be cheap (`embedded_record`).
"""

from __future__ import annotations

import logging
import re
import zlib
from typing import IO, Literal

log = logging.getLogger(__name__)

Kind = Literal["gzip", "zstd", "plain"]

_GZIP_MAGIC = b"\x1f\x8b\x08"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_WARC_MAGIC = b"WARC/1."
_SCAN_BLOCK = 1 << 20
_HEAD_BYTES = 4096
_MAX_HEADER_BYTES = 1 << 20
_RECORD_STARTS = (b"WARC/1.0\r\n", b"WARC/1.1\r\n", b"WARC/1.0\n", b"WARC/1.1\n")

# A record header that follows the end of a record block ("\r\n\r\n"): inside a block, a swallowed record.
_EMBEDDED_RECORD = re.compile(rb"\r\n\r\nWARC/1\.[01]\r?\n")
_EMBEDDED_START = b"\r\n\r\nWARC/1."  # what every match of _EMBEDDED_RECORD starts with
_PROBES = 256  # "\r" bytes looked at one by one before a block is searched for _EMBEDDED_START as a whole
# What a record header looks like even when its version line is garbled.
_HEADER_FIELD = re.compile(rb"(?im)^WARC-[a-z-]+[ \t]*:")
_CONTENT_LENGTH = re.compile(rb"(?im)^Content-Length[ \t]*:[ \t]*([0-9]+)[ \t]*\r?$")


def file_kind(raw: IO[bytes]) -> Kind:
    """Whether the file is gzipped (member per record), zstd-compressed or plain, from its first bytes."""
    try:
        here = raw.tell()
        raw.seek(0)
        head = raw.read(4)
        raw.seek(here)
    except (OSError, ValueError):  # a stream that cannot seek: read as it comes, without resuming
        return "plain"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "gzip" if head.startswith(_GZIP_MAGIC[:2]) else "plain"


def embedded_record(block: bytes) -> int | None:
    """Where in `block` a record header follows an end of block, the sign of a swallowed record; or None.

    Every record's whole block passes through here, so the search for the header's fixed start comes first
    (`_find_record_start`), and the regex only runs from a place where that start was found.
    """
    start = _find_record_start(block)
    if start < 0:
        return None
    match = _EMBEDDED_RECORD.search(block, start)
    if match is None or not _HEADER_FIELD.search(block, match.end(), match.end() + _HEAD_BYTES):
        return None
    return match.start()


def _find_record_start(block: bytes) -> int:
    """`block.find(_EMBEDDED_START)`, in about a quarter of its time on web pages.

    Every match starts at a "\\r", and looking for a single byte is a memchr, several times faster than
    searching for the whole needle; most pages (written with "\\n" line ends) hold few of them. A page with
    CRLF line ends holds one on every line: after `_PROBES` false starts the search for the whole needle
    takes over from the last one, so such a page costs at most a few dozen microseconds more.
    """
    at = block.find(b"\r")
    for _ in range(_PROBES):
        if at < 0 or block.startswith(_EMBEDDED_START, at):
            return at
        at = block.find(b"\r", at + 1)
    return at if at < 0 else block.find(_EMBEDDED_START, at)


def block_fits(raw: IO[bytes], kind: Kind, offset: int, block_length: int) -> bool:
    """Whether the record at `offset` really holds `block_length` bytes before its end (not another record).

    A plain file's block must be followed by the "\\r\\n\\r\\n" that ends a record and then a record or the
    end of the file; a gzipped file's block must end inside the record's own member. zstd frames span many
    records, so there the declared length is taken as it is. The file position is left where it was.
    """
    if kind == "zstd":
        return True
    here = raw.tell()
    try:
        if kind == "gzip":
            member = _member(raw, offset)
            return member is not None and len(member[1]) >= _header_length(member[1]) + block_length
        header = _plain_header(raw, offset)
        if header is None:
            return False
        raw.seek(offset + len(header) + block_length)
        after = raw.read(4 + len(_WARC_MAGIC))
        return after[:4] == b"\r\n\r\n" and (len(after) == 4 or after[4:] == _WARC_MAGIC)
    except (OSError, ValueError, zlib.error):
        return False
    finally:
        raw.seek(here)


def misframed(raw: IO[bytes], kind: Kind, offset: int, block_length: int) -> tuple[int, int] | None:
    """(block length found, end offset) of the record at `offset` when its block is not `block_length` long.

    Looked at only after the record's block was read and what followed it did not parse as a record. The
    declared block must be followed by the "\\r\\n\\r\\n" that ends a record: in a gzipped file by nothing
    but line ends (or the next record) inside the record's own member; in a plain file by those four bytes
    and then a record or the end of the file. Anything else means the Content-Length is wrong (mostly too
    small: the page ran on past it). The block found then runs from the header to the end of the member,
    or in a plain file to the next record (or the end of the file), less its terminator; the end offset
    is where the record's bytes stop. None when the record is framed as it says, or when that cannot be
    told (zstd frames span records; a member that does not decompress).

    In a plain file a block declared too short may end right at a "\\r\\n\\r\\n" inside it (after the HTTP
    headers, at a blank line of the page), and then look like a whole record followed by garbage. The two
    are told apart by the stretch up to the next record: one that ends with a record terminator is the
    rest of this block, one that does not (or that looks like a record header) lies between records.
    The file position is left where it was.
    """
    if kind == "zstd":
        return None
    here = raw.tell()
    try:
        if kind == "gzip":
            return _misframed_member(raw, offset, block_length)
        return _misframed_plain(raw, offset, block_length)
    except (OSError, ValueError, zlib.error):
        return None
    finally:
        raw.seek(here)


def _misframed_member(raw: IO[bytes], offset: int, block_length: int) -> tuple[int, int] | None:
    member = _member(raw, offset)
    if member is None:
        return None
    end, data = member
    start = _header_length(data)
    after = data[start + block_length :].lstrip(b"\r\n")
    if len(data) >= start + block_length and (not after or after.startswith(_RECORD_STARTS)):
        return None
    return len(data) - start - _terminator(data), end


def _misframed_plain(raw: IO[bytes], offset: int, block_length: int) -> tuple[int, int] | None:
    header = _plain_header(raw, offset)
    if header is None:
        return None
    start = offset + len(header)
    declared_end = start + block_length
    raw.seek(declared_end)
    terminated = raw.read(4) == b"\r\n\r\n"
    if terminated and looks_like_header(raw.read(_HEAD_BYTES)):
        return None  # a garbled record follows this whole one
    end = find_next_record(raw, "plain", start)
    if end is None:
        raw.seek(0, 2)
        end = raw.tell()
    raw.seek(max(start, end - 4))
    tail = _terminator(raw.read(4))
    if terminated and (end <= declared_end + 4 or not tail):
        return None  # whole, and what follows it (if anything) is garbage between records
    return end - start - tail, end


def _terminator(data: bytes) -> int:
    """How many of the bytes ending `data` are the "\\r\\n\\r\\n" that ends a record (4, or 0)."""
    return 4 if data.endswith(b"\r\n\r\n") else 0


def record_end(raw: IO[bytes], kind: Kind, offset: int) -> int | None:
    """The offset just past the record that starts at `offset` (its gzip member, or header, block, CRLFs)."""
    try:
        if kind == "gzip":
            member = _member(raw, offset)
            return None if member is None else member[0]
        if kind == "zstd":
            return None
        header = _plain_header(raw, offset)
        length = _CONTENT_LENGTH.search(header) if header is not None else None
        if header is None or length is None:
            return None
        end = offset + len(header) + int(length.group(1))
        raw.seek(end)
        trailer = raw.read(4)
        return end + len(trailer) - len(trailer.lstrip(b"\r\n"))
    except (OSError, ValueError, zlib.error):
        return None


def head_at(raw: IO[bytes], kind: Kind, offset: int) -> bytes | None:
    """The first bytes of what is at `offset`, decompressed in a gzipped file; None if that is not gzip."""
    raw.seek(offset)
    data = raw.read(_HEAD_BYTES)
    if kind != "gzip":
        return data
    try:
        return zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(data, _HEAD_BYTES)
    except zlib.error:
        return None


def what_is_at(raw: IO[bytes], kind: Kind, offset: int) -> tuple[str, str]:
    """Why fastwarc could not read a record at `offset`: a skip reason and what the bytes there look like.

    `corrupt_records`: a gzip member that starts like a record but does not decompress to its end;
    `bad_warc_header`: something shaped like a record header that does not parse (a garbled version line);
    `unreadable_bytes`: neither (junk between records, or not a gzip member at all).
    """
    head = head_at(raw, kind, offset)
    shown = repr((head or b"")[:40])
    if head is None:
        return "unreadable_bytes", "no gzip member starts there"
    if not looks_like_header(head):
        return "unreadable_bytes", f"no record header: {shown}"
    if kind == "gzip" and _member(raw, offset) is None:
        return "corrupt_records", f"the gzip member of the record does not decompress: {shown}"
    return "bad_warc_header", f"a record header that does not parse: {shown}"


def looks_like_header(head: bytes | None) -> bool:
    """Whether bytes that fastwarc would not parse still look like a WARC record header (garbled, not junk).

    Either the first line names a WARC version (however mangled the rest of it) or the line after it is a
    `WARC-*` field, as it is under a garbled version line.
    """
    if not head:
        return False
    lines = head.lstrip(b"\r\n").split(b"\n", 2)
    if lines[0].upper().startswith(b"WARC"):
        return True
    return len(lines) > 1 and _HEADER_FIELD.match(lines[1]) is not None


def find_next_record(raw: IO[bytes], kind: Kind, after: int) -> int | None:
    """Byte offset of the first gzip member or WARC header at or after `after` that starts a record."""
    if kind == "zstd":
        return None  # zstd frames span many records; there is no record boundary to resume from
    magic = _GZIP_MAGIC if kind == "gzip" else _WARC_MAGIC
    pos = after
    try:
        while True:
            raw.seek(pos)
            block = raw.read(_SCAN_BLOCK)
            if len(block) < len(magic):
                return None
            index = block.find(magic)
            while index >= 0:
                candidate = pos + index
                if _starts_record(raw, candidate, kind):
                    return candidate
                index = block.find(magic, index + 1)
            pos += len(block) - len(magic) + 1
    except (OSError, ValueError) as exc:  # a stream that cannot seek cannot resume
        log.warning("cannot scan for the next WARC record: %s", exc)
        return None


def _starts_record(raw: IO[bytes], offset: int, kind: Kind) -> bool:
    head = head_at(raw, kind, offset)
    return head is not None and head.startswith(_RECORD_STARTS)


def _member(raw: IO[bytes], offset: int) -> tuple[int, bytes] | None:
    """(end offset, decompressed bytes) of the gzip member at `offset`; None when it does not end whole."""
    raw.seek(offset)
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    out: list[bytes] = []
    consumed = offset
    try:
        for chunk in iter(lambda: raw.read(_SCAN_BLOCK), b""):
            out.append(inflater.decompress(chunk))
            consumed += len(chunk)
            if inflater.eof:
                return consumed - len(inflater.unused_data), b"".join(out)
    except zlib.error:
        return None
    return None


def _header_length(data: bytes) -> int:
    end = data.find(b"\r\n\r\n")
    return len(data) if end < 0 else end + 4


def _plain_header(raw: IO[bytes], offset: int) -> bytes | None:
    """The record header at `offset` of a plain file, up to and with its blank line; None if it has none."""
    raw.seek(offset)
    data = b""
    while len(data) < _MAX_HEADER_BYTES:
        chunk = raw.read(_HEAD_BYTES)
        if not chunk:
            return None
        data += chunk
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            return data[: end + 4]
    return None
