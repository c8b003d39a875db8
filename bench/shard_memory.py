"""write_shards memory against part size: a part is staged in bounded runs, so peak memory stays flat.

A big input file is one part, so the scatter phase of `write_shards` must not hold a part's tokens at once.
Each row writes one part of synthetic documents (random token ids, 100-700 tokens each, read in batches of
1,000 as the engines hand them over) through the sink's three phases (`write_part`, the gather tasks,
`finalize`) in a fresh process, and reports that process's peak resident memory (`ru_maxrss`) above its
baseline after imports, during the scatter phase and over the whole write. Every size is written twice: with
the staging budget (`--run-tokens`, small here so that every size spans several runs; the stage's default is
`RUN_TOKENS`) and with one run for the whole part, which holds the part in memory as the earlier design did.
The shard files of the two must be identical.

    python -m bench.shard_memory [--docs 10000] [--sizes 1,4,16] [--run-tokens 2000000] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

BATCH_DOCS = 1000
TOKENS_PER_DOC = (100, 700)
VOCAB = 151_000
MAX_TOKENS_PER_SHARD = (
    1_000_000  # a gather task holds about one shard: below the 1x part, so the same for every size
)
ONE_RUN = 1 << 62  # a budget no part reaches: the whole part is one run


def synthetic_batches(docs: int, seed: int = 0) -> Iterator[pa.RecordBatch]:
    """`docs` documents of random tokens with `id` and `tokens` columns, generated batch by batch."""
    for first in range(0, docs, BATCH_DOCS):
        count = min(BATCH_DOCS, docs - first)
        rng = np.random.default_rng([seed, first])
        lengths = rng.integers(*TOKENS_PER_DOC, size=count)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        values = rng.integers(0, VOCAB, size=int(offsets[-1]), dtype=np.int32)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array([f"doc-{i:09d}" for i in range(first, first + count)], pa.string()),
                pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)),
            ],
            names=["id", "tokens"],
        )


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_one(docs: int, run_tokens: int, work: Path) -> dict[str, Any]:
    """Write one part of `docs` documents with the given staging budget; what it held (call in a fresh child)."""
    from corpusmill.core.stage import SinkContext
    from corpusmill.shards.writer import WriteShardsStage

    def stage_and_context(name: str) -> tuple[WriteShardsStage, SinkContext]:
        stage = WriteShardsStage(WriteShardsStage.Params(max_tokens_per_shard=MAX_TOKENS_PER_SHARD))
        stage.run_tokens = run_tokens
        context = SinkContext(recipe_name="bench", recipe_fingerprint="0" * 16, seed=0, work_dir=work / name)
        return stage, context

    # Warm up on a few documents, so lazily imported modules (pyarrow.dataset, pandas) count in the baseline.
    stage, context = stage_and_context("warm-up")
    written = [stage.write_part(synthetic_batches(10, seed=1), work / "warm-up-shards", "p", context)]
    for task in stage.plan_gather(written, context):
        stage.gather(task, work / "warm-up-shards", context)
    baseline = _peak_mb()

    stage, context = stage_and_context("run")
    out = work / "shards"
    started = time.monotonic()
    written = [stage.write_part(synthetic_batches(docs), out, "part-00000", context)]
    scatter_peak = _peak_mb()
    gathered = [stage.gather(task, out, context) for task in stage.plan_gather(written, context)]
    manifest = stage.finalize(written, gathered, out, context)
    return {
        "docs": docs,
        "tokens": manifest["total_tokens"],
        "run_tokens": run_tokens,
        "runs": len(written[0]["runs"]),
        "shards": len(manifest["shards"]),
        "shard_sha256": [shard["bin_sha256"] for shard in manifest["shards"]],
        "baseline_mb": baseline,
        "scatter_mb": scatter_peak - baseline,
        "peak_mb": _peak_mb() - baseline,
        "wall_s": time.monotonic() - started,
    }


def _child(docs: int, run_tokens: int) -> dict[str, Any]:
    """Run one row in a fresh interpreter, so its peak RSS is its own."""
    with tempfile.TemporaryDirectory(prefix="corpusmill-shard-memory-") as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "bench.shard_memory", "--child", str(docs), str(run_tokens), tmp],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run every size with the budget and as one run, each in a child process, and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.shard_memory", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--docs", type=int, default=10_000, help="documents of the 1x part")
    parser.add_argument("--sizes", default="1,4,16", help="part sizes, as multiples of --docs")
    parser.add_argument("--run-tokens", type=int, default=2_000_000, help="the staging budget, in tokens")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--child", nargs=3, metavar=("DOCS", "RUN_TOKENS", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(int(args.child[0]), int(args.child[1]), Path(args.child[2]))))
        return []
    rows = []
    for multiple in [int(s) for s in args.sizes.split(",")]:
        docs = args.docs * multiple
        print(f"{docs} documents ...", file=sys.stderr, flush=True)
        streamed, whole = _child(docs, args.run_tokens), _child(docs, ONE_RUN)
        rows.append({"size": multiple, "streamed": streamed, "one_run": whole})
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table: memory above the baseline, streamed against one run per part."""
    budget = rows[0]["streamed"]["run_tokens"] if rows else 0
    header = (
        f"{'part':>5} {'documents':>10} {'tokens':>12} {'runs':>5} {'scatter MB':>11} {'peak MB':>8} "
        f"{'one run: scatter MB':>20} {'peak MB':>8} {'same shards':>12} {'wall s':>7}"
    )
    lines = [
        f"write_shards: one part, staging budget {budget:,} tokens, against the whole part as one run",
        header,
    ]
    for row in rows:
        streamed, whole = row["streamed"], row["one_run"]
        same = "yes" if streamed["shard_sha256"] == whole["shard_sha256"] else "NO"
        lines.append(
            f"{str(row['size']) + 'x':>5} {streamed['docs']:>10,} {streamed['tokens']:>12,} {streamed['runs']:>5} "
            f"{streamed['scatter_mb']:>11.0f} {streamed['peak_mb']:>8.0f} {whole['scatter_mb']:>20.0f} "
            f"{whole['peak_mb']:>8.0f} {same:>12} {streamed['wall_s']:>7.1f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
