"""Serialise demo crawl captures as WARC/1.1 records, one gzip member per record.

fastwarc builds each record (headers, Content-Length, block digest) so the output is read back by the same
library the pipeline uses; the payload digest is computed here because fastwarc only writes it when given.
Each record is compressed on its own with a zeroed gzip timestamp: that is the standard `.warc.gz` layout
(a reader can seek to any record) and it keeps the bytes identical from one run to the next.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from dataclasses import dataclass

from fastwarc.warc import WarcRecord, WarcRecordType

CRAWLER_AGENT = "corpusmill-demo-crawler/1.0 (+https://corpusmill.invalid/demo-crawler)"


@dataclass(frozen=True)
class HttpCapture:
    """One fetched URL: what was asked for and what came back (body exactly as it went on the wire)."""

    url: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    ip: str
    date: str  # WARC-Date, ISO 8601 with a trailing Z
    http_date: str  # the same instant in RFC 7231 form for the HTTP Date header
    request_id: str  # urn:uuid:... without the angle brackets
    response_id: str
    identified_type: str | None = None


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


def _serialise(record: WarcRecord, payload_digest: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    record.write(buffer, checksum_data=True, payload_digest=payload_digest)
    return gzip.compress(buffer.getvalue(), compresslevel=6, mtime=0)


def _new_record(kind: WarcRecordType, record_id: str, date: str) -> WarcRecord:
    record = WarcRecord()
    record.init_headers(kind, record_id.removeprefix("urn:").encode("ascii"))
    record.headers["WARC-Date"] = date
    return record


def warcinfo_member(record_id: str, date: str, filename: str, fields: dict[str, str]) -> bytes:
    """Build the leading warcinfo record that tells a reader which crawl produced the file."""
    record = _new_record(WarcRecordType.warcinfo, record_id, date)
    record.headers["Content-Type"] = "application/warc-fields"
    record.headers["WARC-Filename"] = filename
    block = "".join(f"{key}: {value}\r\n" for key, value in fields.items()).encode("utf-8")
    record.set_bytes_content(block)
    return _serialise(record)


def _host_and_path(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1]
    host, _, path = rest.partition("/")
    return host, "/" + path


def request_member(capture: HttpCapture, warcinfo_id: str) -> bytes:
    """Build the request record a crawler writes before each response."""
    host, path = _host_and_path(capture.url)
    lines = [
        f"GET {path} HTTP/1.1",
        f"User-Agent: {CRAWLER_AGENT}",
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "Accept-Language: en-US,en;q=0.5",
        "Accept-Encoding: br,gzip",
        f"Host: {host}",
        "Connection: Keep-Alive",
    ]
    block = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    record = _new_record(WarcRecordType.request, capture.request_id, capture.date)
    record.headers["Content-Type"] = "application/http; msgtype=request"
    record.headers["WARC-Warcinfo-ID"] = f"<{warcinfo_id}>"
    record.headers["WARC-IP-Address"] = capture.ip
    record.headers["WARC-Target-URI"] = capture.url
    record.set_bytes_content(block)
    return _serialise(record, payload_digest=_sha1(b""))


def response_member(capture: HttpCapture, warcinfo_id: str) -> bytes:
    """Build the response record: HTTP status line, headers and the body bytes as captured."""
    head = [f"HTTP/1.1 {capture.status} {capture.reason}", f"Date: {capture.http_date}"]
    head += [f"{key}: {value}" for key, value in capture.headers]
    head.append(f"Content-Length: {len(capture.body)}")
    block = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + capture.body
    record = _new_record(WarcRecordType.response, capture.response_id, capture.date)
    record.headers["Content-Type"] = "application/http; msgtype=response"
    record.headers["WARC-Warcinfo-ID"] = f"<{warcinfo_id}>"
    record.headers["WARC-Concurrent-To"] = f"<{capture.request_id}>"
    record.headers["WARC-IP-Address"] = capture.ip
    record.headers["WARC-Target-URI"] = capture.url
    if capture.identified_type:
        record.headers["WARC-Identified-Payload-Type"] = capture.identified_type
    record.set_bytes_content(block)
    return _serialise(record, payload_digest=_sha1(capture.body))
