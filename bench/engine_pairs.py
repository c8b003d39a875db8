"""The engines' CPU per document against the bare loop's, in alternating rounds: `python -m bench.engine_pairs`.

`python -m bench` runs every job twice over several minutes, beside datatrove's jobs, and compares each job's
cheapest run with the others'. On this two-core virtual machine the same work costs up to a fifth more CPU
time from one minute to the next, more than the engine overhead it is after, so that figure moves by ten
points between runs of the same code. Here only the bare loop (one copy per core at once, as in the main
bench) and the engines run, on the main bench's corpus, in rounds ordered bare, engines, engines reversed,
bare: within a round every job's two runs sit at the same mean time, so a drift of the machine's speed that
is steady over a round cancels. Each round gives each engine's overhead (its mean CPU per document over the
bare loop's mean), and the table prints every round's figure and their median, which is checked against the
project's goal for Ray and Beam (at most 10% above the bare loop; `report.ENGINE_OVERHEAD_GOAL`).

CPU per document is what the main bench's targets use (`report.per_document_cpu`): the whole run's CPU less
start-up, shutdown and stage set-up, on both sides.

    python -m bench.engine_pairs [--rounds 3] [--engines ray,beam] [--docs 300] [--split-bare] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from bench import DEFAULT_DATA, cache_root
from bench.corpus import CorpusParams, build_corpus
from bench.launch import run_measured
from bench.report import ENGINE_OVERHEAD_GOAL, per_document_cpu
from bench.spec import EXTRACTORS

BARE = "corpusmill-bare"


def round_order(engines: list[str]) -> list[str]:
    """One round's jobs: the bare loop, the engines, the engines in reverse, the bare loop again."""
    jobs = [f"corpusmill-{engine}" for engine in engines]
    return [BARE, *jobs, *reversed(jobs), BARE]


def round_overheads(per_doc: dict[str, list[float]]) -> dict[str, float]:
    """Each engine's overhead in % over the bare loop, from one round's CPU per document of every job's runs."""
    bare = statistics.fmean(per_doc[BARE])
    return {
        job.removeprefix("corpusmill-"): (statistics.fmean(values) / bare - 1) * 100
        for job, values in per_doc.items()
        if job != BARE
    }


def summarize(rounds: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Per engine: every round's overhead and their median."""
    engines = list(dict.fromkeys(engine for overheads in rounds for engine in overheads))
    return {
        engine: {
            "rounds": [overheads.get(engine) for overheads in rounds],
            "median": statistics.median(o[engine] for o in rounds if engine in o),
        }
        for engine in engines
    }


def format_table(summary: dict[str, dict[str, Any]], bare_per_doc: list[float]) -> str:
    """The table: one row per engine, one column per round, then the median."""
    count = max(len(row["rounds"]) for row in summary.values())
    head = f"{'engine':8}" + "".join(f"{f'round {n}':>10}" for n in range(1, count + 1)) + f"{'median':>10}"
    lines = [head]
    for engine, row in summary.items():
        cells = "".join(f"{'-' if value is None else f'{value:+.1f}%':>10}" for value in row["rounds"])
        lines.append(f"{engine:8}{cells}{row['median']:>+9.1f}%")
    lines.append(
        "overhead per document over the bare loop (CPU less start-up, shutdown and stage set-up); bare loop "
        f"per document: {', '.join(f'{value:.2f}' for value in bare_per_doc)} CPU s"
    )
    lines.append("")
    lines.append(f"{'target':40}{'measured':>10}{'goal':>8}  met")
    for engine, met in targets(summary).items():
        label = f"{engine.capitalize()} overhead per document, median (%)"
        lines.append(
            f"{label:40}{summary[engine]['median']:>10.1f}{ENGINE_OVERHEAD_GOAL:>8.1f}  {'yes' if met else 'NO'}"
        )
    return "\n".join(lines)


def targets(summary: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Whether each distributed engine's median overhead meets the goal (the local engine has none)."""
    return {
        engine: row["median"] <= ENGINE_OVERHEAD_GOAL
        for engine, row in summary.items()
        if engine in ("ray", "beam")
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_pairs", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of bare, engines, engines, bare")
    parser.add_argument("--engines", default="ray,beam", help="comma-separated: ray, beam, local")
    parser.add_argument("--docs", type=int, default=300, help="WCXB pages of the corpus (the main bench's)")
    parser.add_argument("--docs-per-file", type=int, default=100)
    parser.add_argument(
        "--cores", type=int, default=None, help="workers, and bare-loop copies (default: all)"
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the wcxb-dev directory")
    parser.add_argument("--cache", default=None, help="default $CORPUSMILL_BENCH_CACHE or ~/.cache/...")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one job may take")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--split-bare",
        action="store_true",
        help="the bare loop's copies split the WARC files between them, as the engines' workers split the "
        "parts, instead of each doing the whole corpus (a diagnostic: per-process caches then see what a "
        "worker sees)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Build (or reuse) the corpus, run the rounds, print the table; returns the figures."""
    args = parse_args(argv)
    cores = args.cores or os.cpu_count() or 1
    cache = cache_root(args.cache)
    corpus = build_corpus(CorpusParams(docs=args.docs, docs_per_file=args.docs_per_file), args.data, cache)
    # The main bench's defaults: its threshold, its default extractor (the engine overhead goal's work).
    spec = {"warc_dir": str(corpus.warc_dir), "threshold": 0.8, "cores": cores, "extractor": EXTRACTORS[0]}
    engines = [engine for engine in args.engines.split(",") if engine]
    rounds: list[dict[str, float]] = []
    bare_per_doc: list[float] = []
    for number in range(1, args.rounds + 1):
        per_doc: dict[str, list[float]] = {}
        for place, job in enumerate(round_order(engines)):
            print(f"round {number}: {job} ...", end=" ", file=sys.stderr, flush=True)
            copies = cores if job == BARE else 1
            work = cache / "runs" / "engine-pairs" / f"{job}-{place}"
            split = args.split_bare and job == BARE
            result = run_measured(job, spec, work, cache, args.timeout, copies, split)
            if "error" in result:
                raise SystemExit(f"{job} failed: {result['error']}")
            value = per_document_cpu(result)
            assert value is not None
            if split:  # the copies did the corpus together: their sum, not their mean
                value *= copies
            per_doc.setdefault(job, []).append(value)
            print(f"{value:.2f} CPU s per document", file=sys.stderr, flush=True)
        rounds.append(round_overheads(per_doc))
        bare_per_doc.extend(per_doc[BARE])
    summary = summarize(rounds)
    print(format_table(summary, bare_per_doc))
    if args.split_bare:
        print(f"(bare loop: {cores} copies splitting the WARC files between them, their CPU summed)")
    figures = {
        "cores": cores,
        "documents": args.docs,
        "engines": summary,
        "bare_per_doc_cpu_s": bare_per_doc,
        "goal_percent": ENGINE_OVERHEAD_GOAL,
        "met": targets(summary),
        "split_bare": args.split_bare,
    }
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
