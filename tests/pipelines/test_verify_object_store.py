"""`verify` and `shards inspect` on a finished run copied to object storage (moto's S3 server, through s3fs).

A run is written locally and uploaded, as `aws s3 sync runs/x s3://bucket/runs/x` would; both commands then
read it where it is and must say exactly what they say about the local copy. An object replaced by other bytes
of the same size is a checksum mismatch naming that file, even in a process that had already listed it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corpusmill.cli import app
from corpusmill.core.recipe import parse_recipe
from corpusmill.pipelines.runner import run_recipe
from corpusmill.pipelines.verify import verify_run
from corpusmill.shards.inspect import inspect_shards
from s3kit import Bucket

PREFIX = "verify/object-store"
WORDS = [
    "river",
    "garden",
    "winter",
    "market",
    "station",
    "forest",
    "letter",
    "bridge",
    "island",
    "kitchen",
    "evening",
    "teacher",
]
runner = CliRunner()


def _finished_run(out: Path, shards: dict) -> Path:
    """A small run (two input files, an exact duplicate) with `write_shards` given `shards`, written locally."""
    rng = random.Random(3)
    input_dir = out / "input"
    input_dir.mkdir()
    texts = [" ".join(rng.choice(WORDS) for _ in range(40)) + f" ({i})." for i in range(24)]
    for name, part in (("a.jsonl", texts[:14]), ("b.jsonl", [*texts[14:], texts[2]])):
        (input_dir / name).write_text("".join(json.dumps({"text": t}) + "\n" for t in part))
    recipe = parse_recipe(
        {
            "name": "verify-object-store",
            "input": {"paths": [str(input_dir / "*.jsonl")], "part_bytes": 1},  # one part per file
            "stages": [
                {"stage": "dedup_exact"},
                {"stage": "tokenize"},
                {"stage": "write_shards", **shards},
            ],
        }
    )
    run_dir = out / "run"
    result = run_recipe(recipe, engine="local", output=run_dir)
    assert result.summary.documents_out == 24
    return run_dir


# Both shard formats, and both orders verify checks: the global shuffle (with a held-out split) and per part.
SHARDINGS = {
    "megatron-shuffled-heldout": {"format": "megatron", "heldout_fraction": 0.25},
    "datatrove-per-part": {"format": "datatrove", "shuffle": False},
}


@pytest.fixture(scope="module", params=sorted(SHARDINGS))
def uploaded(request, s3_bucket: Bucket, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished run on the local disk, and the URI of its copy in the bucket."""
    run_dir = _finished_run(tmp_path_factory.mktemp(request.param), SHARDINGS[request.param])
    s3_bucket.upload(run_dir, f"{PREFIX}/{request.param}")
    return run_dir, s3_bucket.uri(f"{PREFIX}/{request.param}")


def test_verify_reads_the_copy_on_s3_as_it_reads_the_run(uploaded: tuple[Path, str]) -> None:
    run_dir, uri = uploaded
    local, remote = verify_run(run_dir), verify_run(uri)
    assert local.problems == [] and remote.problems == []
    assert remote.files_checked == local.files_checked > 0
    assert remote.documents_checked == local.documents_checked == 24
    assert remote.tokens_checked == local.tokens_checked > 0
    shown = runner.invoke(app, ["verify", uri])
    assert shown.exit_code == 0, shown.output
    assert (
        f"checked {local.files_checked} files, 24 documents, {local.tokens_checked:,} tokens" in shown.output
    )
    assert f"{uri}: OK" in shown.output


def test_shards_inspect_prints_for_s3_what_it_prints_locally(uploaded: tuple[Path, str]) -> None:
    run_dir, uri = uploaded
    local, remote = inspect_shards(run_dir / "shards"), inspect_shards(f"{uri}/shards")
    assert remote.problems == [] and local.problems == []
    assert (remote.num_shards, remote.num_documents, remote.num_tokens) == (
        local.num_shards,
        local.num_documents,
        local.num_tokens,
    )
    assert remote.shards == local.shards and remote.samples == local.samples
    assert remote.provenance == local.provenance
    outputs = [
        runner.invoke(app, ["shards", "inspect", where])
        for where in (str(run_dir / "shards"), f"{uri}/shards")
    ]
    assert [shown.exit_code for shown in outputs] == [0, 0], [shown.output for shown in outputs]
    kept = [
        [
            line
            for line in shown.output.splitlines()
            if not any(w in line for w in (str(run_dir), uri, "shards in"))
        ]
        for shown in outputs
    ]
    assert kept[0] == kept[1]
    assert f"documents: {local.num_documents:,}   tokens: {local.num_tokens:,}" in outputs[1].output
    assert "checksums: OK" in outputs[1].output


def test_a_replaced_shard_object_is_a_checksum_mismatch(s3_bucket: Bucket, tmp_path: Path) -> None:
    run_dir = _finished_run(tmp_path, {"format": "megatron"})
    key = f"{PREFIX}/replaced"
    s3_bucket.upload(run_dir, key)
    uri = s3_bucket.uri(key)
    assert verify_run(uri).problems == []  # listed and read once in this process before the object changes
    name = json.loads((run_dir / "shards" / "manifest.json").read_text())["shards"][0]["bin_file"]
    data = bytearray((run_dir / "shards" / name).read_bytes())
    data[8] ^= 0xFF
    s3_bucket.fs.pipe_file(f"{s3_bucket.name}/{key}/shards/{name}", bytes(data))
    s3_bucket.fs.pipe_file(f"{s3_bucket.name}/{key}/documents/.part-00000.parquet.ab12cd34.tmp", b"")

    shown = runner.invoke(app, ["verify", uri])
    assert shown.exit_code == 1
    assert f"shards/{name}: size or sha256 differs from the manifest" in shown.output
    assert "do not decode to its text" in shown.output
    assert (
        "documents/.part-00000.parquet.ab12cd34.tmp: a temporary file left by an interrupted write"
        in shown.output
    )
    inspected = runner.invoke(app, ["shards", "inspect", f"{uri}/shards"])
    assert inspected.exit_code == 1
    assert f"{uri}/shards/{name}: sha256" in inspected.output


def test_a_uri_without_a_finished_run_is_reported(s3_bucket: Bucket) -> None:
    uri = s3_bucket.uri(f"{PREFIX}/nothing-here")
    shown = runner.invoke(app, ["verify", uri])
    assert shown.exit_code == 1
    assert f"{uri}/manifest.json is missing" in shown.output
    inspected = runner.invoke(app, ["shards", "inspect", f"{uri}/shards"])
    assert inspected.exit_code != 0
    assert "does not exist" in inspected.output


def test_a_shard_on_s3_is_read_by_ranges_with_a_bounded_buffer(
    s3_bucket: Bucket, monkeypatch, tmp_path: Path
) -> None:
    """Documents read through small blocks (crossing block ends) equal the memory map's; no read is whole."""
    import numpy as np

    from corpusmill.shards import megatron
    from corpusmill.shards.megatron import MegatronReader, MegatronWriter

    rng = np.random.default_rng(0)
    writer = MegatronWriter(tmp_path / "shards" / "shard")
    for _ in range(50):
        writer.add_document(rng.integers(0, 50_000, size=int(rng.integers(1, 300)), dtype=np.int32))
    writer.finalize()
    s3_bucket.upload(tmp_path / "shards", f"{PREFIX}/ranges")
    monkeypatch.setattr(megatron, "REMOTE_BLOCK_SIZE", 256)
    local = MegatronReader(tmp_path / "shards" / "shard")
    remote = MegatronReader(s3_bucket.uri(f"{PREFIX}/ranges/shard"))
    assert len(remote) == len(local) == 50
    biggest = 0
    for i in [*range(50), -1, 7, 0]:
        assert np.array_equal(remote[i], local[i])
        handle = remote._tokens._handle
        biggest = max(biggest, len(handle.cache.cache))
    assert handle.blocksize == 256
    assert 0 < biggest <= 256 + int(local.sequence_lengths.max()) * 4 < local.bin_path.stat().st_size
