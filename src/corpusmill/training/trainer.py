"""The training loop: packed shard windows in, a Qwen2 model, metrics, a plot and a resumable checkpoint out.

Everything a step depends on is a function of saved state: the batch is chosen from the global sample
counter, the learning rate from the step, and model/optimizer/scheduler/RNG states come from the checkpoint.
So `train()` called again on the same output directory continues exactly where the checkpoint left off,
and the losses match an uninterrupted run step for step. `max_steps` only stops a call early; the schedule
always follows `config.max_steps`.

Evaluation scores the same `heldout_windows` windows of the manifest's held-out shards every time; how much
was held out (documents, tokens, windows used) is logged, written to `data.json` beside the metrics and
returned, so a reported held-out loss always says what it was measured on.

Under `torchrun` with WORLD_SIZE > 1 the model is wrapped in DistributedDataParallel; each global batch
is split by rank, gradients sync on the last micro-batch only, and rank 0 alone writes files.

Shards on object storage (an fsspec URI) are first copied into a local cache, checked against the manifest
(`shard_cache.py`), and trained on from there exactly as a local directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from corpusmill.core.atomic import write_json
from corpusmill.core.location import is_uri
from corpusmill.training.checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)
from corpusmill.training.config import TrainConfig
from corpusmill.training.data import ShardData, SplitSize, open_shards
from corpusmill.training.distributed import DistInfo, all_mean, barrier, setup_distributed
from corpusmill.training.metrics import (
    METRICS_NAME,
    PLOT_NAME,
    append_metrics,
    plot_losses,
    truncate_metrics,
)
from corpusmill.training.model import build_model, build_optimizer, build_scheduler
from corpusmill.training.shard_cache import fetch_shards

logger = logging.getLogger(__name__)

# What the run trained and evaluated on: each split's shards, documents, tokens and windows.
DATA_NAME = "data.json"

# Settings that change what a checkpoint's tensors mean or which batch a step sees; resuming with different
# values would silently train a different run.
_RESUME_FIXED = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "intermediate_size",
    "vocab_size",
    "tie_embeddings",
    "seq_len",
    "micro_batch_size",
    "grad_accum_steps",
    "heldout_windows",
    "seed",
)


@dataclass
class TrainResult:
    """What one call of `train` did and where it left its outputs."""

    out_dir: Path
    final_step: int
    start_step: int
    samples_seen: int
    tokens_seen: int
    train_data: SplitSize
    heldout: SplitSize
    losses: dict[int, float] = field(default_factory=dict)
    eval_losses: dict[int, float] = field(default_factory=dict)

    @property
    def checkpoint_path(self) -> Path:
        """The checkpoint a later call resumes from."""
        return self.out_dir / CHECKPOINT_NAME

    @property
    def metrics_path(self) -> Path:
        """One JSON line per logged step."""
        return self.out_dir / METRICS_NAME

    @property
    def data_path(self) -> Path:
        """The train and held-out sizes this run used."""
        return self.out_dir / DATA_NAME

    @property
    def plot_path(self) -> Path:
        """Train and held-out loss against step."""
        return self.out_dir / PLOT_NAME


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def _seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _autocast(config: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA only: CPU bf16 is slow and would make CPU runs differ from their tests."""
    if config.dtype == "bfloat16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _lm_loss(
    model: torch.nn.Module, batch: torch.Tensor, config: TrainConfig, device: torch.device
) -> torch.Tensor:
    """Mean next-token cross-entropy of a batch of `seq_len + 1` windows."""
    inputs, targets = batch[:, :-1], batch[:, 1:]
    with _autocast(config, device):
        logits = model(input_ids=inputs).logits
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))


def evaluate(model: torch.nn.Module, data: ShardData, config: TrainConfig, info: DistInfo) -> float:
    """Mean loss over the same `heldout_windows` held-out windows every time, split across ranks."""
    indices = data.heldout_indices()
    batches = [
        indices[i : i + config.micro_batch_size] for i in range(0, len(indices), config.micro_batch_size)
    ]
    total = torch.zeros(2, dtype=torch.float64, device=info.device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for number, chunk in enumerate(batches):
            if number % info.world_size != info.rank:
                continue
            batch = torch.from_numpy(data.heldout.batch(chunk)).to(info.device)
            loss = _lm_loss(_unwrap(model), batch, config, info.device)
            total[0] += loss.double() * len(chunk)
            total[1] += len(chunk)
    if info.enabled:
        dist.all_reduce(total)
    model.train(was_training)
    return float(total[0] / total[1])


def _check_resumable(state: dict[str, Any], config: TrainConfig, path: Path, info: DistInfo) -> None:
    saved = state["config"]
    changed = [
        f"{key}: {saved.get(key)!r} -> {getattr(config, key)!r}"
        for key in _RESUME_FIXED
        if saved.get(key) != getattr(config, key)
    ]
    if changed:
        raise ValueError(
            f"{path} was written with a different config ({'; '.join(changed)}); "
            "use a new output directory, or restore those settings to resume"
        )
    if state.get("world_size") != info.world_size:
        logger.warning(
            "%s was written by %s processes, resuming with %s: batches stay the same, but the reduction "
            "order differs, so losses will not match an uninterrupted run bit for bit",
            path,
            state.get("world_size"),
            info.world_size,
        )


def _report_data(
    source: str, shards_dir: Path, data: ShardData, config: TrainConfig, out_dir: Path, info: DistInfo
) -> None:
    """Log the held-out size and write both splits' sizes to `data.json` (rank 0), with where the shards came
    from (`source`) and, for shards on object storage, the local copy read (`shards_dir`)."""
    held = data.heldout_size
    if info.is_main:
        logger.info(
            "held out: %d documents, %d tokens in %d shards; evaluating on %d of its %d windows of %d tokens",
            held.documents,
            held.tokens,
            held.shards,
            held.windows_used,
            held.windows,
            config.seq_len,
        )
        write_json(
            out_dir / DATA_NAME,
            {
                "shards_dir": source,
                **({"shards_cache": str(shards_dir)} if source != str(shards_dir) else {}),
                "seq_len": config.seq_len,
                "train": data.train_size.to_dict(),
                "heldout": held.to_dict(),
            },
        )


def train(
    shards_dir: str | Path,
    config: TrainConfig,
    out_dir: Path,
    *,
    max_steps: int | None = None,
    cache_dir: str | Path | None = None,
) -> TrainResult:
    """Train (or resume training) a model on a shards directory; stop at `max_steps` if given.

    `shards_dir` may be an fsspec URI (`s3://bucket/run/shards`): its shards are then copied, checked against
    the manifest, into `cache_dir` (default: `shard_cache.default_cache_dir`) and read from there. The copy
    happens before the process group starts, so no rank waits on a collective while another downloads.
    """
    source = str(shards_dir)
    if is_uri(shards_dir):
        verbose = os.environ.get("RANK", "0") == "0"
        shards_dir = fetch_shards(source, cache_dir, verbose=verbose).local_dir
    shards_dir, out_dir = Path(shards_dir), Path(out_dir)
    info = setup_distributed()
    log = logger.info if info.is_main else logger.debug  # one rank's progress lines are enough
    data = open_shards(
        shards_dir, seq_len=config.seq_len, heldout_windows=config.heldout_windows, seed=config.seed
    )
    if data.vocab_size > config.vocab_size:
        raise ValueError(
            f"{shards_dir}: the shards' tokenizer has {data.vocab_size} ids but the model's vocab_size is "
            f"{config.vocab_size}; raise vocab_size to at least {data.vocab_size}"
        )
    stop = config.max_steps if max_steps is None else min(max_steps, config.max_steps)
    if stop < 0:
        raise ValueError(f"max_steps must be non-negative, got {max_steps}")

    _seed_everything(config.seed)
    model = build_model(config).to(info.device)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config)
    step = samples = 0
    checkpoint_path = out_dir / CHECKPOINT_NAME
    metrics_path = out_dir / METRICS_NAME
    for stale in out_dir.glob(f".{CHECKPOINT_NAME}.*.tmp"):
        stale.unlink(missing_ok=True)  # a save cut short by a crash; the previous checkpoint is intact
    if checkpoint_path.is_file():
        state = load_checkpoint(checkpoint_path)
        _check_resumable(state, config, checkpoint_path, info)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, samples = int(state["step"]), int(state["samples"])
        restore_rng_states(state["rng"])
        if info.is_main:
            truncate_metrics(metrics_path, step)
        log("resuming %s from step %d (%d samples seen)", checkpoint_path, step, samples)
    elif info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        metrics_path.unlink(missing_ok=True)  # a log without a checkpoint belongs to no resumable run
    barrier(info)

    if info.enabled:
        device_ids = [info.device.index] if info.device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=device_ids)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    global_batch = config.micro_batch_size * config.grad_accum_steps * info.world_size
    tokens_per_step = global_batch * config.seq_len
    result = TrainResult(
        out_dir=out_dir,
        final_step=step,
        start_step=step,
        samples_seen=samples,
        tokens_seen=samples * config.seq_len,
        train_data=data.train_size,
        heldout=data.heldout_size,
    )
    _report_data(source, shards_dir, data, config, out_dir, info)
    log(
        "training %s params on %d train / %d held-out windows of %d tokens; steps %d -> %d",
        f"{sum(p.numel() for p in params):,}",
        data.train.num_windows,
        data.heldout.num_windows,
        config.seq_len,
        step,
        stop,
    )

    def save() -> None:
        if info.is_main:
            save_checkpoint(
                checkpoint_path,
                {
                    "model": _unwrap(model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "step": step,
                    "samples": samples,
                    "rng": rng_states(),
                    "config": config.model_dump(mode="json"),
                    "world_size": info.world_size,
                },
            )
        barrier(info)

    interval_start, interval_tokens = time.perf_counter(), 0
    while step < stop:
        total = torch.zeros((), device=info.device)
        for micro in range(config.grad_accum_steps):
            first = samples + (micro * info.world_size + info.rank) * config.micro_batch_size
            indices = data.sample_indices(first, config.micro_batch_size)
            batch = torch.from_numpy(data.train.batch(indices)).to(info.device)
            last = micro == config.grad_accum_steps - 1
            sync = model.no_sync() if info.enabled and not last else contextlib.nullcontext()
            with sync:
                loss = _lm_loss(model, batch, config, info.device)
                (loss / config.grad_accum_steps).backward()
            total += loss.detach()
        max_norm = config.grad_clip if config.grad_clip > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        samples += global_batch
        interval_tokens += tokens_per_step
        loss_value = float(all_mean(total / config.grad_accum_steps, info))
        result.losses[step] = loss_value

        record: dict[str, Any] = {}
        if step % config.log_every == 0 or step == stop:
            elapsed = time.perf_counter() - interval_start
            tokens_per_s = interval_tokens / elapsed if elapsed > 0 else 0.0
            record.update(
                step=step,
                loss=loss_value,
                lr=lr,
                grad_norm=grad_norm,
                tokens=samples * config.seq_len,
                tokens_per_s=tokens_per_s,
            )
            log(
                "step %d/%d loss %.4f lr %.3g grad_norm %.3g %.0f tok/s",
                step,
                config.max_steps,
                loss_value,
                lr,
                grad_norm,
                tokens_per_s,
            )
            interval_start, interval_tokens = time.perf_counter(), 0
        if (config.eval_every and step % config.eval_every == 0) or step == stop:
            eval_loss = evaluate(model, data, config, info)
            result.eval_losses[step] = eval_loss
            record.update(step=step, eval_loss=eval_loss, eval_windows=data.heldout_size.windows_used)
            log("step %d held-out loss %.4f", step, eval_loss)
        if record and info.is_main:
            append_metrics(metrics_path, record)
        if config.checkpoint_every and step % config.checkpoint_every == 0 and step != stop:
            save()

    if step > result.start_step:  # same answer on every rank, so the barrier inside save() is safe
        save()
    if info.is_main:
        plot_losses(metrics_path, out_dir / PLOT_NAME)
    result.final_step = step
    result.samples_seen = samples
    result.tokens_seen = samples * config.seq_len
    return result
