"""Inline SVG charts for the run report: horizontal stacked bars, grouped bars and small histograms.

The report has to open on an air-gapped machine and in a mail attachment, so it cannot load a chart library
from a CDN, and bundling one would make every report hundreds of kilobytes. The charts it needs are few and
simple, so they are drawn here as plain SVG strings: fixed geometry, no script, a `<title>` on every mark so
hovering shows the exact number. Every string that comes from data is escaped; the functions return markup
that is safe to paste into HTML as is. The exact numbers always go into a table beside the chart as well.

Marks can be links (SVG 2's `href` on `<a>`, which every current browser follows without script): a bar to
the page of sample documents behind it. Link targets are the report's own relative page names, escaped too.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

WIDTH = 760
LABEL_WIDTH = 230
VALUE_WIDTH = 130
ROW_HEIGHT = 22
BAR_HEIGHT = 14
PAD = 6
FONT = 12
MAX_LABEL_CHARS = 34

# Colour-blind-safe palette (Okabe and Ito), then a few greys for long tails.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
    "#8c8c8c",
    "#b8b8b8",
)


# For drop reasons: 24 distinct colours, so that a funnel with many reasons never shows two in one colour.
# Warm and dark tones first (Okabe and Ito's, then Paul Tol's muted scheme, both chosen to stay apart for
# colour-blind readers), then darker and lighter steps of those hues; none is the green of "kept" or the
# blues of data bars, and none is one of the greys of skipped input. The last one is kept for "other".
DROP_PALETTE = (
    "#D55E00",
    "#E69F00",
    "#CC79A7",
    "#F0E442",
    "#000000",
    "#882255",
    "#CC6677",
    "#332288",
    "#DDCC77",
    "#AA4499",
    "#999933",
    "#117733",
    "#8A3B00",
    "#A86F00",
    "#8F4A75",
    "#B8A800",
    "#F2A27A",
    "#F5CC70",
    "#E8B5D1",
    "#5D3A9B",
    "#EE3377",
    "#7F4F24",
    "#44AA99",
    "#BBBBBB",
)


def color(index: int) -> str:
    """A stable colour for the index-th series, so a legend and its bars agree across charts."""
    return PALETTE[index % len(PALETTE)]


def distinct_colors(weights: Mapping[str, float], palette: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """A colour per name that no other name of the chart shares, and the names grouped into "other".

    A repeated colour makes a legend lie (two reasons read as one), so a palette never wraps around: with
    more names than colours, the largest keep their own and the smallest share the palette's last colour,
    shown once as "other" (see `other_color`). Colours go by name order, so a name keeps its colour from
    one run's report to the next while its count changes.
    """
    names = sorted(weights)
    grouped: list[str] = []
    if len(names) > len(palette):
        largest = sorted(names, key=lambda n: (-weights[n], n))[: len(palette) - 1]
        grouped = sorted(set(names) - set(largest))
        names = sorted(largest)
    return {name: palette[i] for i, name in enumerate(names)}, grouped


def other_color(palette: Sequence[str]) -> str:
    """The colour of the names `distinct_colors` grouped into "other": the one it never gives out then."""
    return palette[-1]


def esc(value: object) -> str:
    """Text or attribute value from data, escaped for HTML and SVG (quotes included)."""
    return html.escape(str(value), quote=True)


def number(value: float | None, digits: int = 0) -> str:
    """A number with thousands separators (a dash for a missing one), as people read counts."""
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def short(label: str, limit: int = MAX_LABEL_CHARS) -> str:
    """A label cut to fit the label column, keeping its end (paths and domains differ at the end)."""
    return label if len(label) <= limit else "…" + label[-(limit - 1) :]


@dataclass(frozen=True)
class Segment:
    """One piece of a stacked bar."""

    value: float
    color: str
    name: str
    href: str | None = None  # the page behind this piece (its sample documents), if any


def _open(chart_id: str, title: str, height: int) -> str:
    return (
        f'<svg id="{esc(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" aria-label="{esc(title)}">'
        f"<title>{esc(title)}</title>"
    )


def _label(y: float, label: str) -> str:
    return (
        f'<text x="{LABEL_WIDTH - PAD}" y="{y:.1f}" text-anchor="end" font-size="{FONT}" '
        f'dominant-baseline="middle"><title>{esc(label)}</title>{esc(short(label))}</text>'
    )


def linked(mark: str, href: str | None, css: str = "") -> str:
    """`mark` wrapped in an SVG (or HTML) link to `href`; unchanged without one."""
    if not href:
        return mark
    klass = f' class="{esc(css)}"' if css else ""
    return f'<a{klass} href="{esc(href)}">{mark}</a>'


def _scale(maximum: float) -> Callable[[float], float]:
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    return lambda v: 0.0 if maximum <= 0 else max(0.0, v) / maximum * span


def stacked_bars(
    rows: Sequence[tuple[str, Sequence[Segment], str]],
    *,
    chart_id: str,
    title: str,
    fmt: Callable[[float], str] = number,
) -> str:
    """Horizontal bars made of segments, one row per (label, segments, caption at the bar's end)."""
    height = len(rows) * ROW_HEIGHT + 2 * PAD
    total = max((sum(s.value for s in segments) for _, segments, _ in rows), default=0.0)
    scale = _scale(total)
    parts = [_open(chart_id, title, height)]
    for index, (label, segments, caption) in enumerate(rows):
        y = PAD + index * ROW_HEIGHT
        middle = y + ROW_HEIGHT / 2
        parts.append(_label(middle, label))
        x = float(LABEL_WIDTH)
        for segment in segments:
            width = scale(segment.value)
            if width <= 0:
                continue
            parts.append(
                linked(
                    f'<rect class="bar" x="{x:.2f}" y="{middle - BAR_HEIGHT / 2:.1f}" width="{max(width, 1.0):.2f}" '
                    f'height="{BAR_HEIGHT}" fill="{esc(segment.color)}" data-value="{segment.value}">'
                    f"<title>{esc(label)}: {esc(segment.name)} {esc(fmt(segment.value))}</title></rect>",
                    segment.href,
                )
            )
            x += width
        parts.append(
            f'<text x="{x + PAD:.2f}" y="{middle:.1f}" font-size="{FONT}" dominant-baseline="middle">'
            f"{esc(caption)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Badge:
    """A short coloured note at the right end of a grouped row (a sampling factor such as `▲ x2.0`)."""

    text: str
    color: str
    title: str


def grouped_bars(
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    *,
    chart_id: str,
    title: str,
    fmt: Callable[[float], str] = number,
    flagged: Sequence[bool] = (),
    links: Sequence[str | None] = (),
    badges: Sequence[Badge | None] = (),
) -> str:
    """Horizontal bars side by side per label, one per (name, colour, values) series; flagged rows are marked.

    With `links`, each row (its label, bars and badge, over the whole row's height) links to its page; with
    `badges`, each row gets its note at the right edge, in the column kept free of bars.
    """
    per_row = len(series) * (BAR_HEIGHT - 2) + 2 * PAD
    height = len(labels) * per_row + 2 * PAD
    maximum = max((v for _, _, values in series for v in values), default=0.0)
    scale = _scale(maximum)
    parts = [_open(chart_id, title, height)]
    for index, label in enumerate(labels):
        top = PAD + index * per_row
        if index < len(flagged) and flagged[index]:
            parts.append(
                f'<rect class="flag" x="0" y="{top:.1f}" width="{WIDTH}" height="{per_row}" fill="#fdecea">'
                f"<title>{esc(label)}: off plan</title></rect>"
            )
        href = links[index] if index < len(links) else None
        row = []
        if href:  # the whole row is the link's target area, not just its thin bars
            row.append(
                f'<rect class="hit" x="0" y="{top:.1f}" width="{WIDTH}" height="{per_row}" fill="transparent"/>'
            )
        row.append(_label(top + per_row / 2, label))
        for k, (name, fill, values) in enumerate(series):
            value = values[index]
            y = top + PAD + k * (BAR_HEIGHT - 2)
            width = scale(value)
            row.append(
                f'<rect class="bar" x="{LABEL_WIDTH}" y="{y:.1f}" width="{max(width, 1.0):.2f}" '
                f'height="{BAR_HEIGHT - 3}" fill="{esc(fill)}" data-value="{value}">'
                f"<title>{esc(label)}: {esc(name)} {esc(fmt(value))}</title></rect>"
                f'<text x="{LABEL_WIDTH + width + PAD:.2f}" y="{y + (BAR_HEIGHT - 3) / 2:.1f}" '
                f'font-size="{FONT - 2}" dominant-baseline="middle">{esc(fmt(value))}</text>'
            )
        badge = badges[index] if index < len(badges) else None
        if badge is not None:
            row.append(
                f'<text class="badge" x="{WIDTH - PAD}" y="{top + per_row / 2:.1f}" text-anchor="end" '
                f'font-size="{FONT}" font-weight="bold" fill="{esc(badge.color)}" dominant-baseline="middle">'
                f"<title>{esc(label)}: {esc(badge.title)}</title>{esc(badge.text)}</text>"
            )
        parts.append(linked("".join(row), href, "row-link"))
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    counts: Sequence[float],
    *,
    low: float,
    high: float,
    chart_id: str,
    title: str,
    fill: str = PALETTE[0],
    width: int = 240,
    height: int = 110,
    links: Sequence[str | None] = (),
) -> str:
    """A small column histogram over equal bins from `low` to `high`, with the axis ends labelled; with `links`,
    each bin's column (its full height) links to its page."""
    bins = max(len(counts), 1)
    plot_height = height - 2 * FONT - PAD
    step = (width - 2 * PAD) / bins
    peak = max(counts, default=0)
    edge = (high - low) / bins
    parts = [
        f'<svg id="{esc(chart_id)}" class="chart histogram" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" aria-label="{esc(title)}">'
        f"<title>{esc(title)}</title>",
        f'<line x1="{PAD}" y1="{PAD + plot_height}" x2="{width - PAD}" y2="{PAD + plot_height}" stroke="#999"/>',
    ]
    for index, value in enumerate(counts):
        bar = 0.0 if peak <= 0 else value / peak * plot_height
        x = PAD + index * step
        start = low + index * edge
        mark = (
            f'<rect class="bar" x="{x + 0.5:.2f}" y="{PAD + plot_height - bar:.2f}" width="{max(step - 1, 1):.2f}" '
            f'height="{bar:.2f}" fill="{esc(fill)}" data-value="{value}">'
            f"<title>{start:g}–{start + edge:g}: {esc(number(value))}</title></rect>"
        )
        href = links[index] if index < len(links) else None
        if href:  # an empty bin is still a link: the column's whole height is its target
            mark = (
                f'<rect class="hit" x="{x + 0.5:.2f}" y="{PAD}" width="{max(step - 1, 1):.2f}" '
                f'height="{plot_height}" fill="transparent"/>' + mark
            )
        parts.append(linked(mark, href))
    baseline = PAD + plot_height + FONT + 2
    for tick in range(math.ceil(low), math.floor(high) + 1):
        x = PAD + (tick - low) / (high - low) * (width - 2 * PAD)
        anchor = "start" if tick == low else "end" if tick == high else "middle"
        parts.append(
            f'<text x="{x:.1f}" y="{baseline}" font-size="{FONT - 2}" text-anchor="{anchor}">{tick}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def legend(items: Sequence[tuple[str, str]], links: Mapping[str, str] | None = None) -> str:
    """An HTML legend of (name, colour) swatches for the chart above it; names in `links` link to their page."""
    links = links or {}
    entries = "".join(
        f'<span class="key" data-key="{esc(name)}"><span class="swatch" style="background:{esc(fill)}"></span>'
        f"{linked(esc(name), links.get(name))}</span>"
        for name, fill in items
    )
    return f'<div class="legend">{entries}</div>'
