"""Spam and low quality pages: the junk a quality filter exists to remove.

Each generator imitates one familiar kind of bad page (keyword stuffing, link farms, shouting adverts,
doorway pages, repeated lines, placeholder text, empty or boilerplate-only pages). They are varied by the
seed so that the junk is not all identical, and most of them trip one of the standard heuristic filters.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from corpusmill.demo.compose import TOWNS, Article, Block
from corpusmill.demo.page import render_page, slug
from corpusmill.demo.sites import FARM_HOSTS, SITES, Site, site_by_host


@dataclass(frozen=True)
class JunkPage:
    """A generated bad page and where it is served from."""

    kind: str  # "spam" | "low_quality"
    style: str  # which generator made it, for debugging and statistics
    site: Site
    path: str
    html: str
    topic: str


KEYWORDS = (
    ("cheap flights", "travel"),
    ("best running shoes", "shop"),
    ("payday loans", "finance"),
    ("weight loss pills", "health"),
    ("free movie download", "software"),
    ("casino bonus", "shop"),
    ("replica watches", "shop"),
    ("vpn coupon", "software"),
    ("hotel deals", "travel"),
)


def _bare(title: str, body: str, lang: str = "en") -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="keywords" content="{escape(title)}"></head>\n<body>\n{body}\n</body></html>\n'
    )


def keyword_stuffing(rng: random.Random) -> tuple[str, str, str]:
    """Paragraphs that exist only to repeat a search phrase."""
    kw, topic = rng.choice(KEYWORDS)
    towns = rng.sample(TOWNS, 6)
    lines = []
    for town in towns:
        lines.append(
            f"<p>{kw} {town}. Best {kw} {town} cheap {kw} online. {kw.title()} {town} {kw} deals, {kw} "
            f"discount, {kw} {town} today. Buy {kw} now, best {kw} price {town}.</p>"
        )
    return _bare(f"{kw} {kw} best {kw}", f"<h1>{kw.upper()}</h1>\n" + "\n".join(lines)), topic, kw


def link_farm(rng: random.Random) -> tuple[str, str, str]:
    """A directory page that is nothing but outbound links with keyword anchors."""
    kw, topic = rng.choice(KEYWORDS)
    items = []
    for i in range(rng.randint(40, 70)):
        anchor = f"{rng.choice(KEYWORDS)[0]} {rng.choice(('online', 'cheap', 'best', 'top', '2024', 'free'))}"
        items.append(f'<li><a href="http://link{i}.{slug(anchor)}.example/">{escape(anchor)}</a></li>')
    body = f"<h1>Links: {escape(kw)}</h1>\n<p>Submit your site!</p>\n<ul>{''.join(items)}</ul>"
    return _bare(f"{kw} links directory", body), topic, kw


def shouting(rng: random.Random) -> tuple[str, str, str]:
    """An all-capitals advert repeating the same promises."""
    kw, topic = rng.choice(KEYWORDS)
    promises = [
        "BUY NOW!!!",
        "LIMITED OFFER!!!",
        f"BEST {kw.upper()} EVER!!!",
        "CLICK HERE!!!",
        "100% GUARANTEED!!!",
        "ACT FAST!!!",
        "DON'T MISS OUT!!!",
    ]
    lines = [f"<p>{rng.choice(promises)} {rng.choice(promises)}</p>" for _ in range(rng.randint(25, 40))]
    return _bare(f"!!! {kw.upper()} !!!", f"<h1>{kw.upper()} SALE!!!</h1>\n" + "\n".join(lines)), topic, kw


def doorway(rng: random.Random) -> tuple[str, str, str]:
    """A spun doorway page: one template sentence repeated with a town swapped in."""
    kw, topic = rng.choice(KEYWORDS)
    paras = []
    for town in rng.sample(TOWNS, 10):
        paras.append(
            f"<p>Looking for {kw} in {town}? We offer the best {kw} in {town} at the lowest price. "
            f"Our {kw} in {town} service is the number one choice for {kw} in {town}.</p>"
        )
    return _bare(f"{kw} in your town", f"<h1>{kw.title()} near you</h1>\n" + "\n".join(paras)), topic, kw


def repeated_lines(rng: random.Random) -> tuple[str, str, str]:
    """A broken template that printed the same notice over and over."""
    notice = rng.choice(
        (
            "This product is currently out of stock. Please check back later.",
            "Error: could not load the requested content. Please try again.",
            "Sign in to see prices and availability in your region.",
            "Free shipping on all orders over fifty dollars this week only.",
        )
    )
    body = "\n".join(f"<p>{escape(notice)}</p>" for _ in range(rng.randint(20, 40)))
    return _bare(notice[:40], f"<h1>{escape(notice[:30])}</h1>\n{body}"), "shop", notice


LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
    "labore et dolore "
    "magna aliqua.",
    "Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea "
    "commodo consequat.",
    "Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur.",
    "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim "
    "id est laborum.",
    "Sed ut perspiciatis unde omnis iste natus error sit voluptatem accusantium doloremque laudantium.",
    "Nemo enim ipsam voluptatem quia voluptas sit aspernatur aut odit aut fugit.",
)


def lorem(rng: random.Random) -> tuple[str, str, str]:
    """A theme demo page still full of placeholder Latin."""
    paras = [" ".join(rng.sample(LOREM, rng.randint(2, 5))) for _ in range(rng.randint(4, 8))]
    headings = ("Sample heading", "Our features", "About this theme", "Another section")
    body = "\n".join(f"<h2>{rng.choice(headings)}</h2><p>{escape(p)}</p>" for p in paras)
    return _bare("Just another theme demo", f"<h1>Hello world!</h1>\n{body}"), "software", "lorem"


def near_empty(rng: random.Random) -> tuple[str, str, str]:
    """A page with almost nothing on it: under construction, coming soon, a lone image."""
    text = rng.choice(
        (
            "Coming soon.",
            "Under construction. Check back later!",
            "Welcome to my new website.",
            "This page intentionally left blank.",
            "Nothing here yet.",
        )
    )
    return (
        _bare(text, f'<div class="wrap"><h1>{escape(text)}</h1><img src="/logo.png" alt=""></div>'),
        "software",
        text,
    )


def boilerplate_only(rng: random.Random) -> tuple[Article, str]:
    """A category or search page of a real site with no content of its own, only its chrome."""
    message = rng.choice(
        (
            "No posts found.",
            "Sorry, no results matched your search.",
            "This category is empty.",
            "Page 1 of 1.",
            "Please log in to continue.",
        )
    )
    topic = rng.choice(("news", "cooking", "travel", "science"))
    blocks = (Block("p", message),)
    return Article(
        rng.choice(("Archive", "Search results", "Category", "Tag: misc")), "en", topic, blocks
    ), message


SPAM: tuple[Callable[[random.Random], tuple[str, str, str]], ...] = (
    keyword_stuffing,
    link_farm,
    shouting,
    doorway,
)
LOW: tuple[Callable[[random.Random], tuple[str, str, str]], ...] = (repeated_lines, lorem, near_empty)


def _english(topic: str) -> list[Site]:
    """English hosts of a topic that junk may appear on: any but the content farms, which carry thin pages."""
    return [s for s in SITES if s.topic == topic and s.lang == "en" and s.host not in FARM_HOSTS]


def junk_page(rng: random.Random, kind: str, index: int) -> JunkPage:
    """One spam or low quality page (`kind`); `index` cycles through the styles so all of them occur."""
    if kind == "spam":
        make = SPAM[index % len(SPAM)]
        html, topic, key = make(rng)
        site = site_by_host(rng.choice(("www.best-cheap-deals-online.biz", "seo-links-directory.info")))
        return JunkPage(kind, make.__name__, site, f"/{slug(key)}-{index}.html", html, topic)
    if kind != "low_quality":
        raise ValueError(f"unknown junk kind {kind!r}; expected 'spam' or 'low_quality'")
    styles = len(LOW) + 1
    if index % styles == len(LOW):
        article, _message = boilerplate_only(rng)
        site = rng.choice(_english(article.topic))
        path = f"/{slug(article.title)}/page/{index}/"
        html = render_page(article, site, f"https://{site.host}{path}", rng, [])
        return JunkPage(kind, "boilerplate_only", site, path, html, article.topic)
    make = LOW[index % styles]
    html, topic, key = make(rng)
    site = (
        site_by_host("www.placeholder-themes-demo.com")
        if make is not repeated_lines
        else rng.choice(_english("shop"))
    )
    return JunkPage(kind, make.__name__, site, f"/{slug(key)}-{index}/", html, topic)
