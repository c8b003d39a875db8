"""Training throughput of the bundled backend: the tiny preset at a few sequence lengths and batch sizes, on
CPU and, when one is visible, on a CUDA GPU, over shards of real article text.

The shards are built the way the pipeline builds them (WCXB ground-truth texts tokenised with
`encode_documents`, written by `MegatronWriter`, described by a `ShardManifest`; the last shard is held out).
Each row is one call of the real `corpusmill.training.train` in a fresh process, so its peak RSS is that
row's alone and CPU rows can hide the GPU (`CUDA_VISIBLE_DEVICES=`) from a trainer that would otherwise take
it. Step times come from the trainer's own per-step `tokens_per_s` in metrics.jsonl (`log_every: 1`); the
first steps of a row are warm-up and are not timed, and the median step is reported.

    python bench/training_throughput.py [--data DIR] [--shapes 64x2,128x4,512x1] [--steps N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wcxb-dev" / "ground-truth"
DEFAULT_SHAPES = "64x2,128x4,512x1"  # seq_len x micro_batch_size; 128x4 is the tiny preset's own
WORKER_FLAG = "--worker"


def load_texts(directory: Path, limit: int) -> list[str]:
    """The first `limit` non-empty ground-truth main contents, in file-name order."""
    texts = []
    for path in sorted(directory.glob("*.json")):
        content = json.loads(path.read_text(encoding="utf-8"))["ground_truth"].get("main_content")
        if content and content.strip():
            texts.append(content)
            if len(texts) == limit:
                break
    if not texts:
        raise SystemExit(f"no ground-truth texts found in {directory}; pass --data DIR")
    return texts


def build_shards(
    texts: list[str], out: Path, num_shards: int = 4, heldout_fraction: float = 0.1
) -> dict[str, int]:
    """Tokenise and write the texts as Megatron shards plus a manifest; return the totals.

    Documents are held out by the rule `write_shards` uses (a seeded hash of the document's id), into one
    held-out shard; the rest go to `num_shards` training shards.
    """
    from corpusmill.shards.manifest import HeldoutInfo, ShardEntry, ShardManifest
    from corpusmill.shards.megatron import MegatronWriter
    from corpusmill.shards.split import HELDOUT, heldout_mask, heldout_threshold
    from corpusmill.shards.tokenizer import encode_documents

    docs = encode_documents(texts, num_threads=os.cpu_count() or 1)
    held = heldout_mask(0, [f"text-{n}" for n in range(len(docs))], None, heldout_threshold(heldout_fraction))
    entries = []
    for number, chunk in enumerate(np.array_split(np.flatnonzero(~held), num_shards)):
        writer = MegatronWriter(out / f"bench-{number:05d}")
        for index in chunk:
            writer.add_document(np.asarray(docs[index], dtype=np.int32))
        entries.append(ShardEntry.from_info(writer.finalize(), out))
    writer = MegatronWriter(out / "heldout-00000")
    for index in np.flatnonzero(held):
        writer.add_document(np.asarray(docs[index], dtype=np.int32))
    entries.append(ShardEntry.from_info(writer.finalize(), out, HELDOUT))
    manifest = ShardManifest.from_shards(entries, heldout=HeldoutInfo(fraction=heldout_fraction, seed=0))
    manifest.write(out / "manifest.json")
    return {"documents": manifest.total_documents, "tokens": manifest.total_tokens, "shards": num_shards}


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """`"128x4,512x1"` -> [(128, 4), (512, 1)] (sequence length x micro-batch size)."""
    shapes = []
    for item in text.split(","):
        try:
            seq_len, batch = (int(part) for part in item.strip().lower().split("x"))
        except ValueError:
            raise SystemExit(f"--shapes: {item!r} is not SEQxBATCH, e.g. 128x4") from None
        shapes.append((seq_len, batch))
    return shapes


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one row's configuration in this process and measure it (called in a child process)."""
    import torch

    from corpusmill.training import load_config, train
    from corpusmill.training.metrics import read_metrics

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    steps = spec["warmup"] + spec["steps"]
    config = load_config(
        "tiny",
        seq_len=spec["seq_len"],
        micro_batch_size=spec["batch"],
        max_steps=steps,
        warmup_steps=0,
        log_every=1,
        eval_every=0,
        heldout_windows=1,
        checkpoint_every=0,
    )
    result = train(Path(spec["shards"]), config, Path(spec["out"]))
    records = read_metrics(result.metrics_path)
    timed = [r["tokens_per_s"] for r in records if "tokens_per_s" in r and r["step"] > spec["warmup"]]
    step_s = statistics.median(config.tokens_per_step / tps for tps in timed)
    tokens_per_s = config.tokens_per_step / step_s
    on_cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name(0) if on_cuda else "cpu",
        "threads": None if on_cuda else torch.get_num_threads(),
        "seq_len": config.seq_len,
        "micro_batch": config.micro_batch_size,
        "tokens_per_step": config.tokens_per_step,
        "steps_timed": len(timed),
        "step_ms": step_s * 1e3,
        "tokens_per_s": tokens_per_s,
        "tokens_per_s_per_core": None if on_cuda else tokens_per_s / torch.get_num_threads(),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if on_cuda else None,
        "final_loss": result.losses[steps],
    }


def measure(spec: dict[str, Any], *, cuda: bool) -> dict[str, Any]:
    """Run one row in a fresh interpreter (GPU hidden unless `cuda`) and return its measurements."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    if not cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run(
        [sys.executable, __file__, WORKER_FLAG, json.dumps(spec)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(
            f"training seq_len={spec['seq_len']} batch={spec['batch']} failed:\n{done.stdout}\n{done.stderr}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_table(rows: list[dict[str, Any]]) -> None:
    """One line per row, in the units a capacity estimate wants."""
    header = (
        f"{'device':<22} {'threads':>7} {'seq':>5} {'batch':>5} {'tok/step':>8} {'step ms':>9} "
        f"{'tok/s':>9} {'tok/s/core':>10} {'peak RSS MiB':>12} {'peak GPU MiB':>12}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['device'][:22]:<22} {_cell(row['threads'], 'd'):>7} {row['seq_len']:>5} "
            f"{row['micro_batch']:>5} {row['tokens_per_step']:>8} {row['step_ms']:>9.1f} "
            f"{row['tokens_per_s']:>9.0f} {_cell(row['tokens_per_s_per_core'], '.0f'):>10} "
            f"{row['peak_rss_mib']:>12.0f} {_cell(row['peak_gpu_mib'], '.0f'):>12}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="WCXB ground-truth directory")
    parser.add_argument("--docs", type=int, default=300, help="how many texts to tokenise into shards")
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="SEQxBATCH list, e.g. 128x4,512x1")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per CPU row")
    parser.add_argument("--cuda-steps", type=int, default=40, help="timed steps per CUDA row")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--no-cuda", action="store_true", help="skip the CUDA rows even if a GPU is visible")
    parser.add_argument("--json", type=Path, help="also write the table (and the shard sizes) here as JSON")
    args = parser.parse_args()

    import torch

    shapes = parse_shapes(args.shapes)
    devices = [False] + ([True] if torch.cuda.is_available() and not args.no_cuda else [])
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="corpusmill-train-bench-") as tmp:
        shards = Path(tmp) / "shards"
        sizes = build_shards(load_texts(args.data, args.docs), shards)
        print(
            f"{sizes['documents']} documents, {sizes['tokens']:,} tokens in {sizes['shards']} shards "
            f"(the last held out); tiny preset, float32, {os.cpu_count()} CPUs visible"
        )
        for cuda in devices:
            steps, warmup = (args.cuda_steps, 5) if cuda else (args.steps, 1)
            for number, (seq_len, batch) in enumerate(shapes):
                spec = {
                    "shards": str(shards),
                    "out": str(Path(tmp) / f"run-{'cuda' if cuda else 'cpu'}-{number}"),
                    "seq_len": seq_len,
                    "batch": batch,
                    "steps": steps,
                    "warmup": warmup,
                    "threads": args.threads,
                }
                rows.append(measure(spec, cuda=cuda))
    print_table(rows)
    print(f"wall time {time.perf_counter() - started:.0f} s")
    if args.json:
        from corpusmill.core.atomic import write_json

        write_json(args.json, {"shards": sizes, "rows": rows})
        print(f"wrote {args.json}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == WORKER_FLAG:
        print(json.dumps(run_worker(json.loads(sys.argv[2]))))
    else:
        main()
