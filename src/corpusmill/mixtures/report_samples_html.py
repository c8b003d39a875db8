"""The sample pages of the report: one per cell, one per sampled document, and an overview of the cells.

Rendered from `samples.json` alone, in the style of `index.html` (its CSS, its cards and tables, nothing
fetched, no script but the one that shows the link back to the run where the service serves the page). Every string from a document (text, URL, id, domain, reason) is crawled data and goes
through `esc`; a document's URL becomes a link only when it is `http(s)`, so a `javascript:` URL stays text.
Links are relative (`../index.html`, `../documents/<hash>.html`), so the pages work from disk and served by
the service alike. Numbers carry `data-*` attributes with their exact values, as on the index page, so
scripts and tests can compare them with `mixture.json`.
"""

from __future__ import annotations

from typing import Any

from corpusmill.mixtures.charts import esc, number
from corpusmill.mixtures.report_html import CSS, factor_label, factor_tone, run_nav

PAGE_CSS = """
nav{margin:0 0 12px;font-size:13px}nav a{margin-right:12px}
ol.docs{list-style:none;padding:0;margin:0}
li.doc{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;margin:10px 0}
li.doc h3{margin:0 0 2px;font-size:15px;overflow-wrap:anywhere}.url{color:#555;font-size:12px;overflow-wrap:anywhere}
pre.preview,pre.text{white-space:pre-wrap;overflow-wrap:anywhere;font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,monospace;
background:#f7f7f7;border:1px solid #eee;border-radius:4px;padding:8px;margin:6px 0}
pre.text{background:#fff}
.meta{font-size:12px;color:#444;display:flex;flex-wrap:wrap;gap:0 14px}.meta span{white-space:nowrap}
.drop{color:#8a2b00;font-size:13px}table.fields td{text-align:left;white-space:normal;overflow-wrap:anywhere}
.up{color:#007a56}.down{color:#b34700}.same{color:#666}
"""

NUMBER_LABELS = {
    "documents_before": "documents before mixing",
    "tokens_before": "tokens before mixing",
    "eligible_documents": "eligible documents before mixing",
    "eligible_tokens": "eligible tokens before mixing",
    "rate": "sampling rate (plan)",
    "factor": "factor (achieved / before)",
    "planned_documents": "planned documents",
    "planned_tokens": "planned tokens",
    "achieved_documents": "achieved documents (copies included)",
    "achieved_tokens": "achieved tokens",
    "share_before": "share of tokens before mixing",
    "share_planned": "planned share of tokens",
    "share_after": "achieved share of tokens",
    "documents": "documents",
    "tokens": "tokens",
    "dropped": "documents dropped for this reason",
    "stage_documents_in": "documents entering the stage",
    "stage_dropped": "documents the stage dropped, all reasons",
}
SCANNED_LABELS = {
    "documents": "documents in this cell (rows scanned)",
    "copies": "up-sampled copies (not counted, never sampled)",
    "tokens": "tokens of those documents",
    "kept": "kept",
    "dropped": "dropped by the mix stage",
}


def _shown(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key == "factor":
        return factor_label(value)
    if key.startswith("share_"):
        return f"{value:.2%}"
    if key == "rate":
        return f"{value:.4f}"
    return number(value)


def page(title: str, body: str, depth: int = 1) -> str:
    """A whole page, `depth` folders below the report folder."""
    up = "../" * depth
    nav = f'<nav><a id="report-link" href="{up}index.html">← mixture report</a><a id="samples-link" href="{up}samples/index.html">all samples</a></nav>'
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}{PAGE_CSS}</style></head>"
        f"<body><main>{run_nav(depth)}{nav}{body}</main></body></html>\n"
    )


def _numbers_table(numbers: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr data-number="{esc(k)}"><td class="name">{esc(NUMBER_LABELS.get(k, k))}</td>'
        f'<td data-value="{esc("" if v is None else repr(v))}">{esc(_shown(k, v))}</td></tr>'
        for k, v in numbers.items()
    )
    return f'<div class="scroll"><table id="cell-numbers"><tbody>{rows}</tbody></table></div>'


def _scanned_table(scanned: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr data-scanned="{esc(k)}"><td class="name">{esc(SCANNED_LABELS.get(k, k))}</td>'
        f'<td data-value="{esc(v)}">{esc(number(v))}</td></tr>'
        for k, v in scanned.items()
        if k != "complete"
    )
    whole = (
        "All of the run's rows were scanned."
        if scanned["complete"]
        else "The scan stopped early or skipped a damaged file: these counts cover the rows read only."
    )
    return (
        f'<div class="scroll"><table id="cell-scanned"><tbody>{rows}</tbody></table></div><p>{esc(whole)}</p>'
    )


def _link(url: str | None) -> str:
    if not url:
        return ""
    text = esc(url)
    if url.lower().startswith(("http://", "https://")):
        return f'<a class="url" rel="nofollow noopener noreferrer" href="{text}">{text}</a>'
    return f'<span class="url">{text}</span>'


def _meta(doc: dict[str, Any]) -> str:
    parts = []
    for key in ("domain", "domain_confidence", "lang", "token_count"):
        if key in doc and doc[key] is not None:
            value = doc[key]
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            parts.append(f"<span{_data(key, value)}>{esc(key)}: {esc(shown)}</span>")
    for key, value in doc["scores"].items():
        shown = "–" if value is None else f"{value:.3f}"
        parts.append(f'<span data-score="{esc(key)}">{esc(key.removeprefix("score__"))}: {esc(shown)}</span>')
    return f'<div class="meta">{"".join(parts)}</div>'


def _data(key: str, value: Any) -> str:
    return f' data-{esc(key.replace("_", "-"))}="{esc(value)}"'


def _drop(doc: dict[str, Any]) -> str:
    drop = doc.get("drop")
    if not drop:
        return ""
    detail = f" — {esc(drop['detail'])}" if drop.get("detail") else ""
    return (
        f'<div class="drop"{_data("stage", drop["stage"])}{_data("reason", drop["reason"])}>'
        f"dropped by <b>{esc(drop['stage'])}</b>: {esc(drop['reason'])}{detail}</div>"
    )


def _document_item(doc: dict[str, Any]) -> str:
    cut = " …" if doc["preview_cut"] else ""
    return (
        f'<li class="doc"{_data("id", doc["id"])}><h3><a class="doc-link" href="../{esc(doc["page"])}">'
        f"{esc(doc['title'])}</a></h3>{'' if doc['title'] == doc['url'] else _link(doc['url'])}{_drop(doc)}{_meta(doc)}"
        f'<pre class="preview">{esc(doc["preview"])}{cut}</pre>'
        f'<div class="meta"><span>{esc(number(doc["chars"]))} characters</span><span>id {esc(doc["id"])}</span></div></li>'
    )


def render_cell(cell: dict[str, Any], samples: dict[str, Any]) -> str:
    """The page of one cell: its numbers from mixture.json, its counts from the scan, its sampled documents."""
    numbers = cell["numbers"]
    heading = f"<h1>{esc(cell['title'])}</h1>"
    if cell["kind"] in ("domain", "language") and numbers.get("factor") is not None:
        tone = factor_tone(numbers["factor"])
        heading += (
            f'<p id="factor" class="{tone}">Mixing scaled it {esc(factor_label(numbers["factor"]))}.</p>'
        )
    basis = _basis(cell, samples)
    docs = cell["documents"]
    if docs:
        listing = f'<ol class="docs" id="documents">{"".join(_document_item(d) for d in docs)}</ol>'
    else:
        listing = (
            '<p class="box note" id="documents">No document of this cell was found in the rows scanned.'
            f"{_mix_drops(cell, samples)}</p>"
        )
    return page(
        cell["title"],
        heading
        + f"<p>{esc(basis)}</p>"
        + ("<h2>Numbers of the report</h2>" + _numbers_table(numbers) if numbers else "")
        + "<h2>Counted while sampling</h2>"
        + _scanned_table(cell["scanned"])
        + f"<h2>Sample documents ({len(docs)} of up to {samples['per_cell']})</h2>"
        + f"<p>Chosen by the smallest hash of (seed {esc(samples['seed'])}, id): the same documents on every "
        "rebuild. Open one for its full text and all its fields.</p>" + listing,
    )


def _mix_drops(cell: dict[str, Any], samples: dict[str, Any]) -> str:
    """For a domain with nothing in the output: where the mix stage's drops are (its documents may be there)."""
    if cell["kind"] != "domain":
        return ""
    stages = set(samples["grouping"]["mix_stages"])
    drops = [c for c in samples["cells"] if c["kind"] == "drop" and c["stage"] in stages]
    if not drops:
        return ""
    links = ", ".join(
        f'<a class="drop-link" href="../{esc(c["page"])}">{esc(c["reason"])}</a>' for c in drops
    )
    return f" Documents the mix stage dropped, by reason: {links}."


def _basis(cell: dict[str, Any], samples: dict[str, Any]) -> str:
    grouping = samples["grouping"]
    if cell["kind"] in ("domain", "language"):
        source = grouping["numbers"] or "no mixture"
        return (
            f"Documents of the run's output (documents/) whose {grouping['column']} is {cell['key']}"
            f"{' (a null counts as ' + grouping['unlabelled'] + ')' if cell['key'] == grouping['unlabelled'] else ''}; "
            f"numbers from {source}."
        )
    if cell["kind"] == "quality":
        stages = ", ".join(grouping["mix_stages"]) or "none"
        return (
            f"Documents with {grouping['quality_column']} in [{cell['low']}, {cell['high']}) that reached the "
            f"mix: kept, or dropped by the mix stage ({stages}); the report's numbers count the documents "
            "entering the mix."
        )
    return f"Rows that {cell['stage']} dropped for {cell['reason']}, from the run's rejected/ files."


def render_document(doc: dict[str, Any]) -> str:
    """The page of one sampled document: all its fields, the cells it was sampled in, and its text."""
    rows = "".join(
        f'<tr data-field="{esc(k)}"><td class="name">{esc(k)}</td><td>{esc("–" if v is None else v)}</td></tr>'
        for k, v in doc["fields"].items()
    )
    cells = ", ".join(f'<a href="../{esc(c["page"])}">{esc(c["title"])}</a>' for c in doc["cells"])
    cut = (
        f'<p class="box note" id="text-cut">The text is cut at {number(len(doc["text"]) - 1)} of '
        f"{number(doc['chars'])} characters.</p>"
        if doc["text_cut"]
        else ""
    )
    return page(
        doc["title"],
        f'<h1 id="title">{esc(doc["title"])}</h1>{_link(doc["url"])}{_drop(doc)}'
        f'<p id="cells">Sampled in: {cells}</p>'
        f'<h2>Fields</h2><div class="scroll"><table id="fields" class="fields"><tbody>{rows}</tbody></table></div>'
        f"<h2>Text ({esc(number(doc['chars']))} characters)</h2>{cut}"
        f'<pre class="text" id="text">{esc(doc["text"])}</pre>',
    )


def render_overview(samples: dict[str, Any]) -> str:
    """Every cell with its count and a link to its page, by kind, and what limited the sampling."""
    kinds = {
        "domain": "By domain",
        "language": "By language",
        "quality": "By quality score",
        "drop": "By drop reason",
    }
    sections = []
    for kind, heading in kinds.items():
        cells = [c for c in samples["cells"] if c["kind"] == kind]
        if not cells:
            continue
        rows = "".join(
            f'<tr{_data("kind", kind)}{_data("key", c["key"])}><td class="name"><a href="../{esc(c["page"])}">'
            f"{esc(c['title'])}</a></td><td>{esc(number(c['scanned']['documents']))}</td>"
            f"<td>{len(c['documents'])}</td></tr>"
            for c in cells
        )
        sections.append(
            f'<h2>{esc(heading)}</h2><div class="scroll"><table id="cells-{esc(kind)}"><thead><tr>'
            '<th class="name">cell</th><th>documents scanned</th><th>sampled</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
        )
    if not any(c["kind"] == "drop" for c in samples["cells"]):
        sections.append('<h2>By drop reason</h2><p id="no-drops">No samples of dropped documents.</p>')
    notes = "".join(f"<li>{esc(n)}</li>" for n in samples["notes"])
    box = f'<div class="box note" id="notes"><b>Notes</b><ul>{notes}</ul></div>' if notes else ""
    return page(
        "Samples of the documents behind the report",
        "<h1>Samples of the documents behind the report</h1>"
        f"<p>Up to {samples['per_cell']} documents per cell, chosen by hash of (seed {esc(samples['seed'])}, id); "
        f"at most {number(samples['max_scan_rows'])} rows are scanned per source.</p>"
        + box
        + "".join(sections),
    )
