"""A small synthetic finished run for the sample pages: documents/, rejected/ and stats.json that agree.

Three domains go through a filter stage and a mix stage: `news` is down-sampled (every other document kept),
`code` is up-sampled (every document kept with one copy, `<id>#1`), and `HOSTILE` (a domain name that is
markup) is left out of the mixture. The filter drops some documents before the mix for two reasons, one of
them HOSTILE too. Texts carry markup, one is longer than the page's text cap, one URL is `javascript:`. The
stats are computed from the rows (tokens, quality bins per domain, drops per reason), so the report's numbers
and the samples' counts can be compared exactly. The rows can be cut into any number of parts in any order.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

HOSTILE = "<img src=x onerror=\"window.pwned=1;alert('x')\">&amp;"
FILTER, MIX = "01-filter_v1", "02-mix_v1"
LONG_TEXT_CHARS = 250_000
RATES = {"news": 0.5, "code": 2.0, HOSTILE: 0.0}
COUNTS = {"news": 40, "code": 16, HOSTILE: 8}
FILTER_REASONS = {"too_short": 9, HOSTILE: 4}


def _text(domain: str, index: int) -> str:
    lines = [
        f"{domain} story {index}: <b>bold</b> & <script>window.pwned=1</script>",
        *(f"Line {k} of document {index}, about {domain}." for k in range(1, 9)),
    ]
    return "\n".join(lines)


def rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every document as it entered the run (with its domain and score), and every row the filter dropped."""
    docs = []
    for domain, count in COUNTS.items():
        for i in range(count):
            doc_id = f"{domain}-{i:03d}"
            docs.append(
                {
                    "id": doc_id,
                    "text": _text(domain, i),
                    "url": f"https://example.org/{domain}/{i}" if i % 7 else "javascript:alert('url')",
                    "source": "input.jsonl",
                    "lang": "en",
                    "domain": domain,
                    "domain_confidence": 0.5 + i / 200,
                    "score__quality": (i * 0.37) % 5.0,
                    "score__safety": 1.0 - i / 100,
                    "token_count": 10 + i,
                }
            )
    docs[3]["text"] = "A title that is short\n" + "word " * (LONG_TEXT_CHARS // 5)
    docs[5]["score__quality"] = None  # unscored
    dropped = []
    for reason, count in FILTER_REASONS.items():
        for i in range(count):
            dropped.append(
                {
                    "id": f"filtered-{reason[:4]}-{i}",
                    "text": f"short {i}\n{HOSTILE}",
                    "url": f"https://example.org/dropped/{i}",
                    "source": "input.jsonl",
                    "lang": "en",
                    "drop_reason": reason,
                    "drop_detail": f"detail {HOSTILE}" if i == 0 else None,
                    "drop_stage": FILTER,
                }
            )
    return docs, dropped


def _kept_copies(domain: str, index: int) -> int:
    """How many copies the mix keeps: every other news document, code twice, HOSTILE never."""
    if domain == "news":
        return 1 if index % 2 == 0 else 0
    return math.floor(RATES[domain])


def _bin(score: float) -> int:
    return min(19, max(0, math.floor(score / 5.0 * 20)))


def _split(rows: list[dict[str, Any]], parts: int, order: int | None) -> list[list[dict[str, Any]]]:
    shuffled = list(rows)
    if order is not None:
        random.Random(order).shuffle(shuffled)
    return [shuffled[k::parts] for k in range(parts)]


def _write_parts(
    folder: Path, prefix: str, rows: list[dict[str, Any]], parts: int, order: int | None
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k, part in enumerate(_split(rows, parts, order)):
        if part:
            pq.write_table(
                pa.Table.from_pylist(part), folder / f"{prefix}part-{k:05d}.parquet", row_group_size=7
            )


def write_run(
    root: Path, *, parts: int = 3, order: int | None = None, keep_rejected: bool = True, seed: int = 0
) -> Path:
    """Write the run under `root/run` (documents and rejected rows cut into `parts` files, shuffled by
    `order`), with stats, manifest and recipe; return its directory."""
    run_dir = root / "run"
    docs, filtered = rows()
    kept, mixed_out, counters = [], [], {"dropped.mix_downsampled": 0, "dropped.mix_excluded": 0}
    accounting: dict[str, dict[str, Any]] = {}
    for doc in docs:
        domain, index = doc["domain"], int(doc["id"].rsplit("-", 1)[1])
        entry = accounting.setdefault(
            domain,
            {
                "documents": 0,
                "tokens": 0,
                "bytes": 0,
                "eligible_documents": 0,
                "eligible_tokens": 0,
                "unscored_documents": 0,
                "max_document_tokens": 0,
                "quality_documents": [0] * 20,
                "quality_tokens": [0] * 20,
            },
        )
        tokens = doc["token_count"]
        for key, n in (
            ("documents", 1),
            ("tokens", tokens),
            ("eligible_documents", 1),
            ("eligible_tokens", tokens),
        ):
            entry[key] += n
        entry["max_document_tokens"] = max(entry["max_document_tokens"], tokens)
        if doc["score__quality"] is None:
            entry["unscored_documents"] += 1
        else:
            entry["quality_documents"][_bin(doc["score__quality"])] += 1
            entry["quality_tokens"][_bin(doc["score__quality"])] += tokens
        copies = _kept_copies(domain, index)
        if copies == 0:
            reason = "mix_excluded" if RATES[domain] == 0 else "mix_downsampled"
            counters[f"dropped.{reason}"] += 1
            mixed_out.append(
                {
                    **doc,
                    "drop_reason": reason,
                    "drop_detail": f"{domain} at rate {RATES[domain]}",
                    "drop_stage": MIX,
                }
            )
        for copy in range(copies):
            kept.append({**doc, "id": doc["id"] if copy == 0 else f"{doc['id']}#{copy}", "mix_copy": copy})
            counters[f"documents_out.{domain}"] = counters.get(f"documents_out.{domain}", 0) + 1
            counters[f"tokens_out.{domain}"] = counters.get(f"tokens_out.{domain}", 0) + tokens
    counters["repeated_copies"] = sum(1 for d in kept if d["mix_copy"] > 0)
    total_in = len(docs) + len(filtered)
    stages = [
        {"label": "00-read", "counters": {"docs_out": total_in, "reader.documents": total_in}},
        {
            "label": FILTER,
            "counters": {
                "docs_in": total_in,
                "docs_out": len(docs),
                **{f"dropped.{reason}": n for reason, n in FILTER_REASONS.items()},
            },
        },
        {"label": MIX, "counters": {"docs_in": len(docs), "docs_out": len(kept), **counters}},
    ]
    plan_rows = [
        {
            "domain": domain,
            "eligible_documents": accounting[domain]["documents"],
            "eligible_tokens": accounting[domain]["tokens"],
            "requested": rate,
            "rate": rate,
            "expected_tokens": rate * accounting[domain]["tokens"],
            "expected_documents": rate * accounting[domain]["documents"],
            "capped": False,
        }
        for domain, rate in RATES.items()
    ]
    stats = {
        "recipe": "samples",
        "engine": "local",
        "documents_out": len(kept),
        "tokens_written": 0,
        "sinks": {},
        "stages": stages,
        "plans": {
            MIX: {
                "seed": 0,
                "rates": dict(RATES),
                "mixture": {
                    "mode": "multipliers",
                    "budget": None,
                    "max_epochs": 4.0,
                    "expected_tokens": sum(r["expected_tokens"] for r in plan_rows),
                    "domains": plan_rows,
                    "warnings": [],
                },
                "accounting": {"domains": accounting, "langs": {"en": {"documents": len(docs), "tokens": 1}}},
            }
        },
    }
    run_dir.mkdir(parents=True)
    (run_dir / "stats.json").write_text(json.dumps(stats))
    (run_dir / "manifest.json").write_text(json.dumps({"finished_at": "2026-01-02T03:04:05+00:00"}))
    recipe = {
        "name": "samples",
        "seed": seed,
        "stages": [
            {"stage": "filter_v1"},
            {"stage": "mix_v1", "domain_column": "domain", "multipliers": {"news": 0.5, "code": 2.0}},
        ],
        "output": {"keep_rejected": keep_rejected},
    }
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    _write_parts(run_dir / "documents", "", kept, parts, order)
    if keep_rejected:
        _write_parts(run_dir / "rejected", f"{FILTER}-", filtered, parts, order)
        _write_parts(run_dir / "rejected", f"{MIX}-", mixed_out, parts, order)
    return run_dir
