"""The run report as one self-contained HTML page, rendered from the report's JSON data alone.

One file with inline CSS and inline SVG and nothing fetched, so it opens offline, from a mail, or from an
object store's browser. Its only script shows the link back to the run where the service serves the page
(`run_nav`): the page reads and works the same without it. Each chart is followed by a table of the exact
numbers; tables and rows carry stable `id` and `data-*` attributes (`<table id="domains">`,
`<tr data-domain=...>`, `<td data-achieved-tokens=...>`) so scripts and tests can read the page back without
parsing text. Every string from the data goes through `html.escape`: domain names, reasons and paths come from
crawled input.

Where the report has sample pages (`report/samples/`, see `report_samples.py`), the numbers link to the
documents behind them: each domain's bars and table row to its samples, each quality bin to its score bucket,
each drop reason of the funnel to the rows dropped for it. Without them the page is the same, unlinked.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from corpusmill.mixtures.charts import (
    DROP_PALETTE,
    Badge,
    Segment,
    color,
    distinct_colors,
    esc,
    grouped_bars,
    histogram,
    legend,
    linked,
    number,
    other_color,
    stacked_bars,
)

if TYPE_CHECKING:
    from corpusmill.mixtures.report_samples import SampleLinks

MAX_BREAKDOWN_ROWS = 100  # the JSON keeps them all; a page with thousands of source files helps nobody
MAX_CHART_ROWS = 20
OFF = ' class="off"'
KEPT, ADDED = "#009E73", "#56B4E9"
# Skipped input (never a document) in cool greys, apart from the warm colours of documents dropped; ten
# distinct ones, the last kept for "other" (`distinct_colors`).
SKIP_PALETTE = (
    "#5f6b7a",
    "#98a4b3",
    "#3e4650",
    "#c3ccd6",
    "#7a8799",
    "#4d6a8a",
    "#a9bfd6",
    "#6f6380",
    "#b8afc4",
    "#dde3ea",
)
MAX_FAILED_FILE_ROWS = 100
BEFORE, PLANNED, AFTER = "#8c8c8c", "#E69F00", "#0072B2"
# Sampling factors: up-sampled in bluish green, down-sampled in vermillion (Okabe and Ito), kept as is in grey;
# the arrow says the same for readers who cannot tell the colours apart.
UP, DOWN, SAME = "#007a56", "#b34700", "#666666"
SAME_BAND = 0.005  # a factor within half a percent of 1 is "as is"
QUALITY_BUCKETS = 5

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:20px 0 6px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:17px}.card span{color:#666;font-size:12px}
.box{border-radius:6px;padding:10px 14px;margin:12px 0}
.warn{background:#fff4e5;border:1px solid #f0b35a}.ok{background:#edf7ed;border:1px solid #8bc68b}
.note{background:#eef4fb;border:1px solid #9cc0e4}
.box ul{margin:4px 0;padding-left:20px}
table{border-collapse:collapse;background:#fff;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f0f0f0;white-space:normal}td.name,th.name{text-align:left;white-space:normal;overflow-wrap:anywhere;min-width:9em;max-width:340px}
tr.off td{background:#fdecea}.scroll{overflow-x:auto}
svg.chart{display:block;max-width:100%;height:auto;background:#fff;border:1px solid #eee;margin:6px 0}
.legend{font-size:12px;margin:2px 0 8px}.key{margin-right:14px;white-space:nowrap}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.multiples{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}
figcaption{font-size:12px;max-width:240px;word-break:break-all}
code{background:#f0f0f0;padding:0 3px;border-radius:3px}
nav.run-nav{margin:0 0 10px;font-size:13px}
a{color:#0b5cad}svg a:hover rect.bar{opacity:.75}svg a{cursor:pointer}
td.up{color:#007a56;font-weight:600}td.down{color:#b34700;font-weight:600}td.same{color:#666}
"""


# The way back to the run's page. The report is a file first: opened from disk, from a mail or from an object
# store's browser there is no run page, and a fixed `/runs/ID` link would lead nowhere. So the link is hidden,
# and these few lines show it only where the page is served over http(s) under the service's
# `/runs/ID/report/` (at any depth below it), pointing at exactly `/runs/ID` (behind any path prefix).
RUN_NAV_SCRIPT = (
    "(function(){var a=document.getElementById('back-to-run'),"
    "m=location.pathname.match(/^(.*\\/runs\\/(\\d+))\\/report\\//);"
    "if(a&&m&&/^https?:$/.test(location.protocol)){a.href=m[1];a.textContent='\\u2190 run #'+m[2];"
    "a.parentNode.hidden=false;}})();"
)


def run_nav(depth: int = 0) -> str:
    """The hidden link back to the run, for a page `depth` folders below the report folder, and the script
    that shows it when the service serves the page. Without script it stays hidden; its relative `href`
    (the folder above the report) is only where the script's exact target would be."""
    up = "../" * (depth + 1)
    return (
        f'<nav class="run-nav" id="run-nav" hidden><a id="back-to-run" href="{up}">← run</a></nav>'
        f"<script>{RUN_NAV_SCRIPT}</script>"
    )


def factor_tone(factor: float) -> str:
    """`up`, `down` or `same`: how mixing scaled a domain (the CSS class of its factor)."""
    if factor > 1 + SAME_BAND:
        return "up"
    return "down" if factor < 1 - SAME_BAND else "same"


def factor_label(factor: float | None) -> str:
    """A sampling factor as people read it: `x2.0`, `x0.3`, `x0.05`, `x0` (a dash for none)."""
    if factor is None:
        return "–"
    if factor == 0:
        return "x0"
    if factor < 0.1:
        return f"x{factor:.2f}"
    shown = f"x{factor:.1f}" if factor < 10 else f"x{factor:.0f}"
    if shown == "x1.0" and factor_tone(factor) != "same":
        shown = f"x{factor:.2f}"  # 0.98 or 1.02 is not "x1.0"
    return shown


def _badge(domain: dict[str, Any]) -> Badge | None:
    factor = domain.get("factor")
    if factor is None:
        return None
    tone = factor_tone(factor)
    arrow = {"up": "▲ ", "down": "▼ ", "same": "= "}[tone]
    basis = "planned rate (nothing achieved)" if domain.get("factor_basis") == "plan" else "achieved / before"
    color = {"up": UP, "down": DOWN, "same": SAME}[tone]
    return Badge(arrow + factor_label(factor), color, f"{factor:.4f} ({basis})")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def _attr(name: str, value: object) -> str:
    return f' data-{name}="{"" if value is None else esc(value)}"'


def _cell(name: str, value: object, shown: str, css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return f"<td{klass}{_attr(name, value)}>{esc(shown)}</td>"


def _linked_cell(name: str, value: object, shown: str, href: str | None) -> str:
    """A number cell whose number links to the page behind it (where there is one)."""
    return f"<td{_attr(name, value)}>{linked(esc(shown), href, 'sample-link')}</td>"


def _table(table_id: str, headers: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(
        f'<th class="name">{esc(h)}</th>' if i == 0 else f"<th>{esc(h)}</th>" for i, h in enumerate(headers)
    )
    return f'<div class="scroll"><table id="{esc(table_id)}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _header(run: dict[str, Any]) -> str:
    cards = [
        ("documents out", number(run["documents_out"])),
        ("tokens written", number(run["tokens_written"])),
        ("shards", number(run["shards"])),
        ("engine", run["engine"] or "–"),
        ("fingerprint", run["fingerprint"] or "–"),
        ("finished", run["finished_at"] or "–"),
    ]
    body = "".join(f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for k, v in cards)
    description = f"<p>{esc(run['description'])}</p>" if run.get("description") else ""
    return (
        f"<h1>Run report: {esc(run['recipe'] or 'unnamed recipe')}</h1>{description}"
        f'<div>Run directory <code>{esc(run["run_dir"])}</code></div><div class="cards" id="run">{body}</div>'
    )


def _warnings(data: dict[str, Any]) -> str:
    parts = []
    if data["warnings"]:
        items = "".join(
            f"<li{_attr('kind', w['kind'])}{_attr('stage', w['stage'])}>{esc(w['message'])}</li>"
            for w in data["warnings"]
        )
        parts.append(f'<div class="box warn" id="warnings"><b>Warnings</b><ul>{items}</ul></div>')
    else:
        parts.append('<div class="box ok" id="warnings"><b>No warnings.</b></div>')
    if data["notes"]:
        items = "".join(f"<li>{esc(n)}</li>" for n in data["notes"])
        parts.append(f'<div class="box note" id="notes"><b>Notes</b><ul>{items}</ul></div>')
    return "".join(parts)


def _record_skips(row: dict[str, Any], files: set[str]) -> dict[str, int]:
    """A read row's skipped records by reason: files that failed are not records and stay off the bar."""
    return {r: n for r, n in row["skipped"].items() if r not in files}


def _drop_pages(links: SampleLinks | None, label: str) -> dict[str, str]:
    """The sample page of each reason a stage dropped for."""
    if links is None:
        return {}
    return {reason: page for (stage, reason), page in links.drops.items() if stage == label}


def _totals(counts: Sequence[dict[str, int]]) -> dict[str, int]:
    """Counts per reason summed over the funnel's rows (how much of the chart each reason takes)."""
    totals: dict[str, int] = {}
    for row in counts:
        for reason, n in row.items():
            totals[reason] = totals.get(reason, 0) + n
    return totals


@dataclass(frozen=True)
class _Series:
    """The funnel's losses of one kind (`skipped` or `dropped`): a colour per reason and the reasons grouped
    into "other" where there are more reasons than distinct colours."""

    kind: str
    colors: dict[str, str]
    grouped: list[str]
    other: str

    @classmethod
    def of(cls, kind: str, counts: Sequence[dict[str, int]], palette: Sequence[str]) -> _Series:
        colors, grouped = distinct_colors(_totals(counts), palette)
        return cls(kind, colors, grouped, other_color(palette))

    @property
    def other_name(self) -> str:
        return f"{self.kind}: other ({len(self.grouped)} reasons)"

    def segments(self, counts: dict[str, int], pages: Mapping[str, str] | None = None) -> list[Segment]:
        """A row's pieces of the bar: one per reason with its own colour, then the grouped ones as one."""
        pages = pages or {}
        shown = [
            Segment(n, self.colors[r], f"{self.kind}: {r}", pages.get(r))
            for r, n in sorted(counts.items())
            if r in self.colors
        ]
        rest = sum(n for r, n in counts.items() if r not in self.colors)
        return shown + ([Segment(rest, self.other, self.other_name)] if rest else [])

    def keys(self) -> list[tuple[str, str]]:
        """The legend's entries, every one in a colour no other entry has."""
        keys = [(f"{self.kind}: {r}", c) for r, c in self.colors.items()]
        return keys + ([(self.other_name, self.other)] if self.grouped else [])


def _funnel(rows: list[dict[str, Any]], skipped: dict[str, Any], links: SampleLinks | None = None) -> str:
    files = {r["reason"] for r in skipped["reasons"] if r["unit"] == "files"}
    drops = _Series.of("dropped", [row["dropped"] for row in rows], DROP_PALETTE)
    skips = _Series.of("skipped", [_record_skips(row, files) for row in rows], SKIP_PALETTE)
    bars = []
    for row in rows:
        segments = [Segment(row["documents_out"] - row["added"], KEPT, "kept")]
        segments += skips.segments(_record_skips(row, files))
        segments += drops.segments(row["dropped"], _drop_pages(links, row["label"]))
        segments.append(Segment(row["added"], ADDED, "added (repeats)"))
        bars.append((row["label"], segments, _caption(row)))
    chart = stacked_bars(
        bars, chart_id="funnel-chart", title="Documents per stage, from reading on, with losses by reason"
    )
    keys = [("kept", KEPT), *skips.keys(), *drops.keys(), ("added (repeats)", ADDED)]
    headers = [
        "stage", "in", "documents out", "skipped", "dropped", "added", "tokens in", "tokens out",
        "skipped or dropped, by reason",
    ]  # fmt: skip
    return (
        '<section id="funnel-section"><h2>Funnel</h2>'
        "<p>Reading turns input records into documents; a record meant to be one that it passes over (bad "
        "JSON, a damaged WARC record, a file that cannot be read) is <em>skipped</em>, listed in "
        "<code>skipped/</code>. Stages then drop documents, listed in <code>rejected/</code>.</p>"
        + _not_documents(rows, skipped)
        + chart
        + legend(keys, {f"dropped: {r}": page for r, page in (links.drop_reasons() if links else {}).items()})
        + _table(
            "funnel", headers, [_funnel_row(row, files, _drop_pages(links, row["label"])) for row in rows]
        )
        + _skipped(skipped)
        + "</section>"
    )


def _not_documents(rows: list[dict[str, Any]], skipped: dict[str, Any]) -> str:
    """The records read that are not documents by design (WARC request, metadata, warcinfo records), apart
    from the funnel: none of them was lost, so none of them is a loss in its bars."""
    read = next((row for row in rows if row["records_in"] is not None), None)
    kinds = skipped.get("not_documents", [])
    if read is None or not kinds:
        return ""
    spans = ", ".join(
        f"<span{_attr('record-type', k['record_type'])}{_attr('count', k['count'])}>{esc(k['record_type'])} "
        f"{esc(number(k['count']))}</span>"
        for k in kinds
    )
    return (
        f'<p id="not-documents"{_attr("records-read", read["records_in"])}>Records read: '
        f"{esc(number(read['records_in']))}; not documents: "
        f"<b{_attr('not-documents', read['not_documents_total'])}>{esc(number(read['not_documents_total']))}</b>"
        f" ({spans}). A WARC file holds such records (requests, metadata, warcinfo) beside its pages: they "
        f"are counted here, not as losses, and the funnel starts at the {esc(number(read['documents_in']))} "
        "records meant to be documents.</p>"
    )


def _caption(row: dict[str, Any]) -> str:
    return f"{number(row['documents_in'])} → {number(row['documents_out'])}"


def _reason_spans(
    kind: str, counts: dict[str, int], files: Collection[str] = (), pages: Mapping[str, str] | None = None
) -> str:
    """Reasons with their counts, largest first; reasons that count files say so; a reason with sample pages
    links to them."""
    pages = pages or {}
    return ", ".join(
        f"<span{_attr(kind, r)}{_attr('count', n)}>{linked(esc(r), pages.get(r), 'reason-link')} "
        f"{esc(number(n))}{_files(n) if r in files else ''}</span>"
        for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def _files(n: int) -> str:
    return " file" if n == 1 else " files"


def _funnel_row(row: dict[str, Any], files: set[str], pages: Mapping[str, str] | None = None) -> str:
    if row["records_in"] is None:
        first = _cell("documents-in", row["documents_in"], number(row["documents_in"]))
        reasons = _reason_spans("reason", row["dropped"], pages=pages)
    else:
        # Reading's "in" is the records meant to be documents; all records read (those that are not
        # documents included) stay in `data-records-in`.
        first = (
            f"<td{_attr('documents-in', row['documents_in'])}{_attr('records-in', row['records_in'])}>"
            f"{esc(number(row['documents_in']))} records</td>"
        )
        reasons = _reason_spans("skipped-reason", row["skipped"], files)
    return (
        f'<tr{_attr("stage", row["label"])}><td class="name">{esc(row["label"])}</td>'
        + first
        + _cell("documents-out", row["documents_out"], number(row["documents_out"]))
        + _cell("skipped", row["skipped_records"], number(row["skipped_records"]))
        + _cell("dropped", row["dropped_total"], number(row["dropped_total"]))
        + _cell("added", row["added"], number(row["added"]))
        + _cell("tokens-in", row["tokens_in"], number(row["tokens_in"]))
        + _cell("tokens-out", row["tokens_out"], number(row["tokens_out"]))
        + f'<td class="name">{reasons}</td></tr>'
    )


def _skipped(block: dict[str, Any]) -> str:
    """The skipped input by reason, and the files that could not be read with the reader's message."""
    if not block["reasons"]:
        return '<p id="skipped">Nothing was skipped: every record meant to be a document became one.</p>'
    rows = [
        f'<tr{_attr("reason", r["reason"])}><td class="name">{esc(r["reason"])}</td>'
        + _cell("unit", r["unit"], r["unit"])
        + _cell("count", r["count"], number(r["count"]))
        + _cell("bytes", r["bytes"], number(r["bytes"]))
        + "</tr>"
        for r in block["reasons"]
    ]
    out = "<h3>Skipped input, by reason</h3>" + _table("skipped", ["reason", "unit", "count", "bytes"], rows)
    if not block["failed_files"]:
        return out
    files = [
        f'<tr{_attr("file", f["file"])}><td class="name">{esc(f["file"])}</td>'
        f'<td class="name">{esc(f["reason"])}</td><td class="name">{esc(f["detail"] or "")}</td></tr>'
        for f in block["failed_files"][:MAX_FAILED_FILE_ROWS]
    ]
    more = block["failed_files_listed"] - len(files)
    if more > 0:
        files.append(
            f'<tr class="more"><td class="name" colspan="3">{more:,} more in the run\'s skipped/</td></tr>'
        )
    return (
        out
        + "<h3>Files that could not be read (documents read before the failure are kept)</h3>"
        + _table("failed-files", ["file", "reason", "message"], files)
    )


def _name_cell(name: str, href: str | None) -> str:
    return f'<td class="name">{linked(esc(name), href, "sample-link")}</td>'


def _group_pages(links: SampleLinks | None, kind: str) -> dict[str, str]:
    return dict(links.groups) if links is not None and links.kind == kind else {}


def _factor_cell(d: dict[str, Any]) -> str:
    factor = d.get("factor")
    tone = "" if factor is None else factor_tone(factor)
    return _cell("factor", factor, factor_label(factor), tone)


def _mixture(section: dict[str, Any], suffix: str, links: SampleLinks | None = None) -> str:
    domains = section["domains"]
    names = [d["domain"] for d in domains]
    pages = _group_pages(links, "domain")
    hrefs = [pages.get(name) for name in names]
    facts = [
        ("mode", section["mode"] or "–"),
        ("budget", number(section["budget"]) if section["budget"] is not None else "none"),
        ("max epochs", f"{section['max_epochs']:g}" if section["max_epochs"] is not None else "–"),
        ("tokens before", number(section["tokens_before"])),
        ("planned tokens", number(section["planned_tokens"])),
        ("achieved tokens", number(section["achieved_tokens"])),
        ("repeated copies", number(section["repeated_copies"])),
    ]
    cards = "".join(f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for k, v in facts)
    shares = grouped_bars(
        names,
        [
            ("before mixing", BEFORE, [d["share_before"] for d in domains]),
            ("planned", PLANNED, [d["share_planned"] for d in domains]),
            ("achieved", AFTER, [d["share_after"] for d in domains]),
        ],
        chart_id=f"shares-chart{suffix}",
        title="Token share per domain before mixing, planned, and achieved; at the right, how mixing scaled it",
        fmt=_pct,
        links=hrefs,
        badges=[_badge(d) for d in domains],
    )
    share_rows = [
        f"<tr{_attr('domain', d['domain'])}>{_name_cell(d['domain'], pages.get(d['domain']))}"
        + _cell("share-before", d["share_before"], _pct(d["share_before"]))
        + _cell("share-planned", d["share_planned"], _pct(d["share_planned"]))
        + _cell("share-after", d["share_after"], _pct(d["share_after"]))
        + _factor_cell(d)
        + "</tr>"
        for d in domains
    ]
    tokens = grouped_bars(
        names,
        [
            ("planned", PLANNED, [d["planned_tokens"] for d in domains]),
            ("achieved", AFTER, [float(d["achieved_tokens"]) for d in domains]),
        ],
        chart_id=f"tokens-chart{suffix}",
        title="Planned and achieved tokens per domain",
        flagged=[not d["on_plan"] for d in domains],
        links=hrefs,
    )
    domain_rows = [
        f"<tr{_attr('domain', d['domain'])}{_attr('on-plan', str(d['on_plan']).lower())}"
        f"{'' if d['on_plan'] else OFF}>{_name_cell(d['domain'], pages.get(d['domain']))}"
        + _cell("documents-before", d["documents_before"], number(d["documents_before"]))
        + _cell("tokens-before", d["tokens_before"], number(d["tokens_before"]))
        + _cell("eligible-tokens", d["eligible_tokens"], number(d["eligible_tokens"]))
        + _cell("rate", d["rate"], f"{d['rate']:.4f}" + (" (capped)" if d["capped"] else ""))
        + _cell("planned-tokens", d["planned_tokens"], number(d["planned_tokens"]))
        + _cell("achieved-tokens", d["achieved_tokens"], number(d["achieved_tokens"]))
        + _cell("achieved-documents", d["achieved_documents"], number(d["achieved_documents"]))
        + _cell("ratio", d["ratio"], "–" if d["ratio"] is None else f"{d['ratio']:.4f}")
        + _factor_cell(d)
        + "</tr>"
        for d in domains
    ]
    headers = [
        "domain", "documents before", "tokens before", "eligible tokens", "rate",
        "planned tokens", "achieved tokens", "achieved documents", "achieved / planned",
        "factor (achieved / before)",
    ]  # fmt: skip
    tolerance = f"{section['tolerance']:.0%}"
    return (
        f'<section class="mixture"{_attr("stage", section["stage"])} id="mixture{suffix}">'
        f'<h2>Mixture ({esc(section["stage"])})</h2><div class="cards">{cards}</div>'
        "<h3>Domain shares of tokens: before mixing, planned, achieved</h3>"
        + shares
        + legend([("before mixing", BEFORE), ("planned", PLANNED), ("achieved", AFTER)])
        + '<div class="legend">At the right of each domain, how mixing scaled it: achieved tokens over the '
        'tokens before mixing (the planned rate where nothing was achieved), <b style="color:'
        + UP
        + '">▲ up-sampled</b>, <b style="color:'
        + DOWN
        + '">▼ down-sampled</b>.'
        + (" Click a domain to read samples of its documents." if pages else "")
        + "</div>"
        + _table(
            f"shares{suffix}",
            ["domain", "before mixing", "planned", "achieved", "factor (achieved / before)"],
            share_rows,
        )
        + f"<h3>Planned and achieved tokens (rows off plan by more than {esc(tolerance)} are highlighted)</h3>"
        + tokens
        + legend([("planned", PLANNED), ("achieved", AFTER)])
        + _table(f"domains{suffix}", headers, domain_rows)
        + _quality(domains, suffix, links)
        + "</section>"
    )


def _bucket_pages(links: SampleLinks | None, bins: int) -> list[str | None]:
    """The quality bucket page of each histogram bin (bins of 0.25 taken four at a time)."""
    if links is None or not links.quality:
        return []
    per = max(1, bins // QUALITY_BUCKETS)
    return [links.quality.get(i // per) for i in range(bins)]


def _quality(domains: list[dict[str, Any]], suffix: str, links: SampleLinks | None = None) -> str:
    if not any(d["quality"]["scored_documents"] for d in domains):
        return (
            '<h3>Quality per domain</h3><p class="box note">No document entering the mix stage had a quality '
            "score, so there are no quality histograms (run the <code>quality</code> stage before "
            "<code>mix</code> to get them).</p>"
        )
    figures, rows = [], []
    first = domains[0]["quality"]
    edges = [first["low"] + i * first["bin_width"] for i in range(len(first["documents"]) + 1)]
    buckets = _bucket_pages(links, len(first["documents"]))
    for index, d in enumerate(domains):
        q = d["quality"]
        chart = histogram(
            q["documents"],
            low=q["low"],
            high=q["high"],
            chart_id=f"quality-chart{suffix}-{index}",
            title=f"Quality scores of {d['domain']} (documents per {q['bin_width']:g})",
            links=buckets,
        )
        caption = f"{d['domain']}: {number(q['scored_documents'])} scored, {number(q['unscored_documents'])} unscored"
        figures.append(
            f"<figure{_attr('domain', d['domain'])}>{chart}<figcaption>{esc(caption)}</figcaption></figure>"
        )
        cells = "".join(
            _linked_cell(f"bin-{i}", n, number(n), buckets[i] if n and i < len(buckets) else None)
            for i, n in enumerate(q["documents"])
        )
        rows.append(
            f'<tr{_attr("domain", d["domain"])}><td class="name">{esc(d["domain"])}</td>'
            + _cell("unscored", q["unscored_documents"], number(q["unscored_documents"]))
            + cells
            + "</tr>"
        )
    headers = ["domain", "unscored", *(f"{a:g}–{b:g}" for a, b in pairwise(edges))]
    clicks = " Click a bin to read samples of its score bucket." if buckets else ""
    return (
        f"<h3>Quality scores per domain (documents per bin; each chart has its own scale)</h3><p>{clicks}</p>"
        f'<div class="multiples" id="quality{suffix}">{"".join(figures)}</div>'
        + _table(f"quality-table{suffix}", headers, rows)
    )


def _breakdown(title: str, key: str, block: dict[str, Any] | None, links: SampleLinks | None = None) -> str:
    if block is None:
        return ""
    pages = _group_pages(links, "language") if key == "languages" else {}
    rows = block["rows"]
    by_tokens = all(r["tokens"] is not None for r in rows)
    value: Callable[[dict[str, Any]], float] = (
        (lambda r: r["tokens"]) if by_tokens else (lambda r: r["documents"])
    )
    unit = "tokens" if by_tokens else "documents"
    shown = rows[:MAX_CHART_ROWS]
    bars = [
        (r["name"], [Segment(value(r), color(0), unit, pages.get(r["name"]))], f"{number(value(r))} {unit}")
        for r in shown
    ]
    rest = rows[MAX_CHART_ROWS:]
    if rest:
        total = sum(value(r) for r in rest)
        bars.append((f"{len(rest)} more", [Segment(total, color(8), unit)], f"{number(total)} {unit}"))
    chart = stacked_bars(bars, chart_id=f"{key}-chart", title=f"{title} by {unit}")
    table_rows = [
        f"<tr{_attr('name', r['name'])}>{_name_cell(r['name'], pages.get(r['name']))}"
        + _cell("documents", r["documents"], number(r["documents"]))
        + _cell("document-share", r["document_share"], _pct(r["document_share"]))
        + _cell("tokens", r["tokens"], number(r["tokens"]))
        + _cell("token-share", r["token_share"], _pct(r["token_share"]))
        + "</tr>"
        for r in rows[:MAX_BREAKDOWN_ROWS]
    ]
    if len(rows) > MAX_BREAKDOWN_ROWS:
        table_rows.append(
            f'<tr class="more"><td class="name" colspan="5">{len(rows) - MAX_BREAKDOWN_ROWS:,} more rows '
            "in report/mixture.json</td></tr>"
        )
    headers = ["name", "documents", "share", "tokens", "share"]
    return (
        f'<section id="{key}-section"><h2>{esc(title)}</h2><p>Counted {esc(block["basis"])}.</p>'
        + chart
        + _table(key, headers, table_rows)
        + "</section>"
    )


def _bucket_links(links: SampleLinks | None) -> str:
    """Links to the quality bucket pages (the rounded scores of this chart straddle the buckets)."""
    if links is None or not links.quality:
        return ""
    items = ", ".join(
        f'<a class="bucket-link" href="{esc(page)}">{bucket}–{bucket + 1}</a>'
        for bucket, page in sorted(links.quality.items())
    )
    return f'<p id="quality-samples">Sample documents by score: {items}.</p>'


def _quality_scores(block: dict[str, Any] | None, links: SampleLinks | None = None) -> str:
    if block is None:
        return ""
    counts = [block["rounded"][str(k)] for k in range(len(block["rounded"]))]
    bars = [(f"score {k}", [Segment(n, color(0), "documents")], number(n)) for k, n in enumerate(counts)]
    chart = stacked_bars(bars, chart_id="quality-scores-chart", title="Documents per rounded quality score")
    rows = [
        f'<tr{_attr("score", k)}><td class="name">{k}</td>{_cell("documents", n, number(n))}</tr>'
        for k, n in enumerate(counts)
    ]
    mean = "–" if block["mean"] is None else f"{block['mean']:.3f} ± {block['std']:.3f}"
    return (
        f'<section id="quality-scores-section"><h2>Quality scores ({esc(block["stage"])})</h2>'
        f"<p>{esc(number(block['scored']))} documents scored, {esc(number(block['empty']))} empty; "
        f"mean {esc(mean)}.</p>"
        + chart
        + _table("quality-scores", ["rounded score", "documents"], rows)
        + _bucket_links(links)
        + "</section>"
    )


def _samples_box(links: SampleLinks | None) -> str:
    if links is None:
        return ""
    group = "domain" if links.kind == "domain" else "language"
    counts = [
        (len(links.groups), f"by {group}"),
        (len(links.quality), "by quality score"),
        (len(links.drops), "by drop reason"),
    ]
    said = ", ".join(f"{n} {what}" for n, what in counts if n)
    clicks = [
        *([f"a {group}'s bars or row"] if links.groups else []),
        *(["a quality bin"] if links.quality else []),
        *(["a drop reason"] if links.drops else []),
    ]
    how = f": click {', '.join(clicks[:-1])} or {clicks[-1]} to read them" if len(clicks) > 1 else ""
    how = how or (f": click {clicks[0]} to read them" if clicks else "")
    notes = "".join(f"<li>{esc(n)}</li>" for n in links.notes)
    return (
        f'<div class="box note" id="samples"><b><a id="samples-link" href="{esc(links.overview)}">Sample documents'
        f"</a></b> behind these numbers ({esc(said or 'none')}){esc(how)}.{f'<ul>{notes}</ul>' if notes else ''}</div>"
    )


def render_html(data: dict[str, Any], links: SampleLinks | None = None) -> str:
    """The whole report page for `report/index.html`, from the data of `report/mixture.json` (and the links to
    the sample pages of `report/samples.json`, where there are any)."""
    mixtures = "".join(
        _mixture(m, "" if i == 0 else f"-{i + 1}", links) for i, m in enumerate(data["mixtures"])
    )
    incremental = ""
    if data.get("incremental"):
        from corpusmill.mixtures.report_incremental import render_incremental

        incremental = render_incremental(data["incremental"])
    body = (
        _header(data["run"])
        + _warnings(data)
        + _samples_box(links)
        + incremental
        + _funnel(data["funnel"], data["skipped"], links)
        + mixtures
        + _quality_scores(data["quality_scores"], links)
        + _breakdown("Languages", "languages", data["languages"], links)
        + _breakdown("Sources", "sources", data["sources"])
    )
    title = f"Run report: {data['run']['recipe'] or 'unnamed recipe'}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{run_nav()}{body}</main></body></html>\n"
    )
