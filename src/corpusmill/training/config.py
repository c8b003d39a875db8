"""Training configuration: one validated model of every knob, named presets, and YAML loading.

A config is a preset plus overrides, so a YAML file only names what differs from a known-good starting
point (`preset: tiny` then `max_steps: 50`). Unknown keys are errors rather than silently ignored, because
a misspelt `learnig_rate` that trains with the default is worse than a failed start. The learning-rate
schedule is always computed from `max_steps` here; stopping a run earlier does not change it, which is
what makes an interrupted run resume onto the same curve. `heldout_windows` sizes evaluation: that many
windows of the shards' held-out split are scored at every evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from corpusmill.shards.tokenizer import VOCAB_SIZE


class TrainConfig(BaseModel):
    """Model shape, optimisation and bookkeeping settings for one training run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str | None = None
    # Model.
    hidden_size: int = Field(default=64, ge=1)
    num_layers: int = Field(default=2, ge=1)
    num_heads: int = Field(default=4, ge=1)
    num_kv_heads: int = Field(default=2, ge=1)
    intermediate_size: int = Field(default=256, ge=1)
    vocab_size: int = Field(default=VOCAB_SIZE, ge=1)
    tie_embeddings: bool = True
    rope_theta: float = Field(default=10_000.0, gt=0)
    rms_norm_eps: float = Field(default=1e-6, gt=0)
    initializer_range: float = Field(default=0.02, gt=0)
    # Data.
    seq_len: int = Field(default=128, ge=1)
    micro_batch_size: int = Field(default=4, ge=1)
    grad_accum_steps: int = Field(default=1, ge=1)
    heldout_windows: int = Field(default=16, ge=1)  # held-out windows scored per evaluation
    # Optimisation.
    lr: float = Field(default=3e-3, gt=0)
    min_lr: float = Field(default=3e-4, ge=0)
    warmup_steps: int = Field(default=10, ge=0)
    max_steps: int = Field(default=200, ge=1)
    weight_decay: float = Field(default=0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = Field(default=1.0, ge=0)
    # Bookkeeping.
    eval_every: int = Field(default=50, ge=0)
    checkpoint_every: int = Field(default=100, ge=0)
    log_every: int = Field(default=10, ge=1)
    seed: int = Field(default=1234, ge=0)
    dtype: Literal["float32", "bfloat16"] = "float32"

    @model_validator(mode="before")
    @classmethod
    def _replaced_fields(cls, values: Any) -> Any:
        if isinstance(values, dict) and "eval_batches" in values:
            raise ValueError(
                "eval_batches is replaced by heldout_windows: each evaluation scores heldout_windows windows "
                "of the shards' held-out split; set heldout_windows instead (e.g. eval_batches * "
                "micro_batch_size)"
            )
        return values

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = []
        if self.hidden_size % self.num_heads:
            problems.append(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            problems.append(
                f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}"
            )
        if self.min_lr > self.lr:
            problems.append(f"min_lr {self.min_lr} is above lr {self.lr}")
        if self.warmup_steps > self.max_steps:
            problems.append(f"warmup_steps {self.warmup_steps} exceeds max_steps {self.max_steps}")
        if not all(0 <= beta < 1 for beta in self.betas):
            problems.append(f"betas {self.betas} must both be in [0, 1)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def head_dim(self) -> int:
        """Per-head width, derived so it cannot disagree with hidden_size."""
        return self.hidden_size // self.num_heads

    @property
    def tokens_per_step(self) -> int:
        """Tokens one optimizer step consumes on one process."""
        return self.seq_len * self.micro_batch_size * self.grad_accum_steps


PRESETS: dict[str, dict[str, Any]] = {
    # Small enough to train on a laptop CPU in minutes; the full vocabulary keeps it honest about ids.
    "tiny": {
        "hidden_size": 64,
        "num_layers": 2,
        "num_heads": 4,
        "num_kv_heads": 2,
        "intermediate_size": 256,
        "tie_embeddings": True,
        "rope_theta": 10_000.0,
        "seq_len": 128,
        "micro_batch_size": 4,
        "lr": 3e-3,
        "min_lr": 3e-4,
        "warmup_steps": 10,
        "max_steps": 200,
        "dtype": "float32",
    },
    # The dimensions of Qwen2.5-0.5B.
    "qwen2-0.5b": {
        "hidden_size": 896,
        "num_layers": 24,
        "num_heads": 14,
        "num_kv_heads": 2,
        "intermediate_size": 4864,
        "tie_embeddings": True,
        "rope_theta": 1_000_000.0,
        "rms_norm_eps": 1e-6,
        "seq_len": 2048,
        "micro_batch_size": 8,
        "grad_accum_steps": 8,
        "lr": 3e-4,
        "min_lr": 3e-5,
        "warmup_steps": 500,
        "max_steps": 20_000,
        "eval_every": 500,
        "heldout_windows": 160,
        "checkpoint_every": 1000,
        "log_every": 10,
        "dtype": "bfloat16",
    },
}


def _format_validation(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "config"
        lines.append(f"  {where}: {err['msg']}")
    return f"invalid training config {source}:\n" + "\n".join(lines)


def build_config(values: dict[str, Any], *, source: str = "(inline)") -> TrainConfig:
    """Merge a preset (named by `values['preset']`) with overrides, with errors that name the source."""
    values = dict(values)
    preset = values.get("preset")
    merged: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(
                f"training config {source}: unknown preset {preset!r}; choose one of {sorted(PRESETS)}"
            )
        merged.update(PRESETS[preset])
    merged.update(values)
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as exc:
        raise ValueError(_format_validation(source, exc)) from None


def load_config(path_or_preset: str | Path, **overrides: Any) -> TrainConfig:
    """Read a YAML config file, or take a bare preset name, then apply keyword overrides."""
    if isinstance(path_or_preset, str) and path_or_preset in PRESETS:
        return build_config({"preset": path_or_preset, **overrides}, source=f"preset {path_or_preset!r}")
    path = Path(path_or_preset)
    if not path.is_file():
        raise FileNotFoundError(
            f"training config {path} does not exist (and is not a preset name; presets: {sorted(PRESETS)})"
        )
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"training config {path}: not valid YAML: {exc}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(
            f"training config {path}: expected a mapping of settings, got {type(values).__name__}"
        )
    return build_config({**values, **overrides}, source=str(path))
