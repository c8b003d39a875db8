"""`python -m bench`: corpusmill (bare stage loop, local, Ray, Beam) side by side with datatrove.

    python -m bench [--quick] [--docs N] [--runs corpusmill-bare,...] [--repeats N] [--bare-copies N]
                    [--cores N] [--json PATH]

Builds or reuses the benchmark corpus (`bench.corpus`), runs every selected job in a fresh, measured
process (`bench.launch`; the bare loops as one copy per core at once), `--repeats` times in alternating
order, keeping each job's cheapest run (and Ray's and datatrove's runs on the corpus's skeleton, which set
their fixed costs apart: `bench.fixed_costs`), scores deduplication and extraction (`bench.quality`), prints the
table (`bench.report`) and writes everything as JSON: to `--json PATH`, and always to
`<cache>/results/<timestamp>.json` and `<cache>/results/latest.json`. Defaults fit 20 minutes on two cores
(300 WCXB pages plus variants); `--quick` is a smoke run of a few minutes (20 pages plus variants).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import DEFAULT_DATA, cache_root
from bench.corpus import CorpusParams, build_corpus, load_pages, summarize
from bench.fixed_costs import write_skeleton
from bench.jobs import JOBS
from bench.launch import cheapest, run_measured
from bench.quality import evaluate
from bench.report import build_rows, format_table, projection
from bench.spec import EXTRACTORS
from corpusmill.core.atomic import write_json

DEFAULT_DOCS, QUICK_DOCS = 300, 20
# Jobs run again on the corpus's skeleton by default: the pair the end-to-end target compares.
FIXED_JOBS = ("corpusmill-ray", "datatrove")
SKELETON = "skeleton"


def _load() -> str:
    try:
        return "/".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "?"


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _tokenizer(data: Path, cache: Path) -> dict[str, Any]:
    """The Qwen2.5 tokenizer against Hugging Face's on the WCXB texts, in a fresh single-threaded process."""
    out = cache / "results" / "tokenizer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "bench.tokenizer_throughput", "--seconds", "0", "--json", str(out)]
    command += ["--data", str(data / "ground-truth")]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    return json.loads(out.read_text(encoding="utf-8"))


def _settings(warc_dir: Path, threshold: float, extractor: str) -> dict[str, Any]:
    from bench import spec
    from bench.dt_reader import warcio_available
    from bench.truth import extract_options

    return {
        "minhash": spec.minhash_settings(threshold).to_json(),
        "corpusmill_stages": [entry.stage for entry in spec.recipe(warc_dir, threshold, extractor).stages],
        "extractor": extractor,
        "extract_options": extract_options() if extractor == "trafilatura" else _resiliparse_options(),
        "languages": spec.LANGUAGES,
        "language_threshold": spec.LANGUAGE_THRESHOLD,
        "datatrove_reader": "datatrove WarcReader"
        if warcio_available()
        else "fastwarc stand-in for WarcReader",
    }


def _resiliparse_options() -> dict[str, Any]:
    from corpusmill.filters.extract import RESILIPARSE_OPTIONS

    return dict(RESILIPARSE_OPTIONS)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_DOCS} pages, small files: a few minutes"
    )
    parser.add_argument(
        "--docs", type=int, default=None, help=f"WCXB pages (default {DEFAULT_DOCS}; all: 1497)"
    )
    parser.add_argument(
        "--runs", default=",".join(JOBS), help=f"comma-separated jobs (default all: {','.join(JOBS)})"
    )
    parser.add_argument(
        "--cores", type=int, default=None, help="workers/CPUs for engines (default: all cores)"
    )
    parser.add_argument(
        "--extractor",
        choices=EXTRACTORS,
        default=EXTRACTORS[0],
        help="the extractor both sides run, with the same settings (default trafilatura)",
    )
    parser.add_argument("--threshold", type=float, default=0.8, help="near-duplicate Jaccard threshold")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dup-fraction", type=float, default=CorpusParams.dup_fraction)
    parser.add_argument("--negative-fraction", type=float, default=CorpusParams.negative_fraction)
    parser.add_argument(
        "--docs-per-file", type=int, default=None, help="records per WARC file (default 100; quick 10)"
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the wcxb-dev directory")
    parser.add_argument(
        "--cache", type=Path, default=None, help="default $CORPUSMILL_BENCH_CACHE or ~/.cache/..."
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one job may take")
    parser.add_argument(
        "--bare-copies",
        type=int,
        default=None,
        help="copies of each bare loop run at once, measured as their mean (default: --cores)",
    )
    parser.add_argument(
        "--fixed-runs",
        default=",".join(FIXED_JOBS),
        help="jobs also run on the corpus's skeleton (its files' first records) to set their fixed costs apart; "
        f"empty for none (default {','.join(FIXED_JOBS)})",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="runs of every job; each keeps its cheapest (default 2; quick 1)",
    )
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 2
    if args.bare_copies is not None and args.bare_copies < 1:
        parser.error("--bare-copies must be at least 1")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    unknown = [job for job in [*args.runs.split(","), *args.fixed_runs.split(",")] if job and job not in JOBS]
    if unknown:
        parser.error(f"unknown runs {unknown}; allowed: {', '.join(JOBS)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Build the corpus, run the jobs, score, print and save; returns the results."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    cores = args.cores or os.cpu_count() or 1
    cache = cache_root(args.cache)
    params = CorpusParams(
        docs=args.docs or (QUICK_DOCS if args.quick else DEFAULT_DOCS),
        dup_fraction=args.dup_fraction,
        negative_fraction=args.negative_fraction,
        docs_per_file=args.docs_per_file or (10 if args.quick else 100),
        seed=args.seed,
    )
    load_before = _load()
    started = time.monotonic()
    print(f"corpus: {params} ...", file=sys.stderr, flush=True)
    corpus = build_corpus(params, args.data, cache)
    summary = summarize(corpus)
    print(f"corpus: {summary['records']} records in {corpus.root}", file=sys.stderr, flush=True)
    spec = {
        "warc_dir": str(corpus.warc_dir),
        "threshold": args.threshold,
        "cores": cores,
        "extractor": args.extractor,
    }
    jobs = args.runs.split(",")
    skeleton_jobs = [job for job in args.fixed_runs.split(",") if job and job in jobs]
    skeleton_records = write_skeleton(corpus.warc_dir, corpus.root / SKELETON) if skeleton_jobs else 0
    skeleton_spec = {**spec, "warc_dir": str(corpus.root / SKELETON)}
    # (job, on the skeleton?) in the order of a round
    entries = [(job, False) for job in jobs] + [(job, True) for job in skeleton_jobs]
    bare_copies = args.bare_copies or cores
    attempts: dict[tuple[str, bool], list[dict[str, Any]]] = {entry: [] for entry in entries}
    for repeat in range(1, args.repeats + 1):
        # Every round runs every job, in alternating order, so a slow spell of the machine hits all of them.
        for job, skeleton in entries if repeat % 2 else reversed(entries):
            name = f"{job} on the skeleton" if skeleton else job
            print(f"{name} ({repeat}/{args.repeats}) ...", end=" ", file=sys.stderr, flush=True)
            work = cache / "runs" / (f"{job}-{SKELETON}" if skeleton else job) / f"repeat-{repeat}"
            copies = bare_copies if job.endswith("-bare") else 1
            attempt = run_measured(
                job, skeleton_spec if skeleton else spec, work, cache, args.timeout, copies
            )
            attempts[(job, skeleton)].append(attempt)
            outcome = attempt.get("total")
            note = f"{outcome['wall_s']:.1f} s wall, {outcome['cpu_s']:.1f} s CPU" if outcome else "FAILED"
            print(note, file=sys.stderr, flush=True)
    runs = {job: cheapest(attempts[(job, False)]) for job in jobs}
    fixed = {job: cheapest(attempts[(job, True)]) for job in skeleton_jobs}
    print("tokenizer vs Hugging Face ...", end=" ", file=sys.stderr, flush=True)
    tokenizer = _tokenizer(args.data, cache)
    print("done" if "error" not in tokenizer else "FAILED", file=sys.stderr, flush=True)
    truth = corpus.truth()
    original_pages = {r["page"] for r in truth["records"] if r["kind"] == "original"}
    page_truths = {p.page_id: p.ground_truth for p in load_pages(args.data) if p.page_id in original_pages}
    quality = evaluate(truth, page_truths, corpus.direct_extractions(), runs, args.threshold)
    for run in runs.values():
        run.pop("entered_dedup", None)
    results: dict[str, Any] = {
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": cores,
            "bare_copies": bare_copies,
            "cpu": _cpu_model(),
            "load_before": load_before,
            "load_after": _load(),
        },
        "corpus": {**summary, "params": truth["params"]},
        "settings": _settings(corpus.warc_dir, args.threshold, args.extractor),
        "runs": runs,
        "fixed": {"records": skeleton_records, "runs": fixed},
        "quality": quality,
        "tokenizer": tokenizer,
        "projection": {
            job: projection(run, summary["html_bytes"]) for job, run in runs.items() if "error" not in run
        },
        "bench_seconds": time.monotonic() - started,
    }
    results["table"] = build_rows(results)
    print(format_table(results))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for target in (cache / "results" / f"{stamp}.json", cache / "results" / "latest.json", args.json):
        if target is not None:
            write_json(target, results)
    print(f"\nresults: {args.json or cache / 'results' / 'latest.json'}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
