"""Write the bundled demo crawl: gzipped WARC files plus a truth file describing every response.

The whole sample is planned from one seeded `random.Random` before anything is written, so the same seed
gives byte-identical files (WARC dates, record ids and gzip headers are all derived from the seed, never
from the clock). Duplicates are always placed after their original in crawl order, so "keep the first
copy" deduplication agrees with `duplicate_of` in truth.jsonl. Every file goes through `core.atomic`, and a
file that already holds the same bytes is left alone (so a rerun over the sample resumes).

truth.jsonl has one row per response: `url`, `warc_record_id`, `kind` (good, thin, spam, low_quality,
exact_duplicate, near_duplicate, edge), `lang`, `topic`, `domain` (the taxonomy domain of the topic, see
`sites.TOPIC_DOMAINS`; null for captures without content) and `duplicate_of` (the original's URL for copies).
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

from corpusmill.core.atomic import atomic_path
from corpusmill.demo import (
    en_cooking,
    en_finance,
    en_forum,
    en_health,
    en_news,
    en_science,
    en_shop,
    en_software,
    en_travel,
    lang_de,
    lang_es,
    lang_fr,
    lang_zh_ru,
)
from corpusmill.demo.compose import Article
from corpusmill.demo.edge import edge_captures
from corpusmill.demo.lowq import junk_page
from corpusmill.demo.page import render_page, slug
from corpusmill.demo.records import HttpCapture, request_member, response_member, warcinfo_member
from corpusmill.demo.sites import Site, domain_for, site_by_host, sites_for
from corpusmill.demo.thin import thin_article
from corpusmill.demo.variants import near_duplicate

log = logging.getLogger(__name__)

ENGLISH = {
    "news": en_news,
    "science": en_science,
    "cooking": en_cooking,
    "software": en_software,
    "forum": en_forum,
    "shop": en_shop,
    "travel": en_travel,
    "health": en_health,
    "finance": en_finance,
}
GOOD_ENGLISH = 261  # 29 pages per English topic
FOREIGN = {"de": 18, "fr": 18, "es": 18, "zh": 4, "ru": 4}
SPAM, LOW_QUALITY = 30, 30
# Filler that passes the heuristics (see demo/thin.py), 5 pages on each of these topics.
THIN, THIN_TOPICS = 30, ("shop", "travel", "health", "finance", "software", "cooking")
EXACT_DUPLICATES, NEAR_DUPLICATES = 32, 32
CRAWL_START = datetime(2024, 5, 18, 0, 0, 0, tzinfo=UTC)
TRUTH_NAME = "truth.jsonl"


@dataclass(frozen=True)
class DemoCorpus:
    """Where the demo sample was written: the WARC files in crawl order and the truth file beside them."""

    warc_paths: tuple[Path, ...]
    truth_path: Path

    def truth(self) -> list[dict[str, str | None]]:
        """The truth records, one per response record, in crawl order."""
        with open(self.truth_path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]


@dataclass
class _Entry:
    """One planned response: its site, path, body and truth labels (record ids come later)."""

    site: Site
    path: str
    kind: str
    lang: str | None
    topic: str | None
    body: bytes
    status: int = 200
    reason: str = "OK"
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "text/html; charset=utf-8"),)
    identified_type: str | None = "text/html"
    duplicate_of: _Entry | None = None
    article: Article | None = None

    @property
    def url(self) -> str:
        return f"https://{self.site.host}{quote(self.path, safe='/?&=.-_~')}"

    @property
    def domain(self) -> str | None:
        """The taxonomy domain of the page's topic; None for captures without content (no topic)."""
        return domain_for(self.topic)


def _path_for(article: Article, site: Site, serial: int, rng: random.Random) -> str:
    if site.layout == "docs":
        return f"/en/latest/guide/{slug(article.title)}-{serial}.html"
    if site.layout == "forum":
        return f"/threads/{slug(article.title)}.{1000 + serial}/"
    if site.layout == "shop":
        return f"/products/{slug(article.title)}-{serial}"
    section = slug(site.nav[rng.randrange(1, len(site.nav))])
    year, month = rng.choice(("2023", "2024")), rng.randint(1, 12)
    return f"/{section}/{year}/{month:02d}/{slug(article.title)}-{serial}.html"


def _html_headers(site: Site, rng: random.Random) -> tuple[tuple[str, str], ...]:
    server = rng.choice(("nginx", "Apache", "cloudflare", "nginx/1.24.0", "Apache/2.4.58 (Ubuntu)"))
    charset = rng.choice(("utf-8", "UTF-8"))
    headers = [
        ("Server", server),
        ("Content-Type", f"text/html; charset={charset}"),
        ("Cache-Control", rng.choice(("max-age=600", "no-cache", "public, max-age=3600"))),
    ]
    if rng.random() < 0.5:
        headers.append(("Content-Language", site.lang))
    if rng.random() < 0.3:
        headers.append(("X-Powered-By", rng.choice(("PHP/8.2.12", "Express", "WordPress"))))
    return tuple(headers)


def _good_articles(rng: random.Random) -> list[Article]:
    articles = []
    topics = sorted(ENGLISH)
    for i in range(GOOD_ENGLISH):
        articles.append(ENGLISH[topics[i % len(topics)]].article(rng))
    modules = {"de": lang_de, "fr": lang_fr, "es": lang_es}
    for lang, count in FOREIGN.items():
        for i in range(count):
            if lang in modules:
                articles.append(modules[lang].article(rng, ("news", "travel", "cooking")[i % 3]))
            else:
                articles.append(lang_zh_ru.article(rng, lang))
    return articles


def _site_for(article: Article, rng: random.Random, avoid: str | None = None) -> Site:
    if article.home and avoid is None:
        return site_by_host(article.home)
    candidates = [s for s in sites_for(article.topic, article.lang) if s.host != avoid]
    return rng.choice(candidates) if candidates else site_by_host(avoid or article.home)


def _render(entry: _Entry, rng: random.Random, titles: dict[str, list[str]]) -> None:
    article = entry.article
    if article is None:
        return
    pool = [t for t in titles.get(entry.site.host, []) if t != article.title]
    related = rng.sample(pool, min(5, len(pool)))
    entry.body = render_page(article, entry.site, entry.url, rng, related).encode("utf-8")
    entry.headers = _html_headers(entry.site, rng)


def _good_entries(rng: random.Random) -> list[_Entry]:
    entries = []
    for serial, article in enumerate(_good_articles(rng)):
        site = _site_for(article, rng)
        path = _path_for(article, site, serial, rng)
        entries.append(_Entry(site, path, "good", article.lang, article.topic, b"", article=article))
    return entries


def _thin_entries(rng: random.Random) -> list[_Entry]:
    """Content-farm listicles spread evenly over `THIN_TOPICS`, each on a farm host of its topic."""
    entries = []
    for i in range(THIN):
        article = thin_article(rng, THIN_TOPICS[i % len(THIN_TOPICS)])
        site = site_by_host(article.home)
        path = _path_for(article, site, 6000 + i, rng)
        entries.append(_Entry(site, path, "thin", "en", article.topic, b"", article=article))
    return entries


TRACKING_SUFFIXES = (
    "?utm_source=newsletter&utm_medium=email",
    "?amp=1",
    "?print=1",
    "?ref=homepage",
    "?page=1",
)


def _exact_copy(rng: random.Random, original: _Entry, article: Article, serial: int) -> _Entry:
    """The same article at another URL: a tracking variant on the same site, or a copy on a sister site."""
    site = _site_for(article, rng, avoid=original.site.host)
    if site.layout != original.site.layout or rng.random() < 0.4:
        path = original.path + rng.choice(TRACKING_SUFFIXES)
        site = original.site
    else:
        path = _path_for(article, site, serial, rng)
    return _Entry(
        site,
        path,
        "exact_duplicate",
        article.lang,
        article.topic,
        b"",
        duplicate_of=original,
        article=article,
    )


def _near_copy(rng: random.Random, original: _Entry, article: Article, serial: int) -> _Entry:
    """A lightly edited republication, on the same site or another one of the same topic."""
    edited = near_duplicate(rng, article)
    site = original.site if rng.random() < 0.5 else _site_for(article, rng, avoid=original.site.host)
    path = _path_for(article, site, serial, rng)
    return _Entry(
        site, path, "near_duplicate", article.lang, article.topic, b"", duplicate_of=original, article=edited
    )


def _copies(rng: random.Random, good: list[_Entry]) -> list[_Entry]:
    candidates = [
        e
        for e in good
        if e.article and e.lang in ("en", "de", "fr", "es") and len(e.article.body_text().split()) >= 150
    ]
    copies = []
    for n, original in enumerate(rng.sample(candidates, EXACT_DUPLICATES + NEAR_DUPLICATES)):
        assert original.article is not None  # candidates all carry an article
        make = _exact_copy if n < EXACT_DUPLICATES else _near_copy
        copies.append(make(rng, original, original.article, 5000 + n))
    return copies


def _junk_and_edge(rng: random.Random) -> list[_Entry]:
    entries = []
    for kind, count in (("spam", SPAM), ("low_quality", LOW_QUALITY)):
        for i in range(count):
            page = junk_page(rng, kind, i)
            entries.append(_Entry(page.site, page.path, kind, "en", page.topic, page.html.encode("utf-8")))
    for edge in edge_captures(rng):
        headers = (("Server", "nginx"), *edge.headers)
        entries.append(
            _Entry(
                edge.site,
                edge.path,
                "edge",
                edge.lang,
                edge.topic,
                edge.body,
                edge.status,
                edge.reason,
                headers,
                edge.identified_type,
            )
        )
    return entries


def _plan(rng: random.Random) -> list[_Entry]:
    """Decide every response of the sample, in crawl order (each copy after its original)."""
    good = _good_entries(rng)
    thin = _thin_entries(rng)
    titles: dict[str, list[str]] = {}
    for entry in good + thin:
        if entry.article is not None:
            titles.setdefault(entry.site.host, []).append(entry.article.title)
    copies = _copies(rng, good)
    entries = good + thin + _junk_and_edge(rng)
    rng.shuffle(entries)
    for copy in copies:
        after = entries.index(copy.duplicate_of) + 1 if copy.duplicate_of else 0
        entries.insert(rng.randint(after, len(entries)), copy)
    for entry in entries:
        _render(entry, rng, titles)
    seen: set[str] = set()
    for entry in entries:
        if entry.url in seen:
            raise RuntimeError(
                f"demo generator produced the URL {entry.url} twice; the path tables need fixing"
            )
        seen.add(entry.url)
    return entries


def _split(count: int, parts: int) -> list[range]:
    base, extra = divmod(count, parts)
    out, start = [], 0
    for i in range(parts):
        size = base + (1 if i < extra else 0)
        out.append(range(start, start + size))
        start += size
    return out


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write `path` atomically, unless it already holds exactly `data`.

    Rewriting identical bytes would still change the file's modification time, and a run over the sample
    treats a changed input as new data: `make demo` twice would refuse to resume its own runs.
    """
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_demo_corpus(out_dir: Path, *, seed: int = 0, num_files: int = 4) -> DemoCorpus:
    """Write the demo crawl (WARC files and truth.jsonl) so the pipeline can run end to end offline."""
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    ids = random.Random(f"corpusmill-demo-ids-{seed}")
    entries = _plan(rng)
    if not 1 <= num_files <= len(entries):
        raise ValueError(
            f"num_files must be between 1 and {len(entries)} for the demo corpus, got {num_files}"
        )

    def new_id() -> str:
        return f"urn:uuid:{uuid.UUID(int=ids.getrandbits(128), version=4)}"

    truth: list[dict[str, str | None]] = []
    paths: list[Path] = []
    clock = 0
    for file_no, span in enumerate(_split(len(entries), num_files)):
        name = f"demo-{file_no:04d}.warc.gz"
        info_id = new_id()
        started = CRAWL_START + timedelta(seconds=clock)
        members = [
            warcinfo_member(
                info_id,
                started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                name,
                {
                    "software": "corpusmill demo crawl generator",
                    "format": "WARC File Format 1.1",
                    "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
                    "isPartOf": f"CORPUSMILL-DEMO-seed-{seed}",
                    "description": "Synthetic crawl written by corpusmill for demos and tests",
                    "robots": "classic",
                },
            )
        ]
        for index in span:
            entry = entries[index]
            clock += 3 + index % 7
            when = CRAWL_START + timedelta(seconds=clock)
            capture = HttpCapture(
                url=entry.url,
                status=entry.status,
                reason=entry.reason,
                headers=entry.headers,
                body=entry.body,
                ip=entry.site.ip,
                date=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                http_date=format_datetime(when, usegmt=True),
                request_id=new_id(),
                response_id=new_id(),
                identified_type=entry.identified_type,
            )
            members.append(request_member(capture, info_id))
            members.append(response_member(capture, info_id))
            truth.append(
                {
                    "url": entry.url,
                    "warc_record_id": f"<{capture.response_id}>",
                    "kind": entry.kind,
                    "lang": entry.lang,
                    "topic": entry.topic,
                    "domain": entry.domain,
                    "duplicate_of": entry.duplicate_of.url if entry.duplicate_of else None,
                }
            )
        path = out_dir / name
        _write_if_changed(path, b"".join(members))
        paths.append(path)
    truth_path = out_dir / TRUTH_NAME
    lines = (json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in truth)
    _write_if_changed(truth_path, "".join(lines).encode("utf-8"))
    log.info("wrote demo crawl: %d responses in %d WARC files under %s", len(truth), len(paths), out_dir)
    return DemoCorpus(tuple(paths), truth_path)
