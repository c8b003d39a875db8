"""`url_filter`: drop pages by their URL before anything is spent on their HTML, with FineWeb's URL rules.

Like the `heuristics` stage, this calls datatrove's own filter (`URLFilter`) rather than re-implementing it:
the block lists and rules are the community's, and their value is in being the same ones. datatrove drops a
URL whose registered domain or full host name is on its domain list, that is on its URL list, that contains a
banned word (URLs are split into words at every non-alphanumeric character; the comparison is
case-sensitive, as datatrove's is, and the listed words are lowercase), at least `soft_word_threshold` "soft"
banned words, or a banned sub-word anywhere in its letters and digits. The drop reason is
`url_filter:<datatrove's reason>` (`domain`, `subdomain`, `url`, `hard_blacklisted`, `soft_blacklisted`,
`blacklisted_subword`), and the detail names what matched (`domain example.com (block_domains)`).

The default lists (`use_default_lists`) are the ones datatrove ships inside its package (an archive of about
4.5 million domains and 20,000 URLs, plus its word lists): nothing is downloaded. datatrove unpacks the archive
once per machine into Hugging Face's assets cache (`HF_ASSETS_CACHE`, by default under `~/.cache`), and each
worker then holds the lists in memory: about 0.7 GB and 2.5-3.5 CPU-seconds of set-up per worker, measured. The
public-suffix list that splits host names into registered domain and subdomains is the snapshot bundled with
`tldextract`, never fetched, so results do not depend on whether the network was reachable.

The recipe's own additions:
- `block_domains`, `block_urls`, `banned_words`: added to datatrove's lists, with datatrove's rules (a
  domain entry matches a URL's registered domain or its exact host name; a host under a suffix that is not
  public, such as `.example` or `localhost`, has neither, so it never matches);
- `patterns`: regular expressions searched in the URL (reason `url_filter:pattern`), after datatrove's rules;
- `allow_domains`: hosts that are never blocked, checked first: a URL whose host is an allowed domain or a
  subdomain of one passes every rule (for sites a default list blocks by mistake).

Rows without a URL (text sources) and rows already dropped pass untouched. A URL the rules fail on (a host
name tldextract cannot split) is kept and counted (`url_filter.error`): the later stages still judge it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pyarrow as pa
from pydantic import Field, field_validator

from corpusmill.core import schema
from corpusmill.core.stage import MapStage, Resources, StageParams, register

logger = logging.getLogger(__name__)

REASON_PREFIX = "url_filter:"
PATTERN_REASON = f"{REASON_PREFIX}pattern"


class UrlFilterParams(StageParams):
    """datatrove's lists (or not), and the recipe's own blocked and allowed domains, URLs, words and patterns."""

    use_default_lists: bool = True
    block_domains: list[str] = Field(default_factory=list)
    block_urls: list[str] = Field(default_factory=list)
    banned_words: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    allow_domains: list[str] = Field(default_factory=list)
    soft_word_threshold: int = Field(2, ge=1)

    @field_validator("block_domains", "allow_domains")
    @classmethod
    def _host_names(cls, domains: list[str]) -> list[str]:
        cleaned = []
        for domain in domains:
            host = domain.strip().lower().rstrip(".")
            if not host or "/" in host or ":" in host:
                raise ValueError(
                    f"{domain!r} is not a host name (e.g. 'example.com'); use block_urls for whole URLs and "
                    "patterns for anything else"
                )
            cleaned.append(host)
        return cleaned

    @field_validator("banned_words")
    @classmethod
    def _single_words(cls, words: list[str]) -> list[str]:
        # datatrove compares whole words of the URL, split at every other character: "free-bets" never matches.
        wrong = [word for word in words if not re.fullmatch(r"[a-zA-Z0-9]+", word)]
        if wrong:
            raise ValueError(
                f"banned words must be single words of letters and digits (URLs are split into words at every "
                f"other character), not {wrong}; use patterns for anything longer"
            )
        return [word.lower() for word in words]

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from exc
        return patterns


@register
class UrlFilterStage(MapStage):
    """Drops documents whose URL datatrove's URL rules or the recipe's own lists and patterns block."""

    name = "url_filter"
    Params = UrlFilterParams
    requires = (schema.URL,)
    # datatrove's default lists, held by every worker (0.7 GB measured; see the module docstring).
    resources = Resources(memory_gb=1.0)

    def __init__(self, params: UrlFilterParams | None = None) -> None:
        super().__init__(params)
        self.params: UrlFilterParams
        self._patterns = [re.compile(pattern) for pattern in self.params.patterns]
        self._allowed = frozenset(self.params.allow_domains)
        self._user_domains = frozenset(self.params.block_domains)
        self._filter: Any = None

    def _setup(self) -> None:
        from datatrove.pipeline.filters.url_filter import URLFilter
        from tldextract import TLDExtract

        p = self.params
        url_filter = URLFilter(
            soft_word_threshold=p.soft_word_threshold,
            extra_domains=p.block_domains or None,
            extra_urls=p.block_urls or None,
            banned_words=p.banned_words or None,
            use_integrated_lists=p.use_default_lists,
        )
        # The bundled public-suffix snapshot, never a download (and no cache file written).
        url_filter.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)
        url_filter.tldextractor("https://example.com/")  # builds the suffix trie (most of a second) now
        url_filter.download_data()  # unpacks and loads the shipped lists now, not on the first document
        self._filter = url_filter

    def close(self) -> None:
        """Forget the lists."""
        self._filter = None
        super().close()

    def __getstate__(self) -> dict[str, Any]:
        # The lists are large; every worker loads its own in setup().
        state = self.__dict__.copy()
        state["_filter"] = None
        state["_ready"] = False
        return state

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Judge every undropped row that has a URL; mark the blocked ones."""
        self.setup()
        n = batch.num_rows
        urls = batch.column(schema.URL).to_pylist()
        already = schema.column_or_nulls(batch, schema.DROP_REASON)
        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        for i, (url, dropped) in enumerate(zip(urls, already, strict=True)):
            if dropped is not None:
                self.stats.incr("url_filter.skipped_dropped")
                continue
            if not url:
                self.stats.incr("url_filter.no_url")
                continue
            reasons[i], details[i] = self.judge(url)
            self.stats.incr("url_filter.kept" if reasons[i] is None else f"url_filter.dropped.{reasons[i]}")
        return schema.mark_drops(batch, reasons, details)

    def judge(self, url: str) -> tuple[str | None, str | None]:
        """`(reason, detail)` for a blocked URL, `(None, None)` for one that passes."""
        from datatrove.data import Document

        self.setup()
        try:
            host = self._filter.tldextractor(url)
            if self._allowed and self._is_allowed(host.fqdn):
                self.stats.incr("url_filter.allowed")
                return None, None
            result = self._filter.filter(Document(text="", id=url, metadata={"url": url}))
        except Exception as exc:
            logger.warning("url_filter: rules failed on %r: %r", url, exc)
            self.stats.incr("url_filter.error")
            return None, None
        keep, reason = result if isinstance(result, tuple) else (bool(result), None)
        if not keep:
            reason = reason or "rejected"
            return f"{REASON_PREFIX}{reason}", self._detail(reason, url, host)
        for pattern in self._patterns:
            if pattern.search(url):
                return PATTERN_REASON, f"pattern {pattern.pattern}"
        return None, None

    def _is_allowed(self, fqdn: str) -> bool:
        parts = fqdn.lower().split(".")
        return any(".".join(parts[i:]) in self._allowed for i in range(len(parts)))

    def _detail(self, reason: str, url: str, host: Any) -> str:
        """What matched, for the rejected set: datatrove says which rule, not which entry."""
        from datatrove.pipeline.filters.url_filter import normalize, normalizer

        url_filter = self._filter
        if reason in ("domain", "subdomain"):
            name = host.registered_domain if reason == "domain" else host.fqdn
            source = " (block_domains)" if name in self._user_domains else ""
            return f"{reason} {name}{source}"
        if reason == "url":
            source = " (block_urls)" if url in self.params.block_urls else ""
            return f"listed url{source}"
        words = set(normalizer.split(url))
        if reason == "hard_blacklisted":
            return "banned word " + ", ".join(sorted(words & url_filter.banned_words))
        if reason == "soft_blacklisted":
            return "soft banned words " + ", ".join(sorted(words & url_filter.soft_banned_words))
        if reason == "blacklisted_subword":
            letters = normalize(url)
            return "banned subword " + ", ".join(
                sorted(w for w in url_filter.banned_subwords if w in letters)
            )
        return reason
