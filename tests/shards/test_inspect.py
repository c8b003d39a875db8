"""`inspect_shards` summarises real shards, decodes their first documents and reports every problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corpusmill.shards.inspect import SAMPLE_CHARS, inspect_shards
from corpusmill.shards.manifest import ShardEntry, ShardManifest
from corpusmill.shards.megatron import MegatronWriter
from corpusmill.shards.tokenizer import encode_documents
from corpusmill.shards.writer import MANIFEST_NAME

LONG = "The quick brown fox jumps over the lazy dog. " * 20  # 900 characters
SHARD_TEXTS = [
    [LONG, "Zweites Dokument über Käse.", "第三个文档。"],
    ["fourth document, second shard", "fifth & last <|im_start|> as plain text"],
]
EOT = "<|endoftext|>"


@pytest.fixture
def shards_dir(tmp_path: Path) -> Path:
    """Two shards of tokenised text plus a manifest, as `write_shards` lays them out."""
    entries = []
    for i, texts in enumerate(SHARD_TEXTS):
        writer = MegatronWriter(tmp_path / f"part-00000-{i:05d}", dtype=np.int32)
        for ids in encode_documents(texts):
            writer.add_document(ids)
        entries.append(ShardEntry.from_info(writer.finalize(), tmp_path))
    ShardManifest.from_shards(entries, dtype="int32").write(tmp_path / MANIFEST_NAME)
    return tmp_path


def _token_count(texts: list[str]) -> int:
    return sum(map(len, encode_documents(texts)))


def test_healthy_directory_is_summarised_and_sampled(shards_dir: Path) -> None:
    report = inspect_shards(shards_dir)
    assert report.problems == [] and report.ok and report.has_manifest
    assert report.num_shards == 2
    assert report.num_documents == 5
    all_texts = [t for texts in SHARD_TEXTS for t in texts]
    assert report.num_tokens == _token_count(all_texts)
    assert [row.name for row in report.shards] == ["part-00000-00000", "part-00000-00001"]
    assert [row.num_documents for row in report.shards] == [3, 2]
    assert [row.num_tokens for row in report.shards] == [_token_count(t) for t in SHARD_TEXTS]
    first = report.shards[0]
    assert first.dtype == "int32" and first.bin_bytes == 4 * first.num_tokens
    assert first.max_document_tokens == len(encode_documents([LONG])[0])
    # Decoded samples are the original texts (each followed by its EOS), cut to SAMPLE_CHARS.
    assert report.samples == [LONG[:SAMPLE_CHARS], SHARD_TEXTS[0][1] + EOT]


def test_samples_continue_into_the_next_shard(shards_dir: Path) -> None:
    report = inspect_shards(shards_dir, sample=5, verify=False)
    assert report.samples[3:] == [text + EOT for text in SHARD_TEXTS[1]]
    assert inspect_shards(shards_dir, sample=0).samples == []


def test_corrupted_bin_is_a_checksum_problem_only_when_verifying(shards_dir: Path) -> None:
    path = shards_dir / "part-00000-00001.bin"
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01  # same size, different bytes
    path.write_bytes(bytes(data))
    problems = inspect_shards(shards_dir).problems
    assert len(problems) == 1 and str(path) in problems[0] and "sha256" in problems[0]
    assert inspect_shards(shards_dir, verify=False).problems == []


def test_truncated_shard_is_reported_and_the_rest_still_inspected(shards_dir: Path) -> None:
    path = shards_dir / "part-00000-00000.bin"
    path.write_bytes(path.read_bytes()[:-4])
    report = inspect_shards(shards_dir)
    assert any("size" in p and str(path) in p for p in report.problems)  # from the manifest check
    assert any("truncated or mismatched" in p for p in report.problems)  # from the reader
    assert [row.name for row in report.shards] == ["part-00000-00001"]
    assert report.samples == [text + EOT for text in SHARD_TEXTS[1]]


def test_missing_manifest_and_unlisted_shards_are_problems(shards_dir: Path) -> None:
    extra = MegatronWriter(shards_dir / "part-00001-00000", dtype=np.int32)
    extra.add_document(encode_documents(["stray"])[0])
    extra.finalize()
    report = inspect_shards(shards_dir)
    assert report.problems == [
        f"{shards_dir / 'part-00001-00000.idx'}: on disk but not in {shards_dir / MANIFEST_NAME}"
    ]
    (shards_dir / MANIFEST_NAME).unlink()
    report = inspect_shards(shards_dir)
    assert not report.has_manifest
    assert len(report.problems) == 1 and "missing" in report.problems[0]
    assert report.num_shards == 3 and report.num_documents == 6


def test_manifest_counts_that_disagree_with_the_index_are_reported(shards_dir: Path) -> None:
    manifest = ShardManifest.read(shards_dir / MANIFEST_NAME)
    entries = [manifest.shards[0].model_copy(update={"num_documents": 4}), manifest.shards[1]]
    ShardManifest.from_shards(entries).write(shards_dir / MANIFEST_NAME)
    problems = inspect_shards(shards_dir).problems
    assert problems == [f"{shards_dir / 'part-00000-00000'}: 3 documents, manifest says 4"]


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        inspect_shards(tmp_path / "does-not-exist")
