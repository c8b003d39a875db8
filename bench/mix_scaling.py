"""The mix stage's driver as the corpus grows: bounded summaries, flat memory, logarithmically more rounds.

Builds synthetic Arrow batches of growing size (four domains, all at fractional rates, token counts from 1 to
2,000) dealt into a fixed number of parts, and drives the `mix` stage's accounting rounds as the runner does:
each part merges its batches' summaries and hands the driver JSON (what its marker holds); the driver parses
and merges them and plans the next round. Only the driver's side is traced (`tracemalloc`), so its peak is
what planning cost, not the parts' work. Beside it, how many document ids the previous design gathered on the
driver to fit the thresholds: every document of the 1/1024 slice of the draw range that crosses the target,
read off this run's first refining round, which cuts the same slices.

    python -m bench.mix_scaling [--sizes 10000,100000,1000000,2000000] [--parts 16] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pyarrow as pa

from corpusmill.mixtures.mix_stage import MixStage
from corpusmill.mixtures.spec import MixParams
from corpusmill.mixtures.threshold import KEY_BITS, SLICE_BITS, Window

DOMAINS = {"news": 0.6, "shop": 0.25, "science": 0.1, "forum": 0.05}  # shares of the documents
RATES = {"news": 0.37, "shop": 0.55, "science": 1.45, "forum": 2.3}
BATCH_ROWS = 10_000
MAX_TOKENS = 2_000
SCHEMA = pa.schema([("id", pa.string()), ("domain", pa.string()), ("token_count", pa.int32())])


def build_parts(docs: int, parts: int, seed: int = 0) -> list[list[pa.RecordBatch]]:
    """`docs` documents dealt round-robin into `parts` parts of batches of at most BATCH_ROWS rows."""
    rnd = random.Random(seed)
    names, shares = list(DOMAINS), list(DOMAINS.values())
    rows: list[list[tuple[str, str, int]]] = [[] for _ in range(parts)]
    for index in range(docs):
        row = (f"{rnd.getrandbits(64):016x}", rnd.choices(names, shares)[0], rnd.randint(1, MAX_TOKENS))
        rows[index % parts].append(row)
    return [
        [_batch(part[first : first + BATCH_ROWS]) for first in range(0, len(part), BATCH_ROWS)]
        for part in rows
    ]


def _batch(rows: list[tuple[str, str, int]]) -> pa.RecordBatch:
    ids, domains, tokens = zip(*rows, strict=True) if rows else ((), (), ())
    return pa.RecordBatch.from_arrays(
        [pa.array(ids, pa.string()), pa.array(domains, pa.string()), pa.array(tokens, pa.int32())],
        schema=SCHEMA,
    )


def _part_summary(stage: MixStage, part: list[pa.RecordBatch], plan: dict[str, Any] | None) -> str:
    """What one part hands the driver for a round: its batches' summaries merged, as JSON."""
    summary = None
    for batch in part:
        result = stage.account(batch, plan)
        summary = result if summary is None else stage.merge(summary, result)
    return json.dumps(summary)


def _driver_round(
    stage: MixStage, received: list[str], plan: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any], bool, int]:
    """Parse, merge and plan, traced: (merged summary, plan, final, peak bytes allocated)."""
    tracemalloc.start()
    merged = None
    for text in received:
        summary = json.loads(text)
        merged = summary if merged is None else stage.merge(merged, summary)
    new_plan, final = stage.plan(merged or {}, plan)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return merged or {}, new_plan, final, peak


def _largest_container(value: Any) -> int:
    """Entries of the largest dict or list anywhere in a JSON value."""
    if isinstance(value, dict):
        return max([len(value), *(_largest_container(v) for v in value.values())])
    if isinstance(value, list):
        return max([len(value), *(_largest_container(v) for v in value)])
    return 0


def _old_ids(merged: dict[str, Any], plan: dict[str, Any]) -> int:
    """Documents of each domain's crossing 1/1024 slice: the ids the previous design shipped to the driver."""
    total = 0
    for domain, counts in merged.get("domains", {}).items():
        window = Window.from_dict(plan["windows"][domain])
        if window.bits != KEY_BITS:
            continue
        slices: dict[int, list[int]] = {}
        for key, (documents, tokens) in counts.items():  # slices of the range, or draws when few documents
            entry = slices.setdefault(int(key) >> (KEY_BITS - SLICE_BITS - window.shift), [0, 0])
            entry[0], entry[1] = entry[0] + documents, entry[1] + tokens
        reached = 0
        for _, (documents, tokens) in sorted(slices.items()):
            if reached + tokens >= plan["targets"][domain]:
                total += documents
                break
            reached += tokens
    return total


def measure(docs: int, parts: int) -> dict[str, Any]:
    """Drive every accounting round over a corpus of `docs` documents; what the driver saw and held."""
    batches = build_parts(docs, parts)
    stage = MixStage(MixParams(multipliers=RATES))
    started = time.monotonic()
    plan: dict[str, Any] | None = None
    row = {"docs": docs, "parts": parts, "rounds": 0, "part_kib": 0.0, "received_kib": 0.0}
    row |= {"largest_entries": 0, "driver_peak_kib": 0.0, "old_ids": 0}
    while True:
        received = [_part_summary(stage, part, plan) for part in batches]
        merged, new_plan, final, peak = _driver_round(stage, received, plan)
        if plan is not None and plan["round"] == 2:
            row["old_ids"] = _old_ids(merged, plan)
        row["rounds"] += 1
        row["part_kib"] = max(row["part_kib"], max(len(text) for text in received) / 1024)
        row["received_kib"] = max(row["received_kib"], sum(len(text) for text in received) / 1024)
        row["largest_entries"] = max(
            row["largest_entries"], _largest_container(merged), _largest_container(new_plan)
        )
        row["driver_peak_kib"] = max(row["driver_peak_kib"], peak / 1024)
        plan = new_plan
        if final:
            break
    row["wall_s"] = time.monotonic() - started
    return row


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table."""
    header = (
        f"{'documents':>10} {'parts':>6} {'rounds':>7} {'largest part summary KiB':>25} "
        f"{'driver received KiB':>20} {'largest entries':>16} {'driver peak KiB':>16} "
        f"{'ids gathered before':>20} {'wall s':>7}"
    )
    lines = ["mix: the driver's share of fitting thresholds against corpus size", header]
    for row in rows:
        lines.append(
            f"{row['docs']:>10,} {row['parts']:>6} {row['rounds']:>7} {row['part_kib']:>25.1f} "
            f"{row['received_kib']:>20.1f} {row['largest_entries']:>16,} {row['driver_peak_kib']:>16.0f} "
            f"{row['old_ids']:>20,} {row['wall_s']:>7.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Measure each size, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.mix_scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="10000,100000,1000000,2000000", help="documents per corpus, comma-separated"
    )
    parser.add_argument("--parts", type=int, default=16, help="parts the documents are dealt into")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        print(f"{size} documents ...", file=sys.stderr, flush=True)
        rows.append(measure(size, args.parts))
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
