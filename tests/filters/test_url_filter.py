"""The url_filter stage: datatrove's URL rules with the recipe's own lists, offline, with reasons and details."""

from __future__ import annotations

import pickle
import re
import socket
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from corpusmill.core import schema
from corpusmill.core.stage import resolve_stage
from corpusmill.filters.url_filter import UrlFilterParams, UrlFilterStage


def _batch(urls: dict[str, str | None]) -> pa.RecordBatch:
    return schema.reader_batch(
        [{"id": doc_id, "url": url, "html": "<p>x</p>"} for doc_id, url in urls.items()]
    )


def _drops(out: pa.RecordBatch) -> dict[str, tuple[str | None, str | None]]:
    return {
        row[schema.ID]: (row[schema.DROP_REASON], row[schema.DROP_DETAIL])
        for row in out.select([schema.ID, schema.DROP_REASON, schema.DROP_DETAIL]).to_pylist()
    }


@pytest.fixture(scope="module")
def own_lists() -> UrlFilterStage:
    """Only the recipe's own lists: no default lists to load, so it sets up in a moment."""
    stage = UrlFilterStage(
        UrlFilterParams(
            use_default_lists=False,
            block_domains=["Spam-Site.com", "news.example.org"],
            block_urls=["https://shop.example.net/fake-offer"],
            banned_words=["Casino"],
            patterns=[r"/(ads?|tracking)/", r"[?&]affiliate="],
            allow_domains=["good.spam-site.com"],
        )
    )
    stage.setup()
    return stage


def test_the_recipes_own_lists_and_patterns_drop_with_reason_and_detail(own_lists: UrlFilterStage) -> None:
    out = own_lists(
        _batch(
            {
                "domain": "https://www.spam-site.com/page",
                "deep-subdomain": "http://a.b.spam-site.com/",
                "host": "https://news.example.org/today",
                "other-host": "https://weather.example.org/today",
                "url": "https://shop.example.net/fake-offer",
                "url-differs": "https://shop.example.net/fake-offer?x=1",
                "word": "https://blog.example.com/casino-night-recap",
                "word-inside": "https://blog.example.com/occasional-notes",
                "pattern": "https://blog.example.com/ads/banner",
                "pattern-query": "https://blog.example.com/post?id=3&affiliate=77",
                "allowed": "https://good.spam-site.com/page",
                "allowed-sub": "https://x.good.spam-site.com/page",
                "plain": "https://en.wikipedia.org/wiki/Web_crawler",
            }
        )
    )
    assert _drops(out) == {
        "domain": ("url_filter:domain", "domain spam-site.com (block_domains)"),
        "deep-subdomain": ("url_filter:domain", "domain spam-site.com (block_domains)"),
        "host": ("url_filter:subdomain", "subdomain news.example.org (block_domains)"),
        "other-host": (None, None),
        "url": ("url_filter:url", "listed url (block_urls)"),
        "url-differs": (None, None),
        "word": ("url_filter:hard_blacklisted", "banned word casino"),
        "word-inside": (None, None),  # whole words only: "occasional" is not "casino"
        "pattern": ("url_filter:pattern", "pattern /(ads?|tracking)/"),
        "pattern-query": ("url_filter:pattern", "pattern [?&]affiliate="),
        "allowed": (None, None),
        "allowed-sub": (None, None),
        "plain": (None, None),
    }
    counters = own_lists.stats.counters
    assert counters["url_filter.dropped.url_filter:domain"] == 2
    assert counters["url_filter.allowed"] == 2


def test_rows_without_url_and_rows_already_dropped_pass_untouched(own_lists: UrlFilterStage) -> None:
    batch = _batch(
        {"none": None, "empty": "", "dropped": "https://www.spam-site.com/", "ok": "https://a.org/"}
    )
    batch = schema.mark_drops(batch, [None, None, "earlier", None], [None, None, "kept as it was", None])
    out = own_lists(batch)
    assert _drops(out) == {
        "none": (None, None),
        "empty": (None, None),
        "dropped": ("earlier", "kept as it was"),
        "ok": (None, None),
    }
    assert out.column(schema.URL).to_pylist() == batch.column(schema.URL).to_pylist()
    assert own_lists.stats.counters["url_filter.no_url"] >= 2


def test_a_url_the_rules_fail_on_is_kept_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    stage = UrlFilterStage(UrlFilterParams(use_default_lists=False, block_domains=["spam-site.com"]))
    stage.setup()

    def fail(url: str) -> None:
        raise ValueError(f"cannot split {url}")

    monkeypatch.setattr(stage._filter, "tldextractor", fail)
    out = stage(_batch({"odd": "https://spam-site.com/"}))
    assert _drops(out) == {"odd": (None, None)}  # later stages still judge it
    assert stage.stats.counters["url_filter.error"] == 1


@pytest.fixture(scope="module")
def no_network() -> Iterator[None]:
    """Every attempt to open a network connection fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"url_filter tried to reach the network: {args}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        yield


@pytest.fixture(scope="module")
def default_lists(no_network: None) -> UrlFilterStage:
    stage = UrlFilterStage()
    assert stage.params.use_default_lists
    stage.setup()  # unpacks the archive datatrove ships and loads it, with the network refused
    return stage


def test_the_default_lists_load_offline_and_block(default_lists: UrlFilterStage) -> None:
    url_filter = default_lists._filter
    # About 4.5 million domains and 20,000 URLs ship inside datatrove; take a plain .com/.org/.net domain.
    assert len(url_filter.block_listed_domains) > 1_000_000 and len(url_filter.block_listed_url) > 10_000
    listed = next(
        domain
        for domain in url_filter.block_listed_domains
        if re.fullmatch(r"[a-z0-9][a-z0-9-]{2,30}\.(com|org|net)", domain)
    )
    banned = sorted(url_filter.banned_words)[0]
    out = default_lists(
        _batch(
            {
                "listed": f"https://www.{listed}/index.html",
                "banned": f"https://blog.example.com/{banned}/2",
                "plain": "https://en.wikipedia.org/wiki/Web_crawler",
                "news": "https://www.bbc.co.uk/news/science",
            }
        )
    )
    assert _drops(out) == {
        "listed": ("url_filter:domain", f"domain {listed}"),
        "banned": ("url_filter:hard_blacklisted", f"banned word {banned}"),
        "plain": (None, None),
        "news": (None, None),
    }


def test_allow_domains_overrides_the_default_lists(no_network: None, default_lists: UrlFilterStage) -> None:
    listed = next(
        d for d in default_lists._filter.block_listed_domains if re.fullmatch(r"[a-z0-9-]{3,30}\.com", d)
    )
    allowing = UrlFilterStage(UrlFilterParams(allow_domains=[listed]))
    allowing.setup()
    out = allowing(_batch({"listed": f"https://{listed}/", "other": "https://x.com/xxx"}))
    assert _drops(out)["listed"] == (None, None)
    assert _drops(out)["other"][0] == "url_filter:hard_blacklisted"


def test_parameters_are_checked() -> None:
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        UrlFilterParams(patterns=["(unclosed"])
    with pytest.raises(ValidationError, match="not a host name"):
        UrlFilterParams(block_domains=["https://example.com/"])
    with pytest.raises(ValidationError, match="not a host name"):
        UrlFilterParams(allow_domains=[""])
    with pytest.raises(ValidationError, match="single words"):
        UrlFilterParams(banned_words=["free-bets"])
    with pytest.raises(ValidationError):
        UrlFilterParams(soft_word_threshold=0)
    assert UrlFilterParams(block_domains=[" Example.COM. "]).block_domains == ["example.com"]


def test_registration_and_pickling(own_lists: UrlFilterStage) -> None:
    assert resolve_stage("url_filter") is UrlFilterStage
    assert UrlFilterStage.requires == (schema.URL,)
    clone = pickle.loads(pickle.dumps(own_lists))
    assert clone._filter is None
    assert _drops(clone(_batch({"x": "https://spam-site.com/"})))["x"][0] == "url_filter:domain"
