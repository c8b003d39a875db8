"""What the report of a run built on a base adds: the base run, and how this run differs from it.

A run built with `--base` has an `incremental` section in its `stats.json`: the base run directory, the input
files added and removed, the documents taken down, the parts reused. The report shows those, links to the base's
report when the base directory is still there, and shows the change in the mixture against the base, per domain:
the documents and tokens the base's mix wrote, this run's, and the difference (the service's mixture difference
of two runs, with documents beside tokens). The base's numbers come from its `stats.json`, or from its
`report/mixture.json` when only that is left. A base that is gone is said to be gone, never an error: the run
stands on its own.

A run on object storage (a finished run copied to `s3://bucket/runs/x`) looks for its base on the same store: at
the recorded URI when the base was recorded as one, else beside the run, at the recorded relative path or by the
base directory's name (runs are written locally and copied to the store together), never on the local disk of
whoever rebuilds the report. The link to the base's report is then relative within the bucket.

In the change, `before` is the base run's mix output and `after` this run's, as in the service's mixture
difference; in a mixture section `tokens_before` means before mixing.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from corpusmill.core.location import RunPath, is_uri, run_path
from corpusmill.mixtures.charts import esc, grouped_bars, legend, number
from corpusmill.mixtures.report import REPORT_FORMAT, mixtures_of
from corpusmill.mixtures.report_html import AFTER, BEFORE, _attr, _cell, _pct, _table
from corpusmill.service.mixdiff import NoMixture, mixture_diff

# Input files named in the report's JSON per list (all of them are in stats.json); the page shows fewer.
MAX_LISTED_FILES = 1000
MAX_SHOWN_FILES = 10


def _locate(base: str, run_dir: RunPath) -> RunPath:
    """The base run directory: as recorded when absolute, else relative to here or beside this run.

    For a run on object storage: the recorded URI, else beside the run on the same store (see the module).
    """
    if is_uri(base):
        return run_path(base)
    path = Path(base)
    if not isinstance(run_dir, Path):
        beside = [] if path.is_absolute() else [run_dir.parent / path.as_posix()]
        candidates = [*beside, run_dir.parent / path.name]
        return next((c for c in candidates if c.is_dir()), candidates[-1])
    if path.is_absolute():
        return path
    candidates = [Path.cwd() / path, run_dir.parent / path]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def _link(base_dir: RunPath, run_dir: RunPath) -> str | None:
    """The relative link from this run's report to the base's, or None where no relative link leads there."""
    if isinstance(base_dir, Path) and isinstance(run_dir, Path):
        target = os.path.relpath(base_dir.resolve() / "report" / "index.html", (run_dir / "report").resolve())
        return quote(Path(target).as_posix())
    if isinstance(base_dir, Path) or isinstance(run_dir, Path) or base_dir.protocol != run_dir.protocol:
        return None  # one on the local disk, one on a store (or two stores)
    base_key, run_key = base_dir.path.strip("/"), run_dir.path.strip("/")
    if base_key.split("/")[0] != run_key.split("/")[0]:
        return None  # another bucket
    return quote(posixpath.relpath(f"{base_key}/report/index.html", f"{run_key}/report"))


def _files(names: Iterable[str] | None) -> dict[str, Any]:
    listed = list(names or [])
    return {"count": len(listed), "names": listed[:MAX_LISTED_FILES]}


def _load(path: RunPath) -> dict[str, Any] | None:
    """A JSON object from a file, or None when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _base_numbers(base_dir: RunPath) -> tuple[dict[str, Any] | None, str | None]:
    """The base's fingerprint, output totals and mixtures, and the file they came from (None: neither is read)."""
    stats = _load(base_dir / "stats.json")
    if stats is not None:
        numbers = {
            "fingerprint": stats.get("fingerprint"),
            "documents_out": int(stats.get("documents_out", 0)),
            "tokens_written": int(stats.get("tokens_written", 0)),
            "mixtures": mixtures_of(stats),
        }
        return numbers, "stats.json"
    report = _load(base_dir / "report" / "mixture.json")
    if report is not None and report.get("format") == REPORT_FORMAT:
        run = report.get("run", {})
        numbers = {
            "fingerprint": run.get("fingerprint"),
            "documents_out": int(run.get("documents_out", 0)),
            "tokens_written": int(run.get("tokens_written", 0)),
            "mixtures": report.get("mixtures", []),
        }
        return numbers, "report/mixture.json"
    return None, None


def _with_documents(
    change: list[dict[str, Any]], base: list[dict[str, Any]], mixtures: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The service's per-domain token difference, with the documents each mix wrote beside the tokens."""
    for section, old, new in zip(change, base, mixtures, strict=False):
        before = {d["domain"]: int(d.get("achieved_documents", 0)) for d in old.get("domains", [])}
        after = {d["domain"]: int(d.get("achieved_documents", 0)) for d in new.get("domains", [])}
        for row in section["domains"]:
            row["documents_before"] = before.get(row["domain"], 0)
            row["documents_after"] = after.get(row["domain"], 0)
            row["delta_documents"] = row["documents_after"] - row["documents_before"]
        section["documents_before"] = int(old.get("achieved_documents", sum(before.values())))
        section["documents_after"] = int(new.get("achieved_documents", sum(after.values())))
        section["delta_documents"] = section["documents_after"] - section["documents_before"]
    return change


def incremental_section(
    run_dir: RunPath, incremental: dict[str, Any], mixtures: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, str | None]]]:
    """The report's `incremental` block for a run built on a base, and the warnings it raises."""
    recorded = str(incremental.get("base") or "")
    base_dir = _locate(recorded, run_dir) if recorded else None
    exists = base_dir is not None and base_dir.is_dir()
    link = None
    if exists and base_dir is not None:
        link = _link(base_dir, run_dir)
    numbers, source = _base_numbers(base_dir) if exists and base_dir is not None else (None, None)
    notes: list[str] = []
    warnings: list[dict[str, str | None]] = []
    expected = incremental.get("base_fingerprint")
    if not recorded:
        notes.append("stats.json names no base run, so there is no change in the mixture to show.")
    elif not exists and not isinstance(run_dir, Path) and not is_uri(recorded):
        notes.append(
            f"The base run {recorded} is not beside this run on object storage (looked for at {base_dir}), so "
            "the change in the mixture against it cannot be shown; copy the base run there to show it."
        )
    elif not exists:
        notes.append(
            f"The base run {recorded} no longer exists, so the change in the mixture against it cannot be shown."
        )
    elif numbers is None:
        notes.append(
            f"The base run {recorded} has neither a readable stats.json nor a report/mixture.json, so the change "
            "in the mixture against it cannot be shown."
        )
    elif expected and numbers["fingerprint"] and numbers["fingerprint"] != expected:
        warnings.append(
            {
                "stage": None,
                "kind": "base",
                "message": f"the base run {recorded} now holds a run of fingerprint {numbers['fingerprint']}, "
                f"not the {expected} this run was built on: the change in the mixture is against what it "
                "holds now",
            }
        )
    change: list[dict[str, Any]] = []
    if numbers is not None:
        try:
            diff = mixture_diff({"mixtures": numbers["mixtures"]}, {"mixtures": mixtures})
        except NoMixture:
            side = "the base run" if not numbers["mixtures"] else "this run"
            notes.append(f"There is no change in the mixture to show: {side} has no `mix` stage.")
        else:
            change = _with_documents(diff, numbers["mixtures"], mixtures)
    parts = incremental.get("parts")
    section = {
        "base": {
            "run_dir": recorded or None,
            "exists": exists,
            "link": link,
            "fingerprint": expected,
            "source": source,
            "found_fingerprint": numbers["fingerprint"] if numbers else None,
            "documents_out": numbers["documents_out"] if numbers else None,
            "tokens_written": numbers["tokens_written"] if numbers else None,
        },
        "added_files": _files(incremental.get("added_files")),
        "removed_files": _files(incremental.get("removed_files")),
        "taken_down": int(incremental.get("taken_down") or 0),
        "parts": None if parts is None else int(parts),
        "reused_parts": int(incremental.get("reused_parts") or 0),
        "mixture_change": change,
        "notes": notes,
    }
    return section, warnings


def _signed(value: float, digits: int = 0) -> str:
    return f"{value:+,.{digits}f}" if value else "0"


def _file_list(list_id: str, block: dict[str, Any]) -> str:
    if not block["count"]:
        return f'<p id="{esc(list_id)}">None.</p>'
    items = [f"<li{_attr('file', name)}>{esc(name)}</li>" for name in block["names"][:MAX_SHOWN_FILES]]
    more = block["count"] - len(items)
    if more > 0:
        items.append(f'<li class="more"{_attr("more", more)}>and {more:,} more</li>')
    return f'<ul id="{esc(list_id)}">{"".join(items)}</ul>'


def _change(section: dict[str, Any], suffix: str) -> str:
    # A domain neither run's mix wrote anything of stays in the JSON, off the chart and table.
    keys = ("documents_before", "documents_after", "tokens_before", "tokens_after")
    domains = [d for d in section["domains"] if any(d[k] for k in keys)]
    idle = len(section["domains"]) - len(domains)
    chart = grouped_bars(
        [d["domain"] for d in domains],
        [
            ("base run", BEFORE, [float(d["tokens_before"]) for d in domains]),
            ("this run", AFTER, [float(d["tokens_after"]) for d in domains]),
        ],
        chart_id=f"mixture-change-chart{suffix}",
        title="Tokens per domain written by the mix of the base run and of this run",
    )
    rows = [
        f'<tr{_attr("domain", d["domain"])}><td class="name">{esc(d["domain"])}</td>'
        + _cell("documents-before", d["documents_before"], number(d["documents_before"]))
        + _cell("documents-after", d["documents_after"], number(d["documents_after"]))
        + _cell("delta-documents", d["delta_documents"], _signed(d["delta_documents"]))
        + _cell("tokens-before", d["tokens_before"], number(d["tokens_before"]))
        + _cell("tokens-after", d["tokens_after"], number(d["tokens_after"]))
        + _cell("delta-tokens", d["delta_tokens"], _signed(d["delta_tokens"]))
        + _cell("share-before", d["share_before"], _pct(d["share_before"]))
        + _cell("share-after", d["share_after"], _pct(d["share_after"]))
        + _cell("delta-share", d["delta_share"], f"{d['delta_share'] * 100:+.2f} pt")
        + "</tr>"
        for d in domains
    ]
    headers = [
        "domain", "documents, base", "documents, this run", "difference", "tokens, base", "tokens, this run",
        "difference", "share, base", "share, this run", "difference",
    ]  # fmt: skip
    stages = section["stage_after"] or "–"
    if section["stage_before"] != section["stage_after"]:
        stages = f"{section['stage_before'] or '–'} → {stages}"
    total = (
        f"<p{_attr('tokens-before', section['tokens_before'])}{_attr('tokens-after', section['tokens_after'])}>"
        f"The mix wrote {esc(number(section['documents_after']))} documents and "
        f"{esc(number(section['tokens_after']))} tokens, against {esc(number(section['documents_before']))} "
        f"and {esc(number(section['tokens_before']))} in the base run "
        f"({esc(_signed(section['delta_documents']))} documents, {esc(_signed(section['delta_tokens']))} "
        "tokens).</p>"
    )
    if idle:
        total += (
            f"<p{_attr('idle-domains', idle)}>{idle:,} domain{'' if idle == 1 else 's'} of the mixture wrote "
            "nothing in either run (listed in report/mixture.json).</p>"
        )
    return (
        f"<h3>Change in the mixture against the base ({esc(stages)})</h3>"
        + total
        + chart
        + legend([("base run", BEFORE), ("this run", AFTER)])
        + _table(f"mixture-change{suffix}", headers, rows)
    )


def render_incremental(block: dict[str, Any]) -> str:
    """The page's section on the base run and what changed since it."""
    base = block["base"]
    where = f"<code>{esc(base['run_dir'] or '–')}</code>"
    if base["link"]:
        where += f' (<a id="base-report" href="{esc(base["link"])}">its report</a>)'
    elif base["run_dir"] and not base["exists"]:
        where += " (no longer exists)"
    parts = "–" if block["parts"] is None else f"{block['reused_parts']:,} of {block['parts']:,}"
    added, removed = block["added_files"]["count"], block["removed_files"]["count"]
    cards = [
        (_attr("files-added", added), number(added), "input files added"),
        (_attr("files-removed", removed), number(removed), "input files removed"),
        (_attr("taken-down", block["taken_down"]), number(block["taken_down"]), "documents taken down"),
        (
            _attr("reused-parts", block["reused_parts"]) + _attr("parts", block["parts"]),
            parts,
            "parts reused from the base",
        ),
    ]
    body = "".join(
        f'<div class="card"{attrs}><b>{esc(shown)}</b><span>{esc(label)}</span></div>'
        for attrs, shown, label in cards
    )
    notes = ""
    if block["notes"]:
        items = "".join(f"<li>{esc(n)}</li>" for n in block["notes"])
        notes = f'<div class="box note" id="incremental-notes"><ul>{items}</ul></div>'
    changes = "".join(
        _change(c, "" if i == 0 else f"-{i + 1}") for i, c in enumerate(block["mixture_change"])
    )
    return (
        '<section id="incremental-section"><h2>Built on a base run</h2>'
        f"<p>This run was built incrementally on the base run {where}: parts whose input files did not "
        "change were taken over from it, and the mix was planned again over everything.</p>"
        f'<div class="cards" id="incremental">{body}</div>'
        + notes
        + "<h3>Input files added</h3>"
        + _file_list("added-files", block["added_files"])
        + "<h3>Input files removed</h3>"
        + _file_list("removed-files", block["removed_files"])
        + changes
        + "</section>"
    )
