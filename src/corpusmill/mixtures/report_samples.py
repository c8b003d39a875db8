"""`report/samples.json` and its pages: the sampled documents of every cell, beside the report's numbers.

`samples.py` chooses the documents; this module puts each cell next to the numbers `mixture.json` has for it
(a domain's tokens before mixing, planned and achieved; the documents of a quality bucket entering the mix; a
stage's drops for a reason), names its page, and writes everything: `samples.json` for programs, one page per
cell under `report/samples/`, one per sampled document under `report/documents/`. Page names are safe slugs
of the cell key (a short hash is added whenever the slug is not the key itself), so any domain or reason from
crawled data makes a plain file name. `SampleLinks` is what the index page needs to link its charts and tables
to those pages.

The layout (relative links only, so the same files work opened from disk and served under
`/runs/{id}/report/`):

    report/samples.json
    report/samples/index.html                       every cell, with its count and page
    report/samples/domain-<key>.html                (language-<key>.html where the run has no domain)
    report/samples/quality-<low>-<high>.html
    report/samples/drop-<stage>-<reason>.html
    report/documents/<16 hex digits>.html           one sampled document, all its fields and its text
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from corpusmill.core.atomic import write_json
from corpusmill.core.location import RunPath
from corpusmill.mixtures.report_documents import MAX_TEXT_CHARS, full_document, summary
from corpusmill.mixtures.samples import (
    DOMAIN_KIND,
    DROP_KIND,
    LANGUAGE_KIND,
    QUALITY_BUCKETS,
    QUALITY_KIND,
    Cell,
    SampleSet,
    drop_key,
    sample_run,
    split_drop_key,
)

SAMPLES_FORMAT = "corpusmill-report-samples"
SAMPLES_VERSION = 1
SAMPLES_DIR, DOCUMENTS_DIR = "samples", "documents"
OVERVIEW = f"{SAMPLES_DIR}/index.html"
MAX_CELLS = 200  # per kind: a free-text domain column could hold thousands of values
MAX_SLUG = 48
_UNSAFE = re.compile(r"[^a-z0-9_-]+")
DOMAIN_NUMBERS = (
    "documents_before", "tokens_before", "eligible_documents", "eligible_tokens", "rate", "factor",
    "planned_documents", "planned_tokens", "achieved_documents", "achieved_tokens", "share_before",
    "share_planned", "share_after",
)  # fmt: skip


def slug(text: str) -> str:
    """A file-name-safe form of `text`: lower-case letters, digits, `-` and `_`, with a short hash of `text`
    whenever that is not `text` itself (so `News`, `news` and `ne/ws` never share a page)."""
    base = _UNSAFE.sub("-", text.lower()).strip("-")[:MAX_SLUG]
    if base == text and base:
        return base
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=4).hexdigest()
    return f"{base}-{digest}" if base else digest


def _page(name: str, key: str, used: set[str]) -> str:
    """`samples/<name>.html`, made unique with a hash of the key should two keys slug alike."""
    if name in used:
        name = f"{name}-{hashlib.blake2b(key.encode('utf-8'), digest_size=4).hexdigest()}"
    used.add(name)
    return f"{SAMPLES_DIR}/{name}.html"


@dataclass(frozen=True)
class SampleLinks:
    """Where the index page links: the sample page of each domain (or language), bucket and drop reason."""

    overview: str
    kind: str
    groups: dict[str, str]
    quality: dict[int, str]
    drops: dict[tuple[str, str], str]
    notes: tuple[str, ...]

    @classmethod
    def from_samples(cls, samples: dict[str, Any]) -> SampleLinks:
        """The links of a `samples.json`."""
        groups, quality, drops = {}, {}, {}
        for cell in samples["cells"]:
            if cell["kind"] in (DOMAIN_KIND, LANGUAGE_KIND):
                groups[cell["key"]] = cell["page"]
            elif cell["kind"] == QUALITY_KIND:
                quality[int(cell["low"])] = cell["page"]
            else:
                drops[(cell["stage"], cell["reason"])] = cell["page"]
        return cls(
            overview=samples["pages"]["overview"],
            kind=samples["grouping"]["kind"],
            groups=groups,
            quality=quality,
            drops=drops,
            notes=tuple(samples["notes"]),
        )

    def drop_reasons(self) -> dict[str, str]:
        """The page of each drop reason (of its first stage where several stages drop for it)."""
        out: dict[str, str] = {}
        for (_, reason), page in self.drops.items():
            out.setdefault(reason, page)
        return out


# --- cells and their numbers -------------------------------------------------------------------------------


def _group_numbers(data: dict[str, Any], kind: str) -> tuple[dict[str, dict[str, Any]], str | None]:
    """mixture.json's numbers per domain (first mix stage) or per language, and what they count."""
    if kind == DOMAIN_KIND and data["mixtures"]:
        mix = data["mixtures"][0]
        rows = {d["domain"]: {k: d[k] for k in DOMAIN_NUMBERS if k in d} for d in mix["domains"]}
        return rows, f"the mixture of {mix['stage']} (report/mixture.json)"
    if kind == LANGUAGE_KIND and data.get("languages"):
        block = data["languages"]
        rows = {r["name"]: {"documents": r["documents"], "tokens": r["tokens"]} for r in block["rows"]}
        return rows, f"documents by language {block['basis']} (report/mixture.json)"
    return {}, None


def _quality_numbers(data: dict[str, Any], bucket: int) -> dict[str, Any]:
    """Documents and tokens entering the first mix stage with a score in the bucket, summed over domains from
    mixture.json's 0.25 bins."""
    if not data["mixtures"]:
        return {}
    documents = tokens = 0
    for domain in data["mixtures"][0]["domains"]:
        q = domain["quality"]
        per = len(q["documents"]) // QUALITY_BUCKETS
        documents += sum(q["documents"][bucket * per : (bucket + 1) * per])
        tokens += sum(q["tokens"][bucket * per : (bucket + 1) * per])
    return {"documents": documents, "tokens": tokens}


def _drop_numbers(data: dict[str, Any], stage: str, reason: str) -> dict[str, Any]:
    for row in data["funnel"]:
        if row["label"] == stage:
            return {
                "dropped": row["dropped"].get(reason, 0),
                "stage_documents_in": row["documents_in"],
                "stage_dropped": row["dropped_total"],
            }
    return {}


def _ordered_groups(sample: SampleSet, data: dict[str, Any], found: dict[tuple[str, str], Cell]) -> list[str]:
    kind = sample.grouping.kind
    first = (
        [d["domain"] for d in data["mixtures"][0]["domains"]]
        if kind == DOMAIN_KIND and data["mixtures"]
        else []
    )
    rest = sorted(
        (c for (k, key), c in found.items() if k == kind and key not in first), key=lambda c: (-c.rows, c.key)
    )
    return first + [c.key for c in rest]


def _ordered_drops(sample: SampleSet, data: dict[str, Any], found: dict[tuple[str, str], Cell]) -> list[str]:
    if not sample.has_rejected:
        return []
    counted = [
        drop_key(row["label"], reason)
        for row in data["funnel"]
        for reason in row["dropped"]  # largest first, as the funnel lists them
    ]
    known = set(counted)
    rest = sorted(
        (c for (k, key), c in found.items() if k == DROP_KIND and key not in known),
        key=lambda c: (c.key.partition("/")[0], -c.rows, c.key),
    )
    return counted + [c.key for c in rest]


def _sources_for(kind: str, key: str, sample: SampleSet) -> set[str]:
    """The sources a cell's rows could come from (to say whether an empty cell was fully looked for)."""
    if kind in (DOMAIN_KIND, LANGUAGE_KIND):
        return {"documents"}
    if kind == QUALITY_KIND:
        return {"documents", *(f"rejected/{label}" for label in sample.grouping.mix_labels)}
    return {f"rejected/{split_drop_key(key)[0]}"}


def _title(kind: str, key: str) -> str:
    if kind == QUALITY_KIND:
        return f"Quality {key}–{int(key) + 1}"
    if kind == DROP_KIND:
        stage, reason = split_drop_key(key)
        return f"Dropped by {stage}: {reason}"
    return f"{kind.capitalize()} {key}"


def _cell_json(
    kind: str, key: str, cell: Cell | None, sample: SampleSet, numbers: dict[str, Any], used: set[str]
) -> dict[str, Any]:
    if kind == QUALITY_KIND:
        name = f"quality-{key}-{int(key) + 1}"
    elif kind == DROP_KIND:
        stage, reason = split_drop_key(key)
        name = f"drop-{slug(stage)}-{slug(reason)}"
    else:
        name = f"{kind}-{slug(key)}"
    sources = _sources_for(kind, key, sample)
    scanned = {
        "documents": 0 if cell is None else cell.rows,
        "complete": all(s.whole for s in sample.scans if s.source in sources),
        **({} if cell is None else dict(sorted(cell.counts.items()))),
    }
    out: dict[str, Any] = {
        "kind": kind,
        "key": key,
        "title": _title(kind, key),
        "page": _page(name, key, used),
    }
    if kind == QUALITY_KIND:
        out.update(low=int(key), high=int(key) + 1)
    elif kind == DROP_KIND:
        out.update(stage=split_drop_key(key)[0], reason=split_drop_key(key)[1])
    chosen = [] if cell is None else [w for w in cell.chosen() if w in sample.documents]
    return {
        **out,
        "numbers": numbers,
        "scanned": scanned,
        "documents": [summary(sample.documents[w]) for w in chosen],
    }


def _capped(keys: list[str], kind: str, notes: list[str]) -> list[str]:
    if len(keys) > MAX_CELLS:
        notes.append(f"{len(keys):,} {kind} cells; sample pages are written for the first {MAX_CELLS:,}.")
    return keys[:MAX_CELLS]


def _notes(sample: SampleSet, quality: bool) -> list[str]:
    notes = []
    if not sample.has_rejected:
        notes.append(
            "This run kept no rejected rows (output.keep_rejected is off, or nothing was dropped), so there "
            "are no samples of dropped documents."
        )
    if not quality:
        notes.append(
            f"No document has a {sample.grouping.quality_column} score, so there are no quality samples."
        )
    for scan in sample.scans:
        if not scan.complete:
            notes.append(
                f"The scan of {scan.source} stopped after {scan.rows_read:,} rows ({scan.files_read:,} of "
                f"{scan.files:,} files, in file-name order): its cells count and sample those rows only."
            )
    for damaged in sample.damaged:
        notes.append(f"{damaged['file']} could not be read and was skipped ({damaged['error']}).")
    return notes


def samples_data(data: dict[str, Any], sample: SampleSet) -> dict[str, Any]:
    """The content of `samples.json` for a run's sample, beside its report data (`mixture.json`)."""
    found = {(c.kind, c.key): c for c in sample.cells}
    kind = sample.grouping.kind
    numbers, basis = _group_numbers(data, kind)
    notes: list[str] = []
    quality = any(k == QUALITY_KIND for k, _ in found) or any(
        d["quality"]["scored_documents"] for m in data["mixtures"][:1] for d in m["domains"]
    )
    plan: list[tuple[str, str, dict[str, Any]]] = [
        (kind, key, numbers.get(key, {}))
        for key in _capped(_ordered_groups(sample, data, found), kind, notes)
    ]
    if quality:
        plan += [(QUALITY_KIND, str(b), _quality_numbers(data, b)) for b in range(QUALITY_BUCKETS)]
    plan += [
        (DROP_KIND, key, _drop_numbers(data, *split_drop_key(key)))
        for key in _capped(_ordered_drops(sample, data, found), DROP_KIND, notes)
    ]
    used: set[str] = set()
    cells = [_cell_json(k, key, found.get((k, key)), sample, n, used) for k, key, n in plan]
    g = sample.grouping
    return {
        "format": SAMPLES_FORMAT,
        "format_version": SAMPLES_VERSION,
        "seed": g.seed,
        "per_cell": sample.per_cell,
        "max_scan_rows": sample.max_rows,
        "max_text_chars": MAX_TEXT_CHARS,
        "selection": "the per_cell smallest hash64(seed, id) of each cell (up-sampled copies counted once)",
        "grouping": {
            "kind": kind,
            "column": g.column,
            "unlabelled": g.unlabelled,
            "numbers": basis,
            "quality_column": g.quality_column,
            "mix_stages": list(g.mix_labels),
        },
        "has_rejected": sample.has_rejected,
        "scans": [s.to_dict() for s in sample.scans],
        "damaged": sample.damaged,
        "notes": _capped_notes(_notes(sample, quality) + notes),
        "pages": {"overview": OVERVIEW, "report": "index.html"},
        "cells": cells,
    }


def _capped_notes(notes: list[str], limit: int = 50) -> list[str]:
    return notes if len(notes) <= limit else [*notes[:limit], f"{len(notes) - limit:,} more notes."]


def document_pages(samples: dict[str, Any], sample: SampleSet) -> dict[str, dict[str, Any]]:
    """Every sampled document in full, by its page path, with the cells it was sampled in."""
    by_page: dict[str, dict[str, Any]] = {}
    records = {summary(r)["page"]: r for r in sample.documents.values()}
    for cell in samples["cells"]:
        for doc in cell["documents"]:
            entry = by_page.get(doc["page"])
            if entry is None:
                entry = by_page[doc["page"]] = {**full_document(records[doc["page"]]), "cells": []}
            entry["cells"].append({"title": cell["title"], "page": cell["page"]})
    return by_page


def write_samples(run_dir: RunPath, out: RunPath, data: dict[str, Any], stats: dict[str, Any]) -> SampleLinks:
    """Sample the run, write `samples.json` and every page under `out` (the report folder), and return the
    index page's links. Pages of an earlier build that are no longer sampled are removed."""
    from corpusmill.mixtures.report_files import write_tree
    from corpusmill.mixtures.report_samples_html import render_cell, render_document, render_overview

    sample = sample_run(run_dir, stats)
    samples = samples_data(data, sample)
    files = {cell["page"]: render_cell(cell, samples) for cell in samples["cells"]}
    files[OVERVIEW] = render_overview(samples)
    files.update((page, render_document(doc)) for page, doc in document_pages(samples, sample).items())
    write_json(out / "samples.json", samples)
    write_tree(out, files, prune=(SAMPLES_DIR, DOCUMENTS_DIR))
    return SampleLinks.from_samples(samples)
