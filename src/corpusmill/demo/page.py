"""Dress an article in the HTML chrome of its site: head, menus, cookie banner, sidebar, comments, footer.

The chrome is what a main-content extractor must throw away, so it is deliberately realistic: navigation
lists, newsletter forms, "most popular" link lists, share buttons, inline scripts and legal footers. The
same article rendered on two sites gives two different pages with identical main text, which is how exact
duplicates look on the web (syndicated or scraped copies).
"""

from __future__ import annotations

import random
from html import escape

from corpusmill.demo.compose import Article, Block
from corpusmill.demo.sites import Site
from corpusmill.demo.ui import UI


def _slug(text: str) -> str:
    keep = [c.lower() if c.isalnum() else "-" for c in text]
    return "-".join(part for part in "".join(keep).split("-") if part)[:60] or "page"


def slug(text: str) -> str:
    """A URL path segment for a title (non-Latin titles keep their letters, as many CMSs do)."""
    return _slug(text)


def render_blocks(blocks: tuple[Block, ...]) -> str:
    """HTML for the content blocks of an article."""
    out: list[str] = []
    for block in blocks:
        if block.kind == "h2":
            out.append(f'<h2 id="{_slug(block.text)}">{escape(block.text)}</h2>')
        elif block.kind == "p":
            out.append(f"<p>{escape(block.text)}</p>")
        elif block.kind == "quote":
            out.append(f"<blockquote><p>{escape(block.text)}</p></blockquote>")
        elif block.kind in ("ul", "ol"):
            items = "".join(f"<li>{escape(item)}</li>" for item in block.items)
            out.append(f"<{block.kind}>{items}</{block.kind}>")
        elif block.kind == "table":
            head, *rows = block.rows
            thead = "".join(f"<th>{escape(cell)}</th>" for cell in head)
            body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
            caption = f"<caption>{escape(block.text)}</caption>" if block.text else ""
            out.append(f"<table>{caption}<thead><tr>{thead}</tr></thead><tbody>{body}</tbody></table>")
        elif block.kind == "pre":
            out.append(f'<pre><code class="language-python">{escape(block.text)}</code></pre>')
        elif block.kind == "post":
            paras = "".join(f"<p>{escape(p)}</p>" for p in block.items)
            out.append(
                f'<section class="topic-post"><div class="topic-meta-data"><span class="username">'
                f'<a href="/u/{_slug(block.text)}">{escape(block.text)}</a></span></div>'
                f'<div class="cooked">{paras}</div></section>'
            )
        else:
            raise ValueError(f"unknown demo block kind {block.kind!r}")
    return "\n".join(out)


def _head(article: Article, site: Site, url: str, charset: str) -> str:
    title = escape(f"{article.title} | {site.name}")
    description = escape(article.description or article.title)
    return (
        f'<!DOCTYPE html>\n<html lang="{site.lang}">\n<head>\n<meta charset="{charset}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n"
        f'<meta name="description" content="{description}">\n'
        f'<meta property="og:title" content="{escape(article.title)}">\n'
        f'<meta property="og:site_name" content="{escape(site.name)}">\n'
        f'<link rel="canonical" href="{escape(url)}">\n'
        '<link rel="stylesheet" href="/assets/css/main.min.css">\n'
        '<script async src="/assets/js/analytics.js"></script>\n'
        "<script>window.dataLayer = window.dataLayer || []; "
        "function gtag(){dataLayer.push(arguments);} gtag('js', new Date());</script>\n"
        '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Article", '
        f'"headline": "{escape(article.title)}"}}</script>\n'
        "</head>\n"
    )


def _header(site: Site, ui: dict[str, str]) -> str:
    links = "".join(f'<li><a href="/{_slug(item)}/">{escape(item)}</a></li>' for item in site.nav)
    return (
        f'<a class="skip-link" href="#main">{escape(ui["skip"])}</a>\n'
        f'<header class="site-header"><div class="logo"><a href="/">{escape(site.name)}</a></div>'
        f'<nav class="main-nav" aria-label="Main"><ul>{links}</ul></nav>'
        '<form class="search" action="/search">'
        f'<input type="search" name="q" placeholder="{escape(ui["search"])}">'
        f"<button>{escape(ui['search'])}</button></form>"
        f'<a class="btn-subscribe" href="/subscribe">{escape(ui["subscribe"])}</a></header>\n'
    )


def _cookie_banner(ui: dict[str, str]) -> str:
    return (
        '<div id="cookie-consent" class="cookie-banner" role="dialog" aria-live="polite">'
        f'<p>{escape(ui["cookie"])} <a href="/cookies">{escape(ui["settings"])}</a></p>'
        f'<button class="accept">{escape(ui["accept"])}</button>'
        f'<button class="reject">{escape(ui["reject"])}</button></div>\n'
    )


def _sidebar(site: Site, ui: dict[str, str], related: list[str]) -> str:
    links = "".join(f'<li><a href="/{_slug(t)}">{escape(t)}</a></li>' for t in related)
    return (
        '<aside class="sidebar widget-area">'
        f'<section class="widget popular"><h3>{escape(ui["popular"])}</h3><ol>{links}</ol></section>'
        f'<section class="widget newsletter"><h3>{escape(ui["newsletter"])}</h3>'
        f"<p>{escape(ui['newsletter_text'])}</p>"
        f'<form action="/newsletter"><input type="email" placeholder="{escape(ui["email"])}">'
        f"<button>{escape(ui['subscribe'])}</button></form></section>"
        '<div class="ad-slot" data-slot="sidebar-300x250"></div></aside>\n'
    )


def _comments(article: Article, ui: dict[str, str]) -> str:
    if not article.comments:
        return ""
    items = "".join(
        f'<li class="comment"><div class="comment-author">{escape(who)}</div>'
        f'<div class="comment-content"><p>{escape(text)}</p></div>'
        f'<a class="comment-reply-link" href="#reply">{escape(ui["reply"])}</a></li>'
        for who, text in article.comments
    )
    return (
        f'<section id="comments" class="comments-area"><h3 class="comments-title">{escape(ui["comments"])} '
        f'({len(article.comments)})</h3><ol class="comment-list">{items}</ol></section>\n'
    )


def _footer(site: Site, ui: dict[str, str], year: str) -> str:
    keys = ("about", "contact", "privacy", "terms", "careers", "advertise")
    links = "".join(f'<li><a href="/{k}">{escape(ui[k])}</a></li>' for k in keys)
    return (
        f'<footer class="site-footer"><nav class="footer-nav"><ul>{links}</ul></nav>'
        '<ul class="social"><li><a href="#" class="icon-rss">RSS</a></li>'
        '<li><a href="#" class="icon-mail">Mail</a></li></ul>'
        f'<p class="copyright">&copy; {year} {escape(site.name)}. {escape(ui["rights"])}</p></footer>\n'
    )


def _byline(article: Article, ui: dict[str, str]) -> str:
    parts = []
    if article.byline:
        parts.append(f'<span class="author">{escape(ui["by"])} {escape(article.byline)}</span>')
    if article.dateline:
        parts.append(f'<time class="published">{escape(article.dateline)}</time>')
    return f'<div class="entry-meta">{" ".join(parts)}</div>' if parts else ""


def render_page(
    article: Article,
    site: Site,
    url: str,
    rng: random.Random,
    related: list[str],
    charset: str = "utf-8",
) -> str:
    """Full HTML document for an article on a site; `related` are titles for the sidebar link list."""
    ui = UI[site.lang]
    body = render_blocks(article.blocks)
    year = rng.choice(("2023", "2024"))
    h1 = f"<h1>{escape(article.title)}</h1>"
    share = (
        f'<div class="share-buttons"><span>{escape(ui["share"])}</span>'
        '<a href="#" class="share-x">X</a><a href="#" class="share-fb">f</a></div>'
    )
    if site.layout == "docs":
        main = (
            '<div class="docs-layout"><nav class="toc-tree" aria-label="Docs">'
            + _sidebar(site, ui, related)
            + '</nav><main id="main" role="main"><div class="document"><div class="body" role="main">'
            f'<div class="section">{h1}\n{body}</div></div>'
            '<div class="prev-next"><a href="#" rel="prev">&laquo; Previous</a>'
            '<a href="#" rel="next">Next &raquo;</a></div>'
            "</main></div>\n"
        )
    elif site.layout == "forum":
        main = (
            f'<main id="main"><div class="p-breadcrumbs"><a href="/">{escape(ui["home"])}</a> &rsaquo; '
            f'<a href="/forums/">{escape(site.nav[0])}</a></div><div class="p-title">{h1}</div>'
            f'<div class="block-body thread-posts">{body}</div></main>\n' + _sidebar(site, ui, related)
        )
    elif site.layout == "shop":
        main = (
            '<main id="main" class="product-page">'
            f'<nav class="breadcrumb"><a href="/">{escape(ui["home"])}</a> / '
            f'<a href="/{_slug(site.nav[0])}/">{escape(site.nav[0])}</a></nav>'
            f'<div class="product" itemscope itemtype="https://schema.org/Product">{h1}'
            f'<div class="product-description" itemprop="description">{body}</div></div>{share}</main>\n'
            + _sidebar(site, ui, related)
        )
    elif site.layout == "blog":
        main = (
            '<div id="content" class="site-content"><div id="primary" class="content-area">'
            '<main id="main"><div class="post hentry">'
            f'<header class="entry-header">{h1}{_byline(article, ui)}'
            f'</header><div class="entry-content">{body}</div>{share}</div></main></div>'
            + _sidebar(site, ui, related)
            + "</div>\n"
        )
    else:
        main = (
            f'<main id="main"><article class="story"><header>{h1}{_byline(article, ui)}</header>'
            f'<div class="article-body">{body}</div>{share}</article></main>\n' + _sidebar(site, ui, related)
        )
    parts = [_head(article, site, url, charset), '<body class="layout-' + site.layout + '">\n']
    if site.cookie_banner:
        parts.append(_cookie_banner(ui))
    parts += [_header(site, ui), main, _comments(article, ui), _footer(site, ui, year), "</body>\n</html>\n"]
    return "".join(parts)
