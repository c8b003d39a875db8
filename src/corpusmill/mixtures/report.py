"""The mixture report of a finished run: `report/mixture.json` for programs, `report/index.html` for people.

Everything comes from files the run already wrote (`stats.json`, `manifest.json`, `recipe.yaml`), never from
the documents, so a report of an 18T-token run costs as little as one of a toy run and can be rebuilt at any
time. The JSON is the single source of the numbers: the HTML page is rendered from it alone, so the two cannot
disagree. A run without a `mix` stage still gets the funnel and whatever breakdowns its stages counted, and a
note saying why there is no mixture section.

The funnel begins before the first stage, with the input that never became documents: records the readers
skipped, by reason (counted in `stats.json`), and the files that could not be read, by name (from the run's
`skipped/` table). Those are *skipped*, never documents *dropped*, so "what did we lose and why" has one
answer: a record ends in `documents/`, in `rejected/` with a stage's reason, or in `skipped/` with a reader's.
Records that are not documents by design (a WARC request, metadata or warcinfo record) are no loss at all:
they are counted apart, by record type, and the funnel's first bar starts at the records meant to be
documents, so a crawl's request records do not read as input lost.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from corpusmill.core import skips
from corpusmill.core.atomic import atomic_open, write_json
from corpusmill.core.location import RunPath, run_path
from corpusmill.mixtures.accounting import QUALITY_BINS, QUALITY_MAX
from corpusmill.pipelines.summary import (
    FILE_REASONS,
    NOT_DOCUMENT_PREFIX,
    StageSummary,
    not_documents,
    summarize,
)

if TYPE_CHECKING:
    from corpusmill.mixtures.report_samples import SampleLinks

logger = logging.getLogger(__name__)

REPORT_FORMAT = "corpusmill-mixture-report"
REPORT_VERSION = 2  # 2: the read row counts records that are not documents apart
TOLERANCE = (
    0.02  # achieved tokens within 2% of plan, or within the domain's largest document, count as on plan
)
_LABEL = re.compile(r"^(?:\d+-)?(?P<stage>.+?)(?:_v\d+)?$")
# Files that failed to read, listed by name in the report's JSON (all of them are in `skipped/`).
MAX_FAILED_FILES = 1000
# Bytes of skipped records per reason, as the runner counts them beside `reader.<reason>`.


def stage_name(label: str) -> str:
    """A stage's registered name from its run label or recipe entry (`02-mix_v1`, `mix_v1` -> `mix`), by kind."""
    match = _LABEL.match(label)
    return match["stage"] if match else label


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _prefixed(counters: dict[str, int], prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): int(v) for k, v in counters.items() if k.startswith(prefix)}


def _breakdown(entries: dict[str, dict[str, int]], basis: str) -> dict[str, Any]:
    docs = sum(e.get("documents", 0) for e in entries.values())
    tokens = sum(e.get("tokens", 0) for e in entries.values())
    rows = [
        {
            "name": name,
            "documents": int(e.get("documents", 0)),
            "tokens": None if "tokens" not in e else int(e["tokens"]),
            "document_share": _share(e.get("documents", 0), docs),
            "token_share": None if "tokens" not in e else _share(e["tokens"], tokens),
        }
        for name, e in entries.items()
    ]
    rows.sort(key=lambda r: (-(r["tokens"] or 0), -r["documents"], r["name"]))
    return {"basis": basis, "rows": rows}


def funnel(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per stage: documents in and out, drops by reason, and tokens where a stage counted them.

    The read row comes first: records read, those that are not documents by design (counted apart), then
    from the records meant to be documents, the documents they became and what was skipped by reason (not
    dropped: it never was a document).
    """
    summary = {row.label: row for row in summarize(stats).stages}
    plans = stats.get("plans", {})
    rows = []
    for stage in stats.get("stages", []):
        label = stage["label"]
        row = summary[label]
        tokens_in, tokens_out = _tokens(plans.get(label, {}), stage.get("counters", {}))
        rows.append({**_documents(row), "tokens_in": tokens_in, "tokens_out": tokens_out})
    rows.sort(key=lambda r: r["stage"] != "read")  # reading first, whatever its label
    return rows


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _read_documents(row: StageSummary) -> dict[str, Any]:
    """The read row: every record read, those that are not documents by record type, and of the records meant
    to be documents (`documents_in`), the documents they became and the rest skipped by reason.

    Nothing is dropped at reading: a record that did not become a document is skipped, with the reader's
    reason; a record that never was meant to be one (a WARC request record) is not even skipped.
    """
    others = not_documents(row.skipped)
    skipped = {r: n for r, n in row.skipped.items() if not r.startswith(NOT_DOCUMENT_PREFIX)}
    not_total = sum(others.values())
    return {
        "label": row.label,
        "stage": "read",
        "records_in": row.docs_in,
        "not_documents": _by_count(others),
        "not_documents_total": not_total,
        "documents_in": row.docs_in - not_total,
        "documents_out": row.docs_out,
        "skipped": _by_count(skipped),
        "skipped_records": row.skipped_records - not_total,
        "failed_files": row.failed_files,
        "dropped": {},
        "dropped_total": 0,
        "added": 0,
    }


def _documents(row: StageSummary) -> dict[str, Any]:
    """A funnel row's counts; for reading, `records_in` and skips by reason, with nothing dropped."""
    if row.reads_input:
        return _read_documents(row)
    dropped = _by_count(row.dropped)
    dropped_total = sum(dropped.values())
    return {
        "label": row.label,
        "stage": stage_name(row.label),
        "records_in": None,
        "not_documents": {},
        "not_documents_total": 0,
        "documents_in": row.docs_in,
        "documents_out": row.docs_out,
        "skipped": {},
        "skipped_records": 0,
        "failed_files": 0,
        "dropped": dropped,
        "dropped_total": dropped_total,
        # Documents a stage added (the mix stage's repeats): out = in - dropped + added.
        "added": max(0, row.docs_out - (row.docs_in - dropped_total)),
    }


def _tokens(plan: dict[str, Any], counters: dict[str, int]) -> tuple[int | None, int | None]:
    if "accounting" in plan:
        tokens_in = sum(d["tokens"] for d in plan["accounting"].get("domains", {}).values())
        return tokens_in, sum(_prefixed(counters, "tokens_out.").values())
    if "tokens" in counters:
        return None, int(counters["tokens"])
    if "shard_tokens" in counters:
        return int(counters["shard_tokens"]), int(counters["shard_tokens"])
    return None, None


def skipped_input(run_dir: RunPath, stats: dict[str, Any]) -> dict[str, Any]:
    """What reading lost, by reason (records or files, and bytes where known) and the files that failed, by name;
    and apart from it, the records that are not documents by design, by record type (nothing lost there).

    Counts come from the reader's counters, which every reader keeps; the names and messages of failed files
    come from `skipped/` (only its file-level rows are read, so the report stays cheap however many records
    were skipped).
    """
    read = summarize(stats).read
    counters = {s["label"]: s.get("counters", {}) for s in stats.get("stages", [])}
    skipped = read.skipped if read is not None else {}
    nbytes = _prefixed(counters[read.label], skips.SKIPPED_BYTES_COUNTER) if read is not None else {}
    lost = {r: n for r, n in skipped.items() if not r.startswith(NOT_DOCUMENT_PREFIX)}
    reasons = [
        {
            "reason": reason,
            "unit": "files" if reason in FILE_REASONS else "records",
            "count": n,
            "bytes": nbytes.get(reason),
        }
        for reason, n in _by_count(lost).items()
    ]
    others = [
        {"record_type": kind, "count": n, "bytes": nbytes.get(NOT_DOCUMENT_PREFIX + kind)}
        for kind, n in _by_count(not_documents(skipped)).items()
    ]
    failed = _failed_files(run_dir / "skipped")
    return {
        "records": sum(r["count"] for r in reasons if r["unit"] == "records"),
        "files_failed": read.failed_files if read is not None else 0,
        "reasons": reasons,
        "not_documents": others,
        "not_documents_total": sum(o["count"] for o in others),
        "failed_files": failed[:MAX_FAILED_FILES],
        "failed_files_listed": len(failed),
    }


def _failed_files(directory: RunPath) -> list[dict[str, str | None]]:
    """The files a run's `skipped/` table lists as failed to read, by name (an HTML page skipped whole is a
    record, not a failure)."""
    if not directory.is_dir() or not any(directory.glob("*.parquet")):
        return []
    import pyarrow.dataset as ds

    if isinstance(directory, Path):
        dataset = ds.dataset(directory, format="parquet", schema=skips.SKIP_SCHEMA)
    else:  # on object storage: pyarrow reads through the run's own fsspec filesystem
        dataset = ds.dataset(
            directory.path, filesystem=directory.fs, format="parquet", schema=skips.SKIP_SCHEMA
        )
    failed = (ds.field(skips.UNIT) == "file") & ds.field(skips.REASON).isin(sorted(FILE_REASONS))
    table = dataset.to_table(columns=[skips.FILE, skips.REASON, skips.DETAIL], filter=failed)
    rows = table.to_pylist()
    return sorted(rows, key=lambda r: (r[skips.FILE], r[skips.REASON], r[skips.DETAIL] or ""))


def _quality(entry: dict[str, Any]) -> dict[str, Any]:
    documents = list(entry.get("quality_documents", [0] * QUALITY_BINS))
    return {
        "bin_width": QUALITY_MAX / QUALITY_BINS,
        "low": 0.0,
        "high": QUALITY_MAX,
        "documents": documents,
        "tokens": list(entry.get("quality_tokens", [0] * QUALITY_BINS)),
        "scored_documents": sum(documents),
        "unscored_documents": int(entry.get("unscored_documents", 0)),
    }


def sampling_factor(tokens_before: int, achieved: int, rate: float) -> tuple[float | None, str | None]:
    """How much mixing scaled a domain, and from what: achieved tokens over the tokens before mixing, or the
    plan's rate where nothing was achieved (a domain left out shows x0); none for a domain that had nothing."""
    if tokens_before <= 0:
        return None, None
    if achieved > 0:
        return achieved / tokens_before, "achieved"
    return rate, "plan"


def mixture_section(label: str, plan: dict[str, Any], counters: dict[str, int]) -> dict[str, Any]:
    """Planned against achieved per domain for one `mix` stage, with shares before and after mixing."""
    mixture = plan.get("mixture", {})
    accounting = plan.get("accounting", {}).get("domains", {})
    achieved_docs = _prefixed(counters, "documents_out.")
    achieved_tokens = _prefixed(counters, "tokens_out.")
    planned = {d["domain"]: d for d in mixture.get("domains", [])}
    names = list(planned) + sorted(
        (set(accounting) | set(achieved_tokens) | set(achieved_docs)) - set(planned)
    )
    total_before = sum(accounting.get(d, {}).get("tokens", 0) for d in names)
    total_planned = sum(planned.get(d, {}).get("expected_tokens", 0.0) for d in names)
    total_after = sum(achieved_tokens.get(d, 0) for d in names)
    domains = []
    for name in names:
        found, row = accounting.get(name, {}), planned.get(name, {})
        planned_tokens = float(row.get("expected_tokens", 0.0))
        achieved = achieved_tokens.get(name, 0)
        ratio = achieved / planned_tokens if planned_tokens > 0 else None
        # Sampling lands within one document of plan: a small domain may be more than 2% off and still exact.
        slack = max(TOLERANCE * planned_tokens, float(found.get("max_document_tokens", 0)))
        on_plan = abs(achieved - planned_tokens) <= slack if ratio is not None else achieved == 0
        rate = float(plan.get("rates", {}).get(name, row.get("rate", 0.0)))
        factor, factor_basis = sampling_factor(int(found.get("tokens", 0)), achieved, rate)
        domains.append(
            {
                "domain": name,
                "documents_before": int(found.get("documents", 0)),
                "tokens_before": int(found.get("tokens", 0)),
                "bytes_before": int(found.get("bytes", 0)),
                "eligible_documents": int(found.get("eligible_documents", row.get("eligible_documents", 0))),
                "eligible_tokens": int(found.get("eligible_tokens", row.get("eligible_tokens", 0))),
                "requested": row.get("requested"),
                "rate": rate,
                "capped": bool(row.get("capped", False)),
                "planned_tokens": planned_tokens,
                "planned_documents": float(row.get("expected_documents", 0.0)),
                "achieved_tokens": achieved,
                "achieved_documents": achieved_docs.get(name, 0),
                "ratio": ratio,
                "factor": factor,
                "factor_basis": factor_basis,
                "on_plan": on_plan,
                "share_before": _share(found.get("tokens", 0), total_before),
                "share_planned": _share(planned_tokens, total_planned),
                "share_after": _share(achieved, total_after),
                "quality": _quality(found),
            }
        )
    return {
        "stage": label,
        "mode": mixture.get("mode"),
        "budget": mixture.get("budget"),
        "max_epochs": mixture.get("max_epochs"),
        "seed": plan.get("seed"),
        "tolerance": TOLERANCE,
        "tokens_before": total_before,
        "planned_tokens": float(mixture.get("expected_tokens", total_planned)),
        "achieved_tokens": total_after,
        "achieved_documents": sum(achieved_docs.values()),
        "repeated_copies": int(counters.get("repeated_copies", 0)),
        "dropped": _prefixed(counters, "dropped."),
        "domains": domains,
    }


def _quality_stage(stats: dict[str, Any]) -> dict[str, Any] | None:
    for stage in stats.get("stages", []):
        if stage_name(stage["label"]) != "quality":
            continue
        counters = stage.get("counters", {})
        rounded = {int(k): v for k, v in _prefixed(counters, "quality.rounded.").items() if k.isdigit()}
        moments = stage.get("moments", {}).get("quality.score", {})
        return {
            "stage": stage["label"],
            "scored": int(counters.get("quality.scored", 0)),
            "empty": int(counters.get("quality.empty", 0)),
            "mean": moments.get("mean"),
            "std": moments.get("std"),
            "rounded": {str(k): rounded.get(k, 0) for k in range(int(QUALITY_MAX) + 1)},
        }
    return None


def _languages_from_counters(stats: dict[str, Any]) -> dict[str, Any] | None:
    for stage in stats.get("stages", []):
        langs = _prefixed(stage.get("counters", {}), "langid.lang.")
        if langs:
            entries = {lang: {"documents": n} for lang, n in langs.items()}
            return _breakdown(
                entries, f"documents by detected language at {stage['label']}, before its filter"
            )
    return None


def _read_json(path: RunPath) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _run_info(run_dir: RunPath, stats: dict[str, Any]) -> dict[str, Any]:
    manifest = _read_json(run_dir / "manifest.json")
    description = None
    try:
        recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8")) or {}
        description = recipe.get("description") or None
    except (FileNotFoundError, yaml.YAMLError, AttributeError):
        logger.info("%s: no readable recipe.yaml; the report shows no description", run_dir)
    return {
        "run_dir": str(run_dir),
        "recipe": stats.get("recipe"),
        "description": description,
        "fingerprint": stats.get("fingerprint"),
        "engine": stats.get("engine"),
        "documents_out": int(stats.get("documents_out", 0)),
        "tokens_written": int(stats.get("tokens_written", 0)),
        "shards": sum(len(s.get("shards", [])) for s in stats.get("sinks", {}).values()),
        "started_at": manifest.get("started_at"),
        "finished_at": manifest.get("finished_at"),
        "corpusmill_version": manifest.get("corpusmill_version"),
    }


def mixtures_of(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The mixture section of every `mix` stage of a run, in label order."""
    counters = {s["label"]: s.get("counters", {}) for s in stats.get("stages", [])}
    plans = stats.get("plans", {})
    mixes = [label for label in sorted(plans) if "mixture" in plans[label]]
    return [mixture_section(label, plans[label], counters.get(label, {})) for label in mixes]


def report_data(run_dir: RunPath, stats: dict[str, Any]) -> dict[str, Any]:
    """Every number of the report, from a run's stats (and its manifest and recipe for the header).

    A run built on a base (`stats.json` has an `incremental` section) also gets `incremental`: the base run,
    the input files added and removed, documents taken down, parts reused, and the change in the mixture
    against the base. A full run's report has no such key.
    """
    plans = stats.get("plans", {})
    mixtures = mixtures_of(stats)
    warnings: list[dict[str, str | None]] = []
    notes: list[str] = []
    for section in mixtures:
        for message in plans[section["stage"]]["mixture"].get("warnings", []):
            warnings.append({"stage": section["stage"], "kind": "plan", "message": message})
        for d in section["domains"]:
            if not d["on_plan"]:
                off = "no tokens were planned" if d["ratio"] is None else f"{d['ratio']:.2%} of plan"
                warnings.append(
                    {
                        "stage": section["stage"],
                        "kind": "achieved",
                        "message": f"{d['domain']}: achieved {d['achieved_tokens']:,} tokens against "
                        f"{d['planned_tokens']:,.0f} planned ({off}; tolerance {TOLERANCE:.0%} or one document)",
                    }
                )
    if mixtures:
        first = plans[mixtures[0]["stage"]].get("accounting", {})
        basis = f"entering {mixtures[0]['stage']}, before mixing"
        languages = _breakdown(first.get("langs", {}), basis) if first.get("langs") else None
        sources = _breakdown(first.get("sources", {}), basis) if first.get("sources") else None
    else:
        notes.append(
            "This run has no `mix` stage, so there is no mixture section: add a `mix` stage to the recipe "
            "to plan and check domain shares."
        )
        languages, sources = _languages_from_counters(stats), None
        notes.append("Sources are counted by the `mix` stage only, so this report has no source breakdown.")
    if languages is None:
        notes.append("No stage counted languages in this run.")
    data = {
        "format": REPORT_FORMAT,
        "format_version": REPORT_VERSION,
        "run": _run_info(run_dir, stats),
        "skipped": skipped_input(run_dir, stats),
        "funnel": funnel(stats),
        "mixtures": mixtures,
        "languages": languages,
        "sources": sources,
        "quality_scores": _quality_stage(stats),
        "warnings": warnings,
        "notes": notes,
    }
    if stats.get("incremental"):
        from corpusmill.mixtures.report_incremental import incremental_section

        data["incremental"], base_warnings = incremental_section(run_dir, stats["incremental"], mixtures)
        warnings.extend(base_warnings)
    return data


def _samples(
    run_dir: RunPath, out: RunPath, data: dict[str, Any], stats: dict[str, Any]
) -> SampleLinks | None:
    """Write the sample pages (`report/samples.json`, `samples/`, `documents/`) of a run that has documents or
    rejected rows, and return the index page's links to them; None, and a logged error, if that fails: samples
    are a reading aid, and a report is never lost for them."""
    if not ((run_dir / "documents").is_dir() or (run_dir / "rejected").is_dir()):
        return None
    from corpusmill.mixtures.report_samples import write_samples

    try:
        return write_samples(run_dir, out, data, stats)
    except Exception:
        logger.exception("%s: could not write the report's sample pages; the report has none", run_dir)
        return None


def build_report(run_dir: str | Path) -> RunPath:
    """Write `report/mixture.json` and `report/index.html` for a finished run; returns the report directory.

    A run with documents also gets `report/samples.json` and pages of sample documents per domain, quality
    bucket and drop reason, which the index page links to (`report_samples.py`).

    The run may be a local directory or a copy on object storage (`s3://bucket/runs/x`): its files are read
    where they are and the report is written back there, each object in one put, since a store has no rename.
    """
    from corpusmill.mixtures.report_html import render_html

    run_dir = run_path(run_dir)
    stats_path = run_dir / "stats.json"
    if not stats_path.is_file():
        raise FileNotFoundError(
            f"{stats_path} does not exist: the report is built from a finished run; run the recipe to the end first"
        )
    try:
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{stats_path} is not valid JSON ({exc}); rerun the recipe to rewrite it") from exc
    data = report_data(run_dir, stats)
    out = run_dir / "report"
    write_json(out / "mixture.json", data)  # on object storage: each put as a whole object
    links = _samples(run_dir, out, data, stats)
    with atomic_open(out / "index.html", "w", encoding="utf-8") as handle:
        handle.write(render_html(data, links))
    logger.info("wrote the report of %s to %s", run_dir, out)
    return out
