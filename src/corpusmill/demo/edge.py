"""Awkward captures every real crawl contains, so readers and extractors meet them before production does.

Each edge case is a response a naive pipeline mishandles: bytes that are not valid UTF-8, a page in
ISO-8859-1, HTML that never closes its tags, an empty body, binary payloads (PNG, PDF), an error page, a
robots.txt, a gzip Content-Encoding the reader must undo, a redirect, and one very large page.
"""

from __future__ import annotations

import gzip
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from corpusmill.demo import en_news, en_science, lang_de
from corpusmill.demo.compose import Article
from corpusmill.demo.page import render_page, slug
from corpusmill.demo.sites import Site, site_by_host, sites_for


@dataclass(frozen=True)
class EdgeCapture:
    """An edge-case response: where it lives, the HTTP status and headers, and the exact body bytes."""

    name: str
    site: Site
    path: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    lang: str | None
    topic: str | None
    identified_type: str | None


HTML_UTF8 = (("Content-Type", "text/html; charset=utf-8"),)


def _png(width: int = 16, height: int = 16) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    raw = b"".join(
        b"\x00" + b"".join(bytes((x * 15, y * 15, 128)) for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _pdf(text: str) -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _article_html(
    rng: random.Random, make: Callable[..., Article], topic: str, lang: str = "en", charset: str = "utf-8"
) -> tuple[Site, str, str]:
    article = make(rng) if lang == "en" else make(rng, topic)
    site = rng.choice(sites_for(topic, lang))
    path = f"/{topic}/{slug(article.title)}.html"
    return site, path, render_page(article, site, f"https://{site.host}{path}", rng, [], charset=charset)


def _invalid_utf8(rng: random.Random) -> EdgeCapture:
    site, path, html = _article_html(rng, en_news.article, "news")
    data = bytearray(html.encode("utf-8"))
    start = data.index(b"<p>") + 3
    for offset in sorted(rng.sample(range(start, len(data) - 200), 6)):
        data[offset : offset + 1] = rng.choice((b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80"))
    return EdgeCapture(
        "invalid_utf8", site, path, 200, "OK", HTML_UTF8, bytes(data), "en", "news", "text/html"
    )


def _latin1(rng: random.Random) -> EdgeCapture:
    site, path, html = _article_html(rng, lang_de.article, "news", lang="de", charset="iso-8859-1")
    body = html.encode("iso-8859-1", errors="xmlcharrefreplace")
    headers = (("Content-Type", "text/html; charset=ISO-8859-1"),)
    return EdgeCapture("latin1", site, path, 200, "OK", headers, body, "de", "news", "text/html")


def _broken_html(rng: random.Random) -> EdgeCapture:
    site, path, html = _article_html(rng, en_science.article, "science")
    broken = html.replace("</p>", "").replace("</li>", "").replace("</div>", "", 3)
    broken = broken[: broken.rindex("<footer")] + '<div class="footer"><ul><li><a href="/about">About'
    return EdgeCapture(
        "broken_html", site, path, 200, "OK", HTML_UTF8, broken.encode("utf-8"), "en", "science", "text/html"
    )


def _gzip_encoded(rng: random.Random) -> EdgeCapture:
    site, path, html = _article_html(rng, en_science.article, "science")
    headers = (*HTML_UTF8, ("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding"))
    body = gzip.compress(html.encode("utf-8"), mtime=0)
    return EdgeCapture("gzip_encoded", site, path, 200, "OK", headers, body, "en", "science", "text/html")


CHANGES = (
    "Fixed a crash when the configuration file was empty",
    "Improved start-up time on large projects",
    "Added a command to export statistics as CSV",
    "Removed the deprecated legacy importer",
    "Documented every environment variable",
    "Fixed a memory leak in the background worker",
    "Made error messages name the file that caused them",
    "Updated translations for six languages",
)


def _large_page(rng: random.Random) -> EdgeCapture:
    site = site_by_host("docs.lanternctl.dev")
    lines = []
    size = 0
    version = [1, 0, 0]
    while size < 2_000_000:
        version[2] += 1
        if version[2] > 30:
            version = [version[0] + (version[1] == 9), (version[1] + 1) % 10, 0]
        items = "".join(
            f"<li>{rng.choice(CHANGES)} (issue {rng.randint(100, 99999)}).</li>" for _ in range(6)
        )
        line = f"<h2>Version {'.'.join(map(str, version))}</h2><ul>{items}</ul>\n"
        lines.append(line)
        size += len(line)
    html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Full changelog | '
        "lanternctl docs</title>"
        "</head><body><main><h1>Full changelog</h1>" + "".join(lines) + "</main></body></html>\n"
    )
    return EdgeCapture(
        "large_page",
        site,
        "/changelog/full.html",
        200,
        "OK",
        HTML_UTF8,
        html.encode("utf-8"),
        "en",
        "software",
        "text/html",
    )


def edge_captures(rng: random.Random) -> list[EdgeCapture]:
    """All edge-case responses of the demo crawl, in a fixed order."""
    news = site_by_host("www.harborgazette-news.com")
    shop = site_by_host("www.northwindoutfitters.com")
    docs = site_by_host("docs.tidepool-db.io")
    not_found = (
        b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        b"<title>Page not found</title></head><body>"
        b"<h1>404</h1><p>Sorry, the page you were looking for does not exist.</p>"
        b'<p><a href="/">Back to the home page</a></p></body></html>\n'
    )
    robots = (
        b"User-agent: *\nDisallow: /admin/\nDisallow: /search\nAllow: /\n\n"
        b"User-agent: BadBot\nDisallow: /\n\nSitemap: https://www.harborgazette-news.com/sitemap.xml\n"
    )
    redirect = b'<html><body><a href="https://www.harborgazette-news.com/">Moved here</a></body></html>'
    return [
        _invalid_utf8(rng),
        _latin1(rng),
        _broken_html(rng),
        EdgeCapture("empty_body", news, "/live/blank-page", 200, "OK", HTML_UTF8, b"", None, None, None),
        EdgeCapture(
            "png_image",
            shop,
            "/media/products/thumb-ridgeline.png",
            200,
            "OK",
            (("Content-Type", "image/png"),),
            _png(),
            None,
            None,
            "image/png",
        ),
        EdgeCapture(
            "pdf_document",
            docs,
            "/static/tidepool-quick-reference.pdf",
            200,
            "OK",
            (("Content-Type", "application/pdf"),),
            _pdf("Tidepool quick reference card"),
            None,
            None,
            "application/pdf",
        ),
        EdgeCapture(
            "not_found",
            news,
            "/2019/01/deleted-story.html",
            404,
            "Not Found",
            HTML_UTF8,
            not_found,
            "en",
            None,
            "text/html",
        ),
        EdgeCapture(
            "robots_txt",
            news,
            "/robots.txt",
            200,
            "OK",
            (("Content-Type", "text/plain"),),
            robots,
            None,
            None,
            "text/plain",
        ),
        EdgeCapture(
            "redirect",
            news,
            "/home",
            301,
            "Moved Permanently",
            (*HTML_UTF8, ("Location", "https://www.harborgazette-news.com/")),
            redirect,
            None,
            None,
            "text/html",
        ),
        _gzip_encoded(rng),
        _large_page(rng),
    ]
