"""Held-out shards are a set of whole original documents: no document, nor any `mix` copy of one, is in both."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from corpusmill.core.hashing import hash64
from corpusmill.core.stage import SinkContext
from corpusmill.shards.manifest import HeldoutInfo, ShardManifest
from corpusmill.shards.megatron import MegatronReader
from corpusmill.shards.writer import WriteShardsStage

SEED = 5
FRACTION = 0.3
MARKER = 150_000  # the first token of original document i is MARKER + i, so a shard sequence names its origin
SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("tokens", pa.list_(pa.int32())),
        pa.field("mix_copy", pa.int32()),
        pa.field("drop_reason", pa.string()),
    ]
)


def _mixed_rows(originals: int = 150) -> list[dict]:
    """Rows as the `mix` stage leaves them: originals, repeats `<id>#<c>` with mix_copy c, some dropped."""
    rng = random.Random(11)
    rows = []
    for index in range(originals):
        tokens = [MARKER + index] + [rng.randrange(1000) for _ in range(rng.randint(1, 30))]
        copies = rng.choice([1, 1, 2, 3])  # how many times the mixture keeps the document
        for copy in range(copies):
            doc_id = f"doc-{index:03d}" if copy == 0 else f"doc-{index:03d}#{copy}"
            rows.append({"id": doc_id, "tokens": tokens, "mix_copy": copy, "drop_reason": None})
        if rng.random() < 0.1:
            rows.append(
                {"id": f"doc-{index:03d}", "tokens": tokens, "mix_copy": 0, "drop_reason": "mix_downsampled"}
            )
    rng.shuffle(rows)
    return rows


def _batches(rows: list[dict], size: int = 40) -> list[pa.RecordBatch]:
    return [pa.RecordBatch.from_pylist(rows[i : i + size], schema=SCHEMA) for i in range(0, len(rows), size)]


def _write(rows: list[dict], tmp_path: Path, *, parts: int = 3, **params: object) -> tuple[Path, dict]:
    stage = WriteShardsStage(WriteShardsStage.Params(**params))
    stage.run_tokens = 300  # several runs per part
    out = tmp_path / "shards"
    context = SinkContext(
        recipe_name="mix", recipe_fingerprint="f" * 16, seed=SEED, work_dir=tmp_path / "work"
    )
    written = [
        stage.write_part(_batches(rows[n::parts]), out, f"part-{n:05d}", context) for n in range(parts)
    ]
    plans = stage.plan_gather(json.loads(json.dumps(written)), context)
    gathered = [stage.gather(plan, out, context) for plan in plans]
    return out, stage.finalize(written, gathered, out, context)


def _sequences(out: Path, manifest: dict, split: str) -> list[list[int]]:
    return [
        doc.tolist()
        for shard in manifest["shards"]
        if shard["split"] == split
        for doc in MegatronReader(out / shard["name"])
    ]


def test_held_out_and_training_shards_share_no_original_document(tmp_path: Path) -> None:
    rows = _mixed_rows()
    out, manifest = _write(rows, tmp_path, max_tokens_per_shard=600, heldout_fraction=FRACTION)
    kept = [row for row in rows if row["drop_reason"] is None]
    copies = Counter(row["tokens"][0] - MARKER for row in kept)
    assert max(copies.values()) > 1  # the input does repeat documents
    found = {
        split: Counter(seq[0] - MARKER for seq in _sequences(out, manifest, split))
        for split in ("train", "heldout")
    }
    assert not set(found["train"]) & set(found["heldout"])
    assert found["train"] + found["heldout"] == copies  # every copy written once, beside its original
    expected = {i for i in copies if hash64(SEED, "heldout", f"doc-{i:03d}") < FRACTION * 2**64}
    assert set(found["heldout"]) == expected and 0 < len(expected) < len(copies)


def test_held_out_shards_are_shuffled_and_listed_by_split(tmp_path: Path) -> None:
    rows = _mixed_rows()
    out, manifest = _write(rows, tmp_path, max_tokens_per_shard=300, heldout_fraction=FRACTION)
    kept = [row for row in rows if row["drop_reason"] is None]
    held = [row for row in kept if hash64(SEED, "heldout", row["id"].split("#")[0]) < FRACTION * 2**64]
    held.sort(key=lambda row: (hash64(SEED, row["id"]), row["id"]))
    assert _sequences(out, manifest, "heldout") == [row["tokens"] for row in held]
    names = {shard["split"]: set() for shard in manifest["shards"]}
    for shard in manifest["shards"]:
        names[shard["split"]].add(shard["name"].split("-")[0])
    assert names == {"train": {"shard"}, "heldout": {"heldout"}}
    assert manifest["heldout"] == {"fraction": FRACTION, "seed": SEED}
    splits = manifest["splits"]
    assert splits["heldout"]["documents"] == len(held)
    assert splits["heldout"]["tokens"] == sum(len(row["tokens"]) for row in held)
    assert (
        splits["train"]["documents"] + splits["heldout"]["documents"]
        == len(kept)
        == manifest["total_documents"]
    )
    assert splits["heldout"]["shards"] == sum(s["split"] == "heldout" for s in manifest["shards"]) > 1
    read = ShardManifest.read(out / "manifest.json")
    assert read.split_totals("heldout").tokens == splits["heldout"]["tokens"]
    assert read.verify(out) == []


def test_the_split_does_not_depend_on_how_parts_were_cut(tmp_path: Path) -> None:
    rows = _mixed_rows(80)
    _, manifest_a = _write(rows, tmp_path / "a", parts=1, heldout_fraction=FRACTION)
    _, manifest_b = _write(rows[::-1], tmp_path / "b", parts=4, heldout_fraction=FRACTION)
    assert [(s["bin_file"], s["bin_sha256"], s["split"]) for s in manifest_a["shards"]] == [
        (s["bin_file"], s["bin_sha256"], s["split"]) for s in manifest_b["shards"]
    ]


def test_a_copy_whose_id_does_not_name_its_original_is_an_error(tmp_path: Path) -> None:
    rows = [{"id": "doc-1#2", "tokens": [1, 2], "mix_copy": 1, "drop_reason": None}]
    with pytest.raises(ValueError, match=r"doc-1#2.*does not end with '#1'"):
        _write(rows, tmp_path, parts=1, heldout_fraction=0.5)


def test_heldout_fraction_is_checked() -> None:
    with pytest.raises(ValidationError, match="less than 1"):
        WriteShardsStage.Params(heldout_fraction=1.0)
    with pytest.raises(ValidationError, match="needs shuffle: true"):
        WriteShardsStage.Params(heldout_fraction=0.1, shuffle=False)


def test_verify_recomputes_each_documents_split(tmp_path: Path) -> None:
    from corpusmill.pipelines.verify import verify_run
    from corpusmill.shards.tokenize import TokenizeStage

    texts = [f"Document number {i} says something about topic {i % 7}." for i in range(60)]
    tokenized = TokenizeStage()(
        pa.RecordBatch.from_pydict({"id": [f"d{i}" for i in range(60)], "text": texts})
    ).to_pylist()
    rows = []
    for i, row in enumerate(tokenized):
        for copy in range(1 + i % 3):
            doc_id = row["id"] if copy == 0 else f"{row['id']}#{copy}"
            rows.append({"id": doc_id, "text": row["text"], "tokens": row["tokens"], "mix_copy": copy})
    run_dir = tmp_path / "run"
    (run_dir / "documents").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), run_dir / "documents" / "part-00000.parquet")
    (run_dir / "manifest.json").write_text(json.dumps({"files": []}))
    stage = WriteShardsStage(WriteShardsStage.Params(heldout_fraction=0.4, max_tokens_per_shard=200))
    context = SinkContext(recipe_name="v", recipe_fingerprint="f" * 16, seed=0, work_dir=tmp_path / "work")
    shards = run_dir / "shards"
    written = [stage.write_part([pa.RecordBatch.from_pylist(rows)], shards, "part-00000", context)]
    gathered = [stage.gather(plan, shards, context) for plan in stage.plan_gather(written, context)]
    manifest = stage.finalize(written, gathered, shards, context)
    assert manifest["splits"]["heldout"]["documents"] > 0

    report = verify_run(run_dir)
    assert report.problems == [] and report.documents_checked == len(rows)
    # A manifest that claims another held-out rule no longer matches its shards.
    claimed = ShardManifest.read(shards / "manifest.json").model_copy(
        update={"heldout": HeldoutInfo(fraction=0.1, seed=0)}
    )
    claimed.write(shards / "manifest.json")
    assert any("heldout documents" in problem for problem in verify_run(run_dir).problems)
