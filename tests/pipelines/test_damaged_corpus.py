"""A corpus of damaged and good files runs to the end on every engine, and every record is accounted for."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from damage import Truth, write_damaged_corpus

from corpusmill.core.recipe import parse_recipe
from corpusmill.pipelines.runner import RunResult, run_recipe

ENGINES = [
    pytest.param("local"),
    pytest.param("ray", marks=pytest.mark.ray),
    pytest.param("beam", marks=pytest.mark.beam),
]


@pytest.fixture(scope="module")
def corpus(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    files = sorted((shared_data / "wcxb-dev" / "html").glob("*.html.gz"))
    pages = [gzip.decompress(p.read_bytes()) for p in random.Random(16).sample(files, 20)]
    directory = tmp_path_factory.mktemp("damaged")
    return directory, write_damaged_corpus(directory, pages, seed=16)


def _run(directory: Path, engine: str, output: Path) -> RunResult:
    recipe = parse_recipe(
        {
            "name": "damaged",
            "input": {"paths": [str(directory)], "part_bytes": 1},
            "stages": [
                {"stage": "extract", "timeout_s": 120},
                {"stage": "dedup_exact"},
                {"stage": "tokenize"},
                {"stage": "write_shards", "max_tokens_per_shard": 20000},
            ],
        }
    )
    return run_recipe(recipe, engine=engine, output=output, num_cpus=2)


def _table(folder: Path) -> pa.Table | None:
    files = sorted(folder.glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default") if files else None


def _column(table: pa.Table | None, name: str) -> list:
    return table.column(name).to_pylist() if table is not None and name in table.column_names else []


@pytest.fixture(scope="module")
def reference(corpus: tuple[Path, Truth], tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory, _ = corpus
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    _run(directory, "local", run_dir)
    return run_dir


def test_every_record_is_kept_rejected_or_listed_as_skipped(
    corpus: tuple[Path, Truth], reference: Path
) -> None:
    _, truth = corpus
    documents, rejected = _table(reference / "documents"), _table(reference / "rejected")
    skipped = _table(reference / "skipped")
    ids = set(_column(documents, "id")) | set(_column(rejected, "id"))
    record_ids = set(_column(documents, "source_id")) | set(_column(rejected, "source_id"))
    assert truth.ids <= ids, sorted(truth.ids - ids)[:10]
    assert truth.record_ids <= record_ids, sorted(truth.record_ids - record_ids)
    assert not truth.damaged_ids & ids
    assert not truth.damaged_record_ids & record_ids
    assert skipped is not None
    skipped_files = set(_column(skipped, "file"))
    assert truth.damaged_files <= skipped_files, sorted(truth.damaged_files - skipped_files)
    lines = {
        f"{row['file']}:{row['position']}"
        for row in skipped.to_pylist()
        if row["file"] == "mixed.jsonl" and row["unit"] == "line"
    }
    assert lines == {i for i in truth.damaged_ids if i.startswith("mixed.jsonl:")}
    assert all(reason for reason in _column(skipped, "reason"))
    reasons = dict(zip(_column(rejected, "id"), _column(rejected, "drop_reason"), strict=True))
    assert {i: reasons.get(i) for i in truth.rejected} == truth.rejected
    kept = dict(zip(_column(documents, "source_id"), _column(documents, "text"), strict=True))
    lying = kept.get("urn:uuid:00000000-0000-0000-0000-000000000105")
    assert lying and "\ufffd" not in lying  # the UTF-8 body was read as UTF-8, not destroyed as UTF-16


@pytest.mark.parametrize("engine", [p for p in ENGINES if p.values[0] != "local"])
def test_every_engine_accounts_for_the_damage_identically(
    corpus: tuple[Path, Truth], reference: Path, tmp_path: Path, engine: str
) -> None:
    directory, _ = corpus
    run_dir = tmp_path / "run"
    _run(directory, engine, run_dir)
    for folder in ("documents", "rejected", "skipped", "shards"):
        mine = {
            p.relative_to(run_dir): p.read_bytes()
            for p in sorted((run_dir / folder).rglob("*"))
            if p.is_file()
        }
        theirs = {
            p.relative_to(reference): p.read_bytes()
            for p in sorted((reference / folder).rglob("*"))
            if p.is_file()
        }
        assert mine.keys() == theirs.keys(), folder
        assert mine == theirs, folder
