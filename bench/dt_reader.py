"""datatrove's WARC reader, or a stand-in with the same output where its dependencies are missing.

datatrove's `WarcReader` needs `warcio`, `faust-cchardet` and `python-magic`, which corpusmill itself does
not depend on. When they import, the benchmark uses the real reader. Otherwise it uses `FastWarcReader`
below: a datatrove reader (same base class, same document fields: the HTML as text, the WARC-Record-ID as
id, url and date in metadata) over fastwarc, which corpusmill already installs. It filters records the way
datatrove's `process_record` does (response records whose identified payload type is HTML) and decodes UTF-8
first, then the charset the HTTP header names. The results say which reader ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from datatrove.pipeline.readers.base import BaseDiskReader

HTML_TYPES = ("text/html", "application/xhtml+xml")


def warcio_available() -> bool:
    """Whether datatrove's own WarcReader can run here."""
    try:
        import cchardet  # noqa: F401
        import magic  # noqa: F401
        import warcio  # noqa: F401
    except ImportError:
        return False
    return True


def warc_reader(folder: str, **options: Any) -> tuple[Any, str]:
    """A datatrove reader over `folder`'s `*.warc.gz` files, and its name for the results."""
    if warcio_available():
        from datatrove.pipeline.readers import WarcReader

        return WarcReader(folder, glob_pattern="*.warc.gz", **options), "datatrove WarcReader"
    return FastWarcReader(folder, glob_pattern="*.warc.gz", **options), "fastwarc stand-in for WarcReader"


def _decode(body: bytes, charset: str | None) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if not charset:
        return None
    try:
        return body.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return None


class FastWarcReader(BaseDiskReader):
    """Reads WARC response records with fastwarc into datatrove documents."""

    name = "🕷 Warc (fastwarc)"
    _requires_dependencies: ClassVar[list[str]] = ["fastwarc"]

    def read_file(self, filepath: str) -> Iterator[Any]:
        """Yield one document per HTML response record of the file."""
        from fastwarc.warc import ArchiveIterator, WarcRecordType

        with self.data_folder.open(filepath, "rb", compression=None) as handle:
            records = ArchiveIterator(handle, record_types=WarcRecordType.response, parse_http=True)
            for index, record in enumerate(records):
                with self.track_time():
                    mime = record.headers.get("WARC-Identified-Payload-Type")
                    if mime is not None and mime not in HTML_TYPES:
                        continue
                    text = _decode(record.reader.read(), record.http_charset)
                    if text is None:
                        continue
                    data = {
                        "text": text,
                        "id": record.headers.get("WARC-Record-ID"),
                        "url": record.headers.get("WARC-Target-URI"),
                        "date": record.headers.get("WARC-Date"),
                    }
                    document = self.get_document_from_dict(data, filepath, index)
                    if not document:
                        continue
                yield document
