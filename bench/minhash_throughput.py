"""Single-core throughput of MinHash signatures: `dedup_minhash` v2 against datasketch and datatrove.

Every method hashes the same WCXB ground-truth texts (full length, in file-name order) with word 5-grams:

- `dedup_minhash_v2` signatures alone (`MinHasher.signatures`, numpy over a whole batch), and the stage's
  `keys_and_side_data` as the runner calls it (signatures, LSH band keys, and the bottom-k sketches that
  `confirm` verifies candidates with);
- `dedup_minhash_v1`'s `keys_and_side_data` and its signature alone: datasketch, one document at a time;
- datatrove 0.10's `MinhashDedupSignature`: its per-document shingling and signature in memory, and the
  whole pipeline step, which also writes and sorts the per-bucket signature files (in a temporary folder).
  datatrove's default shingle hash needs `xxhash`, which is not a dependency here, so it runs with its SHA-1
  64-bit hash; its default English word tokenizer is spaCy's, and its default 14 x 8 = 112 permutations
  stand against our 128.

Rates are documents and MB of text per CPU second of this process, so other load on the machine skews them
less than wall time; the fast methods are repeated and the best pass is kept. Documents without words count
as processed (every method skips them).

    python bench/minhash_throughput.py [--data DIR] [--docs N] [--batch N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from datasketch import MinHash

from corpusmill.core import schema
from corpusmill.filters.dedup import DedupMinHash, DedupMinHashV1, shingles

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wcxb-dev" / "ground-truth"


def load_texts(directory: Path, limit: int) -> list[str]:
    """The main-content text of the first `limit` WCXB pages that have one, in file-name order."""
    texts = []
    for path in sorted(directory.glob("*.json")):
        truth = json.loads(path.read_text(encoding="utf-8")).get("ground_truth") or {}
        text = truth.get("main_content")
        if text and text.strip():
            texts.append(text)
        if len(texts) == limit:
            break
    if not texts:
        raise SystemExit(f"no ground-truth texts found in {directory}; pass --data DIR")
    return texts


def timed(work: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best CPU seconds and best wall seconds of `repeat` runs of `work`."""
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        work()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_cpu, best_wall


def datatrove_methods(texts: list[str]) -> dict[str, Callable[[], object]]:
    """datatrove's signature work in memory, and its whole signature step writing into a temporary folder."""
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    config = MinhashConfig(hash_config=HashConfig(hash_fc="sha1", precision=64))
    in_memory = MinhashDedupSignature(tempfile.mkdtemp(prefix="minhash-bench-"), config=config)

    def signatures() -> None:
        for text in texts:
            grams = in_memory.get_shingles(text)
            if grams.size:
                in_memory.get_signature(grams)

    def step() -> None:
        with tempfile.TemporaryDirectory(prefix="minhash-bench-") as folder:
            documents = (Document(text=text, id=str(i)) for i, text in enumerate(texts))
            MinhashDedupSignature(folder, config=config).run(documents, rank=0, world_size=1)

    return {"datatrove signatures (in memory)": signatures, "datatrove MinhashDedupSignature step": step}


def main() -> None:
    """Time every method on the same texts and print one row each."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="WCXB ground-truth directory")
    parser.add_argument("--docs", type=int, default=300, help="documents (the first N with text)")
    parser.add_argument("--batch", type=int, default=1000, help="documents per batch for dedup_minhash_v2")
    parser.add_argument("--repeat", type=int, default=3, help="passes of each fast method (best kept)")
    parser.add_argument("--no-datatrove", action="store_true", help="skip datatrove (its pass is slow)")
    args = parser.parse_args()

    texts = load_texts(args.data, args.docs)
    megabytes = sum(len(text.encode("utf-8")) for text in texts) / 1e6
    batches = [
        schema.reader_batch([{"id": f"doc-{i:06d}", "text": text} for i, text in enumerate(chunk, start)])
        for start in range(0, len(texts), args.batch)
        for chunk in [texts[start : start + args.batch]]
    ]
    v2, v1 = DedupMinHash(), DedupMinHashV1()
    v2.setup()  # the word table is built once per process; no method pays for it
    params = v1.params

    def v1_signatures() -> None:
        for text in texts:
            grams = shingles(text, params.ngram_size, params.lowercase)  # type: ignore[attr-defined]
            if grams:
                minhash = MinHash(num_perm=params.num_perm, seed=params.seed)  # type: ignore[attr-defined]
                minhash.update_batch(grams)

    methods: dict[str, tuple[Callable[[], object], int]] = {
        "dedup_minhash_v2 signatures": (
            lambda: [
                v2.hasher.signatures(texts[i : i + args.batch]) for i in range(0, len(texts), args.batch)
            ],
            args.repeat,
        ),
        "dedup_minhash_v2 keys_and_side_data": (
            lambda: [v2.keys_and_side_data(batch) for batch in batches],
            args.repeat,
        ),
        "datasketch per document (v1 signatures)": (v1_signatures, 1),
        "dedup_minhash_v1 keys_and_side_data": (lambda: [v1.keys_and_side_data(b) for b in batches], 1),
    }
    if not args.no_datatrove:
        methods.update({name: (work, 1) for name, work in datatrove_methods(texts).items()})

    print(f"\n{len(texts)} documents, {megabytes:.1f} MB of text, word 5-grams, one thread\n")
    print(f"{'method':<42} {'docs/s/core':>12} {'MB/s/core':>10} {'wall s':>8} {'vs v2 keys':>11}")
    reference = None
    for name, (work, repeat) in methods.items():
        cpu, wall = timed(work, repeat)
        rate = len(texts) / cpu
        if name == "dedup_minhash_v2 keys_and_side_data":
            reference = rate
        ratio = f"{reference / rate:>10.1f}x" if reference else f"{'':>11}"
        print(f"{name:<42} {rate:>12,.0f} {megabytes / cpu:>10.2f} {wall:>8.2f} {ratio}")
    present = v2.hasher.signatures(texts)[1]
    print(f"\n{int(np.count_nonzero(present))} of {len(texts)} documents have shingles")


if __name__ == "__main__":
    main()
