"""The shuffled shard writer (scatter by part, gather by hash range) and the datatrove `.ds` format."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusmill.core.stage import SinkContext
from corpusmill.shards.datatrove_format import DatatroveReader
from corpusmill.shards.manifest import ShardManifest, sha256_file
from corpusmill.shards.megatron import MegatronReader
from corpusmill.shards.writer import WriteShardsStage


def _context(work: Path, seed: int = 0) -> SinkContext:
    return SinkContext(recipe_name="unit", recipe_fingerprint="0123456789abcdef", seed=seed, work_dir=work)


def _documents(count: int = 60) -> list[tuple[str, list[int]]]:
    rng = random.Random(3)
    return [
        (f"doc-{i:03d}", [rng.randrange(151_000) for _ in range(rng.randint(1, 40))]) for i in range(count)
    ]


def _batch(docs: list[tuple[str, list[int]]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {"id": [d for d, _ in docs], "tokens": [t for _, t in docs]},
        schema=pa.schema([pa.field("id", pa.string()), pa.field("tokens", pa.list_(pa.int32()))]),
    )


def _write(
    tmp_path: Path, parts: list[list[tuple[str, list[int]]]], *, recipe_seed: int = 0, **params: object
) -> tuple[Path, dict]:
    """Run the sink's three phases the way the runner does, parts in the given split."""
    stage = WriteShardsStage(WriteShardsStage.Params(**params))
    out, context = tmp_path / "shards", _context(tmp_path / "work", recipe_seed)
    written = [
        stage.write_part([_batch(docs)], out, f"part-{n:05d}", context) for n, docs in enumerate(parts)
    ]
    plans = stage.plan_gather(json.loads(json.dumps(written)), context)
    gathered = [stage.gather(plan, out, context) for plan in reversed(plans)]  # order must not matter
    return out, stage.finalize(written, gathered, out, context)


def _independent_key(seed: int, doc_id: str) -> int:
    """blake2b-64 of the key (seed, id), each part written as a type tag, its 8-byte length and its bytes."""

    def part(tag: bytes, data: bytes) -> bytes:
        return tag + len(data).to_bytes(8, "little") + data

    payload = part(b"i", str(seed).encode()) + part(b"s", doc_id.encode())
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big")


def _read_all(out: Path, manifest: dict) -> list[list[int]]:
    return [
        doc.tolist()
        for shard in manifest["shards"]
        for doc in MegatronReader(out / shard["bin_file"][: -len(".bin")])
    ]


def test_documents_come_out_in_seeded_key_order_whatever_the_split(tmp_path: Path) -> None:
    docs = _documents()
    out_a, manifest_a = _write(tmp_path / "a", [docs], max_tokens_per_shard=300)
    shuffled = docs[:]
    random.Random(9).shuffle(shuffled)
    _, manifest_b = _write(
        tmp_path / "b", [shuffled[:7], [], shuffled[7:40], shuffled[40:]], max_tokens_per_shard=300
    )
    expected = [tokens for _, tokens in sorted(docs, key=lambda d: (_independent_key(0, d[0]), d[0]))]
    assert _read_all(out_a, manifest_a) == expected
    assert [s["bin_sha256"] for s in manifest_a["shards"]] == [s["bin_sha256"] for s in manifest_b["shards"]]
    assert [s["bin_file"] for s in manifest_a["shards"]] == [s["bin_file"] for s in manifest_b["shards"]]
    # The order is neither the input order nor the id order.
    assert expected != [t for _, t in docs]


def test_the_seed_changes_the_order_and_is_recorded(tmp_path: Path) -> None:
    docs = _documents()
    out0, manifest0 = _write(tmp_path / "s0", [docs], recipe_seed=0)
    out1, manifest1 = _write(tmp_path / "s1", [docs], recipe_seed=1)
    _, manifest7 = _write(tmp_path / "p7", [docs], recipe_seed=0, seed=7)
    first, second = _read_all(out0, manifest0), _read_all(out1, manifest1)
    assert sorted(first) == sorted(second) and first != second
    assert manifest0["shuffle"] == {"method": "hash-range", "seed": 0}
    assert manifest7["shuffle"] == {"method": "hash-range", "seed": 7}  # the stage's seed beats the recipe's
    assert manifest0["recipe"] == {"name": "unit", "fingerprint": "0123456789abcdef"}


def test_ranges_are_sized_from_the_token_total_and_never_split_a_document(tmp_path: Path) -> None:
    docs = _documents(200)
    total = sum(len(t) for _, t in docs)
    out, manifest = _write(tmp_path, [docs[:100], docs[100:]], max_tokens_per_shard=500)
    ranges = {shard["name"].rsplit("-", 1)[0] for shard in manifest["shards"]}
    assert len(ranges) == int(np.ceil(total / (0.9 * 500)))
    assert all(shard["num_tokens"] <= 500 for shard in manifest["shards"])
    assert manifest["total_documents"] == 200 and manifest["total_tokens"] == total
    assert sorted(map(tuple, _read_all(out, manifest))) == sorted(tuple(t) for _, t in docs)
    assert ShardManifest.read(out / "manifest.json").verify(out) == []
    assert not (tmp_path / "work" / "staging").exists()  # staged rows are removed once the manifest exists


def test_dropped_rows_are_not_written_and_an_empty_run_has_no_shards(tmp_path: Path) -> None:
    stage = WriteShardsStage()
    context, out = _context(tmp_path / "work"), tmp_path / "shards"
    batch = _batch([("a", [1, 2]), ("b", [3])])
    batch = batch.append_column("drop_reason", pa.array([None, "near_duplicate"], pa.string()))
    written = stage.write_part([batch], out, "p", context)
    assert (written["documents"], written["tokens"]) == (1, 2)
    empty = stage.write_part([], out, "q", context)
    assert stage.plan_gather([empty], context) == []
    manifest = stage.finalize([empty], [], out, context)
    assert manifest["shards"] == [] and manifest["total_documents"] == 0


def test_a_document_without_an_id_cannot_be_shuffled(tmp_path: Path) -> None:
    batch = pa.RecordBatch.from_pydict({"tokens": [[1, 2]]})
    with pytest.raises(KeyError, match="id"):
        WriteShardsStage().write_part([batch], tmp_path, "p", _context(tmp_path))


def test_datatrove_format_matches_its_documented_layout(tmp_path: Path) -> None:
    docs = _documents(30)
    out, manifest = _write(tmp_path, [docs], format="datatrove", max_tokens_per_shard=400)
    assert manifest["format"] == "datatrove-tokenized" and manifest["dtype"] == "uint32"
    expected = [tokens for _, tokens in sorted(docs, key=lambda d: (_independent_key(0, d[0]), d[0]))]
    found: list[list[int]] = []
    for shard in manifest["shards"]:
        data = out / shard["bin_file"]
        assert data.suffix == ".ds" and shard["idx_file"] == shard["bin_file"] + ".index"
        # Independent reading: uint32 little-endian tokens, uint64 little-endian document ends.
        tokens = np.frombuffer(data.read_bytes(), dtype="<u4")
        ends = np.frombuffer((out / shard["idx_file"]).read_bytes(), dtype="<u8")
        starts = [0, *ends[:-1].tolist()]
        found.extend(tokens[s:e].tolist() for s, e in zip(starts, ends.tolist(), strict=True))
        assert int(ends[-1]) == len(tokens) == shard["num_tokens"]
        assert shard["bin_sha256"] == sha256_file(data)
        metadata = (out / (shard["bin_file"] + ".metadata")).read_text().splitlines()
        assert metadata[:2] == ["qwen2.5|4", str(len(tokens))]
        reader = DatatroveReader(out / shard["name"])
        assert [d.tolist() for d in reader] == found[-len(reader) :]
    assert found == expected


def test_datatrove_reads_our_ds_files(tmp_path: Path) -> None:
    from datatrove.utils.dataset import DatatroveFileDataset

    docs = _documents(30)
    out, manifest = _write(tmp_path, [docs], format="datatrove")
    (shard,) = manifest["shards"]
    seq_len = 15
    dataset = DatatroveFileDataset(str(out / shard["bin_file"]), seq_len=seq_len, token_size=4)
    stream = [
        t for _, tokens in sorted(docs, key=lambda d: (_independent_key(0, d[0]), d[0])) for t in tokens
    ]
    assert len(dataset) == len(stream) // (seq_len + 1)
    for item in (0, len(dataset) - 1):
        window = dataset[item]["input_ids"].tolist()
        assert window == stream[item * (seq_len + 1) : (item + 1) * (seq_len + 1)]


def test_inspect_reads_datatrove_shards_and_catches_damage(tmp_path: Path) -> None:
    from corpusmill.shards.inspect import inspect_shards

    out, manifest = _write(tmp_path, [_documents(30)], format="datatrove", max_tokens_per_shard=200)
    report = inspect_shards(out, sample=1)
    assert report.ok, report.problems
    assert (report.num_documents, report.num_tokens) == (30, manifest["total_tokens"])
    index = out / manifest["shards"][0]["idx_file"]
    index.write_bytes(index.read_bytes()[:-8])
    assert not inspect_shards(out).ok


def _shard_bytes(out: Path, manifest: dict) -> dict[str, bytes]:
    return {
        name: (out / name).read_bytes()
        for shard in manifest["shards"]
        for name in (shard["bin_file"], shard["idx_file"])
    }


def test_staged_runs_hold_tokens_with_64_bit_offsets(tmp_path: Path) -> None:
    # int32 list offsets wrap past 2**31 tokens in one part; staged token lists must be large_list<int32>.
    stage = WriteShardsStage(WriteShardsStage.Params(heldout_fraction=0.5))
    written = stage.write_part(
        [_batch(_documents(40))], tmp_path / "shards", "part-00000", _context(tmp_path)
    )
    assert {run["split"] for run in written["runs"]} == {"train", "heldout"}
    for run in written["runs"]:
        staged = pq.read_schema(run["path"])
        assert staged.field("tokens").type == pa.large_list(pa.int32())
        assert pq.read_table(run["path"]).column("tokens").chunk(0).offsets.type == pa.int64()


def test_shard_bytes_do_not_depend_on_the_run_budget(tmp_path: Path) -> None:
    docs = _documents(120)
    parts = [docs[:50], docs[50:]]
    results = {}
    for budget in (1, 37, 10**12):
        stage = WriteShardsStage(WriteShardsStage.Params(max_tokens_per_shard=400, heldout_fraction=0.2))
        stage.run_tokens = budget
        out, context = tmp_path / str(budget) / "shards", _context(tmp_path / str(budget) / "work")
        written = [
            stage.write_part([_batch(part[:20]), _batch(part[20:])], out, f"part-{n:05d}", context)
            for n, part in enumerate(parts)
        ]
        runs = [run for part in written for run in part["runs"]]
        plans = stage.plan_gather(written, context)
        manifest = stage.finalize(written, [stage.gather(plan, out, context) for plan in plans], out, context)
        results[budget] = (len(runs), _shard_bytes(out, manifest))
    # A one-token budget writes a run per document, a 37-token budget a few documents per run, a huge one a
    # run per part and split; the shards are the same bytes under the same names.
    assert results[1][0] == 120 > results[37][0] > results[10**12][0] == 4
    assert results[1][1] == results[37][1] == results[10**12][1]
    assert any(name.startswith("heldout-") for name in results[1][1])


def test_a_part_is_staged_while_it_is_read_not_after(tmp_path: Path) -> None:
    # A big input file is one part: its runs must reach disk as batches arrive, so memory stays flat.
    stage = WriteShardsStage()
    stage.run_tokens = 200
    staging = tmp_path / "work" / "staging" / "p"
    docs = _documents(200)
    runs_seen: list[int] = []

    def batches() -> Iterator[pa.RecordBatch]:
        for first in range(0, len(docs), 20):
            runs_seen.append(len(list(staging.glob("*.parquet"))) if staging.is_dir() else 0)
            yield _batch(docs[first : first + 20])

    written = stage.write_part(batches(), tmp_path / "shards", "p", _context(tmp_path / "work"))
    assert runs_seen[0] == 0 and runs_seen[-1] >= 5  # runs written before the last batch was read
    assert runs_seen == sorted(runs_seen)
    total = sum(len(t) for _, t in docs)
    assert all(run["tokens"] < 200 + 40 for run in written["runs"])  # the budget plus one document at most
    assert sum(run["tokens"] for run in written["runs"]) == written["tokens"] == total


def test_version_3_without_held_out_documents_writes_what_version_2_wrote(tmp_path: Path) -> None:
    from corpusmill.core.stage import _REGISTRY

    docs = _documents(80)
    v2 = _REGISTRY["write_shards_v2"]
    stage = v2(v2.Params(max_tokens_per_shard=300))
    out2, context = tmp_path / "v2" / "shards", _context(tmp_path / "v2" / "work")
    written = [stage.write_part([_batch(docs)], out2, "part-00000", context)]
    gathered = [stage.gather(plan, out2, context) for plan in stage.plan_gather(written, context)]
    manifest2 = stage.finalize(written, gathered, out2, context)
    out3, manifest3 = _write(tmp_path / "v3", [docs], max_tokens_per_shard=300)
    assert _shard_bytes(out2, manifest2) == _shard_bytes(out3, manifest3)
    assert manifest3["heldout"] is None and set(manifest3["splits"]) == {"train"}


def test_a_part_staged_by_the_earlier_layout_still_gathers(tmp_path: Path) -> None:
    # A run interrupted after its scatter phase and resumed on this version: the part marker names one
    # staged file with int32 list offsets and no runs.
    docs = _documents(30)
    out_new, manifest_new = _write(tmp_path / "new", [docs])
    staged = tmp_path / "old" / "part-00000.parquet"
    staged.parent.mkdir(parents=True)
    ordered = sorted(docs, key=lambda d: (_independent_key(0, d[0]), d[0]))
    pq.write_table(
        pa.table(
            {
                "key": pa.array([_independent_key(0, d) for d, _ in ordered], pa.uint64()),
                "id": [d for d, _ in ordered],
                "tokens": pa.array([t for _, t in ordered], pa.list_(pa.int32())),
            }
        ),
        staged,
    )
    part = {
        "part": "part-00000",
        "staged": str(staged),
        "documents": 30,
        "tokens": sum(len(t) for _, t in docs),
    }
    stage, context, out = WriteShardsStage(), _context(tmp_path / "old" / "work"), tmp_path / "old" / "shards"
    gathered = [stage.gather(plan, out, context) for plan in stage.plan_gather([part], context)]
    manifest = stage.finalize([part], gathered, out, context)
    assert _shard_bytes(out, manifest) == _shard_bytes(out_new, manifest_new)
