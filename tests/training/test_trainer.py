"""End-to-end training on real tokenised text: loss falls, outputs appear, and resume is exact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from corpusmill.shards.manifest import HeldoutInfo, ShardEntry, ShardManifest
from corpusmill.shards.megatron import MegatronReader, MegatronWriter
from corpusmill.shards.tokenizer import VOCAB_SIZE, encode_documents
from corpusmill.training import TrainConfig, load_config, train
from corpusmill.training.checkpoint import load_checkpoint
from corpusmill.training.model import build_model, lr_at
from corpusmill.training.trainer import _lm_loss


@pytest.fixture(scope="module")
def shards_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two shards of real web-article text tokenised with the Qwen2.5 tokenizer: 50 documents to train on,
    the rest in a held-out shard."""
    files = sorted((shared_data / "wcxb-dev" / "ground-truth").glob("*.json"))[:60]
    texts = [json.loads(p.read_text(encoding="utf-8"))["ground_truth"]["main_content"] for p in files]
    docs = [np.asarray(d, dtype=np.int32) for d in encode_documents([t for t in texts if t])]
    out = tmp_path_factory.mktemp("shards")
    entries = []
    for name, split, chunk in (("shard-00000", "train", docs[:50]), ("heldout-00000", "heldout", docs[50:])):
        writer = MegatronWriter(out / name)
        for doc in chunk:
            writer.add_document(doc)
        entries.append(ShardEntry.from_info(writer.finalize(), out, split))
    manifest = ShardManifest.from_shards(entries, heldout=HeldoutInfo(fraction=0.15, seed=0))
    manifest.write(out / "manifest.json")
    return out


def small(**overrides: object) -> TrainConfig:
    base = dict(
        seq_len=32, micro_batch_size=2, warmup_steps=2, log_every=1, heldout_windows=4, checkpoint_every=0
    )
    return load_config("tiny", **{**base, **overrides})


def test_fixture_uses_the_full_vocabulary(shards_dir: Path) -> None:
    manifest = ShardManifest.read(shards_dir / "manifest.json")
    assert manifest.tokenizer.vocab_size == VOCAB_SIZE == small().vocab_size
    assert len(manifest.shards) == 2 and manifest.total_tokens > 20_000


def test_loss_goes_down_and_outputs_are_written(shards_dir: Path, tmp_path: Path) -> None:
    config = small(max_steps=24, lr=5e-3, min_lr=5e-4, eval_every=12)
    result = train(shards_dir, config, tmp_path)
    losses = [result.losses[s] for s in range(1, 25)]
    # A random init over 151,665 ids starts near ln(151665) ~ 11.93 nats.
    assert abs(losses[0] - np.log(VOCAB_SIZE)) < 0.3
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 1.0
    assert result.eval_losses[24] < result.eval_losses[12]
    assert result.final_step == 24 and result.tokens_seen == 24 * 2 * 32
    records = [json.loads(line) for line in result.metrics_path.read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 25))
    assert records[4]["lr"] == pytest.approx(lr_at(4, config))
    assert all(r["tokens_per_s"] > 0 for r in records)
    assert result.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.checkpoint_path.is_file()


def test_interrupted_run_resumes_exactly(shards_dir: Path, tmp_path: Path) -> None:
    config = small(max_steps=8, eval_every=3, checkpoint_every=3, grad_accum_steps=2)
    whole = train(shards_dir, config, tmp_path / "whole")
    first = train(shards_dir, config, tmp_path / "split", max_steps=4)
    assert first.final_step == 4 and sorted(first.losses) == [1, 2, 3, 4]
    second = train(shards_dir, config, tmp_path / "split")
    assert second.start_step == 4 and sorted(second.losses) == [5, 6, 7, 8]
    resumed = {**first.losses, **second.losses}
    assert resumed == whole.losses  # bit-identical, step for step
    assert second.eval_losses[6] == whole.eval_losses[6]
    # The metrics log of the split run reads like the uninterrupted one.
    split_steps = [
        json.loads(x)["step"] for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    ]
    assert split_steps == list(range(1, 9))
    # Nothing left to do: a third call trains no more steps.
    assert train(shards_dir, config, tmp_path / "split").losses == {}


def test_resume_with_a_different_model_is_refused(shards_dir: Path, tmp_path: Path) -> None:
    train(shards_dir, small(max_steps=4), tmp_path, max_steps=1)
    with pytest.raises(
        ValueError, match=r"checkpoint\.pt was written with a different config.*seq_len: 32 -> 16"
    ):
        train(shards_dir, small(max_steps=4, seq_len=16), tmp_path)


def test_vocab_smaller_than_the_tokenizer_is_refused(shards_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=rf"tokenizer has {VOCAB_SIZE} ids.*vocab_size is 1000"):
        train(shards_dir, small(max_steps=2, vocab_size=1000), tmp_path)


def test_evaluation_runs_on_the_held_out_shards_and_reports_their_size(
    shards_dir: Path, tmp_path: Path
) -> None:
    manifest = ShardManifest.read(shards_dir / "manifest.json")
    held = manifest.split_totals("heldout")
    result = train(shards_dir, small(max_steps=2, eval_every=1, heldout_windows=3), tmp_path)
    assert (result.heldout.documents, result.heldout.tokens, result.heldout.shards) == (
        held.documents,
        held.tokens,
        1,
    )
    assert result.heldout.windows_used == 3 and result.heldout.windows == (held.tokens - 1) // 32
    assert result.train_data.tokens == manifest.split_totals("train").tokens
    written = json.loads(result.data_path.read_text())
    assert written["heldout"] == result.heldout.to_dict() and written["seq_len"] == 32
    records = [json.loads(line) for line in result.metrics_path.read_text().splitlines()]
    assert [r["eval_windows"] for r in records if "eval_loss" in r] == [3, 3]

    # The held-out loss is the model's loss on the first 3 windows of the held-out shard, nothing else.
    tokens = np.concatenate(list(MegatronReader(shards_dir / "heldout-00000"))).astype(np.int64)
    windows = torch.from_numpy(np.stack([tokens[i * 32 : i * 32 + 33] for i in range(3)]))
    model = build_model(small(max_steps=2))
    model.load_state_dict(load_checkpoint(result.checkpoint_path)["model"])
    model.eval()
    cpu = torch.device("cpu")
    with torch.no_grad():  # evaluation batches by micro_batch_size (2): a batch of 2 windows, then 1
        expected = 2 * float(_lm_loss(model, windows[:2], small(), cpu)) + float(
            _lm_loss(model, windows[2:], small(), cpu)
        )
    assert result.eval_losses[2] == pytest.approx(expected / 3, rel=1e-4)


def test_shards_without_a_held_out_split_cannot_be_trained_on(shards_dir: Path, tmp_path: Path) -> None:
    manifest = ShardManifest.read(shards_dir / "manifest.json")
    entries = [entry.model_copy(update={"split": "train"}) for entry in manifest.shards]
    plain = tmp_path / "shards"
    plain.mkdir()
    for entry in entries:
        for name in (entry.bin_file, entry.idx_file):
            (plain / name).symlink_to(shards_dir / name)
    ShardManifest.from_shards(entries).write(plain / "manifest.json")
    with pytest.raises(ValueError, match=r"no held-out split.*write_shards stage's heldout_fraction"):
        train(plain, small(max_steps=2), tmp_path / "out")
    assert not (tmp_path / "out" / "checkpoint.pt").exists()
