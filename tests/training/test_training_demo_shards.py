"""The data path's own output is trainable: the demo recipe's shards make a tiny model's loss fall.

Other training tests write shards by hand; this one takes them from `recipes/demo.yaml` run on the in-process
engine over the generated demo crawl, exactly as a user would, so a change in the pipeline's shard layout
(names, order, how documents spread over shards) that the trainer cannot read, or that leaves nothing
learnable in the shards, fails here. Nothing is assumed about shard file names: the manifest is the contract.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from corpusmill.core.recipe import load_recipe
from corpusmill.demo import write_demo_corpus
from corpusmill.pipelines.runner import run_recipe
from corpusmill.shards.manifest import ShardManifest
from corpusmill.shards.tokenizer import VOCAB_SIZE
from corpusmill.training import TrainResult, load_config, train
from corpusmill.training.data import open_shards

REPO = Path(__file__).resolve().parents[2]
STEPS = 32
CONFIG = dict(
    seq_len=32,
    micro_batch_size=2,
    max_steps=STEPS,
    warmup_steps=4,
    lr=5e-3,
    min_lr=5e-4,
    log_every=1,
    eval_every=8,
    heldout_windows=16,
    checkpoint_every=0,
)


@pytest.fixture(scope="module")
def demo_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shards directory of a demo-recipe run over a freshly generated demo crawl (~1 min)."""
    sample = tmp_path_factory.mktemp("demo-sample")
    write_demo_corpus(sample)
    recipe = load_recipe(REPO / "recipes" / "demo.yaml")
    recipe = recipe.model_copy(
        update={"input": recipe.input.model_copy(update={"paths": [str(sample / "*.warc.gz")]})}
    )
    result = run_recipe(recipe, engine="local", output=tmp_path_factory.mktemp("demo-run"))
    return result.run_dir / "shards"


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Train on one thread: the tiny model gains nothing from more, and a shared CI box loses a lot."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(demo_shards: Path, one_thread: None, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train(demo_shards, load_config("tiny", **CONFIG), tmp_path_factory.mktemp("demo-train"))


def test_the_demo_run_wrote_shards_the_trainer_can_split(demo_shards: Path) -> None:
    manifest = ShardManifest.read(demo_shards / "manifest.json")
    # Every index on disk is in the manifest, and the trainer reads the shards through it.
    assert sorted(e.idx_file for e in manifest.shards) == sorted(
        str(p.relative_to(demo_shards)) for p in demo_shards.rglob("*.idx")
    )
    assert manifest.tokenizer.vocab_size == VOCAB_SIZE
    assert manifest.total_documents > 100 and manifest.total_tokens > 50_000
    # The recipe holds documents out (heldout_fraction), in shards of their own.
    assert manifest.heldout is not None and manifest.split_totals("heldout").documents > 0
    data = open_shards(demo_shards, seq_len=32, heldout_windows=16, seed=0)
    assert data.train.num_tokens + data.heldout.num_tokens == manifest.total_tokens
    assert data.heldout.num_tokens == manifest.split_totals("heldout").tokens
    # Enough distinct windows that 32 steps of 2 never revisit one: the loss drop is not memorisation.
    assert data.train.num_windows > STEPS * CONFIG["micro_batch_size"]
    assert data.heldout.num_windows >= CONFIG["heldout_windows"]


def test_training_loss_falls_on_the_demo_shards(trained: TrainResult) -> None:
    losses = np.array([trained.losses[s] for s in range(1, STEPS + 1)])
    assert trained.final_step == STEPS and trained.tokens_seen == STEPS * 2 * 32
    # A fresh model is close to uniform over the vocabulary: ln(151,665) ~ 11.93 nats.
    assert abs(losses[0] - math.log(VOCAB_SIZE)) < 0.3
    # At 64 tokens a step, single-step losses late in such a run scatter with a standard deviation of
    # 0.3-0.9 nats (measured over the last 10 steps), so a 5-step mean is uncertain by at most ~0.4; a
    # 2-nat drop is five of those and cannot be batch-to-batch noise (this config drops by about 3 nats).
    assert losses[-5:].mean() < losses[:5].mean() - 2.0
    assert np.isfinite(losses).all()


def test_held_out_loss_falls_on_the_demo_shards(trained: TrainResult) -> None:
    evals = [trained.eval_losses[s] for s in sorted(trained.eval_losses)]
    assert sorted(trained.eval_losses) == [8, 16, 24, 32]
    # The held-out windows are the same tokens at every evaluation, from documents never trained on, so this
    # is a fall in loss on unseen text: by at least a nat from the first evaluation, and well below uniform guessing.
    assert evals[-1] < evals[0] - 1.0
    assert evals[-1] < math.log(VOCAB_SIZE) - 2.0
    assert min(evals) == pytest.approx(evals[-1], abs=0.1)
