"""The side-by-side table: rates per stage and end to end, quality, and the capacity projection.

Every rate is per core and comes from CPU time (user + system, all processes of the run; see
`bench.measure`), so it does not depend on how many cores a run kept busy or on other load on the machine
(which still slows wall time). Stage rows spread a stage's cost over all input documents of the corpus
(documents per CPU-second), so a row says what that stage costs per crawled page and the stage rows of a
column add up, in CPU time, to its end-to-end cost. The ratio column is corpusmill divided by datatrove:
the bare loops for stage rows, Ray (corpusmill's default engine) against datatrove's LocalPipelineExecutor
for the end-to-end, quality and projection rows.
"""

from __future__ import annotations

from typing import Any

from bench.fixed_costs import per_document_rate

COLUMNS = (
    ("cm bare", "corpusmill-bare"),
    ("cm local", "corpusmill-local"),
    ("cm Ray", "corpusmill-ray"),
    ("cm Beam", "corpusmill-beam"),
    ("dt bare", "datatrove-bare"),
    ("datatrove", "datatrove"),
)
ENGINES = ("corpusmill-local", "corpusmill-ray", "corpusmill-beam")
CM = ("corpusmill-bare", *ENGINES)
BARE_PAIR = ("corpusmill-bare", "datatrove-bare")
RUN_PAIR = ("corpusmill-ray", "datatrove")
MAP_SPANS = ["read", "extract", "langid", "gopher"]

# The engines run the map step with the dedup keys, and the dedup drop with tokenizing and the shard writes, as
# one engine phase each (`pipelines/chain.py`): their costs show in the rows of those spans together.
CHAIN_HEAD, CHAIN_TAIL = "map+dedup_signatures", "dedup_apply+tokenize+write"

# (label, spans per job, which pair the ratio compares)
STAGE_ROWS: list[tuple[str, dict[str, list[str]], tuple[str, str] | None]] = [
    ("start-up", {job: ["startup"] for job in CM}, None),
    ("  read WARC", {job: ["read"] for job in BARE_PAIR}, BARE_PAIR),
    ("  extract", {job: ["extract"] for job in BARE_PAIR}, BARE_PAIR),
    ("  langid", {job: ["langid"] for job in BARE_PAIR}, BARE_PAIR),
    ("  Gopher rules", {job: ["gopher"] for job in BARE_PAIR}, BARE_PAIR),
    ("read..Gopher step", {**{job: MAP_SPANS for job in BARE_PAIR}, "datatrove": ["map"]}, BARE_PAIR),
    ("MinHash signatures", {job: ["dedup_signatures"] for job in (*BARE_PAIR, "datatrove")}, BARE_PAIR),
    (
        "read..signatures",
        {
            **{job: [*MAP_SPANS, "dedup_signatures"] for job in BARE_PAIR},
            **{job: [CHAIN_HEAD] for job in ENGINES},
            "datatrove": ["map", "dedup_signatures"],
        },
        BARE_PAIR,
    ),
    (
        "MinHash grouping",
        {
            **{job: ["dedup_grouping"] for job in (*CM, "datatrove-bare")},
            "datatrove": ["dedup_buckets", "dedup_cluster"],
        },
        BARE_PAIR,
    ),
    ("MinHash drop", {job: ["dedup_apply"] for job in (*BARE_PAIR, "datatrove")}, BARE_PAIR),
    (
        "MinHash, all of it",
        {
            **{job: ["dedup_signatures", "dedup_grouping", "dedup_apply"] for job in BARE_PAIR},
            "datatrove": ["dedup_signatures", "dedup_buckets", "dedup_cluster", "dedup_apply"],
        },
        BARE_PAIR,
    ),
    (
        "tokenize + shards",
        {
            "corpusmill-bare": ["tokenize", "write"],
            "datatrove-bare": ["tokenize_write"],
            "datatrove": ["tokenize_write"],
        },
        BARE_PAIR,
    ),
    ("  tokenize", {"corpusmill-bare": ["tokenize"]}, None),
    ("  write shards", {"corpusmill-bare": ["write"]}, None),
    (
        "drop..shards",
        {
            "corpusmill-bare": ["dedup_apply", "tokenize", "write"],
            **{job: [CHAIN_TAIL, "write"] for job in ENGINES},
            "datatrove-bare": ["dedup_apply", "tokenize_write"],
            "datatrove": ["dedup_apply", "tokenize_write"],
        },
        BARE_PAIR,
    ),
    ("engine shutdown", {job: ["finish"] for job in ENGINES}, None),
]


def _span_cpu(run: dict[str, Any], spans: list[str]) -> float | None:
    costs = run.get("costs", {})
    if not any(span in costs for span in spans):
        return None
    return sum(costs[span]["cpu_s"] for span in spans if span in costs)


# Ray's and Beam's CPU per document at most this many percent above the bare loop's on the same split of the
# input (`bench.engine_pairs`).
ENGINE_OVERHEAD_GOAL = 10.0


def per_document_cpu(run: dict[str, Any]) -> float | None:
    """A corpusmill run's CPU seconds less what does not grow with the corpus, or None for a failed run.

    An engine run less its start-up and shutdown and every worker's stage set-up; the bare loop less its
    start-up (what an engine worker loads as its engine starts) and its one set-up of each stage.
    """
    cpu = run.get("total", {}).get("cpu_s")
    if not cpu:
        return None
    return cpu - (_span_cpu(run, ["startup", "finish"]) or 0.0) - run.get("setup_cpu_s", 0.0)


def _repeats(run: dict[str, Any]) -> str | None:
    """Every repeat's CPU seconds, as `62/58` (the table keeps the cheapest); `x` marks a failed repeat."""
    repeats = run.get("repeats")
    if not repeats or len(repeats) < 2:
        return None
    return "/".join("x" if "error" in r else f"{r['cpu_s']:.0f}" for r in repeats)


def _rate(docs: int, cpu: float | None) -> float | None:
    return docs / cpu if cpu else None


def _ratio(row: dict[str, Any], pair: tuple[str, str] | None) -> float | None:
    if pair is None or row.get(pair[0]) is None or not row.get(pair[1]):
        return None
    return row[pair[0]] / row[pair[1]]


def projection(run: dict[str, Any], input_bytes: int) -> dict[str, float | None]:
    """Core-hours per trillion output tokens, for an 18T-token build, and per TB of input HTML."""
    cpu, tokens = run.get("total", {}).get("cpu_s"), run.get("tokens")
    per_token = cpu / tokens if cpu and tokens else None
    return {
        "core_hours_per_1T_tokens": per_token * 1e12 / 3600 if per_token else None,
        "core_hours_for_18T_tokens": per_token * 18e12 / 3600 if per_token else None,
        "core_hours_per_TB_html": cpu / input_bytes * 1e12 / 3600 if cpu and input_bytes else None,
    }


def build_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every table row as {label, <job>: value, ratio, unit}; values are None where a run has no such figure."""
    runs: dict[str, dict[str, Any]] = {job: r for job, r in results["runs"].items() if "error" not in r}
    docs, input_bytes = results["corpus"]["records"], results["corpus"]["html_bytes"]
    rows: list[dict[str, Any]] = []
    for label, spans, pair in STAGE_ROWS:
        row: dict[str, Any] = {"label": label, "unit": "docs/s/core"}
        for job, names in spans.items():
            if job in runs:
                row[job] = _rate(docs, _span_cpu(runs[job], names))
        rows.append({**row, "ratio": _ratio(row, pair)})

    def per_run(label: str, unit: str, value: Any, pair: tuple[str, str] | None = RUN_PAIR) -> None:
        row = {"label": label, "unit": unit, **{job: value(run) for job, run in runs.items()}}
        rows.append({**row, "ratio": _ratio(row, pair)})

    def total(run: dict[str, Any], key: str) -> float:
        return run["total"][key]

    per_run("end to end", "docs/s/core", lambda r: _rate(docs, total(r, "cpu_s")))
    fixed = results.get("fixed", {})
    fixed_runs = {job: r for job, r in fixed.get("runs", {}).items() if "error" not in r}
    if fixed_runs:
        skeleton_docs = int(fixed.get("records", 0))

        def fixed_cpu(job: str) -> float | None:
            return fixed_runs[job]["total"]["cpu_s"] if job in fixed_runs else None

        rows.append(
            {
                "label": "  fixed costs CPU s",
                "unit": "s",
                **{job: fixed_cpu(job) for job in runs if job in fixed_runs},
                "ratio": None,
            }
        )
        row = {"label": "  per doc, fixed apart", "unit": "docs/s/core"}
        for job, run in runs.items():
            if job in fixed_runs:
                row[job] = per_document_rate(docs, skeleton_docs, total(run, "cpu_s"), fixed_cpu(job))
        rows.append({**row, "ratio": _ratio(row, RUN_PAIR)})
    per_run("  input MB/s/core", "MB/s/core", lambda r: input_bytes / 1e6 / total(r, "cpu_s"))
    per_run("  CPU seconds", "s", lambda r: total(r, "cpu_s"))
    per_run("  CPU s, every repeat", "s", _repeats, None)
    per_run("  stage set-up CPU s", "s", lambda r: r.get("setup_cpu_s"), None)
    per_run("  wall seconds", "s", lambda r: total(r, "wall_s"))
    per_run("  cores busy", "cpu/wall", lambda r: total(r, "cpu_s") / total(r, "wall_s"))
    per_run("  peak RSS MB (tree)", "MB", lambda r: r["peak_rss_bytes"] / 1e6)
    per_run("  documents out", "docs", lambda r: r.get("docs_out"))
    per_run("  tokens out", "tokens", lambda r: r.get("tokens"))
    dedup = results.get("quality", {}).get("dedup", {})
    for key, label in (("precision", "dedup precision"), ("recall", "dedup recall"), ("f1", "dedup F1")):
        row = {"label": label, "unit": "", **{job: q[key] for job, q in dedup.items() if job in runs}}
        rows.append({**row, "ratio": _ratio(row, RUN_PAIR)})
    extraction = results.get("quality", {}).get("extraction", {})
    row = {"label": "extraction F1 (WCXB)", "unit": ""}
    for job, name in (
        ("corpusmill-bare", "corpusmill extract stage"),
        ("datatrove-bare", "datatrove extractor"),
    ):
        if name in extraction:
            row[job] = extraction[name]["f1"]
    rows.append({**row, "ratio": _ratio(row, BARE_PAIR)})
    for key, label in (
        ("core_hours_per_1T_tokens", "core-hours / 1T tokens"),
        ("core_hours_for_18T_tokens", "core-hours, 18T build"),
    ):
        row = {
            "label": label,
            "unit": "core-h",
            **{job: projection(run, input_bytes)[key] for job, run in runs.items()},
        }
        rows.append({**row, "ratio": _ratio(row, RUN_PAIR)})
    return rows


def _row(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    return next((row for row in rows if row["label"] == label), {})


def targets(results: dict[str, Any]) -> list[tuple[str, float | None, float | None, bool | None]]:
    """Each target of the project as (what, measured, goal, met); measured is None where a run is missing.

    Engine overhead is the extra CPU time per document of a run on the engine over the bare stage loop's:
    both without what does not grow with the corpus. That is, for an engine run, its start-up and shutdown
    (starting a local Ray instance with its workers ready takes about 4 CPU-seconds) and every worker's
    set-up of every stage (each worker loads the same libraries and models; `setup.cpu_seconds` in the run's
    stats), and for the bare loop its start-up and its one set-up of each stage. Everything else (scheduling,
    the files between steps, the engine's background load) counts. Here it is printed without a goal: with
    each job's cheapest of two runs spread over the whole bench beside datatrove's jobs, the figure moved by
    ten points between runs of the same code (Ray +7.5% to +19.8%), more than the overhead itself. The goal
    (`ENGINE_OVERHEAD_GOAL`) is checked by `bench.engine_pairs`, which measures the same figure in rounds
    whose order cancels a steady drift of the machine, against a bare loop whose copies share the input as
    the workers do (each copy here does the whole corpus). The whole-run figure is printed below it.
    """
    rows = results["table"]
    runs = {job: r for job, r in results["runs"].items() if "error" not in r}
    found: list[tuple[str, float | None, float | None, bool | None]] = []

    def add(what: str, value: float | None, goal: float | None, higher_is_better: bool = True) -> None:
        met = (
            None if value is None or goal is None else (value >= goal if higher_is_better else value <= goal)
        )
        found.append((what, value, goal, met))

    add("end to end, cm Ray / datatrove (x)", _row(rows, "end to end").get("ratio"), 1.5)
    per_document = _row(rows, "  per doc, fixed apart")
    if per_document:
        add("  per document, fixed costs apart (x)", per_document.get("ratio"), 2.0)
    add("MinHash stage, cm / dt bare (x)", _row(rows, "MinHash, all of it").get("ratio"), 5.0)
    bare_run = runs.get("corpusmill-bare", {})
    bare = bare_run.get("total", {}).get("cpu_s")
    bare_per_doc = per_document_cpu(bare_run)
    for job, name in (("corpusmill-ray", "Ray"), ("corpusmill-beam", "Beam")):
        run = runs.get(job, {})
        cpu = run.get("total", {}).get("cpu_s")
        per_doc = per_document_cpu(run)
        add(
            f"{name} overhead per doc (%; see engine_pairs)",
            (per_doc / bare_per_doc - 1) * 100 if per_doc and bare_per_doc else None,
            None,
            False,
        )
        add(
            f"  {name}, whole run with start/stop (%)", (cpu / bare - 1) * 100 if cpu and bare else None, None
        )
    tokenizer = results.get("tokenizer", {})
    ratio = tokenizer.get("ratio") if tokenizer.get("ids_equal") else None
    add("tokenizer vs HF, identical ids (x)", ratio, 4.0)
    add("dedup F1, cm Ray", _row(rows, "dedup F1").get("corpusmill-ray"), 0.95)
    extraction = results.get("quality", {}).get("extraction", {})
    stage = extraction.get("corpusmill extract stage", {})
    if results.get("settings", {}).get("extractor", "trafilatura") == "trafilatura":
        what, direct = "extraction F1, stage - direct", extraction.get("trafilatura direct", {})
    else:  # the same extractor and settings on both sides: the stage against datatrove's step
        what, direct = "extraction F1, stage - datatrove", extraction.get("datatrove extractor", {})
    if stage.get("f1") is not None and direct.get("f1") is not None:
        add(what, stage["f1"] - direct["f1"], 0.0)
    return found


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        magnitude = abs(value)
        if magnitude >= 1e7:
            return f"{value:.3g}"
        if magnitude >= 100:
            return f"{value:,.0f}"
        if magnitude >= 1:
            return f"{value:.2f}" if magnitude < 10 else f"{value:.1f}"
        return f"{value:.3f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def format_table(results: dict[str, Any]) -> str:
    """The printed report: a header, the table, the notes that say what the numbers are."""
    corpus, settings = results["corpus"], results["settings"]
    minhash = settings["minhash"]
    kinds = ", ".join(f"{count} {kind}s" for kind, count in sorted(corpus["by_kind"].items(), reverse=True))
    lines = [
        f"corpusmill vs datatrove: {corpus['records']} documents ({kinds}), "
        f"{corpus['html_bytes'] / 1e6:.0f} MB of HTML in {corpus['files']} WARC files; {results['machine']['cores']} cores, "
        f"load average {results['machine']['load_before']} before, {results['machine']['load_after']} after",
        f"MinHash: {minhash['bands']} bands x {minhash['rows']} rows of {minhash['num_perm']} permutations, "
        f"{minhash['ngram_size']}-grams, threshold {minhash['threshold']}; datatrove reader: {settings.get('datatrove_reader')}; "
        f"extractor on both sides: {settings.get('extractor', 'trafilatura')}",
        "",
    ]
    header = f"{'':24}" + "".join(f"{name:>11}" for name, _ in COLUMNS) + f"{'ratio':>8}"
    lines.append(header)
    extraction = results.get("quality", {}).get("extraction", {})
    for row in results["table"]:
        if row["label"] in ("end to end", "dedup precision", "core-hours / 1T tokens"):
            lines.append("")
        cells = "".join(f"{_cell(row.get(job)):>11}" for _, job in COLUMNS)
        lines.append(f"{row['label'][:24]:24}{cells}{_cell(row.get('ratio')):>8}")
        if row["label"].startswith("extraction F1") and "trafilatura direct" in extraction:
            direct = extraction["trafilatura direct"]
            lines.append(
                f"{'  trafilatura direct':24}{_cell(direct['f1']):>11}  (the stage's trafilatura settings; "
                f"{direct['pages']} pages)"
            )
    tokenizer = results.get("tokenizer", {})
    if "corpusmill" in tokenizer:
        lines.append(
            f"{'tokenizer MB/s/core':24}{_cell(tokenizer['corpusmill']['mb_per_s']):>11}  (Hugging Face "
            f"{_cell(tokenizer['huggingface']['mb_per_s'])}; ids identical: {'yes' if tokenizer['ids_equal'] else 'NO'}; "
            f"{tokenizer['documents']} WCXB texts, one thread)"
        )
    lines += ["", f"{'target':44}{'measured':>10}{'goal':>8}  met"]
    for what, value, goal, met in targets(results):
        verdict = "-" if met is None else ("yes" if met else "NO")
        lines.append(f"{what:44}{_cell(value):>10}{_cell(goal):>8}  {verdict}")
    failed = {job: run["error"].splitlines()[0] for job, run in results["runs"].items() if "error" in run}
    lines += [f"FAILED {job}: {error}" for job, error in failed.items()]
    for job, run in results["runs"].items():
        errors = [r["error"] for r in run.get("repeats", []) if "error" in r]
        if errors and "error" not in run:
            lines.append(f"FAILED {job}, {len(errors)} of its repeats: {errors[0].splitlines()[0]}")
    lines += [
        "",
        "Stage rows: input documents per CPU-second of that stage (all processes). End to end: the whole run.",
        "per doc, fixed apart: (documents - the skeleton's) / (CPU - the same job's CPU on the corpus's skeleton,",
        "the same files with only their first record): what the documents cost, start-up and set-ups set apart.",
        "Each job ran as often as the repeats say and shows its cheapest run (every repeat's CPU seconds above).",
        f"Bare loops ran as {results['machine'].get('bare_copies', 1)} copies at once (one per core, as the engines' "
        "workers do) and show the copies' mean.",
        "ratio = corpusmill / datatrove: cm bare / dt bare for stage rows, cm Ray / datatrove below them.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """`python -m bench.report RESULTS.json`: print the table of a saved run again."""
    import json
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m bench.report RESULTS.json")
    print(format_table(json.loads(Path(args[0]).read_text(encoding="utf-8"))))


if __name__ == "__main__":
    main()
