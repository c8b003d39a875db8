"""The model and optimizer a `TrainConfig` describes: a randomly initialised Qwen2 causal LM and AdamW.

Using transformers' Qwen2 implementation means a trained checkpoint loads into the usual tooling
(`save_pretrained`-compatible state dict). The learning-rate schedule is linear warmup then cosine decay to
`min_lr`, computed from the config's `max_steps` alone.
"""

from __future__ import annotations

import math

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from corpusmill.training.config import TrainConfig


def build_model(config: TrainConfig) -> Qwen2ForCausalLM:
    """Instantiate the architecture with random weights (seed the torch RNG first for reproducibility)."""
    hf_config = Qwen2Config(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=max(config.seq_len, 32),
        rope_theta=config.rope_theta,
        rms_norm_eps=config.rms_norm_eps,
        initializer_range=config.initializer_range,
        tie_word_embeddings=config.tie_embeddings,
        attention_dropout=0.0,
        use_cache=False,
    )
    model = Qwen2ForCausalLM(hf_config)
    return model.float()


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (decaying norms' gains and biases only hurts)."""
    decay, no_decay = [], []
    seen: set[int] = set()
    for param in model.parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine down to min_lr."""
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.max_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.min_lr + (config.lr - config.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """Wrap `lr_at` as a scheduler so its position is saved and restored with the optimizer."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_at(step, config) / config.lr)
