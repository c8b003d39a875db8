"""Turning the bytes of an HTML page into text, the same way for WARC records and standalone files.

Order of evidence: a byte-order mark wins; then bytes that are valid UTF-8 are read as UTF-8, even when a
header or `<meta>` claims another charset (crawled pages very often declare ISO-8859-1, or even UTF-16, while
serving UTF-8, and valid multi-byte UTF-8 is almost never produced by accident); then the HTTP `charset`, then
a `<meta charset>` / http-equiv declaration near the top of the page, then UTF-8. Labels are mapped the way
browsers map them (ISO-8859-1 and ASCII mean windows-1252, GB2312 means GB18030, ...). Bytes that do not
fit the chosen charset are replaced, never fatal, and counted: `ReplacementLimit` then decides whether a
document with that many replacement characters is still worth keeping.
"""

from __future__ import annotations

import codecs
import functools
import re
import struct
from dataclasses import dataclass

import pyarrow as pa

from corpusmill.core.skips import SkipLog, Unit
from corpusmill.core.stats import Stats

# How far into a page a `<meta charset>` declaration is looked for.
SNIFF_BYTES = 16 * 1024

_META_CHARSET = re.compile(rb"""<meta\b[^>]{0,1024}?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:+\-]{1,40})""", re.I)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Python codec name -> the codec browsers actually use for that label.
_BROWSER_CODEC = {
    "ascii": "cp1252",
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
}


@dataclass(frozen=True)
class Decoded:
    """A page as valid UTF-8 bytes, the codec it was read with, and how many characters decoding replaced.

    `replacements` counts the U+FFFD that decoding put in for bytes the codec could not read (a U+FFFD the
    input itself held is not one); `chars` is the page's length in characters when it had any.
    """

    utf8: bytes
    encoding: str
    replacements: int = 0
    chars: int = 0

    @property
    def replaced(self) -> bool:
        """Whether some bytes did not fit the charset."""
        return self.replacements > 0

    @property
    def text(self) -> str:
        """The page as a Python string."""
        return self.utf8.decode("utf-8")


@functools.lru_cache(maxsize=256)
def normalize_charset(label: str | None) -> str | None:
    """The Python codec to use for a charset label from a header or page, or None when it is unusable."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    try:
        info = codecs.lookup(label)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None  # bytes-to-bytes codecs such as base64 or zlib are not charsets
    return _BROWSER_CODEC.get(info.name, info.name)


def sniff_meta_charset(data: bytes) -> str | None:
    """The charset a page declares in a `<meta>` tag near its top, normalized, or None."""
    match = _META_CHARSET.search(data, 0, SNIFF_BYTES)
    if match is None:
        return None
    codec = normalize_charset(match.group(1).decode("ascii", "replace"))
    # A page cannot declare UTF-16 in ASCII-compatible bytes; browsers read such pages as UTF-8.
    if codec is not None and codec.startswith("utf-16"):
        return "utf-8"
    return codec


def decode_html(data: bytes, http_charset: str | None = None) -> Decoded:
    """Decode page bytes to text using BOM, UTF-8 validity, HTTP charset and `<meta>` in that order."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _decode(data[len(bom) :], codec)
    declared = normalize_charset(http_charset)
    if declared is not None and declared.startswith(("utf-16", "utf-32")) and not _ascii_compatible(data):
        return _decode(data, declared)
    if is_utf8(data):
        return Decoded(data, "utf-8")
    return _decode(data, declared or sniff_meta_charset(data) or "utf-8")


def _ascii_compatible(data: bytes) -> bool:
    """Whether the bytes read as UTF-8 and lack the NUL bytes every UTF-16/32 page is full of.

    ASCII-range text in UTF-16 is valid UTF-8 too (every other byte NUL), so validity alone cannot overrule a
    UTF-16 declaration; a valid UTF-8 body with (almost) no NUL bytes can, since no UTF-16 page looks like it.
    """
    head = data[:SNIFF_BYTES]
    return head.count(b"\x00") * 8 < len(head) and is_utf8(data)


def count_decoding(stats: Stats, decoded: Decoded) -> None:
    """Count a document whose bytes did not all fit its charset."""
    if decoded.replaced:
        stats.incr("reader.invalid_utf8" if decoded.encoding == "utf-8" else "reader.invalid_charset_bytes")


def is_utf8(data: bytes) -> bool:
    """Whether the bytes are valid UTF-8 (ASCII is checked without decoding).

    Other bytes are checked by Arrow's UTF-8 validator, which accepts exactly what a strict decode accepts
    (no surrogates, overlong forms or code points past U+10FFFF) and, not having to build a string, runs
    several times faster than `bytes.decode` on a web page; the bytes are viewed in place, not copied.
    """
    if data.isascii():
        return True
    offsets = pa.py_buffer(struct.pack("<qq", 0, len(data)))
    view = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        view.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def decode_replacing(data: bytes, codec: str = "utf-8") -> tuple[str, int]:
    """The bytes decoded with U+FFFD for what `codec` cannot read, and how many U+FFFD that put in.

    Decoding once more while dropping the bad bytes tells the two apart: each unreadable run becomes one
    U+FFFD in the first and nothing in the second, while a U+FFFD the input really held is in both.
    """
    try:
        return data.decode(codec), 0
    except UnicodeDecodeError:
        text = data.decode(codec, errors="replace")
        return text, len(text) - len(data.decode(codec, errors="ignore"))


def _decode(data: bytes, codec: str) -> Decoded:
    try:
        text, replacements = decode_replacing(data, codec)
    except LookupError:
        return _decode(data, "utf-8")
    return Decoded(text.encode("utf-8", errors="replace"), codec, replacements, len(text))


@dataclass(frozen=True)
class ReplacementLimit:
    """The largest share of a document's characters that may be U+FFFD put in by decoding.

    A page read with the wrong charset, or a binary file served as text, comes out as a run of replacement
    characters that no later filter reads as damage; 0 keeps every document that needed a replacement out.
    """

    share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"max_replacement_share must be between 0 and 1, got {self.share}")

    def admits(self, replacements: int, chars: int) -> bool:
        """Whether a document with `replacements` of its `chars` characters replaced may be kept."""
        return replacements <= self.share * chars

    def screen(
        self,
        skips: SkipLog,
        where: tuple[Unit, int | None],
        replacements: int,
        chars: int,
        *,
        nbytes: int | None = None,
        how: str = "utf-8",
    ) -> bool:
        """Keep (True) or skip as `undecodable_text` a document whose decoding replaced characters."""
        if not replacements:
            return True
        if self.admits(replacements, chars):
            skips.stats.incr("reader.documents_with_replacements")
            return True
        unit, position = where
        detail = (
            f"{replacements} of {chars} characters replaced decoding {how} "
            f"({replacements / max(chars, 1):.2%}; max_replacement_share is {self.share:g})"
        )
        skips.skip("undecodable_text", unit, position, nbytes=nbytes, detail=detail)
        return False
