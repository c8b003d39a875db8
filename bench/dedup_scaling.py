"""Deduplication memory as the corpus grows: the driver stays flat, each task holds one bucket.

Builds synthetic JSONL corpora of growing size (fixed documents per file, so parts and buckets grow with the
corpus), with near-duplicate copies and chains of copies so that components span parts, and runs a recipe of
`dedup_minhash` alone on an engine. Every size runs in a fresh process, whose peak resident memory
(`ru_maxrss`) is the driver's; the table also shows how much a single process would have had to hold in the
old design (every key, sketch and edge of the run) and the largest input of any bucket task (the per-task
bound: one bucket's rows of every file of the previous phase).

    python -m bench.dedup_scaling [--sizes 10000,20000,40000] [--engine ray] [--docs-per-file 5000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

WORDS = 6000
WORDS_PER_DOC = (60, 160)
DUP_FRACTION = 0.3


def _vocabulary(rnd: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rnd.choice(letters) for _ in range(rnd.randint(3, 10))) for _ in range(WORDS)]


def write_corpus(directory: Path, docs: int, docs_per_file: int, seed: int = 0) -> None:
    """`docs` documents in files of `docs_per_file`; about DUP_FRACTION are lightly edited copies of earlier ones."""
    rnd = random.Random(seed)
    vocabulary = _vocabulary(rnd)
    texts: list[list[str]] = []
    for first in range(0, docs, docs_per_file):
        lines = []
        for _ in range(first, min(docs, first + docs_per_file)):
            if texts and rnd.random() < DUP_FRACTION:
                words = list(
                    rnd.choice(texts)
                )  # a copy of any earlier document, itself perhaps a copy: chains
                for _ in range(max(1, len(words) // 60)):
                    words[rnd.randrange(len(words))] = rnd.choice(vocabulary)
            else:
                words = [rnd.choice(vocabulary) for _ in range(rnd.randint(*WORDS_PER_DOC))]
            texts.append(words)
            lines.append(json.dumps({"id": f"{rnd.getrandbits(64):016x}", "text": " ".join(words)}) + "\n")
        (directory / f"docs-{first // docs_per_file:05d}.jsonl").write_text("".join(lines), encoding="utf-8")


def _bucket_bytes(step_dir: Path, phase: str) -> tuple[int, int]:
    """(total bytes of a phase's files, largest bucket's bytes summed over them)."""
    files = sorted((step_dir / phase).glob("*.arrow"))
    if not files:
        return 0, 0
    per_bucket: list[int] = []
    total = 0
    for path in files:
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
        sizes = [reader.get_batch(b).nbytes for b in range(reader.num_record_batches)]
        per_bucket = [a + b for a, b in zip(per_bucket, sizes, strict=True)] if per_bucket else sizes
        total += sum(sizes)
    return total, max(per_bucket)


def run_one(input_dir: Path, run_dir: Path, engine: str) -> dict[str, Any]:
    """Run the dedup recipe in this process and describe what it held (called in a fresh child)."""
    from corpusmill.core.recipe import parse_recipe
    from corpusmill.pipelines.runner import run_recipe

    recipe = parse_recipe(
        {
            "name": "dedup-scaling",
            "input": {"paths": [str(input_dir / "*.jsonl")], "format": "jsonl", "part_bytes": 1},
            "stages": [{"stage": "dedup_minhash", "threshold": 0.8}],
            "output": {"keep_rejected": False},
        }
    )
    started = time.monotonic()
    result = run_recipe(recipe, engine=engine, output=run_dir, num_cpus=None)
    wall = time.monotonic() - started
    (step_dir,) = [p for p in (run_dir / "stages").iterdir() if "dedup" in p.name]
    summary = json.loads((step_dir / "duplicates.json").read_text(encoding="utf-8"))
    components = sorted(p.name for p in step_dir.iterdir() if p.name.startswith("components-"))
    phases = ["keys", "keys/side", "candidates", "attached", *components]
    sizes = {phase: _bucket_bytes(step_dir, phase) for phase in phases}
    removed = sum(sum(stage.dropped.values()) for stage in result.summary.stages if "dedup" in stage.label)
    return {
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "wall_s": wall,
        "buckets": summary["buckets"],
        "candidate_edges": summary["candidate_edges"],
        "confirmed_edges": summary["confirmed_edges"],
        "star_steps": summary["star_steps"],
        "one_process_mb": sum(total for total, _ in sizes.values()) / 2**20,
        "largest_task_mb": max(largest for _, largest in sizes.values()) / 2**20,
        "removed": removed,
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Build each size, run it in a child process, print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.dedup_scaling", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sizes", default="10000,20000,40000", help="documents per corpus, comma-separated")
    parser.add_argument("--docs-per-file", type=int, default=5000)
    parser.add_argument("--engine", default="ray", choices=["ray", "beam", "local"])
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--child", nargs=3, metavar=("INPUT", "RUN", "ENGINE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(Path(args.child[0]), Path(args.child[1]), args.child[2])))
        return []
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="corpusmill-dedup-scaling-") as tmp:
            input_dir = Path(tmp) / "input"
            input_dir.mkdir()
            write_corpus(input_dir, size, args.docs_per_file)
            print(f"{size} documents ...", file=sys.stderr, flush=True)
            child = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.dedup_scaling",
                    "--child",
                    str(input_dir),
                    f"{tmp}/run",
                    args.engine,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            rows.append({"docs": size, **json.loads(child.stdout.strip().splitlines()[-1])})
    print(format_table(rows, args.engine))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return rows


def format_table(rows: list[dict[str, Any]], engine: str) -> str:
    """The rows as a plain-text table."""
    header = (
        f"{'documents':>10} {'buckets':>8} {'candidates':>11} {'confirmed':>10} {'star steps':>10} "
        f"{'removed':>8} {'all keys+sketches+edges MB':>27} {'largest task MB':>16} {'driver peak RSS MB':>19} "
        f"{'wall s':>7}"
    )
    lines = [f"dedup_minhash on {engine}: driver memory against corpus size", header]
    for row in rows:
        lines.append(
            f"{row['docs']:>10,} {row['buckets']:>8} {row['candidate_edges']:>11,} {row['confirmed_edges']:>10,} "
            f"{row['star_steps']:>10} {row['removed']:>8,} {row['one_process_mb']:>27.1f} {row['largest_task_mb']:>16.1f} "
            f"{row['driver_peak_rss_mb']:>19.0f} {row['wall_s']:>7.1f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
