"""The run report as one self-contained HTML page, rendered from the report's JSON data alone.

One file with inline CSS and inline SVG, no script and nothing fetched, so it opens offline, from a mail, or
from an object store's browser. Each chart is followed by a table of the exact numbers; tables and rows carry
stable `id` and `data-*` attributes (`<table id="domains">`, `<tr data-domain=...>`,
`<td data-achieved-tokens=...>`) so scripts and tests can read the page back without parsing text. Every
string from the data goes through `html.escape`: domain names, reasons and paths come from crawled input.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from itertools import pairwise
from typing import Any

from corpusmill.mixtures.charts import (
    Segment,
    color,
    drop_color,
    esc,
    grouped_bars,
    histogram,
    legend,
    number,
    stacked_bars,
)

MAX_BREAKDOWN_ROWS = 100  # the JSON keeps them all; a page with thousands of source files helps nobody
MAX_CHART_ROWS = 20
OFF = ' class="off"'
KEPT, ADDED = "#009E73", "#56B4E9"
# Skipped input (never a document) in cool greys, apart from the warm colours of documents dropped.
SKIP_PALETTE = ("#5f6b7a", "#98a4b3", "#3e4650", "#c3ccd6", "#7a8799", "#dde3ea")
MAX_FAILED_FILE_ROWS = 100
BEFORE, PLANNED, AFTER = "#8c8c8c", "#E69F00", "#0072B2"

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
"""


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def _attr(name: str, value: object) -> str:
    return f' data-{name}="{"" if value is None else esc(value)}"'


def _cell(name: str, value: object, shown: str, css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return f"<td{klass}{_attr(name, value)}>{esc(shown)}</td>"


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


def _skip_color(index: int) -> str:
    return SKIP_PALETTE[index % len(SKIP_PALETTE)]


def _record_skips(row: dict[str, Any], files: set[str]) -> dict[str, int]:
    """A read row's skipped records by reason: files that failed are not records and stay off the bar."""
    return {r: n for r, n in row["skipped"].items() if r not in files}


def _funnel(rows: list[dict[str, Any]], skipped: dict[str, Any]) -> str:
    reasons = sorted({r for row in rows for r in row["dropped"]})
    colors = {reason: drop_color(i) for i, reason in enumerate(reasons)}
    files = {r["reason"] for r in skipped["reasons"] if r["unit"] == "files"}
    skip_reasons = sorted({r for row in rows for r in _record_skips(row, files)})
    skip_colors = {reason: _skip_color(i) for i, reason in enumerate(skip_reasons)}
    bars = []
    for row in rows:
        kept = row["documents_in"] - row["dropped_total"]
        segments = [Segment(kept, KEPT, "kept")]
        segments += [
            Segment(n, skip_colors[r], f"skipped: {r}") for r, n in sorted(_record_skips(row, files).items())
        ]
        segments += [Segment(n, colors[r], f"dropped: {r}") for r, n in sorted(row["dropped"].items())]
        segments.append(Segment(row["added"], ADDED, "added (repeats)"))
        bars.append((row["label"], segments, _caption(row)))
    chart = stacked_bars(
        bars, chart_id="funnel-chart", title="Input records, then documents per stage, with losses by reason"
    )
    keys = [
        ("kept", KEPT),
        *((f"skipped: {r}", skip_colors[r]) for r in skip_reasons),
        *((f"dropped: {r}", colors[r]) for r in reasons),
        ("added (repeats)", ADDED),
    ]
    headers = [
        "stage", "in", "documents out", "skipped", "dropped", "added", "tokens in", "tokens out",
        "skipped or dropped, by reason",
    ]  # fmt: skip
    return (
        '<section id="funnel-section"><h2>Funnel</h2>'
        "<p>Reading turns input records into documents; a record it passes over (bad JSON, a WARC request "
        "record, a file that cannot be read) is <em>skipped</em>, listed in <code>skipped/</code>. Stages "
        "then drop documents, listed in <code>rejected/</code>.</p>"
        + chart
        + legend(keys)
        + _table("funnel", headers, [_funnel_row(row, files) for row in rows])
        + _skipped(skipped)
        + "</section>"
    )


def _caption(row: dict[str, Any]) -> str:
    first = row["documents_in"] if row["records_in"] is None else row["records_in"]
    return f"{number(first)} → {number(row['documents_out'])}"


def _reason_spans(kind: str, counts: dict[str, int], files: Collection[str] = ()) -> str:
    """Reasons with their counts, largest first; reasons that count files say so."""
    return ", ".join(
        f"<span{_attr(kind, r)}{_attr('count', n)}>{esc(r)} {esc(number(n))}{_files(n) if r in files else ''}</span>"
        for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def _files(n: int) -> str:
    return " file" if n == 1 else " files"


def _funnel_row(row: dict[str, Any], files: set[str]) -> str:
    if row["records_in"] is None:
        first = _cell("documents-in", row["documents_in"], number(row["documents_in"]))
        reasons = _reason_spans("reason", row["dropped"])
    else:
        first = _cell("records-in", row["records_in"], f"{number(row['records_in'])} records")
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
        return '<p id="skipped">Nothing was skipped: every input record became a document.</p>'
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


def _mixture(section: dict[str, Any], suffix: str) -> str:
    domains = section["domains"]
    names = [d["domain"] for d in domains]
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
        title="Token share per domain before mixing, planned, and achieved",
        fmt=_pct,
    )
    share_rows = [
        f'<tr{_attr("domain", d["domain"])}><td class="name">{esc(d["domain"])}</td>'
        + _cell("share-before", d["share_before"], _pct(d["share_before"]))
        + _cell("share-planned", d["share_planned"], _pct(d["share_planned"]))
        + _cell("share-after", d["share_after"], _pct(d["share_after"]))
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
    )
    domain_rows = [
        f"<tr{_attr('domain', d['domain'])}{_attr('on-plan', str(d['on_plan']).lower())}"
        f'{"" if d["on_plan"] else OFF}><td class="name">{esc(d["domain"])}</td>'
        + _cell("documents-before", d["documents_before"], number(d["documents_before"]))
        + _cell("tokens-before", d["tokens_before"], number(d["tokens_before"]))
        + _cell("eligible-tokens", d["eligible_tokens"], number(d["eligible_tokens"]))
        + _cell("rate", d["rate"], f"{d['rate']:.4f}" + (" (capped)" if d["capped"] else ""))
        + _cell("planned-tokens", d["planned_tokens"], number(d["planned_tokens"]))
        + _cell("achieved-tokens", d["achieved_tokens"], number(d["achieved_tokens"]))
        + _cell("achieved-documents", d["achieved_documents"], number(d["achieved_documents"]))
        + _cell("ratio", d["ratio"], "–" if d["ratio"] is None else f"{d['ratio']:.4f}")
        + "</tr>"
        for d in domains
    ]
    headers = [
        "domain", "documents before", "tokens before", "eligible tokens", "rate",
        "planned tokens", "achieved tokens", "achieved documents", "achieved / planned",
    ]  # fmt: skip
    tolerance = f"{section['tolerance']:.0%}"
    return (
        f'<section class="mixture"{_attr("stage", section["stage"])} id="mixture{suffix}">'
        f'<h2>Mixture ({esc(section["stage"])})</h2><div class="cards">{cards}</div>'
        "<h3>Domain shares of tokens: before mixing, planned, achieved</h3>"
        + shares
        + legend([("before mixing", BEFORE), ("planned", PLANNED), ("achieved", AFTER)])
        + _table(f"shares{suffix}", ["domain", "before mixing", "planned", "achieved"], share_rows)
        + f"<h3>Planned and achieved tokens (rows off plan by more than {esc(tolerance)} are highlighted)</h3>"
        + tokens
        + legend([("planned", PLANNED), ("achieved", AFTER)])
        + _table(f"domains{suffix}", headers, domain_rows)
        + _quality(domains, suffix)
        + "</section>"
    )


def _quality(domains: list[dict[str, Any]], suffix: str) -> str:
    if not any(d["quality"]["scored_documents"] for d in domains):
        return (
            '<h3>Quality per domain</h3><p class="box note">No document entering the mix stage had a quality '
            "score, so there are no quality histograms (run the <code>quality</code> stage before "
            "<code>mix</code> to get them).</p>"
        )
    figures, rows = [], []
    first = domains[0]["quality"]
    edges = [first["low"] + i * first["bin_width"] for i in range(len(first["documents"]) + 1)]
    for index, d in enumerate(domains):
        q = d["quality"]
        chart = histogram(
            q["documents"],
            low=q["low"],
            high=q["high"],
            chart_id=f"quality-chart{suffix}-{index}",
            title=f"Quality scores of {d['domain']} (documents per {q['bin_width']:g})",
        )
        caption = f"{d['domain']}: {number(q['scored_documents'])} scored, {number(q['unscored_documents'])} unscored"
        figures.append(
            f"<figure{_attr('domain', d['domain'])}>{chart}<figcaption>{esc(caption)}</figcaption></figure>"
        )
        cells = "".join(_cell(f"bin-{i}", n, number(n)) for i, n in enumerate(q["documents"]))
        rows.append(
            f'<tr{_attr("domain", d["domain"])}><td class="name">{esc(d["domain"])}</td>'
            + _cell("unscored", q["unscored_documents"], number(q["unscored_documents"]))
            + cells
            + "</tr>"
        )
    headers = ["domain", "unscored", *(f"{a:g}–{b:g}" for a, b in pairwise(edges))]
    return (
        "<h3>Quality scores per domain (documents per bin; each chart has its own scale)</h3>"
        f'<div class="multiples" id="quality{suffix}">{"".join(figures)}</div>'
        + _table(f"quality-table{suffix}", headers, rows)
    )


def _breakdown(title: str, key: str, block: dict[str, Any] | None) -> str:
    if block is None:
        return ""
    rows = block["rows"]
    by_tokens = all(r["tokens"] is not None for r in rows)
    value: Callable[[dict[str, Any]], float] = (
        (lambda r: r["tokens"]) if by_tokens else (lambda r: r["documents"])
    )
    unit = "tokens" if by_tokens else "documents"
    shown = rows[:MAX_CHART_ROWS]
    bars = [(r["name"], [Segment(value(r), color(0), unit)], f"{number(value(r))} {unit}") for r in shown]
    rest = rows[MAX_CHART_ROWS:]
    if rest:
        total = sum(value(r) for r in rest)
        bars.append((f"{len(rest)} more", [Segment(total, color(8), unit)], f"{number(total)} {unit}"))
    chart = stacked_bars(bars, chart_id=f"{key}-chart", title=f"{title} by {unit}")
    table_rows = [
        f'<tr{_attr("name", r["name"])}><td class="name">{esc(r["name"])}</td>'
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


def _quality_scores(block: dict[str, Any] | None) -> str:
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
        + "</section>"
    )


def render_html(data: dict[str, Any]) -> str:
    """The whole report page for `report/index.html`, from the data of `report/mixture.json`."""
    mixtures = "".join(_mixture(m, "" if i == 0 else f"-{i + 1}") for i, m in enumerate(data["mixtures"]))
    incremental = ""
    if data.get("incremental"):
        from corpusmill.mixtures.report_incremental import render_incremental

        incremental = render_incremental(data["incremental"])
    body = (
        _header(data["run"])
        + _warnings(data)
        + incremental
        + _funnel(data["funnel"], data["skipped"])
        + mixtures
        + _quality_scores(data["quality_scores"])
        + _breakdown("Languages", "languages", data["languages"])
        + _breakdown("Sources", "sources", data["sources"])
    )
    title = f"Run report: {data['run']['recipe'] or 'unnamed recipe'}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>{body}</main></body></html>\n"
    )
