"""What the pre-extraction filters save, and what they lose, on a crawl-like mix of real pages.

    python -m bench.prefilter [--wcxb N] [--batch-size B] [--repeats R] [--no-datatrove] [--json PATH]

A real crawl is mostly pages an English recipe throws away after paying for their extraction. The input here
mixes the real pages at hand into WARC files read by the project's own reader: the 239 multilingual pages
(English, German, Latin placeholder text, French, Chinese, ...), `--wcxb` WCXB pages (English-ish, taken in
id order) and the Common Crawl records of the shared WARC samples (read as they are). The same documents then
go through three recipes, each stage called in this process on the same batches:

- (a) `extract` + `langid` (`languages: [en]`): the baseline;
- (b) `lang_prefilter` + `extract` + `langid`;
- (c) `url_filter` + `lang_prefilter` + `extract` + `langid`.

Per recipe it prints the documents kept, the CPU seconds of the stage calls (this process and its live
children, so the extraction sandbox counts: `corpusmill.core.cpu_time`), set-up CPU apart, CPU per kept
document, the share of (a)'s extraction CPU saved, and recall: of the documents (a) keeps, the share the
recipe keeps too (goal: at least 0.995); the documents lost are listed, and how the pre-filter judged the
pages (kept on the whole page's text, classified again on the main content, ...). When datatrove is
importable, its own Trafilatura extractor and LanguageFilter (English, FineWeb's threshold 0.65, the same
lid.176 file) run on the same documents as a further row, with the share of its kept documents that (b)
keeps. A last line projects the saving onto crawls with more pages to drop: since a page the pre-filter drops
costs it more than one it keeps (its main content is classified too), further runs of the pre-filter alone,
on the pages it drops and on the others, measure the difference.

`--sweep` also prints, for the pre-filter's candidate settings, how many documents each would drop, how
many of (a)'s it would lose and how many pages needed their main content classified: the measurement the
stage's defaults were chosen from.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bench import REPO
from bench.warc_writer import WarcFileWriter
from corpusmill.core import schema
from corpusmill.core.cpu_time import tree_cpu_seconds
from corpusmill.core.stage import MapStage
from corpusmill.core.stats import Stats
from corpusmill.io.decoding import decode_html
from corpusmill.io.warc import read_warc

SHARED = REPO.parent / "shared" / "data"
LANGUAGES = ["en"]
RECALL_GOAL = 0.995
DATATROVE_THRESHOLD = 0.65  # FineWeb's LanguageFilter setting

_CANONICAL = re.compile(rb"""<link\b[^>]*\brel=["']?canonical["']?[^>]*>""", re.I)
_OG_URL = re.compile(rb"""<meta\b[^>]*\bproperty=["']og:url["'][^>]*>""", re.I)
_ATTR_URL = re.compile(rb"""\b(?:href|content)=["'](https?://[^"'\s<>]+)["']""", re.I)


@dataclass(frozen=True)
class Page:
    """One page of the mix: where it comes from, its URL and its HTML."""

    key: str
    origin: str  # multilingual, wcxb
    url: str
    html: bytes


def page_url(html: bytes, fallback: str) -> str:
    """The page's own absolute URL (canonical link or og:url) when it states one, else `fallback`."""
    for pattern in (_CANONICAL, _OG_URL):
        tag = pattern.search(html)
        if tag is not None:
            found = _ATTR_URL.search(tag.group(0))
            if found is not None:
                return found.group(1).decode("ascii", "replace")
    return fallback


def _as_utf8(raw: bytes) -> bytes:
    # The WARC writer declares UTF-8: pages in other charsets are decoded as the reader would, then re-encoded.
    return decode_html(raw).utf8


def multilingual_pages(data: Path = SHARED) -> list[Page]:
    """The 239 multilingual test pages, in name order."""
    folder = data / "multilingual" / "html"
    pages = []
    for path in sorted(folder.glob("*.html.gz")):
        key = path.name.removesuffix(".html.gz")
        html = _as_utf8(gzip.decompress(path.read_bytes()))
        url = page_url(html, f"https://multilingual.example.invalid/{key}")
        pages.append(Page(key, "multilingual", url, html))
    return pages


def wcxb_pages(count: int, data: Path = SHARED) -> list[Page]:
    """The first `count` WCXB pages in id order, with the URL their ground truth names."""
    folder = data / "wcxb-dev"
    pages = []
    for path in sorted((folder / "html").glob("*.html.gz"))[:count]:
        key = path.name.removesuffix(".html.gz")
        truth_path = folder / "ground-truth" / f"{key}.json"
        truth = json.loads(truth_path.read_text(encoding="utf-8")) if truth_path.exists() else {}
        url = truth.get("url") or f"https://wcxb.example.invalid/{key}"
        pages.append(Page(key, "wcxb", url, _as_utf8(gzip.decompress(path.read_bytes()))))
    return pages


def write_warc(pages: Iterable[Page], path: Path) -> None:
    """The pages as one gzipped WARC file, record ids named after the pages."""
    with path.open("wb") as handle:
        writer = WarcFileWriter(handle, path.name, f"urn:prefilter:{path.stem}:info")
        for page in pages:
            writer.add(f"urn:prefilter:{page.origin}:{page.key}", page.url, page.html)


def crawl_files(
    work: Path, wcxb: int, data: Path = SHARED, multilingual_every: int = 1, commoncrawl: bool = True
) -> list[Path]:
    """The mix's WARC files: the multilingual and WCXB pages written into `work`, the Common Crawl samples.

    `multilingual_every` > 1 takes every Nth multilingual page (a smaller mix that still has every source).
    """
    multilingual = work / "multilingual.warc.gz"
    write_warc(multilingual_pages(data)[::multilingual_every], multilingual)
    files = [multilingual]
    if wcxb > 0:
        files.append(work / "wcxb.warc.gz")
        write_warc(wcxb_pages(wcxb, data), files[-1])
    if commoncrawl:
        files.extend(sorted((data / "warc").glob("*.warc.gz")))
    return files


def read_crawl(files: list[Path], batch_size: int) -> list[pa.RecordBatch]:
    """Every HTML document of the files, as the project's WARC reader gives them."""
    stats = Stats()
    return [
        batch
        for path in files
        for batch in read_warc(str(path), batch_size=batch_size, stats=stats, name=path.name)
    ]


def origin_of(doc_id: str, source_id: str | None, url: str | None) -> str:
    """`multilingual:<page>`, `wcxb:<page>` or `commoncrawl:<file:offset> (<url>)`: unique, and readable in lists.

    The Common Crawl samples hold the same URL more than once, so their records are named by place, not URL.
    """
    if source_id and source_id.startswith("urn:prefilter:"):
        return source_id.removeprefix("urn:prefilter:")
    return f"commoncrawl:{doc_id} ({url})"


def keys_of(batch: pa.RecordBatch) -> list[str]:
    """`origin_of` every row of a batch."""
    return [
        origin_of(doc_id, source_id, url)
        for doc_id, source_id, url in zip(
            _col(batch, schema.ID), _col(batch, "source_id"), _col(batch, schema.URL), strict=True
        )
    ]


def cpu_seconds() -> float:
    """CPU of this process, its live children (the extraction sandbox) and the children it has reaped.

    datatrove's extractor ends its worker process when its run ends; once reaped, that CPU shows only in
    `os.times()`'s children fields, so both are added (a child is counted live or reaped, never both).
    """
    times = os.times()
    return tree_cpu_seconds() + times.children_user + times.children_system


@dataclass
class Outcome:
    """One recipe over the crawl: what it kept, what each stage cost, why documents were dropped."""

    name: str
    stages: list[str]
    kept: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    stage_cpu: dict[str, float] = field(default_factory=dict)
    setup_cpu: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # document -> drop reason
    page_cpu: dict[str, float] = field(default_factory=dict)  # document -> CPU of the per-document stages
    documents: int = 0
    extracted: int = 0  # documents that reached the extractor
    wall_s: float = 0.0
    prefilter_routes: dict[str, int] = field(default_factory=dict)  # lang_prefilter's counts of each route

    @property
    def cpu(self) -> float:
        """CPU seconds of the stage calls, set-up not included."""
        return sum(self.stage_cpu.values())

    def to_json(self) -> dict[str, Any]:
        """The figures, for `--json`."""
        return {
            "stages": self.stages,
            "documents": self.documents,
            "kept": len(self.kept),
            "extracted": self.extracted,
            "reasons": self.reasons,
            "stage_cpu_s": {name: round(value, 3) for name, value in self.stage_cpu.items()},
            "setup_cpu_s": {name: round(value, 3) for name, value in self.setup_cpu.items()},
            "cpu_s": round(self.cpu, 3),
            "wall_s": round(self.wall_s, 3),
            "prefilter_routes": self.prefilter_routes,
        }


def run_stages(
    name: str,
    stages: list[MapStage],
    batches: list[pa.RecordBatch],
    per_document: frozenset[str] = frozenset(),
) -> Outcome:
    """Every batch through the stages in order, in this process, timing set-up and each stage's calls.

    Stages named in `per_document` are called one document at a time, so that what each document cost them
    is known (`Outcome.page_cpu`): what a pre-filter saves is then the cost of the very pages it dropped,
    which the difference of two runs' totals only shows through the noise of a shared machine.
    """
    outcome = Outcome(name, [stage.name for stage in stages])
    started = time.monotonic()
    for stage in stages:
        before = cpu_seconds()
        stage.setup()
        outcome.setup_cpu[stage.name] = cpu_seconds() - before
        outcome.stage_cpu[stage.name] = 0.0
    reasons: dict[str, int] = {}
    try:
        for batch in batches:
            outcome.documents += batch.num_rows
            for stage in stages:
                if stage.name == "extract":
                    outcome.extracted += _undropped(batch)
                if stage.name in per_document:
                    batch = _one_at_a_time(stage, batch, outcome)
                    continue
                before = cpu_seconds()
                batch = stage(batch)
                outcome.stage_cpu[stage.name] += cpu_seconds() - before
            for key, reason in zip(keys_of(batch), _col(batch, schema.DROP_REASON), strict=True):
                if reason is None:
                    outcome.kept.append(key)
                else:
                    outcome.dropped[key] = reason
                    reasons[reason] = reasons.get(reason, 0) + 1
    finally:
        for stage in stages:
            if stage.name == "lang_prefilter":
                outcome.prefilter_routes = prefilter_routes(stage.stats.counters)
            stage.close()
    outcome.reasons = dict(sorted(reasons.items()))
    outcome.wall_s = time.monotonic() - started
    return outcome


ROUTES = ("first_step", "second_step", "declared_other", "one_step", "too_short", "no_verdict")


def prefilter_routes(counters: Mapping[str, int]) -> dict[str, int]:
    """How the pre-filter judged the pages it read, from its counters (`lang_prefilter.<route>`).

    Every page with a verdict took one of four routes: `first_step` (kept on the whole page's text),
    `second_step` (classified again on the main content), `declared_other` (declaring another language:
    the main content only) or `one_step` (one text, by the settings). Of them, `too_short` had too little text
    to judge; `no_verdict` counts the pages that timed out, crashed the child or failed.
    """
    found = {route: int(counters.get(f"lang_prefilter.{route}", 0)) for route in ROUTES[:5]}
    found["no_verdict"] = int(counters.get("lang_prefilter.no_text", 0))
    return found


def _one_at_a_time(stage: MapStage, batch: pa.RecordBatch, outcome: Outcome) -> pa.RecordBatch:
    """The stage on each row alone, its CPU added to the stage's and to the row's document."""
    parts = []
    for index, key in enumerate(keys_of(batch)):
        before = cpu_seconds()
        parts.append(stage(batch.slice(index, 1)))
        spent = cpu_seconds() - before
        outcome.stage_cpu[stage.name] += spent
        outcome.page_cpu[key] = outcome.page_cpu.get(key, 0.0) + spent
    return pa.concat_batches(parts)


def _col(batch: pa.RecordBatch, name: str) -> list[Any]:
    return batch.column(name).to_pylist() if name in batch.schema.names else [None] * batch.num_rows


def _undropped(batch: pa.RecordBatch) -> int:
    return sum(reason is None for reason in _col(batch, schema.DROP_REASON))


def recipes(use_default_lists: bool = True) -> dict[str, Callable[[], list[MapStage]]]:
    """The three recipes compared, as factories of fresh stage objects."""
    from corpusmill.filters.extract import ExtractStage
    from corpusmill.filters.lang_prefilter import LangPrefilterParams, LangPrefilterStage
    from corpusmill.filters.langid import LangIdParams, LangIdStage
    from corpusmill.filters.url_filter import UrlFilterParams, UrlFilterStage

    def tail() -> list[MapStage]:
        return [ExtractStage(), LangIdStage(LangIdParams(languages=LANGUAGES))]

    def prefilter() -> MapStage:
        return LangPrefilterStage(LangPrefilterParams(languages=LANGUAGES))

    def url_filter() -> MapStage:
        return UrlFilterStage(UrlFilterParams(use_default_lists=use_default_lists))

    return {
        "a": tail,
        "b": lambda: [prefilter(), *tail()],
        "c": lambda: [url_filter(), prefilter(), *tail()],
    }


def run_datatrove(batches: list[pa.RecordBatch]) -> Outcome:
    """datatrove's Trafilatura and LanguageFilter (English, 0.65) on the same documents, in this process."""
    from datatrove.data import Document
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import LanguageFilter

    from bench.run_datatrove import install_lid_model
    from bench.truth import extract_options

    install_lid_model()  # corpusmill's lid.176 file where datatrove looks for its download: nothing fetched
    options = extract_options()
    options.pop("include_comments")  # datatrove always passes False, as the stage's default is
    extractor = Trafilatura(
        favour_precision=options.pop("favor_precision"),
        deduplicate=options.pop("deduplicate"),
        timeout=10.0,
        **options,
    )
    language = LanguageFilter(languages=LANGUAGES, language_threshold=DATATROVE_THRESHOLD)
    docs = [
        Document(text=(html or b"").decode("utf-8"), id=key, metadata={"url": url})
        for batch in batches
        for key, url, html in zip(keys_of(batch), _col(batch, schema.URL), _utf8(batch), strict=True)
    ]
    outcome = Outcome(
        "datatrove", ["Trafilatura", "LanguageFilter"], documents=len(docs), extracted=len(docs)
    )
    started = time.monotonic()
    before = cpu_seconds()
    language.model.model  # noqa: B018 - loads the model now, as the stages' set-up does
    outcome.setup_cpu["LanguageFilter"] = cpu_seconds() - before
    before = cpu_seconds()
    extracted = list(extractor.run(iter(docs)))
    outcome.stage_cpu["Trafilatura"] = cpu_seconds() - before
    before = cpu_seconds()
    kept = list(language.run(iter(extracted)))
    outcome.stage_cpu["LanguageFilter"] = cpu_seconds() - before
    outcome.kept = [doc.id for doc in kept]
    outcome.reasons = {"extraction_empty": len(docs) - len(extracted), "language": len(extracted) - len(kept)}
    outcome.wall_s = time.monotonic() - started
    return outcome


def _utf8(batch: pa.RecordBatch) -> list[bytes | None]:
    return pc.cast(batch.column(schema.HTML), pa.large_binary()).to_pylist()


SWEEP_SCORES = (0.02, 0.05, 0.1, 0.2)
SWEEP_CHARS = (100, 200, 400)
# The text settings swept: main content (two steps at page_keep_score 0.5, the default; at 0.2 and 0.8; in one
# step, None) and the whole page's text; `min_chars` as listed.
SWEEP_TEXTS: tuple[tuple[bool, float | None, tuple[int, ...]], ...] = (
    (True, 0.5, SWEEP_CHARS),
    (True, 0.2, (200,)),
    (True, 0.8, (200,)),
    (True, None, (200,)),
    (False, None, SWEEP_CHARS),
)


def _wanted_score(detail: str) -> float:
    """The best wanted language's score from a drop detail (`de 0.981; en 0.002`)."""
    return max(float(part.split()[1]) for part in detail.split("; ")[1:])


def sweep(batches: list[pa.RecordBatch], baseline_kept: set[str]) -> list[dict[str, Any]]:
    """Drops and losses of the pre-filter's candidate settings, measured against the baseline's kept set.

    Each text setting runs once with `min_wanted_score: 1.0`, which drops every judged page whose best guess
    is not wanted, its detail carrying the wanted language's score; a lower threshold drops the subset below
    it (the first step's bar, `page_keep_score`, does not depend on it). `lowest_wanted_kept` is the lowest
    such score among pages the baseline keeps: the recall margin. `main_content_pages` counts the pages whose
    main content was classified, what the two steps are there to make rare.
    """
    rows = []
    for main_content, page_keep_score, chars in SWEEP_TEXTS:
        for min_chars in chars:
            scores, routes = _sweep_scores(batches, main_content, page_keep_score, min_chars)
            kept_scores = [score for key, score in scores.items() if key in baseline_kept]
            main_pages = (
                routes["second_step"] + routes["declared_other"] + (routes["one_step"] if main_content else 0)
            )
            for threshold in SWEEP_SCORES:
                dropped = {key for key, score in scores.items() if score < threshold}
                rows.append(
                    {
                        "main_content": main_content,
                        "page_keep_score": page_keep_score,
                        "min_chars": min_chars,
                        "min_wanted_score": threshold,
                        "dropped": len(dropped),
                        "lost": sorted(dropped & baseline_kept),
                        "lowest_wanted_kept": min(kept_scores, default=None),
                        "main_content_pages": main_pages,
                    }
                )
    return rows


def _sweep_scores(
    batches: list[pa.RecordBatch], main_content: bool, page_keep_score: float | None, min_chars: int
) -> tuple[dict[str, float], dict[str, int]]:
    """One text setting at `min_wanted_score: 1.0`: each page it would drop with its wanted score; routes."""
    from corpusmill.filters.lang_prefilter import DROP_REASON, LangPrefilterParams, LangPrefilterStage

    params = LangPrefilterParams(
        languages=LANGUAGES,
        min_wanted_score=1.0,
        min_chars=min_chars,
        main_content=main_content,
        page_keep_score=page_keep_score,
    )
    stage = LangPrefilterStage(params)
    scores: dict[str, float] = {}
    try:
        for batch in batches:
            out = stage(batch)
            for key, reason, detail in zip(
                keys_of(out), _col(out, schema.DROP_REASON), _col(out, schema.DROP_DETAIL), strict=True
            ):
                if reason == DROP_REASON:
                    scores[key] = _wanted_score(detail)
    finally:
        stage.close()
    return scores, prefilter_routes(stage.stats.counters)


PREFILTERS = ("url_filter", "lang_prefilter")


def _before_extract(outcome: Outcome) -> set[str]:
    """The documents a pre-filter dropped, which the extractor then never saw."""
    return {key for key, reason in outcome.dropped.items() if reason.split(":")[0] in PREFILTERS}


def summarize(outcomes: dict[str, Outcome]) -> dict[str, Any]:
    """Recall against (a), CPU per kept document, and what the pre-filters cost and saved.

    Saved extraction CPU is attributed: what (a) spent extracting exactly the pages a recipe dropped before
    extraction (a's extraction runs one page at a time), so it does not depend on two runs' noise; the net
    saving subtracts what the pre-filters themselves cost. The measured change of the whole CPU is printed too.
    """
    base = outcomes["a"]
    base_kept = set(base.kept)
    extraction = sum(base.page_cpu.values())
    rows = {}
    for key, outcome in outcomes.items():
        kept = set(outcome.kept)
        row = outcome.to_json()
        prefilter_cpu = sum(outcome.stage_cpu.get(name, 0.0) for name in PREFILTERS)
        attributed = key != "datatrove" and extraction > 0
        saved = sum(base.page_cpu.get(doc, 0.0) for doc in _before_extract(outcome))
        row.update(
            {
                "cpu_ms_per_kept": round(1000 * outcome.cpu / max(1, len(kept)), 2),
                "prefilter_cpu_s": round(prefilter_cpu, 3),
                "extract_cpu_saved": round(saved / extraction, 4) if attributed else None,
                "net_cpu_saved": round((saved - prefilter_cpu) / base.cpu, 4) if attributed else None,
                "measured_cpu_change": round(outcome.cpu / base.cpu - 1, 4) if base.cpu else None,
                "recall": round(len(kept & base_kept) / max(1, len(base_kept)), 5),
                "lost": sorted(base_kept - kept),
            }
        )
        rows[key] = row
    if "datatrove" in outcomes and "b" in outcomes:
        dt_kept = set(outcomes["datatrove"].kept)
        rows["datatrove"]["kept_by_b"] = round(
            len(dt_kept & set(outcomes["b"].kept)) / max(1, len(dt_kept)), 5
        )
        rows["datatrove"]["lost_by_b"] = sorted(dt_kept - set(outcomes["b"].kept))
    return rows


PROJECTED_SHARES = (0.25, 0.5, 0.75)


def prefilter_costs(batches: list[pa.RecordBatch], repeats: int = 3) -> tuple[float, float]:
    """CPU per page of the pre-filter on the pages it drops and on the pages it passes: each group run alone.

    A page costs it a few ms, under the 10 ms tick in which the CPU of its child process is counted, so the
    two groups are timed as wholes (the mix's batches, each cut to the group), the cheapest of `repeats`.
    """
    from corpusmill.filters.lang_prefilter import DROP_REASON, LangPrefilterParams, LangPrefilterStage

    stage = LangPrefilterStage(LangPrefilterParams(languages=LANGUAGES))
    stage.setup()
    try:
        groups: dict[str, list[pa.RecordBatch]] = {"dropped": [], "passed": []}
        for batch in batches:
            out = stage(batch)
            dropped = pc.fill_null(pc.equal(out.column(schema.DROP_REASON), DROP_REASON), False)
            groups["dropped"].append(batch.filter(dropped))
            groups["passed"].append(batch.filter(pc.invert(dropped)))
        costs = {name: float("inf") for name in groups}
        for _ in range(max(1, repeats)):
            for name, group in groups.items():
                pages = sum(batch.num_rows for batch in group)
                before = cpu_seconds()
                for batch in group:
                    stage(batch)
                costs[name] = min(costs[name], (cpu_seconds() - before) / max(1, pages))
    finally:
        stage.close()
    return costs["dropped"], costs["passed"]


def projection(
    outcomes: dict[str, Outcome], group_costs: tuple[float, float] | None = None
) -> dict[str, Any] | None:
    """What the pre-filter would save on a crawl where a given share of the pages is for it to drop.

    From this run's figures: the pre-filter's CPU per page in (b), split into what a page it passes and a page
    it drops cost by the difference between the two in `group_costs` (`prefilter_costs`: a page it drops has
    its main content classified too), and what a dropped page saves: (a)'s average page (extract + langid),
    which is what an ordinary page in another language costs, and, for comparison, the average extraction CPU
    of the pages it dropped here, which depends on this mix (its Latin placeholder pages are small). A crawl's
    share of pages in other languages decides the rest.
    """
    base, pre = outcomes["a"], outcomes.get("b")
    if pre is None or not pre.documents:
        return None
    dropped = _before_extract(pre)
    if not dropped:
        return None
    here = sum(base.page_cpu.get(doc, 0.0) for doc in dropped) / len(dropped)
    cost = pre.stage_cpu["lang_prefilter"] / pre.documents
    extra = group_costs[0] - group_costs[1] if group_costs is not None else 0.0
    cost_passed = cost - extra * len(dropped) / pre.documents
    cost_dropped = cost_passed + extra
    per_page = base.cpu / base.documents

    def saved(share: float) -> float:
        spent = (1 - share) * cost_passed + share * cost_dropped
        return (share * per_page - spent) / per_page

    return {
        "prefilter_ms_per_page": round(1000 * cost, 3),
        "prefilter_ms_per_passed_page": round(1000 * cost_passed, 3),
        "prefilter_ms_per_dropped_page": round(1000 * cost_dropped, 3),
        "baseline_ms_per_page": round(1000 * per_page, 3),
        "extraction_ms_per_dropped_page_here": round(1000 * here, 3),
        "break_even_drop_share": round(cost_passed / (per_page - cost_dropped + cost_passed), 4),
        "cpu_saved_at_drop_share": {str(share): round(saved(share), 4) for share in PROJECTED_SHARES},
    }


def projection_text(figures: dict[str, Any]) -> str:
    """The projection in one paragraph."""
    at = ", ".join(
        f"{100 * float(share):.0f}% dropped: {_share(value)}"
        for share, value in figures["cpu_saved_at_drop_share"].items()
    )
    return (
        f"lang_prefilter costs {figures['prefilter_ms_per_page']:.2f} CPU ms per page "
        f"({figures['prefilter_ms_per_passed_page']:.2f} a page it passes, "
        f"{figures['prefilter_ms_per_dropped_page']:.2f} a page it drops), extract + langid "
        f"{figures['baseline_ms_per_page']:.2f} ms per page in (a) (the pages it dropped here: "
        f"{figures['extraction_ms_per_dropped_page_here']:.2f} ms each). It pays for itself once it drops "
        f"{_share(figures['break_even_drop_share'])} of a crawl's pages; CPU saved against (a) when it drops "
        f"ordinary pages: {at}."
    )


LABELS = {
    "a": "(a) extract + langid",
    "b": "(b) lang_prefilter + extract + langid",
    "c": "(c) url_filter + lang_prefilter + extract + langid",
    "datatrove": "datatrove Trafilatura + LanguageFilter(0.65)",
}


def table(rows: dict[str, Any]) -> str:
    """The comparison as a Markdown table, with the documents each recipe lost below it."""
    head = (
        "| recipe | kept | extracted | CPU s | set-up CPU s | CPU ms / kept | pre-filter CPU s | "
        "extraction CPU saved | net CPU saved | recall vs (a) |"
    )
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, row in rows.items():
        setup = sum(row["setup_cpu_s"].values())
        lines.append(
            f"| {LABELS[key]} | {row['kept']} | {row['extracted']} | {row['cpu_s']:.1f} | {setup:.1f} | "
            f"{row['cpu_ms_per_kept']:.1f} | {row['prefilter_cpu_s']:.2f} | {_share(row['extract_cpu_saved'])} | "
            f"{_share(row['net_cpu_saved'])} | {row['recall']:.4f} |"
        )
    lines.append("")
    for key, row in rows.items():
        stages = ", ".join(f"{name} {cpu:.2f}" for name, cpu in row["stage_cpu_s"].items())
        change = _share(row["measured_cpu_change"])
        lines.append(
            f"{LABELS[key]}: CPU s by stage: {stages} (measured change {change}); drops: {row['reasons']}"
        )
        if row.get("prefilter_routes"):
            lines.append(f"  lang_prefilter: {routes_text(row['prefilter_routes'])}")
        if key != "a" and row["lost"]:
            lines.append(f"  lost ({len(row['lost'])}): {', '.join(row['lost'])}")
        if "kept_by_b" in row:
            lines.append(f"  share of datatrove's kept documents that (b) keeps: {row['kept_by_b']:.4f}")
            if row["lost_by_b"]:
                lines.append(f"  of them (b) drops: {', '.join(row['lost_by_b'])}")
    return "\n".join(lines)


def routes_text(routes: Mapping[str, int]) -> str:
    """The pre-filter's routes in words."""
    return (
        f"{routes['first_step']} kept on the whole page's text, {routes['second_step']} classified again on "
        f"the main content, {routes['declared_other']} declaring another language classified on the main "
        f"content only, {routes['one_step']} on one text; {routes['too_short']} too short, "
        f"{routes['no_verdict']} without a verdict"
    )


def sweep_table(rows: list[dict[str, Any]]) -> str:
    """The sweep as a Markdown table."""
    lines = [
        "| main_content | page_keep_score | min_chars | min_wanted_score | dropped | lost of (a)'s | "
        "lowest wanted score kept by (a) | main-content pages |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lowest = "-" if row["lowest_wanted_kept"] is None else f"{row['lowest_wanted_kept']:.3f}"
        keep = "-" if row["page_keep_score"] is None or not row["main_content"] else row["page_keep_score"]
        lines.append(
            f"| {row['main_content']} | {keep} | {row['min_chars']} | {row['min_wanted_score']} | "
            f"{row['dropped']} | {len(row['lost'])} | {lowest} | {row['main_content_pages']} |"
        )
    return "\n".join(lines)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def main(argv: list[str] | None = None) -> int:
    """Command line: build the mix, run the recipes, print the table; exit 1 when a recall misses the goal."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--wcxb", type=int, default=300, help="WCXB pages in the mix (default 300, all: 1497)"
    )
    parser.add_argument(
        "--multilingual-every", type=int, default=1, help="take every Nth multilingual page (default all)"
    )
    parser.add_argument("--no-commoncrawl", action="store_true", help="leave the Common Crawl samples out")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1, help="run each recipe N times, keep the cheapest")
    parser.add_argument("--no-datatrove", action="store_true", help="skip datatrove's row")
    parser.add_argument(
        "--no-default-lists", action="store_true", help="url_filter without datatrove's lists (quick runs)"
    )
    parser.add_argument("--sweep", action="store_true", help="also sweep the pre-filter's settings")
    parser.add_argument("--data", type=Path, default=SHARED, help="the shared data directory")
    parser.add_argument(
        "--work", type=Path, default=None, help="where the WARC files go (default: a temp dir)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="prefilter-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        files = crawl_files(work, args.wcxb, args.data, args.multilingual_every, not args.no_commoncrawl)
        batches = read_crawl(files, args.batch_size)
    documents = sum(batch.num_rows for batch in batches)
    print(f"{documents} documents from {len(files)} WARC files; recipes keep languages {LANGUAGES}")
    factories = recipes(use_default_lists=not args.no_default_lists)
    runs: dict[str, list[Outcome]] = {key: [] for key in factories}
    for _ in range(max(1, args.repeats)):  # alternating, so a busy spell of the machine hits every recipe
        for key, make in factories.items():
            per_document = frozenset({"extract"}) if key == "a" else frozenset()
            runs[key].append(run_stages(key, make(), batches, per_document))
    outcomes = {key: min(found, key=lambda outcome: outcome.cpu) for key, found in runs.items()}
    if not args.no_datatrove:
        outcomes["datatrove"] = run_datatrove(batches)
    rows = summarize(outcomes)
    print(table(rows))
    result: dict[str, Any] = {"documents": documents, "languages": LANGUAGES, "recipes": rows}
    result["projection"] = projection(outcomes, prefilter_costs(batches, args.repeats))
    if result["projection"] is not None:
        print()
        print(projection_text(result["projection"]))
    if args.sweep:
        result["sweep"] = sweep(batches, set(outcomes["a"].kept))
        print()
        print(sweep_table(result["sweep"]))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    missed = [key for key in ("b", "c") if rows[key]["recall"] < RECALL_GOAL]
    if missed:
        print(f"recall below {RECALL_GOAL} for {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
