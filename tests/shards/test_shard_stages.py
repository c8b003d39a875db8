"""The `tokenize` and `write_shards` stages, called directly on hand-built batches (no engine)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from corpusmill.core import schema
from corpusmill.core import stage as stage_module
from corpusmill.core.stage import SinkContext
from corpusmill.shards.manifest import ShardManifest, sha256_file
from corpusmill.shards.megatron import MegatronReader
from corpusmill.shards.tokenize import TokenizeStage
from corpusmill.shards.writer import WriteShardsStage, WriteShardsV1Stage, WriteShardsV2Stage

EOS = 151643


def _ctx(tmp_path: Path) -> SinkContext:
    return SinkContext(recipe_name="t", recipe_fingerprint="f" * 16, seed=0, work_dir=tmp_path / ".work")


def _batch(texts: list[str | None]) -> pa.RecordBatch:
    return schema.reader_batch([{"id": f"doc-{i}", "text": t, "source": "test"} for i, t in enumerate(texts)])


def _tokens_batch(docs: list[list[int] | None], dropped: list[str | None] | None = None) -> pa.RecordBatch:
    columns: dict[str, list] = {"id": [f"d{i}" for i in range(len(docs))], "tokens": docs}
    fields = [pa.field("id", pa.string()), pa.field("tokens", pa.list_(pa.int32()))]
    if dropped is not None:
        columns["drop_reason"] = dropped
        fields.append(pa.field("drop_reason", pa.string()))
    return pa.RecordBatch.from_pydict(columns, schema=pa.schema(fields))


def test_stages_are_registered_under_their_names() -> None:
    # The registry itself, not resolve_stage(), so this test does not depend on every other stage importing.
    assert stage_module._REGISTRY["tokenize_v1"] is TokenizeStage
    assert stage_module._REGISTRY["write_shards_v1"] is WriteShardsV1Stage
    assert stage_module._REGISTRY["write_shards_v2"] is WriteShardsV2Stage
    assert stage_module._REGISTRY["write_shards_v3"] is WriteShardsStage
    assert "heldout_fraction" in WriteShardsStage.Params.model_fields
    assert "heldout_fraction" not in WriteShardsV2Stage.Params.model_fields  # v2 recipes keep their hash
    assert TokenizeStage.requires == ("text",)
    assert WriteShardsStage.requires == ("tokens",)


def test_tokenize_adds_declared_columns_with_known_ids() -> None:
    stage = TokenizeStage()
    out = stage(_batch(["Hello, world!", "<|im_start|>user\n"]))
    declared = {f.name: f.type for f in stage.output_fields()}
    assert declared == {"tokens": pa.list_(pa.int32()), "token_count": pa.int64()}
    for name, type_ in declared.items():
        assert out.schema.field(name).type == type_
    tokens = out.column("tokens").to_pylist()
    assert tokens[0] == [9707, 11, 1879, 0, EOS]
    assert 151644 not in tokens[1]  # special-token text in a document stays ordinary text
    assert out.column("token_count").to_pylist() == [5, len(tokens[1])]
    assert out.column("id").to_pylist() == ["doc-0", "doc-1"]
    assert "drop_reason" not in out.schema.names or out.column("drop_reason").null_count == out.num_rows


def test_tokenize_params() -> None:
    stage = TokenizeStage(TokenizeStage.Params(allow_special=True, add_eos=False, num_threads=2))
    out = stage(_batch(["<|im_start|>user\n", "Hello, world!"]))
    assert out.column("tokens").to_pylist() == [[151644, 872, 198], [9707, 11, 1879, 0]]
    with pytest.raises(ValidationError):
        TokenizeStage.Params(num_threads=0)
    with pytest.raises(ValidationError):
        TokenizeStage.Params(vocab="gpt2")


def test_tokenize_marks_empty_text_and_keeps_row_order() -> None:
    stage = TokenizeStage()
    out = stage(_batch(["first", None, "", "   \n", "last"]))
    assert out.num_rows == 5
    assert out.column("id").to_pylist() == [f"doc-{i}" for i in range(5)]
    assert out.column("drop_reason").to_pylist() == [None, "empty_text", "empty_text", "empty_text", None]
    tokens = out.column("tokens").to_pylist()
    assert tokens[1] is tokens[2] is tokens[3] is None
    assert tokens[0][-1] == EOS and tokens[4][-1] == EOS
    counts = out.column("token_count").to_pylist()
    assert counts[0] == len(tokens[0]) and counts[1] is None
    stats = stage.take_stats()
    assert stats.counters["empty_text"] == 3
    assert stats.counters["tokens"] == len(tokens[0]) + len(tokens[4])
    assert stats.moments["token_count"].count == 2


def test_tokenize_skips_rows_already_dropped() -> None:
    batch = schema.mark_drops(_batch(["kept text", "dropped text"]), [None, "too_short"], [None, "3 words"])
    out = TokenizeStage()(batch)
    assert out.column("tokens").to_pylist()[1] is None
    assert out.column("drop_reason").to_pylist() == [None, "too_short"]
    assert out.column("drop_detail").to_pylist() == [None, "3 words"]


def test_tokenize_handles_a_sliced_batch_and_an_all_empty_batch() -> None:
    out = TokenizeStage()(_batch(["zero", "one", "two"]).slice(1, 2))
    assert out.column("id").to_pylist() == ["doc-1", "doc-2"]
    assert [t[-1] for t in out.column("tokens").to_pylist()] == [EOS, EOS]
    empty = TokenizeStage()(_batch([None, ""]))
    assert empty.column("tokens").null_count == 2


def test_write_part_round_trips_and_skips_dropped_rows(tmp_path: Path) -> None:
    stage = WriteShardsV1Stage()
    batches = [
        _tokens_batch([[1, 2, EOS], [3, EOS], None], dropped=[None, None, "empty_text"]),
        _tokens_batch([[4, 5, 6, EOS], [9, 9, EOS]], dropped=[None, "near_duplicate"]),
    ]
    part = stage.write_part(iter(batches), tmp_path, "part-0003", _ctx(tmp_path))
    assert json.loads(json.dumps(part)) == part  # JSON-able
    assert [s["bin_file"] for s in part["shards"]] == ["part-0003-00000.bin"]
    reader = MegatronReader(tmp_path / "part-0003-00000")
    assert [reader[i].tolist() for i in range(len(reader))] == [[1, 2, EOS], [3, EOS], [4, 5, 6, EOS]]
    shard = part["shards"][0]
    assert (shard["num_documents"], shard["num_tokens"]) == (3, 9)
    assert shard["bin_sha256"] == sha256_file(tmp_path / "part-0003-00000.bin")
    assert shard["idx_bytes"] == (tmp_path / "part-0003-00000.idx").stat().st_size


def test_write_part_rolls_shards_without_splitting_documents(tmp_path: Path) -> None:
    stage = WriteShardsV1Stage(WriteShardsV1Stage.Params(max_tokens_per_shard=5))
    docs = [[1, 1], [2, 2, 2], [3], [4] * 9, [5, 5]]
    part = stage.write_part([_tokens_batch(docs)], tmp_path, "p", _ctx(tmp_path))
    files = [s["bin_file"] for s in part["shards"]]
    assert files == ["p-00000.bin", "p-00001.bin", "p-00002.bin", "p-00003.bin"]
    contents = [[d.tolist() for d in MegatronReader(tmp_path / f[: -len(".bin")])] for f in files]
    # [1,1]+[2,2,2] fill 5; [3] starts a new shard; the 9-token document exceeds the limit alone.
    assert contents == [[[1, 1], [2, 2, 2]], [[3]], [[4] * 9], [[5, 5]]]


def test_empty_part_writes_no_shard(tmp_path: Path) -> None:
    stage = WriteShardsV1Stage()
    part = stage.write_part([_tokens_batch([None], dropped=["empty_text"])], tmp_path, "p", _ctx(tmp_path))
    assert part["shards"] == []
    assert list(tmp_path.iterdir()) == []
    assert stage.write_part([], tmp_path, "q", _ctx(tmp_path))["shards"] == []


def test_rewriting_a_part_removes_its_stale_rolled_shards(tmp_path: Path) -> None:
    docs = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    WriteShardsV1Stage(WriteShardsV1Stage.Params(max_tokens_per_shard=3)).write_part(
        [_tokens_batch(docs)], tmp_path, "p", _ctx(tmp_path)
    )
    WriteShardsV1Stage().write_part(
        [_tokens_batch([[1]])], tmp_path, "p-x", _ctx(tmp_path)
    )  # another part, must survive
    assert len(list(tmp_path.glob("p-0000?.bin"))) == 3
    WriteShardsV1Stage().write_part([_tokens_batch(docs)], tmp_path, "p", _ctx(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "p-00000.bin",
        "p-00000.idx",
        "p-x-00000.bin",
        "p-x-00000.idx",
    ]


def test_kept_row_without_tokens_is_an_error_naming_the_document(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="d1"):
        WriteShardsV1Stage().write_part([_tokens_batch([[1], None])], tmp_path, "p", _ctx(tmp_path))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyError, match="tokenize"):
        WriteShardsV1Stage().write_part([_batch(["no tokens column"])], tmp_path, "p", _ctx(tmp_path))


def test_sliced_batches_give_the_right_documents(tmp_path: Path) -> None:
    batch = _tokens_batch([[1], [2, 2], [3, 3, 3], [4, 4, 4, 4]]).slice(1, 2)
    WriteShardsV1Stage().write_part([batch], tmp_path, "p", _ctx(tmp_path))
    assert [d.tolist() for d in MegatronReader(tmp_path / "p-00000")] == [[2, 2], [3, 3, 3]]


def test_finalize_writes_a_sorted_verifiable_manifest(tmp_path: Path) -> None:
    stage = WriteShardsV1Stage(WriteShardsV1Stage.Params(max_tokens_per_shard=4))
    part_b = stage.write_part([_tokens_batch([[1, 2, 3], [4, 5]])], tmp_path, "part-b", _ctx(tmp_path))
    part_a = stage.write_part([_tokens_batch([[6, EOS]])], tmp_path, "part-a", _ctx(tmp_path))
    empty = stage.write_part([], tmp_path, "part-c", _ctx(tmp_path))
    result = stage.finalize([part_b, empty, part_a], [], tmp_path, _ctx(tmp_path))

    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert result == on_disk
    manifest = ShardManifest.read(tmp_path / "manifest.json")
    assert [s.bin_file for s in manifest.shards] == [
        "part-a-00000.bin",
        "part-b-00000.bin",
        "part-b-00001.bin",
    ]
    assert (manifest.total_documents, manifest.total_tokens) == (3, 7)
    assert (manifest.tokenizer.name, manifest.tokenizer.vocab_size, manifest.tokenizer.eos_id) == (
        "qwen2.5",
        151665,
        EOS,
    )
    assert manifest.dtype == "int32"
    assert manifest.verify(tmp_path) == []
    assert sum(len(MegatronReader(tmp_path / s.name)) for s in manifest.shards) == 3


def test_finalize_refuses_when_a_reported_shard_is_missing(tmp_path: Path) -> None:
    stage = WriteShardsV1Stage()
    part = stage.write_part([_tokens_batch([[1, 2]])], tmp_path, "p", _ctx(tmp_path))
    (tmp_path / "p-00000.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"p-00000\.bin: missing"):
        stage.finalize([part], [], tmp_path, _ctx(tmp_path))
    assert not (tmp_path / "manifest.json").exists()


def test_tokenize_then_write_end_to_end(tmp_path: Path) -> None:
    texts = ["Hello, world!", None, "Grüße aus Köln", "日本語のテキスト"]
    tokenized = TokenizeStage()(_batch(texts))
    sink = WriteShardsV1Stage()
    part = sink.write_part([tokenized], tmp_path, "part-00000", _ctx(tmp_path))
    sink.finalize([part], [], tmp_path, _ctx(tmp_path))
    reader = MegatronReader(tmp_path / "part-00000-00000")
    expected = [t for t in tokenized.column("tokens").to_pylist() if t is not None]
    assert [d.tolist() for d in reader] == expected
    assert reader[0].tolist() == [9707, 11, 1879, 0, EOS]
    assert reader.dtype == np.int32
