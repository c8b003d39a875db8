"""The engines' CPU per document against the bare loop's, in alternating rounds: `python -m bench.engine_pairs`.

`python -m bench` runs every job twice over several minutes, beside datatrove's jobs, and compares each job's
cheapest run with the others'. On this two-core virtual machine the same work costs up to a fifth more CPU
time from one minute to the next, more than the engine overhead it is after, so that figure moves by ten
points between runs of the same code. Here only the bare loop and the engines run, on the main bench's
corpus, in rounds ordered bare loops, engines, engines reversed, bare loops reversed: within a round every
job's two runs sit at the same mean time, so a drift of the machine's speed that is steady over a round
cancels. Each round gives each engine's overhead (its mean CPU per document over a bare loop's mean), and the
table prints every round's figure and their median.

The bare loop runs as one copy per core at once, as the engines run one worker per core, so that both run
under the same contention, in two ways (`--bare`):

- `split`: the copies share the WARC files between them as the engines' workers share the parts (copy n
  takes every other file from the n-th) and their CPU is summed. This is the same work on the same division
  of the input with no engine, so the difference is what the engine adds: the project's goal for Ray and
  Beam (at most 10% above it; `report.ENGINE_OVERHEAD_GOAL`) is checked against it.
- `whole`: every copy does the whole corpus and their mean counts, as in the main bench's `cm bare` column.
  A process that sees every page keeps warmer caches than one that sees half of them (spaCy's words of the
  Gopher rules, the corpus's near-duplicates: the difference between the two baselines is printed as the
  cost of splitting the input), which no engine that splits the work can have, so this figure is printed
  without a goal.

Either way each copy deduplicates only the documents it reads: a split copy finds no duplicate across the
split and tokenizes slightly more.

CPU per document is what the main bench's targets use (`report.per_document_cpu`): the whole run's CPU less
start-up, shutdown and stage set-up, on both sides.

    python -m bench.engine_pairs [--rounds 3] [--engines ray,beam] [--bare split,whole] [--docs 300] [--json PATH]
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

BASELINES = ("split", "whole")
# The baseline the goal is checked against: the same work on the same division of the input, no engine.
GOAL_BASELINE = "split"
_BARE_PREFIX = "bare-"


def bare_job(baseline: str) -> str:
    """The round's name of a bare-loop job: `bare-split`, `bare-whole`."""
    return f"{_BARE_PREFIX}{baseline}"


def round_order(engines: list[str], baselines: tuple[str, ...] = BASELINES) -> list[str]:
    """One round's jobs: the bare loops, the engines, the engines in reverse, the bare loops in reverse."""
    bare = [bare_job(baseline) for baseline in baselines]
    jobs = [f"corpusmill-{engine}" for engine in engines]
    return [*bare, *jobs, *reversed(jobs), *reversed(bare)]


def round_overheads(per_doc: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per baseline, each engine's overhead in % over that bare loop, from one round's CPU per document."""
    engines = {job: values for job, values in per_doc.items() if not job.startswith(_BARE_PREFIX)}
    overheads: dict[str, dict[str, float]] = {}
    for job, values in per_doc.items():
        if job.startswith(_BARE_PREFIX):
            bare = statistics.fmean(values)
            overheads[job.removeprefix(_BARE_PREFIX)] = {
                engine.removeprefix("corpusmill-"): (statistics.fmean(runs) / bare - 1) * 100
                for engine, runs in engines.items()
            }
    return overheads


def split_cost(per_doc: dict[str, list[float]]) -> float | None:
    """What splitting the input between the copies costs the bare loop, in % over each copy doing it all."""
    split, whole = per_doc.get(bare_job("split")), per_doc.get(bare_job("whole"))
    if not split or not whole:
        return None
    return (statistics.fmean(split) / statistics.fmean(whole) - 1) * 100


def summarize(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per baseline and engine: every round's overhead and their median."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for baseline in dict.fromkeys(name for overheads in rounds for name in overheads):
        of_baseline = [overheads.get(baseline, {}) for overheads in rounds]
        engines = dict.fromkeys(engine for overheads in of_baseline for engine in overheads)
        summary[baseline] = {
            engine: {
                "rounds": [overheads.get(engine) for overheads in of_baseline],
                "median": statistics.median(o[engine] for o in of_baseline if engine in o),
            }
            for engine in engines
        }
    return summary


def format_table(
    summary: dict[str, dict[str, dict[str, Any]]],
    bare_per_doc: dict[str, list[float]],
    split_costs: list[float] | None = None,
) -> str:
    """The table: one row per engine and baseline, one column per round, then the median; then the goal."""
    rows = [
        (baseline, engine, row) for baseline, engines in summary.items() for engine, row in engines.items()
    ]
    count = max(len(row["rounds"]) for _, _, row in rows)
    head = f"{'engine':8}{'bare loop':11}" + "".join(f"{f'round {n}':>10}" for n in range(1, count + 1))
    lines = [head + f"{'median':>10}"]
    for baseline, engine, row in rows:
        cells = "".join(f"{'-' if value is None else f'{value:+.1f}%':>10}" for value in row["rounds"])
        lines.append(f"{engine:8}{baseline:11}{cells}{row['median']:>+9.1f}%")
    lines.append(
        "overhead per document over the bare loop (CPU less start-up, shutdown and stage set-up); bare loop: "
        "split = the copies share the WARC files (CPU summed), whole = every copy the whole corpus (their mean)"
    )
    for baseline, values in bare_per_doc.items():
        lines.append(f"bare loop ({baseline}) per document: {', '.join(f'{v:.2f}' for v in values)} CPU s")
    if split_costs:
        costs = ", ".join(f"{value:+.1f}%" for value in split_costs)
        lines.append(
            f"splitting the input costs the bare loop {costs} (median {statistics.median(split_costs):+.1f}%): "
            "caches of one process that sees half the pages"
        )
    lines.append("")
    lines.append(f"{'target':64}{'measured':>10}{'goal':>8}  met")
    for engine, met in targets(summary).items():
        label = f"{engine.capitalize()} overhead per document over the {GOAL_BASELINE} bare loop, median (%)"
        median = summary[GOAL_BASELINE][engine]["median"]
        lines.append(f"{label:64}{median:>10.1f}{ENGINE_OVERHEAD_GOAL:>8.1f}  {'yes' if met else 'NO'}")
    return "\n".join(lines)


def targets(summary: dict[str, dict[str, dict[str, Any]]]) -> dict[str, bool]:
    """Whether each distributed engine's median overhead over the goal's baseline meets the goal (the local
    engine has none; without that baseline measured, there is nothing to check)."""
    return {
        engine: row["median"] <= ENGINE_OVERHEAD_GOAL
        for engine, row in summary.get(GOAL_BASELINE, {}).items()
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
        "--bare",
        default=",".join(BASELINES),
        help="comma-separated bare loops to measure against: split (the copies share the WARC files; the "
        "goal's baseline), whole (every copy the whole corpus)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.baselines = tuple(name for name in args.bare.split(",") if name)
    unknown = sorted(set(args.baselines) - set(BASELINES))
    if unknown or not args.baselines:
        parser.error(f"--bare: {', '.join(unknown) or 'none given'}; allowed: {', '.join(BASELINES)}")
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
    rounds: list[dict[str, dict[str, float]]] = []
    bare_per_doc: dict[str, list[float]] = {}
    split_costs: list[float] = []
    for number in range(1, args.rounds + 1):
        per_doc: dict[str, list[float]] = {}
        for place, job in enumerate(round_order(engines, args.baselines)):
            print(f"round {number}: {job} ...", end=" ", file=sys.stderr, flush=True)
            bare = job.startswith(_BARE_PREFIX)
            split = job == bare_job("split")
            copies = cores if bare else 1
            work = cache / "runs" / "engine-pairs" / f"{job}-{place}"
            result = run_measured(
                "corpusmill-bare" if bare else job, spec, work, cache, args.timeout, copies, split
            )
            if "error" in result:
                raise SystemExit(f"{job} failed: {result['error']}")
            value = per_document_cpu(result)
            assert value is not None
            if split:  # the copies did the corpus together: their sum, not their mean
                value *= copies
            per_doc.setdefault(job, []).append(value)
            print(f"{value:.2f} CPU s per document", file=sys.stderr, flush=True)
        rounds.append(round_overheads(per_doc))
        for baseline in args.baselines:
            bare_per_doc.setdefault(baseline, []).extend(per_doc[bare_job(baseline)])
        if (cost := split_cost(per_doc)) is not None:
            split_costs.append(cost)
    summary = summarize(rounds)
    print(format_table(summary, bare_per_doc, split_costs))
    figures = {
        "cores": cores,
        "documents": args.docs,
        "engines": summary,
        "goal_baseline": GOAL_BASELINE,
        "bare_per_doc_cpu_s": bare_per_doc,
        "split_cost_percent": split_costs,
        "goal_percent": ENGINE_OVERHEAD_GOAL,
        "met": targets(summary),
    }
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
