"""Checks that a finished run is what its manifest says, and that its shards hold its documents.

Two independent checks: every file listed in `manifest.json` still has its size and sha256; and, part by
part, the shards decode (tokens -> text) to exactly the kept documents' text, in order, each ending with
the end-of-text token. The second check is what a training team wants before spending GPU hours.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from corpusmill.core import schema
from corpusmill.shards.manifest import sha256_file


@dataclass
class VerifyReport:
    """What was checked and every problem found."""

    files_checked: int = 0
    documents_checked: int = 0
    tokens_checked: int = 0
    problems: list[str] = field(default_factory=list)


def verify_run(run_dir: Path) -> VerifyReport:
    """Verify checksums and shard contents of a run directory."""
    report = VerifyReport()
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        report.problems.append(f"{manifest_path} is missing: the run did not finish")
        return report
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        path = run_dir / entry["path"]
        report.files_checked += 1
        if not path.exists():
            report.problems.append(f"{entry['path']}: listed in the manifest but missing")
        elif path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            report.problems.append(f"{entry['path']}: size or sha256 differs from the manifest")
    shards_dir = run_dir / "shards"
    if shards_dir.is_dir():
        _verify_shards(run_dir, shards_dir, report)
    return report


def _verify_shards(run_dir: Path, shards_dir: Path, report: VerifyReport) -> None:
    from corpusmill.shards.megatron import MegatronReader
    from corpusmill.shards.tokenizer import EOS_ID, decode

    for part in sorted((run_dir / "documents").glob("*.parquet")):
        texts = pq.read_table(part, columns=[schema.TEXT, schema.ID]).to_pylist()
        sequences = []
        for idx in sorted(shards_dir.glob(f"{part.stem}-*.idx")):
            reader = MegatronReader(idx.with_suffix(""))
            sequences.extend(reader[i] for i in range(len(reader)))
        if len(sequences) != len(texts):
            report.problems.append(
                f"{part.name}: {len(texts)} documents but {len(sequences)} shard sequences"
            )
            continue
        for row, tokens in zip(texts, sequences, strict=True):
            report.documents_checked += 1
            report.tokens_checked += len(tokens)
            if len(tokens) == 0 or int(tokens[-1]) != EOS_ID:
                report.problems.append(
                    f"document {row[schema.ID]}: shard sequence does not end with <|endoftext|>"
                )
                continue
            expected = unicodedata.normalize("NFC", row[schema.TEXT] or "")
            if decode([int(t) for t in tokens[:-1]]) != expected:
                report.problems.append(f"document {row[schema.ID]}: shard tokens do not decode to its text")
