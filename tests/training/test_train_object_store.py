"""Training on shards in object storage: a real S3 server (moto's, on loopback, over HTTP through s3fs).

`train s3://...` copies the shards into a local cache, each file checked against the manifest's sha256 before
it is renamed into place, then trains from the copy exactly as from a local directory: same seed, same losses
and the same checkpoint tensors. A rerun (or a resumed run) finds the cache complete and neither downloads nor
rehashes a byte; an object whose bytes differ from the manifest is refused with an error naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from corpusmill.cli import app
from corpusmill.core.atomic import find_temporaries
from corpusmill.core.location import is_uri
from corpusmill.shards.manifest import HeldoutInfo, ShardEntry, ShardManifest
from corpusmill.shards.megatron import MegatronWriter
from corpusmill.shards.tokenizer import VOCAB_SIZE
from corpusmill.training import TrainConfig, load_config, shard_cache, train
from corpusmill.training.checkpoint import load_checkpoint
from corpusmill.training.shard_cache import default_cache_dir, fetch_shards
from s3kit import Bucket

PREFIX = "training/object-store"
runner = CliRunner()


def small(**overrides: object) -> TrainConfig:
    base = dict(
        seq_len=32,
        micro_batch_size=2,
        warmup_steps=1,
        max_steps=3,
        log_every=1,
        eval_every=3,
        heldout_windows=2,
        checkpoint_every=0,
    )
    return load_config("tiny", **{**base, **overrides})


@pytest.fixture(scope="module")
def local_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two training shards (one in a subdirectory, as a multi-part run writes them) and a held-out one."""
    rng = np.random.default_rng(7)
    out = tmp_path_factory.mktemp("shards")
    entries = []
    for name, split, docs in (
        ("shard-00000", "train", 12),
        ("part-1/shard-00001", "train", 9),
        ("heldout", "heldout", 5),
    ):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        writer = MegatronWriter(out / name)
        for _ in range(docs):
            writer.add_document(rng.integers(0, VOCAB_SIZE, size=int(rng.integers(20, 90)), dtype=np.int32))
        entries.append(ShardEntry.from_info(writer.finalize(), out, split))
    ShardManifest.from_shards(entries, heldout=HeldoutInfo(fraction=0.2, seed=0)).write(out / "manifest.json")
    return out


@pytest.fixture(scope="module")
def shards_uri(local_shards: Path, s3_bucket: Bucket) -> str:
    s3_bucket.upload(local_shards, f"{PREFIX}/shards")
    return s3_bucket.uri(f"{PREFIX}/shards")


def shard_files(shards_dir: Path) -> list[str]:
    manifest = ShardManifest.read(shards_dir / "manifest.json")
    return sorted([e.bin_file for e in manifest.shards] + [e.idx_file for e in manifest.shards])


def test_uris_are_told_from_local_paths() -> None:
    assert is_uri("s3://bucket/runs/x/shards") and is_uri("gs://bucket/shards")
    assert not is_uri("runs/x/shards") and not is_uri("/abs/shards") and not is_uri("file:///abs/shards")
    assert not is_uri(Path("runs/x/shards"))
    assert default_cache_dir("s3://b/x/") == default_cache_dir("s3://b/x") != default_cache_dir("s3://b/y")


def test_training_from_s3_equals_training_from_the_local_directory(
    local_shards: Path, shards_uri: str, tmp_path: Path
) -> None:
    local = train(local_shards, small(), tmp_path / "local")
    remote = train(shards_uri, small(), tmp_path / "remote", cache_dir=tmp_path / "cache")
    assert sorted(remote.losses) == [1, 2, 3]
    assert remote.losses == local.losses and remote.eval_losses == local.eval_losses
    ours, theirs = load_checkpoint(remote.checkpoint_path), load_checkpoint(local.checkpoint_path)
    assert ours["model"].keys() == theirs["model"].keys()
    for name, tensor in theirs["model"].items():
        assert torch.equal(ours["model"][name], tensor), name
    # The cache is a byte-for-byte shards directory; data.json says where the shards came from.
    for name in [*shard_files(local_shards), "manifest.json"]:
        assert (tmp_path / "cache" / name).read_bytes() == (local_shards / name).read_bytes(), name
    data = json.loads((tmp_path / "remote" / "data.json").read_text())
    assert data["shards_dir"] == shards_uri and data["shards_cache"] == str(tmp_path / "cache")
    assert data["train"] == json.loads((tmp_path / "local" / "data.json").read_text())["train"]


def test_a_rerun_downloads_and_rehashes_nothing(
    local_shards: Path, shards_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = fetch_shards(shards_uri, cache)
    assert sorted(first.downloaded) == shard_files(local_shards) and first.cached == []
    before = {name: (cache / name).stat() for name in first.downloaded}

    def no_hashing(path: object) -> str:
        raise AssertionError(f"{path} was hashed again")

    monkeypatch.setattr(shard_cache, "sha256_file", no_hashing)
    second = fetch_shards(shards_uri, cache)
    assert second.downloaded == [] and sorted(second.cached) == shard_files(local_shards)
    assert second.bytes_downloaded == 0
    for name, stat in before.items():
        now = (cache / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), name


def test_the_cli_trains_from_a_uri_and_resumes_from_the_cache(
    local_shards: Path, shards_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No --cache: the default cache lives under XDG_CACHE_HOME, keyed by the URI.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"preset": "tiny", **small().model_dump(mode="json"), "max_steps": 4}))
    output = tmp_path / "run"
    first = runner.invoke(
        app, ["train", shards_uri, "--config", str(config), "--output", str(output), "--max-steps", "2"]
    )
    assert first.exit_code == 0, first.output
    cache = default_cache_dir(shards_uri)
    assert cache.is_relative_to(tmp_path / "xdg")
    before = {name: (cache / name).stat().st_ino for name in shard_files(local_shards)}

    downloads: list[str] = []
    real_download = shard_cache._download
    monkeypatch.setattr(
        shard_cache, "_download", lambda *a, **k: downloads.append(a[2]) or real_download(*a, **k)
    )
    second = runner.invoke(app, ["train", shards_uri, "--config", str(config), "--output", str(output)])
    assert second.exit_code == 0, second.output
    assert "trained steps 3-4" in second.output
    assert downloads == []
    assert {name: (cache / name).stat().st_ino for name in before} == before


def test_a_corrupt_object_is_refused_naming_it(local_shards: Path, s3_bucket: Bucket, tmp_path: Path) -> None:
    s3_bucket.upload(local_shards, f"{PREFIX}/corrupt")
    uri = s3_bucket.uri(f"{PREFIX}/corrupt")
    name = "part-1/shard-00001.bin"
    damaged = bytearray((local_shards / name).read_bytes())
    damaged[100] ^= 0xFF  # same size, one byte different
    s3_bucket.fs.pipe_file(f"{s3_bucket.name}/{PREFIX}/corrupt/{name}", bytes(damaged))
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=rf"{uri}/{name}: checksum mismatch after download"):
        train(uri, small(), tmp_path / "run", cache_dir=cache)
    # Nothing under the damaged file's name, no temporary left, and no manifest: the cache is not a shards
    # directory a later run could train on by mistake.
    assert not (cache / name).exists() and find_temporaries(cache) == []
    assert not (cache / "manifest.json").exists()
    assert not (tmp_path / "run").exists()


def test_a_damaged_cached_file_is_copied_again(local_shards: Path, shards_uri: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fetch_shards(shards_uri, cache)
    name = "shard-00000.bin"
    damaged = bytearray((cache / name).read_bytes())
    damaged[0] ^= 0xFF
    stat = (cache / name).stat()
    (cache / name).write_bytes(bytes(damaged))
    # A write changes the modification time, but maybe not within the clock's granularity right after the fetch.
    os.utime(cache / name, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = fetch_shards(shards_uri, cache)
    assert again.downloaded == [name]
    assert (cache / name).read_bytes() == (local_shards / name).read_bytes()


def test_a_uri_without_shards_is_a_clear_error(s3_bucket: Bucket, tmp_path: Path) -> None:
    uri = s3_bucket.uri(f"{PREFIX}/nothing-here")
    with pytest.raises(FileNotFoundError, match=rf"{uri}/manifest.json does not exist"):
        fetch_shards(uri, tmp_path / "cache")
