"""`python -m bench`: corpusmill (bare stage loop, local, Ray, Beam) side by side with datatrove.

    python -m bench [--quick] [--docs N] [--runs corpusmill-bare,...] [--repeats N] [--bare-copies N]
                    [--cores N] [--json PATH]

Builds or reuses the benchmark corpus (`bench.corpus`), runs every selected job in a fresh, measured
process (`bench.launch`; the bare loops as one copy per core at once), `--repeats` times in alternating
order, keeping each job's cheapest run, scores deduplication and extraction (`bench.quality`), prints the
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
from bench.jobs import JOBS
from bench.launch import cheapest, run_measured
from bench.quality import evaluate
from bench.report import build_rows, format_table, projection
from corpusmill.core.atomic import write_json

DEFAULT_DOCS, QUICK_DOCS = 300, 20


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


def _settings(warc_dir: Path, threshold: float) -> dict[str, Any]:
    from bench import spec
    from bench.dt_reader import warcio_available
    from bench.truth import extract_options

    return {
        "minhash": spec.minhash_settings(threshold).to_json(),
        "corpusmill_stages": [entry.stage for entry in spec.recipe(warc_dir, threshold).stages],
        "extract_options": extract_options(),
        "languages": spec.LANGUAGES,
        "language_threshold": spec.LANGUAGE_THRESHOLD,
        "datatrove_reader": "datatrove WarcReader"
        if warcio_available()
        else "fastwarc stand-in for WarcReader",
    }


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
    unknown = [job for job in args.runs.split(",") if job not in JOBS]
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
    spec = {"warc_dir": str(corpus.warc_dir), "threshold": args.threshold, "cores": cores}
    jobs = args.runs.split(",")
    bare_copies = args.bare_copies or cores
    attempts: dict[str, list[dict[str, Any]]] = {job: [] for job in jobs}
    for repeat in range(1, args.repeats + 1):
        # Every round runs every job, in alternating order, so a slow spell of the machine hits all of them.
        for job in jobs if repeat % 2 else reversed(jobs):
            print(f"{job} ({repeat}/{args.repeats}) ...", end=" ", file=sys.stderr, flush=True)
            work = cache / "runs" / job / f"repeat-{repeat}"
            copies = bare_copies if job.endswith("-bare") else 1
            attempts[job].append(run_measured(job, spec, work, cache, args.timeout, copies))
            outcome = attempts[job][-1].get("total")
            note = f"{outcome['wall_s']:.1f} s wall, {outcome['cpu_s']:.1f} s CPU" if outcome else "FAILED"
            print(note, file=sys.stderr, flush=True)
    runs = {job: cheapest(results) for job, results in attempts.items()}
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
        "settings": _settings(corpus.warc_dir, args.threshold),
        "runs": runs,
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
