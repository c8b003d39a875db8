"""Single-core encode throughput of our tiktoken Qwen2.5 path versus the Hugging Face tokenizer built from the
same ranks, on the WCXB ground-truth texts, plus whether the two produce identical ids.

Both run on one thread (tiktoken with `num_threads=1`, Hugging Face with its Rayon pool disabled), so the
numbers are MB/s per core. Each tokenizer encodes the whole corpus in batches, repeated until a time budget
is spent; the best pass is reported. Time is the process's CPU time, so other load on the machine does not
skew the ratio.

    python -m bench.tokenizer_throughput [--data DIR] [--seconds S] [--json FILE]
"""

from __future__ import annotations

import os

# Must be set before `tokenizers` is imported, or encode_batch fans out over every core.
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corpusmill.shards.hf_tokenizer import build_hf_tokenizer
from corpusmill.shards.tokenizer import encode_documents, qwen25_encoding

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wcxb-dev" / "ground-truth"
BATCH = 64


def load_texts(directory: Path) -> list[str]:
    """Every non-empty ground-truth main content in the directory, in file-name order."""
    texts = []
    for path in sorted(directory.glob("*.json")):
        content = json.loads(path.read_text(encoding="utf-8"))["ground_truth"].get("main_content")
        if content and content.strip():
            texts.append(content)
    if not texts:
        raise SystemExit(f"no ground-truth texts found in {directory}; pass --data DIR")
    return texts


def time_passes(encode: Callable[[list[str]], list[list[int]]], texts: list[str], budget: float) -> float:
    """Best CPU time of whole-corpus passes, running at least one and more while the budget lasts."""
    best = float("inf")
    spent = 0.0
    while spent < budget or best == float("inf"):
        start = time.process_time()
        for i in range(0, len(texts), BATCH):
            encode(texts[i : i + BATCH])
        elapsed = time.process_time() - start
        best = min(best, elapsed)
        spent += elapsed
    return best


def measure(texts: list[str], seconds: float) -> dict[str, Any]:
    """Both tokenizers on the texts: identical ids or not, and MB/s and tokens/s per core of each."""
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    qwen25_encoding()  # load both before timing
    hf = build_hf_tokenizer()
    hf.encode_special_tokens = True  # document text is ordinary text, as in encode_documents

    def ours(batch: list[str]) -> list[list[int]]:
        return encode_documents(batch, add_eos=False, num_threads=1)

    def theirs(batch: list[str]) -> list[list[int]]:
        return [enc.ids for enc in hf.encode_batch(batch, add_special_tokens=False)]

    ours_ids, theirs_ids = ours(texts), theirs(texts)
    tokens = sum(map(len, ours_ids))
    result: dict[str, Any] = {
        "documents": len(texts),
        "megabytes": megabytes,
        "tokens": tokens,
        "ids_equal": ours_ids == theirs_ids,
        "documents_differing": sum(a != b for a, b in zip(ours_ids, theirs_ids, strict=True)),
    }
    for key, encode in (("corpusmill", ours), ("huggingface", theirs)):
        cpu = time_passes(encode, texts, seconds)
        result[key] = {"cpu_s": cpu, "mb_per_s": megabytes / cpu, "tokens_per_s": tokens / cpu}
    result["ratio"] = result["corpusmill"]["mb_per_s"] / result["huggingface"]["mb_per_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="WCXB ground-truth directory")
    parser.add_argument("--seconds", type=float, default=8.0, help="CPU time budget per tokenizer")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    result = measure(load_texts(args.data), args.seconds)
    print(
        f"{result['documents']} documents, {result['megabytes']:.2f} MB UTF-8, {result['tokens']:,} tokens, "
        f"batch {BATCH}, 1 thread"
    )
    print(f"{'tokenizer':<24} {'best pass s':>12} {'MB/s/core':>10} {'Mtok/s':>8}")
    for name, key in (("tiktoken (corpusmill)", "corpusmill"), ("huggingface tokenizers", "huggingface")):
        row = result[key]
        print(f"{name:<24} {row['cpu_s']:>12.3f} {row['mb_per_s']:>10.2f} {row['tokens_per_s'] / 1e6:>8.2f}")
    differing = result["documents_differing"]
    print(f"ids equal: {'yes' if result['ids_equal'] else f'no ({differing} documents differ)'}")
    print(f"ratio: {result['ratio']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
